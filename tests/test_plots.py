"""Plots from a hand-written train.jsonl and hand-written XNLI records, and the training
curves of a real (tiny) pretraining run: validation perplexity per language and averaged
beside the training loss, the kept step marked, accuracy in percent."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from xlm.cli import main
from xlm.errors import UserError
from xlm.report.plots import (
    flatten,
    kept_step,
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


def test_curves_of_a_real_pretraining_run(tmp_path, shared_data):
    """What the trainer writes is what the curves show: valid perplexity per language and
    their average at each evaluation, and the kept step, the one metrics.json reports."""
    from pretrain_helpers import TINY_SETTINGS, build_pretrain_data

    from xlm.train.settings import PretrainSettings
    from xlm.train.trainer import Pretrainer

    data, vocab = build_pretrain_data(shared_data, tmp_path / "data")
    settings = PretrainSettings.from_dict({**TINY_SETTINGS, "clm": ["en", "fr"],
                                           "max_steps": 30, "eval_every": 10, "log_every": 5})
    out = tmp_path / "clm"
    Pretrainer(settings, data_dir=data, vocab=vocab, out_dir=out, name="clm").run()
    log = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [5, 10, 15, 20, 25, 30]  # evaluations merged in
    evaluated = [r for r in log if "valid_ppl" in r]
    assert [r["step"] for r in evaluated] == [10, 20, 30]
    assert set(evaluated[0]["valid_ppl"]) == {"clm_en", "clm_fr", "avg"}
    records = json.loads((out / "metrics.json").read_text())
    kept = {r["step"] for r in records}
    assert len(kept) == 1
    valid_avg = next(r["value"] for r in records
                     if r["split"] == "valid" and r["lang"] == "avg" and r["metric"] == "ppl")
    at_kept = next(r for r in evaluated if r["step"] in kept)
    assert at_kept["valid_ppl"]["avg"] == pytest.approx(valid_avg, rel=1e-5)
    # Accuracy in percent, like every other record (the LM task's `acc`, XNLI's `acc`).
    accuracies = [r["value"] for r in records if r["metric"] == "clm_acc"]
    assert all(0 <= v <= 100 for v in accuracies) and max(accuracies) > 1
    assert all(1 < r["clm_acc"] <= 100 for r in log)

    series = read_train_log(out / "train.jsonl")
    grouped = panels(series)
    assert set(grouped["perplexity"]) == {"valid_ppl/clm_en", "valid_ppl/clm_fr",
                                          "valid_ppl/avg"}
    assert set(grouped["loss"]) == {"clm_loss"}
    assert {"learning rate", "tokens/s"} <= set(grouped)
    assert kept_step(series) == kept.pop()
    png = plot_training_curves(out / "train.jsonl", tmp_path / "curves.png", title="clm")
    assert png.read_bytes().startswith(PNG_MAGIC)
