"""The real one-node SLURM cluster of ../shared/tools/local-slurm, for tests."""

from __future__ import annotations

import re
import subprocess

import yaml
from workflow import REPO

TOOLS = (REPO / ".." / "shared" / "tools" / "local-slurm").resolve()
PROFILE = REPO / "profiles" / "slurm"
JOB_SUBMITTED = re.compile(
    r"submitted with SLURM jobid (\d+) \(log: (.*/rule_([A-Za-z0-9_]+)/.*)\)")


def start() -> None:
    """Start the cluster or fail with the reason (never skip: CI must run these tests)."""
    if not (TOOLS / "start.sh").is_file():
        raise RuntimeError(f"{TOOLS}/start.sh is missing: cannot start the SLURM cluster")
    result = subprocess.run(["bash", str(TOOLS / "start.sh")], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0 or "slurm ready" not in result.stdout:
        raise RuntimeError(f"the local SLURM cluster did not start:\n{result.stdout[-2000:]}"
                           f"\n{result.stderr[-2000:]}")


def stop() -> None:
    subprocess.run(["bash", str(TOOLS / "stop.sh")], capture_output=True, text=True, timeout=120)


def resources_that_fit(cpus: int = 2, mem_mb: int = 3000) -> list[str]:
    """The profile's per-rule resources, capped to what the one test node offers, as
    `--set-resources`/`--set-threads` overrides (the profile itself is used unchanged)."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text(encoding="utf-8"))
    resources, threads = [], []
    for rule, values in profile.get("set-resources", {}).items():
        for key, value in values.items():
            if key in ("cpus_per_task", "cpus_per_gpu"):
                value = min(value, cpus)
            elif key == "mem_mb":
                value = min(value, mem_mb)
            if key == "runtime":
                value = min(value, 30)
            resources.append(f"{rule}:{key}={value}")
    for rule, value in profile.get("set-threads", {}).items():
        threads.append(f"{rule}={min(value, cpus)}")
    args = ["--set-resources", *resources] if resources else []
    args += ["--set-threads", *threads] if threads else []
    args += ["--default-resources", f"mem_mb={mem_mb}", "runtime=30", "cpus_per_task=1"]
    return args


def submitted_jobs(snakemake_log: str) -> dict[int, str]:
    """SLURM job id -> rule name, from Snakemake's own submission messages."""
    return {int(job): rule for job, _, rule in JOB_SUBMITTED.findall(snakemake_log)}


def job_logs(snakemake_log: str) -> dict[int, str]:
    """SLURM job id -> the plugin's log file of that job."""
    return {int(job): path for job, path, _ in JOB_SUBMITTED.findall(snakemake_log)}


def job_states(job_ids: list[int]) -> dict[int, str]:
    """Final state of each job according to the accounting database (sacct)."""
    result = subprocess.run(
        ["sacct", "-n", "-X", "-P", "--format=JobID,State", "-j", ",".join(map(str, job_ids))],
        capture_output=True, text=True, check=True,
    )
    states = {}
    for line in result.stdout.split():
        job, state = line.split("|")
        states[int(job)] = state
    return states
