"""The speed-ups of issue 8 change no output: the fast Moses normalizer/tokenizer give
sacremoses' output exactly, and BPE on distinct words gives fastBPE's line-by-line output."""

from __future__ import annotations

from pathlib import Path

import pytest
from sacremoses import MosesPunctNormalizer, MosesTokenizer

from xlm.text.bpe import apply_to_lines, build_vocab, learn_codes
from xlm.text.tokenizers import FastMosesTokenizer, FastPunctNormalizer, required_substring

EDGE_CASES = [
    "a  b", "x\ry", "( a )", "f( x ) : y ; z", "1 %", "“hi”", "l’été", "a\u00a0«\u00a0b\u00a0»",
    "3\u00a0000", 'He said."Yes', 'a,"b', "。 a．  b", "\u200bzw\u00adj", "``x''", "",
    "Mr. Smith e.g. U.S.A. etc. no. 5 No. 7 p.m.", "end.", "a . b ..", "Ü. über. X. y",
    "Wait... what?! It's 5,000 -- isn't it? l'homme d'état aujourd'hui", "x...y....z.",
    "DOTMULTI DOTDOTMULTI a..b", "well-known e-mail <b> [a] {c} | & \"q\" 'single'",
]


def test_required_substring() -> None:
    assert required_substring("，", ",") == "，"
    assert required_substring(r"(\d) %", r"\g<1>%") == " %"
    assert required_substring(" +", " ") == "  "
    assert required_substring(r"\s+", " ") is None
    assert required_substring("(?i)abc", "x") is None


@pytest.mark.parametrize("lang", ["en", "fr", "de", "ro", "th"])
def test_same_output_as_sacremoses(lang: str, shared_data: Path) -> None:
    lines = list(EDGE_CASES)
    flores = shared_data / "para" / "flores200" / f"devtest.{lang}"
    if flores.is_file():
        lines += flores.read_text(encoding="utf-8").splitlines()
    slow_norm = MosesPunctNormalizer(lang=lang, pre_replace_unicode_punct=True,
                                     post_remove_control_chars=True)
    fast_norm = FastPunctNormalizer(lang)
    rules = lang if lang != "th" else "en"
    slow_tok, fast_tok = MosesTokenizer(lang=rules), FastMosesTokenizer(rules)
    for line in lines:
        normalized = slow_norm.normalize(line)
        assert fast_norm.normalize(line) == normalized, line
        for escape, dashes in ((False, False), (True, True)):
            assert (fast_tok.tokenize(normalized, dashes, return_str=True, escape=escape)
                    == slow_tok.tokenize(normalized, dashes, return_str=True, escape=escape)), line


def test_bpe_on_distinct_words_is_bpe_on_lines(shared_data: Path, tmp_path: Path) -> None:
    import fastBPE

    tokenizer = FastMosesTokenizer("en")
    text = (shared_data / "para" / "flores200" / "devtest.en").read_text(encoding="utf-8")
    lines = [tokenizer.tokenize(line, escape=False, return_str=True)
             for line in text.splitlines()[:300]] + ["", " a  b "]
    sample = tmp_path / "sample.tok"
    sample.write_text("\n".join(lines) + "\n", encoding="utf-8")
    learn_codes(sample, 300, tmp_path / "codes")
    for vocab in (None, tmp_path / "vocab"):
        if vocab is not None:
            applied = tmp_path / "applied"
            applied.write_text("\n".join(apply_to_lines(
                fastBPE.fastBPE(str(tmp_path / "codes")), lines)) + "\n", encoding="utf-8")
            build_vocab([applied], vocab, 200)  # a capped vocabulary restricts merges
        applier = fastBPE.fastBPE(str(tmp_path / "codes"), *([str(vocab)] if vocab else []))
        expected = applier.apply([" ".join(line.split()) for line in lines])
        assert apply_to_lines(applier, lines) == expected
