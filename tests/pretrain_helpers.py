"""Small real pretraining data for the tests: FLORES devtest en/fr, word-level vocab.

FLORES devtest files are line-aligned across languages, so the same lines give
monolingual streams ({lang}.{split}) and TLM pairs (en-fr.{lang}.{split}).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from xlm.data.dictionary import Dictionary
from xlm.data.indexed import binarize_lines

SPLITS = {"train": slice(0, 900), "valid": slice(900, 956), "test": slice(956, 1012)}
TINY_SETTINGS = {
    "n_layers": 2, "dim": 32, "n_heads": 2, "dropout": 0.1, "attention_dropout": 0.0,
    "max_positions": 128, "bptt": 32, "batch_size": 8, "tokens_per_batch": 600,
    "max_len": 40, "lr": 0.002, "warmup_steps": 5, "max_steps": 20, "eval_every": 10,
    "eval_batches": 2, "log_every": 1, "checkpoint_every": 1000, "patience": 100, "seed": 0,
}


def write_vocab(paths: list[Path], out: Path, max_vocab: int | None = None) -> Dictionary:
    """A fastBPE-format vocab (`word count`, most frequent first) of the given texts."""
    counts = Counter(w for path in paths for line in path.open(encoding="utf-8")
                     for w in line.split())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]
    with open(out, "w", encoding="utf-8") as handle:
        handle.writelines(f"{word} {count}\n" for word, count in ranked)
    return Dictionary.read_vocab(out)


def build_pretrain_data(shared_data: Path, out: Path, langs=("en", "fr"),
                        max_vocab: int = 1000) -> tuple[Path, Path]:
    """Binarize FLORES lines into out/bin; return (data folder, vocab path)."""
    texts = {lang: (shared_data / "para" / "flores200" / f"devtest.{lang}")
             .read_text(encoding="utf-8").splitlines() for lang in langs}
    out.mkdir(parents=True, exist_ok=True)
    vocab = out / "vocab"
    dictionary = write_vocab([shared_data / "para" / "flores200" / f"devtest.{lang}"
                              for lang in langs], vocab, max_vocab)
    data = out / "bin"
    data.mkdir(parents=True, exist_ok=True)
    pair = "-".join(sorted(langs[:2]))
    for lang, lines in texts.items():
        for split, part in SPLITS.items():
            binarize_lines(lines[part], dictionary, data / f"{lang}.{split}")
            if lang in pair.split("-"):
                binarize_lines(lines[part], dictionary, data / f"{pair}.{lang}.{split}")
    return data, vocab
