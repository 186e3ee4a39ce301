"""Which metrics.json and train.jsonl files make up a run, for rules/tables.smk.

Two sources, so that `snakemake tables` both waits for the tasks on a fresh run and shows
whatever was run by hand: the files already under results/, and the files the workflow's
`all` rule asks for (each stage lists its metrics.json there), plus any train.jsonl a rule
makes beside one of those metrics.json.
"""

from __future__ import annotations

import glob
import os
from typing import Any

RESULTS = "results"
PLOTS = f"{RESULTS}/plots"


def all_targets(workflow: Any) -> list[str]:
    """The plain file targets of the workflow's `all` rule (input functions left out)."""
    if not workflow.is_rule("all"):
        return []
    return [str(target) for target in workflow.get_rule("all").input if isinstance(target, str)]


def run_metrics(workflow: Any) -> list[str]:
    """Every metrics.json of the run: on disk under results/, or asked for by `all`."""
    existing = glob.glob(f"{RESULTS}/**/metrics.json", recursive=True)
    declared = [path for path in all_targets(workflow) if path.endswith("metrics.json")]
    return sorted(set(existing) | set(declared))


def _producible(workflow: Any, path: str) -> bool:
    return any(rule.is_producer(path) for rule in workflow.rules if rule.name != "plot_curves")


def run_train_logs(workflow: Any) -> list[str]:
    """Every train.jsonl of the run: on disk, asked for by `all`, or made beside a metrics.json."""
    logs = set(glob.glob(f"{RESULTS}/**/train.jsonl", recursive=True))
    logs.update(path for path in all_targets(workflow) if path.endswith("train.jsonl"))
    for metrics in run_metrics(workflow):
        sibling = os.path.join(os.path.dirname(metrics), "train.jsonl")
        if sibling not in logs and _producible(workflow, sibling):
            logs.add(sibling)
    return sorted(log for log in logs if not log.startswith(f"{PLOTS}/"))


def curve_plot(train_log: str) -> str:
    """results/{run}/train.jsonl -> results/plots/{run}/curves.png."""
    run = os.path.relpath(os.path.dirname(train_log), RESULTS)
    return f"{PLOTS}/{run}/curves.png"


def run_curve_plots(workflow: Any) -> list[str]:
    """One curves.png per training run of the run."""
    return [curve_plot(log) for log in run_train_logs(workflow)]
