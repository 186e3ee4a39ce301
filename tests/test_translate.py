"""`xlm translate` as a user meets it: a direction the model was not trained on is refused in
one line naming the model's directions, empty translations are counted on stderr, and
fastBPE's "Loading vocabulary" chatter stays off the console.

The model is untrained (its output is steered through the decoder's output bias), but the
codes, vocabulary and tokenizer are real: fastBPE learned on Tatoeba en-fr."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from xlm.data.dictionary import EOS
from xlm.tasks.mt import MtSettings, build_translator
from xlm.tasks.translate import trained_directions
from xlm.text.bpe import apply_codes, build_vocab, learn_codes
from xlm.text.tokenizers import TokenizerOptions, get_tokenizer
from xlm.train.checkpoint import save_atomic

SENTENCES = ["Je suis fatigué.", "Il fait beau aujourd'hui.", "Où est la gare ?"]


@pytest.fixture(scope="module")
def bpe(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    """Codes and vocabulary learned with fastBPE on 2,000 tokenized Tatoeba pairs."""
    work = tmp_path_factory.mktemp("translate")
    lines = []
    for lang in ("en", "fr"):
        tokenize = get_tokenizer(lang, TokenizerOptions())
        raw = (shared_data / "para" / "tatoeba" / f"en-fr.{lang}").read_text(
            encoding="utf-8").splitlines()[:2000]
        lines += [tokenize(line) for line in raw]
    (work / "tok.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    learn_codes(work / "tok.txt", 300, work / "codes")
    apply_codes(work / "codes", None, [work / "tok.txt"], [work / "bpe.txt"])
    build_vocab([work / "bpe.txt"], work / "vocab", None)
    return work / "codes", work / "vocab"


def mt_model(bpe: tuple[Path, Path], out: Path, favourite: str | None, **settings) -> Path:
    """An untrained MT model.pt with the codes and tokenizer settings `xlm translate` reads;
    its decoder always predicts `favourite` first (None: `</s>`, i.e. an empty output)."""
    codes, vocab = bpe
    mt = MtSettings(n_layers=1, dim=32, n_heads=2, max_len=8, **settings)
    translator, dictionary = build_translator(mt, None, None, vocab)
    with torch.no_grad():
        bias = translator.decoder.pred_bias
        bias.fill_(-50.0)
        bias[EOS] = 50.0 if favourite is None else 0.0
        if favourite is not None:
            bias[dictionary.word2id[favourite]] = 50.0
    extra = {"tokenizer": {lang: {} for lang in mt.languages},
             "codes": codes.read_text(encoding="utf-8")}
    save_atomic(translator.file_state(dictionary, asdict(mt), extra), out)
    return out


def translate(model: Path, src: str, tgt: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xlm", "translate", "--model", str(model),
                           "--src", src, "--tgt", tgt, "--beam", "1"],
                          input="\n".join(SENTENCES) + "\n", capture_output=True, text=True)


def test_learned_directions_include_the_reverse_of_back_translation():
    assert trained_directions({"directions": ["ro-en"], "bt": []}) == ["ro-en"]
    assert trained_directions({"directions": [], "dae": ["en", "fr"],
                               "bt": ["en-fr", "fr-en"]}) == ["en-fr", "fr-en"]
    assert trained_directions({"directions": [], "bt": ["en-fr"]}) == ["fr-en"]


def test_a_direction_the_model_never_learned_is_refused(bpe, tmp_path):
    model = mt_model(bpe, tmp_path / "model.pt", "the", directions=["fr-en"])
    for src, tgt in (("en", "fr"), ("de", "en")):
        result = translate(model, src, tgt)
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert f"not trained to translate {src}-{tgt}" in lines[0]
        assert "its directions: fr-en" in lines[0] and str(model) in lines[0]


def test_empty_translations_are_counted_on_stderr_and_fastbpe_stays_quiet(bpe, tmp_path):
    model = mt_model(bpe, tmp_path / "model.pt", None, directions=["fr-en"])
    result = translate(model, "fr", "en")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "\n" * len(SENTENCES)
    assert "3 of 3 non-empty input lines got an empty translation" in result.stderr
    assert "Loading" not in result.stderr and "codes file" not in result.stderr


def test_a_normal_translation_prints_no_warning(bpe, tmp_path):
    model = mt_model(bpe, tmp_path / "model.pt", "the", directions=["fr-en"])
    result = translate(model, "fr", "en")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["the"] * 3
    assert "empty translation" not in result.stderr
    assert "Loading" not in result.stderr and "vocabulary" not in result.stderr
