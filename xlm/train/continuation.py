"""Whether a checkpoint may be continued when only how long a run goes has changed.

Raising `max_steps` continues a run instead of training again from step 0. That is only
right when the continued run ends exactly where a fresh run with today's settings would:
the checkpoint's state at its step must be the state a fresh run has at that step. The
fingerprint (xlm/train/fingerprint.py) already covers every setting that shapes the
trajectory; what is left are the run-length settings, checked here:

- the checkpoint's step must not be past `max_steps` (a fresh run stops earlier);
- `patience` (early stopping) may go up freely, since a run that stopped early went on
  exactly as a more patient one would until then; it may go down only when the run never
  went that many evaluations without progress (`peak_bad_evals`), else a fresh run stops
  earlier.

Evaluation off the `eval_every` grid at the end of a run is kept out of the checkpoint by
the trainers, so that a continued run evaluates and selects at the steps a fresh one does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def trajectory(settings: Mapping[str, Any], run_length: Iterable[str]) -> dict[str, Any]:
    """The settings a checkpoint must share with a run to be resumed by it: all but the
    `run_length` ones, except `max_steps` under a cosine schedule, whose lr at every step
    depends on it."""
    ignored = set(run_length)
    if settings.get("schedule") == "cosine":
        ignored.discard("max_steps")
    return {k: v for k, v in settings.items() if k not in ignored}


def continuation_problem(state: Mapping[str, Any], max_steps: int,
                         patience: int | None = None) -> str | None:
    """Why `state` cannot be continued to `max_steps` with `patience` (None: no early
    stopping), in words; None if it can. `state` holds `step`, the patience it ran with
    (`patience`, else `settings.patience`; None or absent: no early stopping) and
    `peak_bad_evals`."""
    step = int(state["step"])
    if step > max_steps:
        return (f"it is at step {step}, past max_steps {max_steps} (a fresh run stops "
                "earlier)")
    if patience is None:
        return None
    old = state["patience"] if "patience" in state else state.get("settings", {}).get(
        "patience")
    if old is not None and patience >= old:
        return None
    change = f"patience went down ({'none' if old is None else old} -> {patience})"
    peak = state.get("peak_bad_evals")
    if peak is None:
        return (f"{change} and the checkpoint does not record the longest run of "
                "evaluations without progress (written by an older version)")
    if peak >= patience:
        return (f"{change} and the run already went {peak} evaluations without progress "
                "(a fresh run stops earlier)")
    return None
