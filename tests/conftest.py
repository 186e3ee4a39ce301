"""Shared test fixtures: where the real offline data lives, the repository root, and the
local SLURM cluster, up for the whole session."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real Wikipedia dumps, parallel text, XNLI, MT test sets."""
    if not SHARED_DATA.is_dir():
        raise RuntimeError(f"{SHARED_DATA} is missing: the tests need ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def local_slurm():
    """The real one-node SLURM cluster (tests/slurm_cluster.py), up for the whole session.

    test_slurm.py needs it; every other test that starts Snakemake is faster with it:
    Snakemake imports the SLURM executor plugin, which runs `scontrol show config`, and
    with SLURM installed but no controller up that call waits ~9 s for the controller
    (the 15 tests of test_config_startup.py: 165 s without it, 23 s with it). A failed
    start is handed to the SLURM tests, which raise it; the others do not need SLURM.
    """
    import slurm_cluster

    failure = None
    try:
        slurm_cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        failure = error
    yield failure
    slurm_cluster.stop()


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory, shared_data):
    """One local run of the whole pipeline on a tiny config (shared by the pipeline and
    SLURM tests): (working directory, config)."""
    from workflow import snakemake, tiny_pipeline_config, write_config

    workdir = tmp_path_factory.mktemp("pipeline")
    config = tiny_pipeline_config(shared_data)
    write_config(workdir, config)
    snakemake(workdir, "all", timeout=1500)
    return workdir, config
