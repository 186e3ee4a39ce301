"""Low-resource language modelling: a tiny CLM on real FLoRes Nepali (+ English) writes
Nepali test perplexity records with the training languages; bad settings are refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from task_helpers import write_vocab

from xlm.data.indexed import binarize_lines
from xlm.report.records import load_metrics_file

TINY = {"n_layers": 1, "dim": 32, "n_heads": 2, "max_positions": 128, "bptt": 32, "max_len": 60,
        "batch_size": 8, "lr": 0.003, "warmup_steps": 2, "max_steps": 12, "eval_every": 6,
        "eval_batches": 2, "log_every": 6, "checkpoint_every": 100, "seed": 0}


@pytest.fixture(scope="module")
def data(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("lm")
    lines = {lang: (shared_data / "lowres" / f"flores1-dev.ne-en.{lang}")
             .read_text(encoding="utf-8").splitlines()[:400] for lang in ("ne", "en")}
    dictionary = write_vocab([line for text in lines.values() for line in text],
                             root / "vocab", max_vocab=3000)
    for lang, text in lines.items():
        for split, part in {"train": text[:300], "valid": text[300:350],
                            "test": text[350:]}.items():
            binarize_lines(part, dictionary, root / f"{lang}.{split}")
    return root


def run_lm(root, name, settings):
    return subprocess.run([sys.executable, "-m", "xlm", "lm", "--name", name, "--target", "ne",
                           "--settings", json.dumps(settings), "--data", str(root),
                           "--vocab", str(root / "vocab"), "--out", str(root / name),
                           "--threads", "1"], capture_output=True, text=True)


def test_records_per_combination(data):
    result = run_lm(data, "ne_en", {**TINY, "clm": ["ne", "en"]})
    assert result.returncode == 0, result.stderr[-2000:]
    records = [r for r in load_metrics_file(data / "ne_en" / "metrics.json") if r["task"] == "lm"]
    cells = {(r["split"], r["metric"]): r for r in records}
    assert set(cells) == {(s, m) for s in ("valid", "test") for m in ("ppl", "ppl_word", "acc")}
    # Word-level text (no `@@` pieces): per word is per token here, as many words as tokens.
    assert cells[("test", "ppl_word")]["value"] == pytest.approx(cells[("test", "ppl")]["value"])
    test_ppl = cells[("test", "ppl")]
    assert test_ppl["lang"] == "ne" and test_ppl["languages"] == ["ne", "en"]
    assert 1 < test_ppl["value"] < 3014  # better than uniform over the vocabulary
    assert (data / "ne_en" / "model.pt").is_file()


def test_target_must_be_a_clm_language(data):
    result = run_lm(data, "bad", {**TINY, "clm": ["en"]})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: --settings: the low-resource LM")
