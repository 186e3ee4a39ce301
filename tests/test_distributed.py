"""Distributed pretraining: 2 gloo ranks under torchrun == 1 rank with the same global batch.

Also checks how ranks are read from torchrun's and SLURM's environments.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from pretrain_helpers import TINY_SETTINGS, build_pretrain_data

from xlm.train.distributed import ranks_from_environment
from xlm.train.settings import PretrainSettings
from xlm.train.trainer import Pretrainer

SETTINGS = {**TINY_SETTINGS, "mlm": ["en", "fr"], "tlm": ["en-fr"], "dropout": 0.0,
            "max_steps": 6, "eval_every": 3, "tokens_per_batch": 500}


def test_ranks_from_torchrun_and_slurm_environments():
    assert ranks_from_environment({}) == (0, 1, 0)
    torchrun = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}
    assert ranks_from_environment(torchrun) == (3, 4, 1)
    srun = {"SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1",
            "SLURM_NTASKS": "8"}
    assert ranks_from_environment(srun) == (5, 8, 1)
    # The batch script of an 8-task job is a single process, not rank 0 of 8.
    assert ranks_from_environment({"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}) == (0, 1, 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_log(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_gloo_ranks_equal_one_rank(tmp_path, shared_data):
    data_dir, vocab = build_pretrain_data(shared_data, tmp_path / "data")
    single = tmp_path / "single"
    Pretrainer(PretrainSettings.from_dict(SETTINGS), data_dir=data_dir, vocab=vocab,
               out_dir=single, name="mlm_tlm").run()

    double = tmp_path / "double"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
               "-m", "xlm", "pretrain", "--name", "mlm_tlm", "--settings", json.dumps(SETTINGS),
               "--data", str(data_dir), "--vocab", str(vocab), "--out", str(double),
               "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 0 of 2 on cpu (gloo)" in result.stderr

    one, two = read_log(single / "train.jsonl"), read_log(double / "train.jsonl")
    assert [r["step"] for r in two] == list(range(1, 7))
    for a, b in zip(one, two, strict=True):
        for key in a:
            if key.endswith(("_loss", "_acc")):
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a["step"], key)
    metrics_one = json.loads((single / "metrics.json").read_text())
    metrics_two = json.loads((double / "metrics.json").read_text())
    for a, b in zip(metrics_one, metrics_two, strict=True):
        assert (a["split"], a["lang"], a["metric"]) == (b["split"], b["lang"], b["metric"])
        assert b["value"] == pytest.approx(a["value"], rel=1e-4), a


# Run by each rank of the test below: train, release the group, report whether DDP's
# reducer (which holds the gloo group) is still alive when the group is destroyed.
RELEASE_SCRIPT = """
import gc, json, sys, weakref
from xlm.train.distributed import cleanup, setup_distributed
from xlm.train.settings import PretrainSettings
from xlm.train.trainer import Pretrainer

settings, data, vocab, out = sys.argv[1:5]
context = setup_distributed(force_cpu=True)
trainer = Pretrainer(PretrainSettings.from_json(settings), data_dir=data, vocab=vocab,
                     out_dir=out, name="m", context=context)
trainer.run()
reducer = weakref.ref(trainer.ddp.reducer)
trainer.release_process_group()
gc.collect()
print(json.dumps({"rank": context.rank, "reducer_alive": reducer() is not None}))
cleanup()
"""


def test_the_reducer_is_gone_before_the_process_group(tmp_path, shared_data):
    """If DDP's reducer outlived the group, the group's destructor would run from it with
    the GIL held and could deadlock with gloo's worker thread (a job that never ends after
    training, seen under SLURM about 1 run in 5 on busy cores): `xlm pretrain` releases the
    group from the trainer before destroying it."""
    data_dir, vocab = build_pretrain_data(shared_data, tmp_path / "data")
    settings = json.dumps({**SETTINGS, "max_steps": 2, "eval_every": 2})
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
               "--no-python", sys.executable, "-c", RELEASE_SCRIPT, settings, str(data_dir),
               str(vocab), str(tmp_path / "m")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["rank"] for r in reports) == [0, 1]
    assert not any(r["reducer_alive"] for r in reports), reports
