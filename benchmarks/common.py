"""What every benchmark shares: options, timing, machine facts, result files, the README table.

Machines here are shared and noisy, so each comparison times both sides in the same
process on the same input, interleaved, keeps the best of several repeats, and reports
the ratio next to the figures.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
RESULTS_DIR = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PACKAGES = ("torch", "transformers", "sacremoses", "fastbpe", "numpy", "snakemake")


@dataclass
class Options:
    """Settings of one suite run. `quick`: tiny sizes, seconds in all (the smoke test)."""

    quick: bool = False
    repeats: int = 3
    work: Path = BENCH_DIR / "work"
    results: Path = RESULTS_DIR
    workflow_target: str = "data"
    device: str = "auto"  # auto: cuda when available, else cpu

    def scratch(self, name: str) -> Path:
        path = self.work / ("quick" if self.quick else "full") / name
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Row:
    """One line of the summary table: a figure of ours against a peer (or a target)."""

    case: str
    unit: str
    ours: float
    peer: float | None = None
    peer_name: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if not self.peer else self.ours / self.peer


@dataclass
class Result:
    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, machine: dict[str, Any]) -> dict[str, Any]:
        rows = [{**row.__dict__, "ratio": row.ratio} for row in self.rows]
        return {"name": self.name, "machine": machine, "rows": rows, "details": self.details}


def best_of(functions: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Best wall time of each function over `repeats` rounds, the functions interleaved
    in each round (so that a burst of load from elsewhere hits every side alike)."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    """Date, CPU, cores, load, accelerator and package versions: what a figure depends on."""
    import torch

    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    device = "cpu only (no CUDA device)"
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "git_revision": git_revision(),
        "versions": versions,
    }


def write_result(result: Result, options: Options, machine: dict[str, Any]) -> Path:
    options.results.mkdir(parents=True, exist_ok=True)
    path = options.results / f"{result.name}.json"
    path.write_text(json.dumps(result.to_dict(machine), indent=1) + "\n", encoding="utf-8")
    return path


def _figure(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def summary_table(results_dir: Path = RESULTS_DIR) -> str:
    """Markdown of every results/*.json: one header per file (date, machine), then rows."""
    parts = []
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        machine = data["machine"]
        versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
        parts.append(f"#### {data['name']}\n\n{machine['date']}; {machine['cpu']}, "
                     f"{machine['cores']} cores (load {machine['load_average']}); "
                     f"device: {machine['device']}; git {machine['git_revision']}; "
                     f"{versions}\n")
        parts.append("| case | unit | ours | peer | peer value | ours/peer | target | met |")
        parts.append("|---|---|---:|---|---:|---:|---|---|")
        for row in data["rows"]:
            met = {True: "yes", False: "**no**", None: ""}[row["met"]]
            note = f" ({row['note']})" if row["note"] else ""
            ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else ""
            parts.append(f"| {row['case']}{note} | {row['unit']} | {_figure(row['ours'])} | "
                         f"{row['peer_name']} | {_figure(row['peer'])} | {ratio} | "
                         f"{row['target']} | {met} |")
        parts.append("")
    return "\n".join(parts)


def update_readme(readme: Path = README, results_dir: Path = RESULTS_DIR) -> None:
    """Replace the generated block of the README (between the markers) by the table."""
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme}: markers {BEGIN} / {END} missing")
    block = f"{BEGIN}\n{summary_table(results_dir)}\n{END}"
    text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text,
                  flags=re.DOTALL)
    readme.write_text(text, encoding="utf-8")


def python() -> str:
    """The interpreter running the suite (the venv's), for child processes."""
    return sys.executable
