"""Smoke test of the benchmark suite (issue 8): every benchmark at a tiny size, so the code
does not rot. The figures mean nothing here; `make bench` measures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `benchmarks` is not installed

from benchmarks.common import Options, summary_table  # noqa: E402
from benchmarks.run import BENCHMARKS, run_benchmarks  # noqa: E402


def test_every_benchmark_runs_quick(tmp_path: Path) -> None:
    options = Options(quick=True, repeats=1, work=tmp_path / "work", results=tmp_path / "results")
    written = run_benchmarks(list(BENCHMARKS), options)
    assert [path.stem for path in written] == list(BENCHMARKS)
    for path in written:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["rows"] and data["machine"]["versions"]["torch"]
        assert all(row["ours"] > 0 for row in data["rows"])
    table = summary_table(tmp_path / "results")
    assert "text_to_ids" in table and "| case |" in table
    decode = json.loads((tmp_path / "results" / "decode.json").read_text(encoding="utf-8"))
    assert all(case["same_tokens"] for case in decode["details"]["cases"].values())
    text = json.loads((tmp_path / "results" / "text_to_ids.json").read_text(encoding="utf-8"))
    assert all(same == 1.0 for corpus in text["details"]["corpora"].values()
               for same in corpus["same_ids_as_ours"].values())
    memory = json.loads((tmp_path / "results" / "memory.json").read_text(encoding="utf-8"))
    verdicts = [row["case"].split(",")[0] for row in memory["rows"] if row["target"]]
    assert verdicts == ["xlm extract", "xlm split", "xlm tokenize", "xlm bpe-apply",
                        "xlm binarize", "training data loader"]
    # The 16x dump really holds 16 times the text: each stage's input grew 16-fold.
    scales = memory["details"]["text_stages"]["scales"]
    for key in ("text_bytes", "text_lines", "tokenized_bytes", "bpe_bytes"):
        assert scales["16"][key] == 16 * scales["1"][key] > 0, key


def _gpu_check(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=900)


def test_gpu_check_without_a_gpu_says_so_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = _gpu_check("--results", str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "no CUDA GPU" in done.stdout
    assert not list(tmp_path.iterdir())


def test_gpu_check_cpu_tiny_runs_every_phase(tmp_path: Path) -> None:
    """`make gpu-check`'s code on CPU with tiny sizes: the training step against the peer,
    MFU, torch.compile, `xlm pretrain` stopped and resumed (equal losses), `xlm xnli`."""
    done = _gpu_check("--cpu", "--tiny", "--work", str(tmp_path / "work"), "--results",
                      str(tmp_path / "results"))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    data = json.loads((tmp_path / "results" / "gpu.json").read_text(encoding="utf-8"))
    phases = data["details"]["phases"]
    assert list(phases) == ["training_step", "compiled_step", "xnli_step", "pretrain_resume",
                            "xnli", "decode"]
    assert not data["details"]["failed"]
    assert all("error" not in p and "skipped" not in p for p in phases.values()), phases
    step = phases["training_step"]
    assert step["tokens_per_s"]["ours"] > 0 and step["tokens_per_s"]["XLMWithLMHeadModel"] > 0
    assert 0 < step["mfu"]["ours"] < 1
    # Same weights and batch; dropout masks differ between the two, so not to the digit.
    assert phases["compiled_step"]["first_loss"]["compiled"] == pytest.approx(
        phases["compiled_step"]["first_loss"]["eager"], rel=0.05)
    assert all(rate > 0 for rate in phases["xnli_step"]["tokens_per_s"].values())
    resume = phases["pretrain_resume"]
    assert len(resume["losses"]["straight"]) == resume["settings"]["max_steps"]
    assert resume["max_relative_difference"] <= 1e-5
    assert {"valid.en", "valid.fr", "test.en", "test.fr"} <= set(phases["xnli"]["accuracy"])
    assert all(case["same_tokens"] for case in phases["decode"]["cases"].values())
    assert "gpu-check on cpu:" in done.stdout
