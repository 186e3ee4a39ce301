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
from task_helpers import build_mt_data, mt_weights
from test_distributed import free_port

from xlm.tasks.mt import MtSettings, MtTrainer

SETTINGS = {"n_layers": 1, "dim": 32, "n_heads": 4, "dropout": 0.0, "attention_dropout": 0.0,
            "tokens_per_batch": 400, "max_len": 20, "eval_every": 4, "valid_sentences": 20,
            "log_every": 1, "checkpoint_every": 1000, "lr": 1e-3, "warmup_steps": 2,
            "max_steps": 6}


@pytest.fixture(scope="module")
def mt_data(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    return build_mt_data(shared_data, tmp_path_factory.mktemp("mt_ranks"), 200)


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
    a, b = mt_weights(tmp_path / "one"), mt_weights(tmp_path / "two")
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
    assert mt_weights(tmp_path / "two")
