"""PNG plots of a run: training curves from ``train.jsonl`` and XNLI accuracy per language.

``train.jsonl`` holds one JSON object per logged step. Only ``step`` is required; every
other numeric field becomes a curve, nested objects being flattened with "/". Pretraining
(xlm/train/trainer.py) writes the training losses and, at each evaluation, the validation
perplexity per objective and language, their average (the stopping criterion) and the
step of the best model so far, which is the one kept::

    {"step": 200, "lr": 0.0001, "tokens_per_s": 51234.5, "mlm_loss": 3.21, "mlm_acc": 41.0,
     "valid_ppl": {"mlm_en": 25.1, "mlm_fr": 29.8, "avg": 27.4}, "best_step": 200}

(other names such as ``"loss/mlm/en"`` or ``"valid_ppl_en"`` work too). Curves are sorted
into panels by name: loss, perplexity, learning rate, throughput (tokens/s); the average
perplexity is drawn thicker, and the kept step (the last ``best_step``) is marked on every
panel. When a log has no perplexity, it is drawn as exp(loss) of the per-language losses,
and labelled so. Non-numeric fields (strings, lists) are ignored.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from xlm.errors import UserError  # noqa: E402
from xlm.io import atomic_path  # noqa: E402
from xlm.report.records import Record  # noqa: E402
from xlm.report.tables import XNLI_LANGUAGES  # noqa: E402

Series = dict[str, tuple[list[float], list[float]]]  # name -> (steps, values)
PANELS = ("loss", "perplexity", "learning rate", "tokens/s")
PNG_METADATA = {"Software": None}  # no matplotlib version in the file: stable bytes


def flatten(entry: dict, prefix: str = "") -> dict[str, float]:
    """Nested numeric fields as ``{"loss/mlm/en": 3.2, ...}``; non-numbers dropped."""
    flat: dict[str, float] = {}
    for key, value in entry.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                flat[name] = float(value)
    return flat


def read_train_log(path: str | os.PathLike[str]) -> Series:
    """Every curve of a ``train.jsonl``, by flattened field name."""
    series: Series = {}
    try:
        handle = open(path, encoding="utf-8")
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror}); check the path") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise UserError(f"{path}:{number}: not a JSON object; each line of a "
                                "train.jsonl must be one JSON object") from None
            if not isinstance(entry, dict) or "step" not in entry:
                raise UserError(f"{path}:{number}: a log line needs a 'step' field; "
                                "fix the trainer's logging")
            flat = flatten(entry)
            step = flat.pop("step")
            for name, value in flat.items():
                steps, values = series.setdefault(name, ([], []))
                steps.append(step)
                values.append(value)
    if not series:
        raise UserError(f"{path}: no logged values; train for at least one logging "
                        "interval or check the trainer's log")
    return series


def panel_of(name: str) -> str | None:
    """Which panel a curve belongs to, from its name (None: not plotted)."""
    lowered = name.lower()
    if "ppl" in lowered or "perplexity" in lowered:
        return "perplexity"
    if "loss" in lowered:
        return "loss"
    if "tokens_per_s" in lowered or "tok/s" in lowered or "wps" in lowered:
        return "tokens/s"
    last = lowered.rsplit("/", 1)[-1]
    if last in ("lr", "learning_rate") or lowered.endswith("_lr"):
        return "learning rate"
    return None


def panels(series: Series) -> dict[str, Series]:
    """Curves grouped by panel, in name order; perplexity derived from losses if absent."""
    grouped: dict[str, Series] = {panel: {} for panel in PANELS}
    for name in sorted(series):
        panel = panel_of(name)
        if panel is not None:
            grouped[panel][name] = series[name]
    if not grouped["perplexity"]:
        for name, (steps, values) in grouped["loss"].items():
            if name.rsplit("/", 1)[-1] != "loss":  # per-language or per-objective losses
                grouped["perplexity"][f"exp({name})"] = (
                    steps, [math.exp(min(v, 50.0)) for v in values])
    return {panel: curves for panel, curves in grouped.items() if curves}


def kept_step(series: Series) -> float | None:
    """The step of the model that was kept: the last `best_step` logged (None: not logged)."""
    best = series.get("best_step")
    return best[1][-1] if best else None


def is_average(name: str) -> bool:
    return name.rsplit("/", 1)[-1] in ("avg", "average", "avg_ppl", "average_ppl")


def plot_training_curves(train_log: str | os.PathLike[str], output: str | os.PathLike[str],
                         title: str | None = None) -> Path:
    """One PNG with a panel per kind of curve (loss, perplexity, lr, tokens/s) against step,
    the kept (best) step marked on each."""
    series = read_train_log(train_log)
    groups, kept = panels(series), kept_step(series)
    if not groups:
        raise UserError(f"{train_log}: no loss, ppl, lr or tokens_per_s fields to plot; "
                        "see the train.jsonl format in xlm/report/plots.py")
    figure, axes = plt.subplots(len(groups), 1, figsize=(10, 2.8 * len(groups)), sharex=True,
                                squeeze=False)
    for axis, (panel, curves) in zip(axes[:, 0], groups.items(), strict=True):
        if len(curves) > 10:  # one colour per language beyond the default ten
            axis.set_prop_cycle(color=plt.get_cmap("tab20").colors)
        for name, (steps, values) in curves.items():
            average = is_average(name)
            axis.plot(steps, values, label=name, linewidth=2.4 if average else 1.2,
                      color="black" if average else None,
                      marker="o" if len(steps) < 30 and panel == "perplexity" else None,
                      markersize=3)
        if kept is not None:
            axis.axvline(kept, color="tab:red", linestyle="--", linewidth=1,
                         label=f"kept: step {kept:g}")
        label = {"loss": "training loss"}.get(panel, panel)
        if panel == "perplexity" and any(name.startswith("valid") for name in curves):
            label = "valid perplexity"
        axis.set_ylabel(label)
        if panel == "perplexity" and all(min(v) > 0 for _, v in curves.values()):
            axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
        if len(curves) > 1 or panel in ("loss", "perplexity") or kept is not None:
            # Beside the panel, not over the curves (a model of 15 languages has 16).
            axis.legend(fontsize="small", ncol=2 if len(curves) > 12 else 1,
                        loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axes[-1, 0].set_xlabel("step")
    figure.suptitle(title or str(train_log))
    figure.tight_layout()
    return _save(figure, output)


def plot_xnli_accuracy(records: Sequence[Record], output: str | os.PathLike[str],
                       references: Sequence[tuple[str, dict[str, float]]] = (),
                       title: str = "XNLI test accuracy per language") -> Path:
    """Grouped bars: test accuracy per language, one bar per model/setting (+ paper rows)."""
    bars: dict[str, dict[str, float]] = {}
    for record in records:
        if record["task"] == "xnli" and record["metric"] == "acc" and record["split"] == "test":
            label = f"{record['model']} ({record.get('setting') or 'zero-shot'})"
            bars.setdefault(label, {})[record["lang"]] = record["value"]
    ours = sorted(bars)
    for label, values in references:
        bars[f"paper: {label}"] = values
    present = {lang for label in ours for lang in bars[label]}
    languages = [lang for lang in XNLI_LANGUAGES if lang in present or not ours]
    languages += sorted(present - set(XNLI_LANGUAGES))
    figure, axis = plt.subplots(figsize=(max(6.0, 0.6 * len(languages) * max(1, len(bars))
                                             / 2), 3.6))
    width = 0.8 / max(1, len(bars))
    for index, label in enumerate(bars):
        positions = [i + index * width for i, lang in enumerate(languages)
                     if lang in bars[label]]
        heights = [bars[label][lang] for lang in languages if lang in bars[label]]
        reference = label.startswith("paper: ")
        axis.bar(positions, heights, width, label=label, hatch="//" if reference else None,
                 alpha=0.5 if reference else 1.0)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(languages))], languages)
    axis.set_ylabel("accuracy (%)")
    axis.set_ylim(0, 100)
    axis.grid(True, axis="y", alpha=0.3)
    if bars:
        axis.legend(fontsize="small")
    else:
        axis.text(0.5, 0.5, "no XNLI test records", ha="center", transform=axis.transAxes)
    axis.set_title(title)
    figure.tight_layout()
    return _save(figure, output)


def _save(figure: plt.Figure, output: str | os.PathLike[str]) -> Path:
    with atomic_path(output) as tmp:
        figure.savefig(tmp, format="png", dpi=100, metadata=PNG_METADATA)
    plt.close(figure)
    return Path(output)
