"""Which metrics.json and train.jsonl files make up a run, for rules/tables.smk.

The tables must wait for the tasks on a fresh run, show what was run by hand, and never
make Snakemake rebuild anything it was not asked for. So there are three kinds of files:

- declared: asked for by the target rules of the stages (`pretrain`, `xnli`, `mt`, `lm`,
  `embeddings`, `retrieval`; each lists its metrics.json). Rule inputs: the tables wait
  for them, and `all` asks only for the tables and plots (a short input list on the
  console).
- hand-made: under results/, and no rule of the workflow could make them. Rule inputs
  too: nothing would rebuild them.
- stale: under results/, a rule could make them, but `all` does not ask for them (e.g. a
  model dropped from the config). Not inputs, since Snakemake would then try to rebuild
  them with settings the config may no longer have; the tables still read them, and
  rerun when their content changes through a params fingerprint.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from typing import Any

RESULTS = "results"
PLOTS = f"{RESULTS}/plots"


STAGE_TARGETS = ("pretrain", "xnli", "mt", "lm", "embeddings", "retrieval")


def all_targets(workflow: Any) -> list[str]:
    """The plain file targets of the stages' target rules (input functions left out)."""
    return [str(target) for name in STAGE_TARGETS if workflow.is_rule(name)
            for target in workflow.get_rule(name).input if isinstance(target, str)]


SEED_FOLDER = re.compile(r"seed\d+")


def kind_of(run: str) -> str:
    """The task of a run folder, results/{name}/{task} or (one seed's run of a task with
    `seeds`) results/{name}/{task}/seed{n}."""
    head, last = os.path.split(run)
    return os.path.basename(head) if SEED_FOLDER.fullmatch(last) else last


def task_of(path: str) -> str:
    """The task folder of results/{name}/{task}[/seed{n}]/metrics.json (`xnli`, `mt`, ...)."""
    return kind_of(os.path.dirname(path))


def _producible(workflow: Any, path: str) -> bool:
    return any(rule.is_producer(path) for rule in workflow.rules
               if rule.name not in ("all", "plot_curves"))


def _existing(name: str) -> set[str]:
    found = glob.glob(f"{RESULTS}/**/{name}", recursive=True)
    return {path for path in found if not path.startswith(f"{PLOTS}/")}


def metrics_inputs(workflow: Any, task: str | None = None) -> list[str]:
    """The declared and the hand-made metrics.json files: the tables' rule inputs. With
    `task`, only the declared files of that task (a plot of XNLI need not wait for, or
    rerun after, MT evaluation); hand-made files are kept, they may hold any task."""
    declared = {path for path in all_targets(workflow) if path.endswith("metrics.json")
                and (task is None or task_of(path) == task)}
    hand_made = {path for path in _existing("metrics.json") if not _producible(workflow, path)}
    return sorted(declared | hand_made)


def stale_metrics(workflow: Any, task: str | None = None) -> list[str]:
    """metrics.json files on disk that a rule could make but no stage asks for (of `task`)."""
    stale = _existing("metrics.json") - set(metrics_inputs(workflow))
    return sorted(path for path in stale if task is None or task_of(path) == task)


def fingerprint(paths: list[str]) -> dict[str, str]:
    """path -> sha1 of its content, so that a params change reruns the tables."""
    digests = {}
    for path in paths:
        with open(path, "rb") as handle:
            digests[path] = hashlib.sha1(handle.read()).hexdigest()
    return digests


# A training run writes train.jsonl beside the file that marks its end: the folder kind
# (results/{name}/{kind}/) -> that file. train.jsonl itself is not a declared output, so
# that a resumed job keeps its history; its plot waits for the marker instead.
TRAINING_MARKERS = {"pretrain": "metrics.json", "lm": "metrics.json", "mt": "model.pt"}


def training_marker(run: str) -> str:
    """results/{run}/<marker>: the declared output written when the run's training ends."""
    return f"{RESULTS}/{run}/{TRAINING_MARKERS[kind_of(run)]}"


def curve_plots(workflow: Any) -> list[str]:
    """One results/plots/{run}/curves.png per training run that the stages ask for."""
    runs = set()
    for path in all_targets(workflow):
        run = os.path.relpath(os.path.dirname(path), RESULTS)
        kind = kind_of(run)
        if path.endswith("metrics.json") and kind in TRAINING_MARKERS:
            runs.add(run)
    return sorted(f"{PLOTS}/{run}/curves.png" for run in runs)
