"""Workflow overhead: wall time of the demo pipeline from scratch and of a rerun with
nothing to do, in a fresh scratch folder (never in the repository's data/ or results/).

The default target is `data` (text, BPE, binarized data: the preprocessing part of the
demo); `--workflow-target all` times the whole demo (pretraining and every task, tens
of minutes on 2 CPU cores). Besides the no-op rerun of the target, a dry run of `all`
shows the cost of building the whole DAG. The config is the repository's with its
local paths made absolute (as in tests/workflow.py); `demo/` is linked in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import REPO, SHARED_DATA, Options, Result, Row

SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def demo_config() -> dict:
    """The repository's default config with its local paths made absolute."""
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    for lang, path in config["wiki"]["local"].items():
        config["wiki"]["local"][lang] = str(REPO / path)
    for lang, path in config["local_text"].items():
        config["local_text"][lang] = str(REPO / path)
    config["tokenize"]["kytea_model"] = str(SHARED_DATA / "models" / "kytea-ja-tiny.bin.gz")
    return config


def snakemake(workdir: Path, *args: str, path_prefix: Path | None = None) -> tuple[float, str]:
    """Seconds of one `snakemake` run in `workdir` (fails loudly), and its log.
    `path_prefix`: a folder put first on PATH (for the `scontrol` stub)."""
    command = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2",
               *args]
    env = {**os.environ, "PATH": f"{SNAKEMAKE.parent}:{os.environ['PATH']}"}
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir, env=env,
                          check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def scontrol_seconds() -> float | None:
    """Seconds `scontrol show config` takes here (None: no SLURM commands). The SLURM
    executor plugin runs it whenever snakemake starts, whatever the executor."""
    if shutil.which("scontrol") is None:
        return None
    start = time.perf_counter()
    try:
        subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=20,
                       check=False)
    except subprocess.TimeoutExpired:
        pass
    return time.perf_counter() - start


def stub_scontrol(folder: Path) -> Path:
    """A folder holding an `scontrol` that fails at once, as on a machine without SLURM."""
    folder.mkdir(parents=True, exist_ok=True)
    stub = folder / "scontrol"
    stub.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    stub.chmod(0o755)
    return folder


def run(options: Options) -> Result:
    target = "text" if options.quick else options.workflow_target
    workdir = Path(tempfile.mkdtemp(prefix="xlm-bench-workflow-"))
    result = Result("workflow")
    try:
        (workdir / "demo").symlink_to(REPO / "demo")
        (workdir / "config.yaml").write_text(yaml.safe_dump(demo_config(), sort_keys=False),
                                             encoding="utf-8")
        if options.quick:  # the smoke test: DAG building only
            cold, _ = snakemake(workdir, "--dry-run", target)
            noop, log = snakemake(workdir, "--dry-run", target)
        else:
            cold, _ = snakemake(workdir, target)
            noop, log = snakemake(workdir, target)
            if "Nothing to be done" not in log:
                raise RuntimeError(f"the second `snakemake {target}` had work to do:\n{log}")
        result.details = {"target": target, "scratch": str(workdir), "cold_seconds": cold,
                          "noop_seconds": noop, "quick_dry_run": options.quick}
        result.rows.append(Row(f"`snakemake {target}` from scratch", "s", cold,
                               note="dry run" if options.quick else ""))
        result.rows.append(Row(f"second `snakemake {target}`, nothing to do", "s", noop,
                               target="< 10 s", met=noop < 10))
        probe = scontrol_seconds()
        result.details["scontrol_show_config_seconds"] = probe
        if probe is not None and probe > 1 and not options.quick:
            stubbed, _ = snakemake(workdir, target, path_prefix=stub_scontrol(workdir / "stub"))
            result.details["noop_seconds_scontrol_stub"] = stubbed
            result.rows.append(Row(
                f"second `snakemake {target}`, with an `scontrol` that fails at once", "s",
                stubbed, note=f"`scontrol show config` takes {probe:.1f} s here: SLURM "
                "installed, no controller running"))
        if target != "all" and not options.quick:
            dry, _ = snakemake(workdir, "--dry-run", "all")
            result.details["dry_run_all_seconds"] = dry
            result.rows.append(Row("`snakemake --dry-run all` (whole DAG)", "s", dry,
                                   target="< 10 s", met=dry < 10))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result
