"""The whole pipeline, as `make run` does it, on a tiny config: every stage and task runs
through real Snakemake; then reruns do nothing, or only what a changed setting needs."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest
from workflow import mtimes, snakemake, write_config

from xlm.data.dictionary import Dictionary
from xlm.data.indexed import IndexedDataset


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
    embeddings = json.loads((workdir / "results/mlm_tlm/embeddings/metrics.json").read_text())
    assert {"cosine", "l2"} <= {r["metric"] for r in embeddings}
    for combination in config["lm"]["combinations"]:
        records = json.loads((workdir / f"results/{combination}/lm/metrics.json").read_text())
        assert any(r["metric"] == "ppl" and r["lang"] == "fr" for r in records)


def test_tables_are_built_and_cells_come_from_records(pipeline):
    workdir, _ = pipeline
    table = (workdir / "results/tables/table1_xnli.md").read_text(encoding="utf-8")
    xnli = json.loads((workdir / "results/mlm_tlm/xnli/metrics.json").read_text())
    fr = next(r["value"] for r in xnli if r["metric"] == "acc" and r["split"] == "test"
              and r["lang"] == "fr")
    assert f"{fr:.1f}" in table
    assert "tiny" in table  # provenance: the run name


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


def test_report_holds_the_tables_and_plots(pipeline, tmp_path):
    workdir, _ = pipeline
    report = tmp_path / "report.html"
    snakemake(workdir, "--report", str(report))
    html = report.read_text(encoding="utf-8")
    assert report.stat().st_size > 10_000
    for name in ("table1_xnli.csv", "curves.png", "xnli_accuracy.png"):
        assert name in html, name
