"""What a user sees on the console: the `all` job lists a few files, not every dataset of
the run, and `make` works from any folder (its recipes run in the repository root).

A dry run of the real workflow on the default (demo) config, and `make --dry-run`."""

from __future__ import annotations

import re
import subprocess

from workflow import REPO, absolute_demo_paths, base_config, snakemake, write_config


def job_block(output: str, rule: str) -> str:
    """The lines Snakemake prints for the job of `rule` (up to the next blank line)."""
    match = re.search(rf"^(local)?rule {rule}:\n(.*?)(?:\n\n|\Z)", output, re.M | re.S)
    assert match, f"no job of rule {rule} in the output"
    return match.group(0)


def test_the_all_job_prints_a_short_input_list(tmp_path, shared_data):
    config = absolute_demo_paths(base_config(shared_data))
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "all", "--dry-run", timeout=300)
    output = result.stdout + result.stderr
    block = job_block(output, "all")
    assert len(block) < 4000, len(block)
    assert "data/" not in block  # the datasets are listed by the jobs that need them
    assert "results/tables/table1_xnli.md" in block
    # ... and `all` still builds every stage, through the tables and plots.
    for rule in ("tokenize_split", "binarize", "pretrain_model", "xnli_finetune",
                 "mt_evaluate", "lm_train", "embeddings_evaluate", "retrieval_evaluate",
                 "plot_curves"):
        assert f"rule {rule}:" in output, rule


def test_make_runs_its_recipes_in_the_repository_root_from_any_folder(tmp_path):
    stamp = REPO / ".venv" / ".installed"
    for folder, args in ((REPO / "tests", ["-f", "../Makefile"]), (tmp_path, ["-C", str(REPO)])):
        result = subprocess.run(["make", "--dry-run", *args, "-o", str(stamp), "run", "lint",
                                 "test"], cwd=folder, capture_output=True, text=True,
                                check=True)
        commands = [line for line in result.stdout.splitlines()
                    if line and not line.startswith("make")]
        assert len(commands) == 5, commands
        assert all(line.startswith(f"cd {REPO} && ") for line in commands), commands
        assert not (folder / ".venv").exists()
