"""Shared test fixtures: where the real offline data lives, and the repository root."""

from __future__ import annotations

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
