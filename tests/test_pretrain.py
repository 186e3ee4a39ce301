"""Pretraining on real (tiny) data: loss goes down, golden curve, exact resume, signals.

Golden curve: tests/golden/pretrain_loss.json holds the training losses of the tiny
CLM and MLM+TLM runs below. After an intended change of the numerics, regenerate it:
    XLM_REGENERATE_GOLDEN=1 .venv/bin/pytest tests/test_pretrain.py -k golden
and commit the file with a note saying why the curve moved.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pretrain_helpers import TINY_SETTINGS, build_pretrain_data

from xlm.errors import UserError
from xlm.train.checkpoint import load_checkpoint, load_pretrained
from xlm.train.settings import PretrainSettings
from xlm.train.trainer import Pretrainer

GOLDEN = Path(__file__).parent / "golden" / "pretrain_loss.json"
MODELS = {"clm": {"clm": ["en", "fr"]}, "mlm_tlm": {"mlm": ["en", "fr"], "tlm": ["en-fr"]}}


@pytest.fixture(scope="module")
def data(tmp_path_factory, shared_data):
    return build_pretrain_data(shared_data, tmp_path_factory.mktemp("pretrain"))


def train(data, out: Path, name: str, stop_at: int | None = None, **overrides) -> list[dict]:
    data_dir, vocab = data
    settings = PretrainSettings.from_dict({**TINY_SETTINGS, **MODELS[name], **overrides})
    Pretrainer(settings, data_dir=data_dir, vocab=vocab, out_dir=out, name=name).run(stop_at)
    return read_log(out)


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def losses(records: list[dict]) -> list[float]:
    return [next(v for k, v in r.items() if k.endswith("_loss")) for r in records]


@pytest.fixture(scope="module")
def straight_runs(data, tmp_path_factory):
    """20 steps of each tiny model, without interruption."""
    root = tmp_path_factory.mktemp("straight")
    return {name: (train(data, root / name, name), root / name) for name in MODELS}


def test_loss_goes_down_and_outputs_are_complete(straight_runs):
    for name, (records, out) in straight_runs.items():
        curve = losses(records)
        assert [r["step"] for r in records] == list(range(1, 21))
        assert sum(curve[-4:]) / 4 < sum(curve[:4]) / 4 - 1.0, (name, curve)
        assert all(r["tokens_per_s"] > 0 and r["lr"] > 0 for r in records)
        metrics = json.loads((out / "metrics.json").read_text())
        keys = {(m["split"], m["lang"], m["metric"]) for m in metrics}
        objective = "clm" if name == "clm" else "tlm"
        source = "en" if name == "clm" else "en-fr"
        assert {("valid", source, f"{objective}_ppl"), ("test", "avg", "ppl")} <= keys
        assert all(m["task"] == "pretrain" and m["model"] == name and m["git_revision"]
                   for m in metrics)
        assert list((out / "tensorboard").glob("events.out.tfevents.*"))
        model, dictionary, langs = load_pretrained(out / "model.pt")
        assert langs == ["en", "fr"] and len(dictionary) == model.config.n_words
        decoder, _, _ = load_pretrained(out / "model.pt", is_decoder=True)
        assert decoder.config.is_decoder


def test_golden_loss_curve(straight_runs):
    curves = {name: losses(records) for name, (records, _) in straight_runs.items()}
    if os.environ.get("XLM_REGENERATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(curves, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())
    for name, curve in curves.items():
        assert curve == pytest.approx(golden[name], abs=2e-3), name


def test_resume_equals_straight_run(data, straight_runs, tmp_path):
    for name in MODELS:
        out = tmp_path / name
        first = train(data, out, name, stop_at=10)
        assert len(first) == 10 and not (out / "model.pt").exists()
        assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == 10
        resumed = train(data, out, name)
        straight = straight_runs[name][0]
        assert losses(resumed) == pytest.approx(losses(straight), rel=1e-6, abs=1e-6), name
        a = torch.load(out / "model.pt", weights_only=True)["model"]
        b = torch.load(straight_runs[name][1] / "model.pt", weights_only=True)["model"]
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_gradient_accumulation_matches_a_bigger_batch(data, tmp_path):
    """2 accumulated batches of 8 rows == 1 batch of 16 rows (the same rows: draws 2k, 2k+1
    of 8 rows read the shuffled rows that draw k of 16 reads)."""
    common = {"dropout": 0.0, "max_steps": 4, "eval_every": 100, "clm": ["en"]}
    big = train(data, tmp_path / "big", "clm", batch_size=16, **common)
    accumulated = train(data, tmp_path / "acc", "clm", batch_size=8, accumulate=2, **common)
    assert len(big) == len(accumulated) == 4
    assert losses(accumulated) == pytest.approx(losses(big), rel=1e-5)


def test_sigusr1_checkpoints_and_exits_then_the_rerun_resumes(data, tmp_path, caplog):
    data_dir, vocab = data
    out = tmp_path / "signal"
    settings = {**TINY_SETTINGS, **MODELS["clm"], "max_steps": 100_000, "eval_every": 100_000,
                "checkpoint_every": 100_000}
    command = [sys.executable, "-m", "xlm", "pretrain", "--name", "clm", "--settings",
               json.dumps(settings), "--data", str(data_dir), "--vocab", str(vocab),
               "--out", str(out), "--threads", "1"]
    log_file = open(tmp_path / "log", "w")
    process = subprocess.Popen(command, stderr=log_file, stdout=log_file)
    checkpoint = out / "checkpoints" / "latest.pt"
    try:
        wait_for(process, lambda: (out / "train.jsonl").exists()
                 and len((out / "train.jsonl").read_text().splitlines()) >= 3)
        assert not checkpoint.exists()
        process.send_signal(signal.SIGUSR1)  # what SLURM sends before the time limit
        process.wait(timeout=60)
    finally:
        process.kill()
        log_file.close()
    assert process.returncode == 128 + signal.SIGUSR1, (tmp_path / "log").read_text()
    state = load_checkpoint(checkpoint)
    assert state["step"] >= 3
    # The checkpoint continues: two more steps, then the final outputs (eval_every is
    # unchanged: it shapes the run, so another value would train from step 0).
    with caplog.at_level(logging.INFO, logger="xlm"):
        records = train(data, out, "clm", max_steps=state["step"] + 2, eval_every=100_000)
    assert f"resumed from {checkpoint} at step {state['step']}" in caplog.text
    assert records[-1]["step"] == state["step"] + 2
    assert len(records) == state["step"] + 2
    load_pretrained(out / "model.pt")


def wait_for(process: subprocess.Popen, condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"training process ended early ({process.returncode})")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the training process")
        time.sleep(0.2)


def test_settings_errors_name_the_key():
    with pytest.raises(UserError, match="unknown pretrain setting 'lr_rate'"):
        PretrainSettings.from_dict({"mlm": ["en"], "lr_rate": 1.0})
    with pytest.raises(UserError, match="no objective"):
        PretrainSettings.from_dict({})
    with pytest.raises(UserError, match="'en_fr' must look like 'en-fr'"):
        PretrainSettings.from_dict({"tlm": ["en_fr"]})


def test_missing_data_is_a_user_error(data, tmp_path):
    data_dir, vocab = data
    settings = PretrainSettings.from_dict({**TINY_SETTINGS, "mlm": ["de"]})
    with pytest.raises(UserError, match=r"de\.train\.bin"):
        Pretrainer(settings, data_dir=data_dir, vocab=vocab, out_dir=tmp_path, name="x")
