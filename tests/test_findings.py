"""The findings table's figures and verdicts (xlm/report/findings.py), on made-up records
(the logic), and `{data_root}` in config paths (xlm/data_root.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xlm.data_root import expand_data_root
from xlm.errors import UserError
from xlm.report.findings import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    UNMEASURED,
    Figure,
    compare,
    evaluate,
    parse_claims,
)


def rec(model: str, seed: int, value: float, lang: str = "fr", **extra: object) -> dict:
    return {"task": "xnli", "model": model, "split": "test", "lang": lang, "metric": "acc",
            "value": value, "seed": seed, "timestamp": "2026-11-30T10:00:00Z", **extra}


CLAIM = {"name": "zero_shot", "claim": "zero-shot transfer", "paper": "MLM+TLM best",
         "measure": "XNLI test acc, non-English mean", "select": {"task": "xnli",
         "metric": "acc", "split": "test"}, "exclude": {"lang": "en"},
         "groups": {"tlm": {"model": "mlm_tlm"}, "mlm": {"model": "mlm"},
                    "none": {"model": "untrained"}},
         "expected": "tlm >= mlm > none"}


def test_figures_average_languages_within_a_seed_then_seeds() -> None:
    records = [rec("mlm", 0, 40, "fr"), rec("mlm", 0, 44, "de"), rec("mlm", 0, 90, "en"),
               rec("mlm", 1, 46, "fr"), rec("mlm", 1, 46, "de")]
    [finding] = evaluate(records, parse_claims([{**CLAIM, "expected": "mlm > none"}]))
    figure = finding.figures[0]
    assert figure.values == (42.0, 46.0)  # English excluded; per seed the mean of fr, de
    assert figure.mean == 44.0 and figure.std == pytest.approx(2 ** 1.5)
    assert finding.figures[1].n == 0 and finding.verdict == UNMEASURED


def test_newest_record_of_a_cell_wins() -> None:
    old = rec("mlm", 0, 10, timestamp="2026-11-29T00:00:00Z")
    [finding] = evaluate([old, rec("mlm", 0, 30), rec("untrained", 0, 20)],
                         parse_claims([{**CLAIM, "expected": "mlm > none"}]))
    assert finding.figures[0].values == (30.0,)


def test_verdicts_follow_the_spread() -> None:
    wide = [rec("mlm", s, v) for s, v in enumerate((40, 50, 60))]
    tight = [rec("untrained", s, v) for s, v in enumerate((33, 34, 35))]
    clear = [rec("mlm", s, v) for s, v in enumerate((45, 46, 47))]
    claim = parse_claims([{**CLAIM, "expected": "mlm > none"}])
    # d = 16, se = sqrt(100/3 + 1/3) = 5.8: 16 > 2 se = 11.6 -> holds
    assert evaluate(wide + tight, claim)[0].verdict == HOLDS
    # the same with spread 3 (17.4): within the spread
    assert evaluate(wide + tight, claim, spread=3)[0].verdict == INCONCLUSIVE
    reverse = parse_claims([{**CLAIM, "expected": "none > mlm"}])
    assert evaluate(clear + tight, reverse)[0].verdict == FAILS


def test_lower_is_better_and_at_least_as_good() -> None:
    a, b = Figure("a", (10.0, 11.0, 12.0)), Figure("b", (20.0, 21.0, 22.0))
    assert compare(a, "<", b, 2, 0).verdict == HOLDS
    assert compare(a, ">", b, 2, 0).verdict == FAILS
    assert compare(b, ">=", a, 2, 0).verdict == HOLDS
    assert compare(a, ">=", b, 2, 0).verdict == FAILS
    close = Figure("c", (10.5, 11.5, 12.5))
    assert compare(close, ">", a, 2, 0).verdict == INCONCLUSIVE
    assert compare(a, ">=", close, 2, 0).verdict == HOLDS  # not worse beyond the spread


def test_one_replicate_has_no_spread_only_the_tolerance() -> None:
    a, b = Figure("a", (50.0,)), Figure("b", (49.0,))
    result = compare(a, ">", b, 2, 0)
    # No spread and no tolerance: a 1-point difference (or any) is no evidence either way.
    assert result.verdict == INCONCLUSIVE and not result.spread_known
    assert compare(b, ">", a, 2, 0).verdict == INCONCLUSIVE
    assert compare(b, ">=", a, 2, 0).verdict == INCONCLUSIVE
    # With a tolerance, the difference is judged against it.
    assert compare(a, ">", b, 2, 0.5).verdict == HOLDS
    assert compare(b, ">", a, 2, 0.5).verdict == FAILS
    assert compare(a, ">", b, 2, 2.0).verdict == INCONCLUSIVE
    assert "no spread" in compare(a, ">", b, 2, 0).text()


def test_a_claim_fails_when_one_step_fails() -> None:
    records = ([rec("mlm_tlm", s, 40 + s) for s in range(3)]
               + [rec("mlm", s, 50 + s) for s in range(3)]
               + [rec("untrained", s, 33 + s) for s in range(3)])
    [finding] = evaluate(records, parse_claims([{**CLAIM, "expected": "tlm > mlm > none"}]))
    assert [c.verdict for c in finding.comparisons] == [FAILS, HOLDS]
    assert finding.verdict == FAILS


def test_a_bad_order_names_the_key() -> None:
    with pytest.raises(UserError, match=r"findings.claims\[0\].expected.*groups: tlm, mlm"):
        parse_claims([{**CLAIM, "expected": "tlm > bert"}])
    with pytest.raises(UserError, match=r"findings.claims\[0\]': missing groups"):
        parse_claims([{k: v for k, v in CLAIM.items() if k != "groups"}])


def test_command_writes_the_three_files(tmp_path) -> None:
    records = ([rec("mlm_tlm", s, 50 + s) for s in range(3)]
               + [rec("mlm", s, 45 + s) for s in range(3)]
               + [rec("untrained", s, 33 + s) for s in range(3)])
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(records))
    section = json.dumps({"claims": [CLAIM], "spread": 2})
    subprocess.run([sys.executable, "-m", "xlm", "findings", str(metrics), "--claims",
                    section, "--out-dir", str(tmp_path / "tables")], check=True)
    md = (tmp_path / "tables" / "findings.md").read_text()
    assert "| zero-shot transfer |" in md and "| holds |" in md
    assert "tlm 51.00 ± 1.00 (n=3)" in md and "Verdict rule" in md
    csv = (tmp_path / "tables" / "findings.csv").read_text().splitlines()
    assert csv[0].startswith("claim,expected,verdict,group,mean,sd,n")
    assert len(csv) == 4
    assert "\\begin{tabular}" in (tmp_path / "tables" / "findings.tex").read_text()


def test_data_root_fills_every_path(tmp_path) -> None:
    config = {"data_root": str(tmp_path) + "/", "xnli": {"valid": "{data_root}/x/dev.{lang}.tsv"},
              "local_text": {"ne": ["{data_root}/a.gz", "b.gz"]}, "run_name": "demo"}
    expand_data_root(config, "study.yaml")
    assert config["xnli"]["valid"] == f"{tmp_path}/x/dev.{{lang}}.tsv"
    assert config["local_text"]["ne"] == [f"{tmp_path}/a.gz", "b.gz"]


def test_data_root_missing_or_wrong_is_one_line(tmp_path) -> None:
    config = {"xnli": {"train": "{data_root}/nli.tsv"}}
    with pytest.raises(UserError, match=r"study.yaml: key 'xnli.train' names \{data_root\} but "
                                        r"'data_root' is not set.*make study DATA="):
        expand_data_root(config, "study.yaml")
    config["data_root"] = str(tmp_path / "nowhere")
    with pytest.raises(UserError, match=r"key 'data_root': .*nowhere is not a folder"):
        expand_data_root(config, "study.yaml")
    plain = {"xnli": {"train": "demo/x.tsv"}, "data_root": None}
    expand_data_root(plain, "config.yaml")  # no placeholder: nothing needed
    assert plain["xnli"]["train"] == "demo/x.tsv"


def test_paper_tables_average_the_seeds() -> None:
    """A table cell is the mean over seeds of each seed's newest record."""
    from xlm.report.tables import build_tables

    records = [rec("mlm", 0, 40, run_name="s"), rec("mlm", 1, 50, run_name="s"),
               rec("mlm", 1, 10, run_name="s", timestamp="2026-11-01T00:00:00Z")]
    table1 = build_tables([{**r, "setting": "zero-shot"} for r in records])[0]
    [ours] = [row for row in table1.rows if not row.reference]
    assert ours.cells[table1.columns.index("fr")] == 45.0
    assert any("mean over the seeds (0, 1 here)" in note for note in table1.notes)
    single = build_tables([{**records[0], "setting": "zero-shot"}])[0]
    assert not any("seeds" in note for note in single.notes)
