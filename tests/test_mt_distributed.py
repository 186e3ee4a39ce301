"""MT training on several ranks: 2 gloo ranks under torchrun make the updates one process
makes with the same batches (supervised pairs and denoising, dropout 0), and
back-translation, which generates each rank's share, trains to the end on both ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from task_helpers import tokenized
from test_distributed import free_port

from xlm.data.dictionary import Dictionary
from xlm.data.indexed import binarize_lines
from xlm.tasks.mt import MtSettings, MtTrainer
from xlm.train.checkpoint import load_file

SETTINGS = {"n_layers": 1, "dim": 32, "n_heads": 4, "dropout": 0.0, "attention_dropout": 0.0,
            "tokens_per_batch": 400, "max_len": 20, "eval_every": 4, "valid_sentences": 20,
            "log_every": 1, "checkpoint_every": 1000, "lr": 1e-3, "warmup_steps": 2,
            "max_steps": 6}


@pytest.fixture(scope="module")
def mt_data(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mt_ranks")
    tatoeba = shared_data / "para" / "tatoeba"
    tok = {lang: tokenized(lang, (tatoeba / f"en-fr.{lang}").read_text(encoding="utf-8")
                           .splitlines()[:200]) for lang in ("en", "fr")}
    counts: dict[str, int] = {}
    for line in tok["en"] + tok["fr"]:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    vocab = root / "vocab"
    vocab.write_text("".join(f"{w} {c}\n" for w, c in
                             sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))), "utf-8")
    dictionary = Dictionary.read_vocab(vocab)
    (root / "bin").mkdir()
    for lang in ("en", "fr"):
        for split in ("train", "valid"):
            binarize_lines(tok[lang], dictionary, root / "bin" / f"en-fr.{lang}.{split}")
        binarize_lines(tok[lang], dictionary, root / "bin" / f"{lang}.train")
    return root / "bin", vocab


def two_ranks(settings: dict, data: Path, vocab: Path, out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
               "-m", "xlm", "mt-train", "--settings", json.dumps(settings), "--data", str(data),
               "--vocab", str(vocab), "--out", str(out), "--threads", "1", "--cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def weights(out: Path) -> dict[str, torch.Tensor]:
    saved = load_file(out / "model.pt", "MT model")
    return {f"{side}.{k}": v for side in ("encoder", "decoder") for k, v in saved[side].items()}


def test_two_ranks_make_the_updates_of_one(mt_data, tmp_path):
    settings = {**SETTINGS, "directions": ["en-fr"], "dae": ["fr"]}
    MtTrainer(MtSettings(**settings), data=mt_data[0], vocab=mt_data[1], out=tmp_path / "one",
              device=torch.device("cpu")).run()
    result = two_ranks(settings, *mt_data, tmp_path / "two")
    assert "rank 0 of 2 on cpu (gloo)" in result.stderr
    one, two = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(one, two, strict=True):
        for key in ("mt_loss", "valid_bleu"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a["step"], key)
    # Adam divides by the gradients' root mean square, so float noise in a near-zero
    # gradient moves a weight by up to lr: weights agree to a small part of what 6 updates
    # of lr 1e-3 can move them.
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    worst = max(float((b[key] - a[key]).abs().max()) for key in a)
    print("largest weight difference", worst)
    assert worst < 5e-4


def test_back_translation_trains_on_two_ranks(mt_data, tmp_path):
    settings = {**SETTINGS, "kind": "unsupervised", "dae": ["en", "fr"],
                "bt": ["en-fr", "fr-en"], "eval_directions": ["en-fr"]}
    two_ranks(settings, *mt_data, tmp_path / "two")
    log = read_log(tmp_path / "two")
    assert [r["step"] for r in log if "mt_loss" in r] == list(range(1, 7))
    assert all(0 < r["mt_loss"] < 20 for r in log if "mt_loss" in r)
    assert weights(tmp_path / "two")
