"""`snakemake --profile slurm` on a real (one-node) SLURM cluster: every non-local rule
runs as a SLURM job that completes and gives a local run's results; training runs as 2
SLURM tasks like 2 torchrun ranks; SIGUSR1 before the time limit checkpoints, and the
retried job resumes to the same result as an uninterrupted run."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster
from pretrain_helpers import TINY_SETTINGS, build_pretrain_data
from workflow import SNAKEMAKE, snakemake, write_config

TARGET = "results/mlm_tlm/xnli/metrics.json"  # text, BPE, binarize, pretrain and a task


@pytest.fixture(scope="module")
def cluster(local_slurm):
    """The session's cluster (conftest.py); if it did not start, these tests fail with why."""
    if local_slurm is not None:
        raise local_slurm


def slurm_snakemake(workdir, *targets, background: bool = False):
    command = ["timeout", "-k", "10", "900", str(SNAKEMAKE), *targets, "--snakefile",
               str(slurm_cluster.REPO / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(workdir / "config.yaml"),
               "--profile", str(slurm_cluster.PROFILE),
               "--slurm-init-seconds-before-status-checks", "2",
               *slurm_cluster.resources_that_fit()]
    if background:
        log = open(workdir / "snakemake-slurm.log", "w")
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    return subprocess.run(command, capture_output=True, text=True, cwd=workdir)


def digests(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "data").rglob("*")) if p.is_file()}


def values(path) -> dict[tuple, float]:
    return {(r["split"], r["lang"], r["metric"]): r["value"]
            for r in json.loads(path.read_text())}


@pytest.fixture(scope="module")
def slurm_run(cluster, tiny_pipeline, tmp_path_factory):
    local, config = tiny_pipeline
    workdir = tmp_path_factory.mktemp("slurm")
    write_config(workdir, config)
    dry = snakemake(workdir, TARGET, "--dry-run", "--quiet", "rules")
    expected = {line.split()[0] for line in dry.stdout.splitlines() if line.strip()
                and line.split()[-1].isdigit() and line.split()[0] not in ("total",)}
    run = slurm_snakemake(workdir, TARGET)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir, config, run.stderr, expected


def test_every_rule_ran_as_a_completed_slurm_job(slurm_run):
    _, _, log, expected = slurm_run
    jobs = slurm_cluster.submitted_jobs(log)
    states = slurm_cluster.job_states(list(jobs))
    assert set(states.values()) == {"COMPLETED"}, states
    assert set(jobs.values()) == expected  # this target has no local rule (no download)


def test_slurm_results_equal_the_local_run(slurm_run, tiny_pipeline):
    workdir = slurm_run[0]
    local = tiny_pipeline[0]
    ours, theirs = digests(workdir), digests(local)
    assert len(ours) > 50
    assert {path: theirs.get(path) for path in ours} == ours
    for metrics in ("results/mlm_tlm/pretrain/metrics.json", TARGET):
        ours, theirs = values(workdir / metrics), values(local / metrics)
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            assert ours[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (metrics, key)


def test_sigusr1_checkpoints_and_the_retried_job_resumes(slurm_run):
    workdir, config, _, _ = slurm_run
    config = copy.deepcopy(config)
    long_run = {"mlm": ["en", "fr"], "n_layers": 2, "dim": 64, "bptt": 64, "batch_size": 16,
                "max_steps": 300, "eval_every": 1000, "checkpoint_every": 1000, "log_every": 3}
    config["models"]["preempted"] = long_run
    write_config(workdir, config)
    out = workdir / "results/preempted/pretrain"
    process = slurm_snakemake(workdir, f"{out.relative_to(workdir)}/model.pt", background=True)
    try:
        deadline = time.monotonic() + 300
        while not ((out / "train.jsonl").exists()
                   and len((out / "train.jsonl").read_text().splitlines()) >= 2):
            assert process.poll() is None and time.monotonic() < deadline, "never started"
            time.sleep(0.2)
        job = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True,
                             check=True).stdout.split()
        assert len(job) == 1, job
        subprocess.run(["scancel", "--signal=USR1", job[0]], check=True)
        assert process.wait(timeout=600) == 0, (workdir / "snakemake-slurm.log").read_text()
    finally:
        process.kill()
    snakemake_log = (workdir / "snakemake-slurm.log").read_text()
    jobs = sorted(slurm_cluster.submitted_jobs(snakemake_log))
    states = slurm_cluster.job_states(jobs)
    assert [states[j] for j in jobs] == ["FAILED", "COMPLETED"], states
    # The first job ended because training checkpointed and exited on SIGUSR1 (128 + 10);
    # the retry resumed from that checkpoint.
    first_job_log = Path(slurm_cluster.job_logs(snakemake_log)[jobs[0]]).read_text()
    assert "non-zero exit status 138" in first_job_log, first_job_log[-2000:]
    resumed = re.search(r"resumed from \S+ at step (\d+)",
                        (workdir / "logs/pretrain/preempted.log").read_text())
    assert resumed and int(resumed.group(1)) >= 6
    steps = [json.loads(line)["step"] for line in (out / "train.jsonl").read_text().splitlines()]
    assert steps == list(range(3, 301, 3))  # no step lost or repeated across the restart

    # The same training, uninterrupted, with the job's thread count, gives the same metrics.
    threads = re.search(r"--threads (\d+)", first_job_log).group(1)
    settings = {**config["pretrain"], **long_run}
    reference = workdir / "uninterrupted"
    subprocess.run([sys.executable, "-m", "xlm", "pretrain", "--name", "preempted",
                    "--settings", json.dumps(settings, sort_keys=True), "--data",
                    str(workdir / "data/bin"), "--vocab", str(workdir / "data/bpe/vocab"),
                    "--out", str(reference), "--threads", threads], check=True,
                   capture_output=True)
    ours, theirs = values(out / "metrics.json"), values(reference / "metrics.json")
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_two_slurm_tasks_train_like_two_torchrun_ranks(cluster, shared_data, tmp_path):
    data_dir, vocab = build_pretrain_data(shared_data, tmp_path / "data")
    settings = {**TINY_SETTINGS, "mlm": ["en", "fr"], "tlm": ["en-fr"], "max_steps": 6,
                "eval_every": 3}
    command = [sys.executable, "-m", "xlm", "pretrain", "--name", "m", "--settings",
               json.dumps(settings), "--data", str(data_dir), "--vocab", str(vocab),
               "--threads", "1", "--ranks", "2"]
    torchrun = subprocess.run([*command, "--out", str(tmp_path / "torchrun")],
                              capture_output=True, text=True, timeout=600)
    assert torchrun.returncode == 0, torchrun.stderr[-3000:]
    assert "torch.distributed.run" in torchrun.stderr
    slurm_log = tmp_path / "slurm.log"
    job = subprocess.run(
        ["sbatch", "--wait", "--ntasks=2", "--cpus-per-task=1", "--mem=3000",
         "-o", str(slurm_log), "--wrap",
         "exec " + shlex.join([*command, "--out", str(tmp_path / "slurm")])],
        capture_output=True, text=True, timeout=600)
    assert job.returncode == 0, slurm_log.read_text()[-3000:]
    text = slurm_log.read_text()
    assert "srun --overlap --ntasks=2" in text and "rank 0 of 2 on cpu (gloo)" in text

    def losses(folder):
        return [{k: v for k, v in json.loads(line).items() if k.endswith(("_loss", "_acc"))}
                for line in (folder / "train.jsonl").read_text().splitlines()]

    reference, ours = losses(tmp_path / "torchrun"), losses(tmp_path / "slurm")
    assert len(ours) == len(reference) == 6
    for a, b in zip(reference, ours, strict=True):
        assert b == pytest.approx(a, rel=1e-5, abs=1e-6)


def test_the_literal_command_finds_the_profile_from_the_repository_root(cluster):
    """`snakemake --profile slurm all`, as users type it, picks up profiles/slurm."""
    result = subprocess.run([str(SNAKEMAKE), "--profile", "slurm", "--dry-run", "all"],
                            cwd=slurm_cluster.REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Using profiles slurm" in result.stderr
    assert "executor: slurm" in (slurm_cluster.REPO / "slurm" / "config.yaml").read_text()
