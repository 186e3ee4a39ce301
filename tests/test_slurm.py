"""`snakemake --profile slurm` on a real (one-node) SLURM cluster: every non-local rule
runs as a SLURM job that completes, and the results equal a local run's."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
import slurm_cluster
from workflow import SNAKEMAKE, base_config, snakemake, tokenized_files, write_config


@pytest.fixture(scope="module")
def cluster():
    slurm_cluster.start()
    yield
    slurm_cluster.stop()


def small_config(shared_data) -> dict:
    config = base_config(shared_data)
    config["tokenize"]["shards"] = 1
    return config


def digests(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "data").rglob("*")) if p.is_file()}




def test_text_stages_on_slurm_equal_a_local_run(cluster, shared_data, tmp_path):
    targets = tokenized_files(["en", "ro"])
    config = small_config(shared_data)
    local = tmp_path / "local"
    write_config(local, config)
    dry = snakemake(local, *targets, "--dry-run", "--quiet", "rules")
    expected_rules = {line.split()[0] for line in dry.stdout.splitlines()
                      if line.strip() and line.split()[-1].isdigit() and line.split()[0]
                      not in ("job", "total", "rule")}
    snakemake(local, *targets)

    cluster_dir = tmp_path / "slurm"
    write_config(cluster_dir, config)
    command = ["timeout", "-k", "10", "600", str(SNAKEMAKE), *targets, "--snakefile",
               str(slurm_cluster.REPO / "Snakefile"), "--directory", str(cluster_dir),
               "--configfile", str(cluster_dir / "config.yaml"),
               "--profile", str(slurm_cluster.PROFILE),
               "--slurm-init-seconds-before-status-checks", "2",
               *slurm_cluster.resources_that_fit()]
    run = subprocess.run(command, capture_output=True, text=True, cwd=cluster_dir)
    assert run.returncode == 0, run.stderr[-4000:]

    jobs = slurm_cluster.submitted_jobs(run.stderr)
    assert jobs, "no job was submitted to SLURM"
    states = slurm_cluster.job_states(list(jobs))
    assert set(states.values()) == {"COMPLETED"}, states
    assert set(jobs.values()) == expected_rules
    assert digests(cluster_dir) == digests(local)
