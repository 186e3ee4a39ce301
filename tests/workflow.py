"""Run the real Snakemake workflow in a scratch folder with a config made by the test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def base_config(shared_data: Path) -> dict:
    """The repository's default config with its paths made absolute (usable anywhere)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    for lang, path in config["wiki"]["local"].items():
        config["wiki"]["local"][lang] = str(REPO / path)
    for lang, path in config["local_text"].items():
        config["local_text"][lang] = str(REPO / path)
    config["tokenize"]["kytea_model"] = str(shared_data / "models" / "kytea-ja-tiny.bin.gz")
    return config


def tokenized_files(langs, splits=("train", "valid", "test")) -> list[str]:
    """Targets for the text stages of some languages only (the config may list more)."""
    return [f"data/tok/{lang}.{split}.txt" for lang in langs for split in splits]


def write_config(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def snakemake(workdir: Path, *args: str, timeout: int = 900,
              check: bool = True) -> subprocess.CompletedProcess:
    """`snakemake` on the repository's Snakefile, run in `workdir` with its config.yaml."""
    command = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2",
               *args]
    env = {**os.environ, "PATH": f"{SNAKEMAKE.parent}:{os.environ['PATH']}"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            cwd=workdir, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result


def mtimes(workdir: Path, pattern: str) -> dict[str, int]:
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns for p in workdir.glob(pattern)}
