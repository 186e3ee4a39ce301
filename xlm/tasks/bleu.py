"""BLEU as the paper and as sacrebleu report it, and detokenization of model output.

- `detok_bleu`: sacreBLEU on detokenized output against the raw references, with its
  signature (what to cite; comparable across papers).
- `tok_bleu`: BLEU on tokenized text (our Moses tokenization of the references, the
  output with BPE removed), sacrebleu with `tokenize="none"`: the multi-bleu.perl-style
  number the paper reports.
"""

from __future__ import annotations

from functools import cache

from sacrebleu.metrics import BLEU
from sacremoses import MosesDetokenizer

from xlm.text.tokenizers import SEGMENTED_LANGUAGES, moses_rules_for

# sacrebleu's own tokenizers for scripts written without spaces.
SACREBLEU_TOKENIZE = {"zh": "zh", "ja": "char", "th": "char"}


@cache
def _detokenizer(lang: str) -> MosesDetokenizer:
    return MosesDetokenizer(lang=moses_rules_for(lang))


def detokenize(line: str, lang: str) -> str:
    """Tokenized text back to plain text (segmented scripts: tokens joined without spaces)."""
    if lang in SEGMENTED_LANGUAGES:
        return "".join(line.split())
    return _detokenizer(lang).detokenize(line.split())


def detok_bleu(hypotheses: list[str], references: list[str], lang: str) -> tuple[float, str]:
    """(sacreBLEU, signature) of detokenized hypotheses against raw references."""
    metric = BLEU(tokenize=SACREBLEU_TOKENIZE.get(lang, "13a"))
    score = metric.corpus_score(hypotheses, [references])
    return float(score.score), str(metric.get_signature())


def tok_bleu(hypotheses: list[str], references: list[str]) -> float:
    """BLEU of already tokenized text (no further tokenization), as multi-bleu.perl.
    `force`: the text is tokenized on purpose (sacrebleu would warn on every call)."""
    return float(BLEU(tokenize="none", force=True).corpus_score(hypotheses, [references]).score)
