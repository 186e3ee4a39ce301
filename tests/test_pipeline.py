"""The whole pipeline, as `make run` does it, on a tiny config: every stage and task runs
through real Snakemake; then reruns do nothing, or only what a changed setting needs."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from workflow import mtimes, snakemake, write_config

from xlm.data.dictionary import Dictionary
from xlm.data.indexed import IndexedDataset
from xlm.data.xnli import read_pairs


@pytest.fixture()
def pipeline(tiny_pipeline):
    return tiny_pipeline


def lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_binarized_datasets_match_their_text(pipeline):
    workdir, config = pipeline
    dictionary = Dictionary.read_vocab(workdir / "data/bpe/vocab",
                                       max_vocab=config["bpe"]["max_vocab"])
    assert len(dictionary) <= 14 + config["bpe"]["max_vocab"]
    for lang in config["languages"]:
        for split in ("train", "valid", "test"):
            dataset = IndexedDataset(workdir / f"data/bin/{lang}.{split}")
            text = lines(workdir / f"data/bpe/{lang}.{split}.txt")
            assert len(dataset) == len(text) > 0
            assert dataset.num_tokens == sum(len(t.split()) + 1 for t in text)
    for pair in config["parallel"]["pairs"]:
        sides = [IndexedDataset(workdir / f"data/bin/{pair}.{lang}.train")
                 for lang in pair.split("-")]
        assert len(sides[0]) == len(sides[1]) > 100
    for lang in config["xnli"]["languages"]:
        premises = IndexedDataset(workdir / f"data/xnli/{lang}.test.s1")
        labels = lines(workdir / f"data/xnli/{lang}.test.label")
        assert len(premises) == len(labels) > 0
    # xnli.train is two TSVs, read in order: the demo's English XNLI dev, then SICK.
    first, sick = (read_pairs(path, "en") for path in config["xnli"]["train"])
    assert len(sick) == 9840
    train = lines(workdir / "data/xnli/raw/train.s1.en.txt")
    assert train == [premise for premise, _, _ in first + sick]
    assert lines(workdir / "data/xnli/en.train.label") == [label for *_, label in first + sick]
    references = lines(workdir / "data/mt/en-fr.en.test.ref")
    assert len(IndexedDataset(workdir / "data/mt/en-fr.en.test")) == len(references)


def test_pretrained_model_and_records(pipeline):
    workdir, _ = pipeline
    out = workdir / "results/mlm_tlm/pretrain"
    assert (out / "model.pt").stat().st_size > 0
    records = json.loads((out / "metrics.json").read_text())
    ppl = [r for r in records if r["split"] == "test" and r["metric"].endswith("ppl")]
    assert ppl and all(np.isfinite(r["value"]) and r["value"] > 1 for r in ppl)
    log = [json.loads(line) for line in lines(out / "train.jsonl")]
    assert log[-1]["step"] == 12 and all("lr" in r for r in log)


def test_every_task_wrote_records(pipeline):
    workdir, config = pipeline
    xnli = json.loads((workdir / "results/mlm_tlm/xnli/metrics.json").read_text())
    assert {r["lang"] for r in xnli if r["metric"] == "acc" and r["split"] == "test"} == {
        "en", "fr"}
    mt = json.loads((workdir / "results/sup_fr_en/mt/metrics.json").read_text())
    bleu = [r for r in mt if r["metric"] == "bleu"]
    assert bleu and all("sacrebleu_signature" in r for r in bleu)
    # mt.example: the first test sentences, each between its source and reference
    example = (workdir / "results/sup_fr_en/mt/example.fr-en.md").read_text().splitlines()
    sides = config["parallel"]["pairs"]["en-fr"]["test"]
    sources = Path(sides["fr"]).read_text(encoding="utf-8").splitlines()[:3]
    references = Path(sides["en"]).read_text(encoding="utf-8").splitlines()[:3]
    assert example[0] == "```text" and example[-1] == "```" and len(example) == 2 + 3 * 3
    assert example[1::3][:3] == [f"fr:  {line}" for line in sources]
    assert all(line.startswith("xlm: ") for line in example[2::3])
    assert example[3::3][:3] == [f"en:  {line}" for line in references]
    embeddings = json.loads((workdir / "results/mlm_tlm/embeddings/metrics.json").read_text())
    assert {"cosine", "l2"} <= {r["metric"] for r in embeddings}
    for combination in config["lm"]["combinations"]:
        records = json.loads((workdir / f"results/{combination}/lm/metrics.json").read_text())
        assert any(r["metric"] == "ppl" and r["lang"] == "fr" for r in records)


def test_tables_are_built_and_cells_come_from_records(pipeline):
    workdir, config = pipeline
    table = (workdir / "results/tables/table1_xnli.md").read_text(encoding="utf-8")
    xnli = json.loads((workdir / "results/mlm_tlm/xnli/metrics.json").read_text())
    fr = next(r["value"] for r in xnli if r["metric"] == "acc" and r["split"] == "test"
              and r["lang"] == "fr")
    assert f"{fr:.1f}" in table
    assert "tiny" in table  # provenance: the run name
    # TRANSLATE-TEST of fr: the French test set translated into English by sup_fr_en, row
    # for row with its labels, prepared as English and evaluated (tests/workflow.py).
    translated = read_pairs(workdir / "data/xnli/translated/test.fr-en.tsv", "fr")
    french = read_pairs(Path(config["xnli"]["test"].format(lang="fr")), "fr")
    assert [label for *_, label in translated] == [label for *_, label in french]
    assert lines(workdir / "data/xnli/en.test-from-fr.label") == [
        label for *_, label in translated]
    assert [p for p, *_ in translated] != [p for p, *_ in french]  # the model's output
    cells = {(r["setting"], r["lang"]) for r in xnli
             if r["metric"] == "acc" and r["split"] == "test"}
    assert {("translate-test", "fr"), ("translate-test", "en")} <= cells
    assert "translate-test" in table


def test_second_run_and_tables_do_nothing(pipeline):
    workdir, _ = pipeline
    for target in ("all", "tables"):
        result = snakemake(workdir, target, "--dry-run")
        assert "Nothing to be done" in result.stdout + result.stderr, target


def test_changing_a_models_lr_reruns_it_and_what_follows_only(pipeline, tmp_path):
    original, config = pipeline
    workdir = tmp_path / "copy"
    shutil.copytree(original, workdir, symlinks=True)  # keeps mtimes; the original stays
    config = copy.deepcopy(config)
    config["pretrain"]["lr"] = config["pretrain"]["lr"] / 2
    write_config(workdir, config)
    result = snakemake(workdir, "all", "--dry-run", "--quiet", "rules")
    rules = {line.split()[0] for line in result.stdout.splitlines()
             if line.strip() and line.split()[-1].isdigit()}
    assert "pretrain_model" in rules and "xnli_finetune" in rules and "tables" in rules
    assert not rules & {"extract_wiki", "tokenize_split", "bpe_learn", "binarize",
                        "binarize_parallel"}
    before = mtimes(workdir, "data/**/*")
    snakemake(workdir, "results/mlm_tlm/pretrain/model.pt", timeout=600)
    assert mtimes(workdir, "data/**/*") == before


def rules_to_run(workdir) -> set[str]:
    """The rules a dry run of `all` would run in `workdir`."""
    result = snakemake(workdir, "all", "--dry-run", "--quiet", "rules")
    return {line.split()[0] for line in result.stdout.splitlines()
            if line.strip() and line.split()[-1].isdigit() and line.split()[0] != "total"}


def test_changing_the_beam_redecodes_and_rerenders_only(pipeline, tmp_path):
    """mt.beam is a param of MT evaluation only: the MT test sets are decoded again and the
    tables re-rendered (and the example translations redone), nothing is retrained, and the
    XNLI plot is not redrawn."""
    original, config = pipeline
    workdir = tmp_path / "beam"
    shutil.copytree(original, workdir, symlinks=True)
    config = copy.deepcopy(config)
    config["mt"]["beam"] += 1
    write_config(workdir, config)
    assert rules_to_run(workdir) == {"mt_evaluate", "mt_example", "tables", "all"}


def test_report_holds_the_tables_and_plots(pipeline, tmp_path):
    workdir, _ = pipeline
    report = tmp_path / "report.html"
    snakemake(workdir, "--report", str(report))
    html = report.read_text(encoding="utf-8")
    assert report.stat().st_size > 10_000
    for name in ("table1_xnli.csv", "curves.png", "xnli_accuracy.png"):
        assert name in html, name


TRAINED = ["results/mlm_tlm/pretrain/metrics.json", "results/mlm_tlm/xnli/metrics.json",
           "results/sup_fr_en/mt/metrics.json"]


def values(workdir, path) -> list[tuple]:
    """The figures of a metrics file, without provenance that differs between runs."""
    return [tuple(sorted((k, v) for k, v in record.items()
                         if k not in ("timestamp", "git_revision", "config_hash")))
            for record in json.loads((workdir / path).read_text(encoding="utf-8"))]


def test_a_tokenizer_change_retrains_instead_of_resuming(pipeline, tmp_path):
    """Issue 12: a tokenizer setting relearns BPE (other ids, maybe the same sizes); the
    reruns of pretraining, XNLI and MT must not resume their old checkpoints but train
    from step 0, and end with the figures of a fresh run with the new setting."""
    original, config = pipeline
    workdir = tmp_path / "rerun"
    shutil.copytree(original, workdir, symlinks=True)
    config = copy.deepcopy(config)
    config["tokenize"]["lowercase"] = True
    write_config(workdir, config)
    snakemake(workdir, *TRAINED, timeout=900)
    pretrain_log = (workdir / "logs" / "pretrain" / "mlm_tlm.log").read_text()
    assert "resumed from" not in pretrain_log
    assert "not resuming, since" in pretrain_log and "data/bpe/vocab changed" in pretrain_log
    # Snakemake empties the rule's log; the history of both attempts is kept beside.
    history = (workdir / "results" / "mlm_tlm" / "pretrain" / "train.log").read_text()
    assert history.count("xlm pretrain started") == 2
    assert history.index("not resuming") > history.rindex("xlm pretrain started")
    for log in ("logs/xnli/finetune/mlm_tlm.log", "logs/mt/train/sup_fr_en.log"):
        text = (workdir / log).read_text()
        assert "not resuming, since" in text and "resuming from" not in text, log
    assert list((workdir / "results" / "mlm_tlm" / "pretrain").glob("checkpoints.stale-*"))

    fresh = tmp_path / "fresh"
    write_config(fresh, config)
    snakemake(fresh, *TRAINED, timeout=900)
    for path in TRAINED:
        assert values(workdir, path) == values(fresh, path), path
    # The tiny models' BLEU is 0 either way; their losses show the retraining.
    assert values(workdir, TRAINED[0]) != values(original, TRAINED[0])
    mt_losses = {run: [record["mt_loss"] for record in map(json.loads, lines(
        run / "results/sup_fr_en/mt/train.jsonl")) if "mt_loss" in record]
        for run in (original, workdir, fresh)}
    assert mt_losses[workdir] == mt_losses[fresh] != mt_losses[original]
