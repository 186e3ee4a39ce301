"""Tables from hand-written metric records: cells, missing cells, averages, references, bytes."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from xlm.cli import main
from xlm.errors import UserError
from xlm.report.records import load_records
from xlm.report.render import to_csv, to_latex, to_markdown
from xlm.report.tables import (
    TABLE_NAMES,
    XNLI_LANGUAGES,
    build_tables,
    embeddings_table,
    load_references,
    low_resource_lm_table,
    supervised_mt_table,
    unsupervised_mt_table,
    xnli_table,
)

PROV = {"run_name": "demo", "config_hash": "cafe01", "git_revision": "abc1234"}


def rec(task: str, model: str, lang: str, metric: str, value: float, split: str = "test",
        timestamp: str = "2026-01-02T03:04:05Z", **extra) -> dict:
    return {"task": task, "model": model, "split": split, "lang": lang, "metric": metric,
            "value": value, "timestamp": timestamp, **PROV, **extra}


def write_metrics(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


@pytest.fixture
def refs() -> dict:
    return load_references()


def our_rows(table):
    return [row for row in table.rows if not row.reference]


def cell(table, row, column):
    return row.cells[table.columns.index(column)]


def test_xnli_values_land_in_their_cells_and_missing_stay_missing(refs):
    records = [rec("xnli", "mlm", "en", "acc", 70.0), rec("xnli", "mlm", "fr", "acc", 61.0),
               rec("xnli", "mlm", "de", "acc", 99.0, split="valid"),  # not a test number
               rec("xnli", "tlm", "fr", "acc", 65.5, setting="translate-train")]
    table = xnli_table(records, refs)
    (mlm,) = [row for row in our_rows(table) if row.descriptors == ("mlm", "zero-shot")]
    assert cell(table, mlm, "en") == 70.0
    assert cell(table, mlm, "fr") == 61.0
    assert cell(table, mlm, "de") is None
    assert all(cell(table, mlm, lang) is None for lang in XNLI_LANGUAGES[2:])
    (tlm,) = [row for row in our_rows(table) if row.descriptors == ("tlm", "translate-train")]
    assert cell(table, tlm, "fr") == 65.5 and cell(table, tlm, "en") is None

    markdown = to_markdown(table)
    mlm_line = next(line for line in markdown.splitlines() if "| mlm |" in line)
    assert mlm_line.count("–") == 13 and " 0.0 " not in mlm_line
    csv_line = next(line for line in to_csv(table).splitlines() if ",mlm," in line)
    assert ",70.0,61.0,,," in csv_line and ",0.0," not in csv_line


def test_average_is_over_present_languages_only_and_says_so(refs):
    records = [rec("xnli", "mlm", "en", "acc", 70.0), rec("xnli", "mlm", "fr", "acc", 61.0),
               rec("xnli", "mlm", "sw", "acc", 50.0)]
    table = xnli_table(records, refs)
    (row,) = our_rows(table)
    assert cell(table, row, "avg*") == pytest.approx(statistics.fmean([70.0, 61.0, 50.0]))
    assert cell(table, row, "langs") == "3/15"
    assert any("languages that have a result" in note for note in table.notes)
    assert "avg*" in to_markdown(table) and "not over all 15" in to_markdown(table)


def test_reference_rows_are_marked_in_every_format(refs):
    table = xnli_table([rec("xnli", "mlm", "en", "acc", 70.0)], refs)
    references = [row for row in table.rows if row.reference]
    assert [row.descriptors[0] for row in references][:2] == ["XLM (MLM)", "XLM (MLM+TLM)"]
    assert all(row.source == "paper" for row in references)
    paper_tlm = references[1]
    assert cell(table, paper_tlm, "fr") == 78.7 and cell(table, paper_tlm, "avg*") == 75.1
    assert "| *paper* | XLM (MLM+TLM) | zero-shot | 85.0 |" in to_markdown(table)
    assert "paper,yes,XLM (MLM+TLM),zero-shot,85.0," in to_csv(table)
    assert "demo,no,mlm,zero-shot,70.0," in to_csv(table)
    assert r"\textit{paper}" in to_latex(table)


def test_paper_averages_match_their_languages(refs):
    """A check on the transcription of Table 1: the paper's avg is the mean of its 15 cells."""
    for entry in refs["references"]:
        if entry["table"] == 1:
            values = [entry["values"][lang] for lang in XNLI_LANGUAGES]
            assert statistics.fmean(values) == pytest.approx(entry["values"]["avg"], abs=0.051)


def test_mt_tables_use_directions_and_initialisations(refs):
    sig = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    records = [
        rec("mt_unsup", "umt_mlm", "fr", "bleu", 12.5, direction="en-fr", encoder_init="mlm",
            decoder_init="mlm", sacrebleu_signature=sig),
        rec("mt_unsup", "umt_mlm", "de-en", "bleu", 9.0, encoder_init="mlm", decoder_init="mlm",
            sacrebleu_signature=sig),
        rec("mt_sup", "sup_clm", "en", "bleu", 20.1, direction="ro-en", encoder_init="clm",
            setting="bidirectional+bt", sacrebleu_signature=sig),
    ]
    table2 = unsupervised_mt_table(records, refs)
    (row,) = our_rows(table2)
    assert row.descriptors == ("umt_mlm", "mlm", "mlm", "bleu")
    assert cell(table2, row, "en-fr") == 12.5 and cell(table2, row, "de-en") == 9.0
    assert cell(table2, row, "fr-en") is None
    assert table2.provenance.sacrebleu_signatures == (sig,)
    assert f"sacreBLEU signature: {sig}" in to_markdown(table2)

    table3 = supervised_mt_table(records, refs)
    (row,) = our_rows(table3)
    assert row.descriptors == ("bidirectional+bt", "ro-en", "bleu")
    assert cell(table3, row, "CLM") == 20.1 and cell(table3, row, "MLM") is None
    paper_bt = next(r for r in table3.rows
                    if r.reference and r.descriptors[0] == "bidirectional+bt")
    assert cell(table3, paper_bt, "MLM") == 38.5


def test_lm_and_embedding_tables(refs):
    records = [rec("lm", "clm_ne_hi", "ne", "ppl", 210.25, languages=["ne", "hi"]),
               rec("lm", "clm_ne_hi", "hi", "ppl", 90.0, languages=["ne", "hi"]),
               rec("embeddings", "mlm", "en-fr", "cosine", 0.4123, method="xlm"),
               rec("embeddings", "mlm", "en-fr", "p@1", 33.3, method="xlm")]
    table4 = low_resource_lm_table(records, refs)
    (row,) = our_rows(table4)
    assert row.descriptors == ("clm_ne_hi", "ne+hi")
    assert table4.columns == ("ne", "hi")
    assert cell(table4, row, "ne") == 210.25
    table5 = embeddings_table(records, refs)
    (row,) = our_rows(table5)
    assert row.descriptors == ("xlm", "en-fr")
    assert cell(table5, row, "cosine") == 0.4123 and cell(table5, row, "l2") is None
    assert "| demo | xlm | en-fr | 0.41 | – |" in to_markdown(table5)
    paper_xlm = next(r for r in table5.rows if r.reference and r.descriptors[0] == "XLM")
    assert cell(table5, paper_xlm, "l2") == 2.64 and cell(table5, paper_xlm, "p@1") is None


def test_newest_record_wins_whatever_the_order(refs):
    old = rec("xnli", "mlm", "en", "acc", 50.0, timestamp="2026-01-01T00:00:00Z")
    new = rec("xnli", "mlm", "en", "acc", 60.0, timestamp="2026-02-01T00:00:00Z")
    for records in ([old, new], [new, old]):
        table = xnli_table(records, refs)
        assert cell(table, our_rows(table)[0], "en") == 60.0
        assert table.provenance.date == "2026-02-01T00:00:00Z"


def test_unknown_fields_and_tasks_are_ignored(refs):
    records = [rec("xnli", "mlm", "en", "acc", 70.0, extra_field={"x": 1}),
               rec("some_new_task", "m", "en", "f1", 1.0)]
    tables = build_tables(records, refs)
    assert [t.name for t in tables] == list(TABLE_NAMES)
    assert len(our_rows(tables[0])) == 1 and all(not our_rows(t) for t in tables[1:])


def test_provenance_comes_from_the_records(refs):
    table = xnli_table([rec("xnli", "mlm", "en", "acc", 70.0)], refs)
    markdown = to_markdown(table)
    for text in ("run: demo", "config hash: cafe01", "git revision: abc1234",
                 "date (newest record): 2026-01-02T03:04:05Z", "arXiv:1901.07291"):
        assert text in markdown
    assert "% run: demo" in to_latex(table)


def test_regeneration_is_byte_identical(tmp_path):
    records = [rec("xnli", "mlm", lang, "acc", 60.0 + i) for i, lang in enumerate(["en", "fr"])]
    records += [rec("mt_unsup", "umt", "en", "bleu_tok", 11.1, direction="fr-en")]
    write_metrics(tmp_path / "a" / "results" / "mlm" / "xnli" / "metrics.json", records[:2])
    write_metrics(tmp_path / "a" / "results" / "umt" / "mt" / "metrics.json", records[2:])
    # the same records, split and ordered differently, in another tree
    write_metrics(tmp_path / "b" / "x" / "metrics.json", records[::-1])
    outputs = []
    for tree, out in ((tmp_path / "a", "out1"), (tmp_path / "a", "out2"), (tmp_path / "b", "o3")):
        main(["tables", str(tree), "--out-dir", str(tmp_path / out)])
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / out).iterdir())})
    assert len(outputs[0]) == 3 * len(TABLE_NAMES)
    expected = sorted(f"{n}.{f}" for n in TABLE_NAMES for f in ("md", "csv", "tex"))
    assert sorted(outputs[0]) == expected
    assert outputs[0] == outputs[1]
    # provenance differs by nothing but the files' locations, which tables do not show
    assert outputs[0] == outputs[2]


def test_no_records_gives_reference_only_tables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no results/ here
    main(["tables", "--out-dir", "tables"])
    markdown = (tmp_path / "tables" / "table1_xnli.md").read_text(encoding="utf-8")
    assert "*paper*" in markdown and "run: –" in markdown


@pytest.mark.parametrize("content, message", [
    ('{"task": "xnli"}', "expected a JSON list"),
    ('[{"task": "xnli", "model": "m", "split": "test", "lang": "en", "metric": "acc"}]',
     "record lacks value"),
    ('[{"task": "xnli", "model": "m", "split": "test", "lang": "en", "metric": "acc", '
     '"value": "n/a"}]', "value must be a finite number"),
    ("[{", "not valid JSON"),
])
def test_bad_metrics_files_are_user_errors_naming_the_file(tmp_path, content, message):
    path = tmp_path / "metrics.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message) as error:
        load_records([path])
    assert str(path) in str(error.value)


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["tables", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


WORKFLOW = r'''
PREPROCESS_ENV = "../envs/preprocess.yaml"
config["models"] = {"mlm": 1}
include: "rules/tables.smk"

rule fake_xnli:
    output: "results/{model}/xnli/metrics.json"
    params: setting=lambda wc: config["models"][wc.model]  # KeyError for a stale model
    log: "logs/fake_{model}.log"
    shell:
        "echo '[{{\"task\": \"xnli\", \"model\": \"{wildcards.model}\", \"split\": \"test\","
        " \"lang\": \"en\", \"metric\": \"acc\", \"value\": 70.0}}]' > {output[0]}"

rule fake_pretrain:  # a training run: train.jsonl beside its declared metrics.json
    output: "results/{model}/pretrain/metrics.json"
    log: "logs/fake_pretrain_{model}.log"
    shell:
        "echo '{{\"step\": 1, \"loss\": 2.0, \"lr\": 0.1}}'"
        " > results/{wildcards.model}/pretrain/train.jsonl && echo '[]' > {output[0]}"

rule xnli:  # the stages' target rules declare the metrics the tables wait for
    input: "results/mlm/xnli/metrics.json"

rule pretrain:
    input: "results/mlm/pretrain/metrics.json"

rule all:
    input: rules.tables.output, rules.plots.input
'''


def test_snakemake_tables_waits_for_tasks_then_reruns_nothing(tmp_path, repo):
    """rules/tables.smk in a tiny workflow: declared metrics are waited for, hand-made and
    stale ones are read without rebuilding anything, and a second run does nothing."""
    for name in ("xlm", "rules", "report", "envs"):
        (tmp_path / name).symlink_to(repo / name)
    (tmp_path / "Snakefile").write_text(WORKFLOW, encoding="utf-8")
    write_metrics(tmp_path / "results/old/xnli/metrics.json",  # stale: "old" not in config
                  [rec("xnli", "old", "fr", "acc", 55.0)])
    write_metrics(tmp_path / "results/hand/lm/metrics.json",  # no rule makes it
                  [rec("lm", "hand", "ne", "ppl", 123.0, languages=["ne"])])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    snakemake = [str(Path(sys.executable).with_name("snakemake")), "--cores", "1"]

    def run(*args: str) -> str:
        done = subprocess.run([*snakemake, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr

    run("all")
    table1 = (tmp_path / "results/tables/table1_xnli.md").read_text(encoding="utf-8")
    assert "| mlm | zero-shot | 70.0 |" in table1 and "| old | zero-shot | – | 55.0 |" in table1
    assert "| hand | ne | 123.0 |" in (tmp_path / "results/tables/table4_lm.md").read_text()
    assert (tmp_path / "results/plots/mlm/pretrain/curves.png").exists()
    assert (tmp_path / "results/plots/xnli_accuracy.png").exists()
    assert "Nothing to be done" in run("tables", "plots", "-n")
    write_metrics(tmp_path / "results/old/xnli/metrics.json",
                  [rec("xnli", "old", "fr", "acc", 56.0)])
    assert "fake_xnli" not in run("tables")
    table1 = (tmp_path / "results/tables/table1_xnli.md").read_text(encoding="utf-8")
    assert "| old | zero-shot | – | 56.0 |" in table1
    shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)


def test_write_metrics_round_trips_and_refuses_bad_records(tmp_path):
    from xlm.report.records import utc_timestamp, write_metrics

    record = rec("xnli", "mlm", "en", "acc", 70, timestamp=utc_timestamp())
    write_metrics(tmp_path / "m" / "metrics.json", [record])
    (loaded,) = load_records([tmp_path])
    assert loaded["value"] == 70.0 and loaded["timestamp"].endswith("Z")
    with pytest.raises(UserError, match="record lacks metric"):
        write_metrics(tmp_path / "bad.json", [{k: v for k, v in record.items() if k != "metric"}])
    assert not (tmp_path / "bad.json").exists()
