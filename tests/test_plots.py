"""Plots from a hand-written train.jsonl and hand-written XNLI records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from xlm.cli import main
from xlm.errors import UserError
from xlm.report.plots import (
    flatten,
    panel_of,
    panels,
    plot_training_curves,
    plot_xnli_accuracy,
    read_train_log,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_train_log(path: Path, with_ppl: bool = True) -> Path:
    lines = []
    for step in range(0, 200, 20):
        entry = {"step": step, "lr": 1e-4 * min(1.0, (step + 1) / 100), "epoch": 0,
                 "tokens_per_s": 5000.0 + step, "objective": "mlm",
                 "loss": {"mlm": {"en": 6.0 - step / 100, "fr": 6.2 - step / 100},
                          "tlm": {"en-fr": 6.5 - step / 100}}}
        if with_ppl and step % 40 == 0:
            entry["ppl"] = {"valid": {"en": 400.0 - step, "fr": 450.0 - step}}
        lines.append(json.dumps(entry))
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return path


def test_flatten_and_panels():
    flat = flatten({"step": 3, "loss": {"mlm": {"en": 2.0}}, "name": "x", "ok": True,
                    "lr": 1e-4, "nan": float("nan")})
    assert flat == {"step": 3.0, "loss/mlm/en": 2.0, "lr": 1e-4}
    assert panel_of("loss/mlm/en") == "loss"
    assert panel_of("valid_ppl_en") == "perplexity"
    assert panel_of("lr") == "learning rate"
    assert panel_of("optimizer/lr") == "learning rate"
    assert panel_of("tokens_per_s") == "tokens/s"
    assert panel_of("epoch") is None


def test_read_train_log_keeps_each_curve_with_its_steps(tmp_path):
    series = read_train_log(write_train_log(tmp_path / "train.jsonl"))
    steps, values = series["ppl/valid/en"]
    assert steps == [0.0, 40.0, 80.0, 120.0, 160.0] and values[0] == 400.0
    assert len(series["loss/tlm/en-fr"][0]) == 10
    assert "objective" not in series


def test_perplexity_is_derived_from_losses_when_not_logged(tmp_path):
    grouped = panels(read_train_log(write_train_log(tmp_path / "t.jsonl", with_ppl=False)))
    steps, values = grouped["perplexity"]["exp(loss/mlm/en)"]
    assert values[0] == pytest.approx(math.exp(6.0))
    assert set(grouped) == {"loss", "perplexity", "learning rate", "tokens/s"}


def test_training_curves_png(tmp_path):
    output = plot_training_curves(write_train_log(tmp_path / "train.jsonl"),
                                  tmp_path / "plots" / "curves.png", title="mlm pretrain")
    assert output.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in (tmp_path / "plots").iterdir()] == ["curves.png"]  # no temp left


def test_curves_cli(tmp_path):
    log = write_train_log(tmp_path / "train.jsonl")
    main(["plots", "curves", str(log), "--output", str(tmp_path / "c.png")])
    assert (tmp_path / "c.png").read_bytes().startswith(PNG_MAGIC)


def test_bad_train_log_is_a_user_error_with_line(tmp_path):
    log = tmp_path / "train.jsonl"
    log.write_text('{"step": 1, "loss": 2.0}\nnot json\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"train.jsonl:2: not a JSON object"):
        read_train_log(log)
    log.write_text('{"loss": 2.0}\n', encoding="utf-8")
    with pytest.raises(UserError, match="needs a 'step' field"):
        read_train_log(log)


def test_xnli_bar_chart(tmp_path):
    records = [{"task": "xnli", "model": "mlm", "split": "test", "lang": lang,
                "metric": "acc", "value": value}
               for lang, value in (("en", 70.0), ("fr", 61.0), ("ne", 40.0))]
    output = plot_xnli_accuracy(records, tmp_path / "xnli.png",
                                references=[("XLM (MLM+TLM)", {"en": 85.0, "fr": 78.7})])
    assert output.read_bytes().startswith(PNG_MAGIC)
    (tmp_path / "results" / "m").mkdir(parents=True)
    (tmp_path / "results" / "m" / "metrics.json").write_text(json.dumps(records))
    main(["plots", "xnli", str(tmp_path / "results"), "--output", str(tmp_path / "x2.png")])
    assert (tmp_path / "x2.png").read_bytes().startswith(PNG_MAGIC)
