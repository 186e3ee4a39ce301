"""Cross-lingual sentence retrieval: on 200 real FLORES devtest en/fr sentences with a tiny
model (the command, a set against itself, padding), on hand-made vectors (CSLS, duplicates),
through Snakemake (the tiny pipeline), and a missing file at start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from task_helpers import tiny_model, tokenized, write_vocab
from test_config_startup import nothing_made, start, the_error

from xlm.errors import UserError
from xlm.report.records import load_metrics_file
from xlm.report.render import to_markdown
from xlm.report.tables import retrieval_table
from xlm.tasks.common import with_eos
from xlm.tasks.retrieval import (
    TextEncoder,
    evaluate_pair,
    load_pair,
    precision_at_1,
    sentence_embeddings,
)
from xlm.train.checkpoint import load_pretrained

N = 200


@pytest.fixture(scope="module")
def flores(shared_data, tmp_path_factory) -> dict[str, Path]:
    """The first 200 FLORES devtest sentences in English and French, a word-level
    vocabulary of both (tokenized), and an untrained tiny model on it."""
    out = tmp_path_factory.mktemp("retrieval")
    files = {}
    for lang in ("en", "fr"):
        lines = (shared_data / "para" / "flores200" / f"devtest.{lang}").read_text(
            encoding="utf-8").splitlines()[:N]
        files[lang] = out / f"devtest.{lang}"
        files[lang].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    words = [line for lang in ("en", "fr") for line in tokenized(
        lang, files[lang].read_text(encoding="utf-8").splitlines())]
    dictionary = write_vocab(words, out / "vocab")
    files["model"] = tiny_model(out / "model.pt", dictionary, ["en", "fr"], seed=3)
    return files


def test_untrained_model_is_near_chance_in_both_directions(flores, tmp_path):
    out = tmp_path / "metrics.json"
    subprocess.run([sys.executable, "-m", "xlm", "retrieval", "--model", str(flores["model"]),
                    "--name", "tiny", "--pair", "en-fr", str(flores["en"]), str(flores["fr"]),
                    "--tokenizer", json.dumps({"en": {"lowercase": True},
                                               "fr": {"lowercase": True}}),
                    "--untrained-baseline", "--seed", "5", "--out", str(out)], check=True)
    records = load_metrics_file(out)
    keys = {(r["weights"], r["direction"], r["pooling"], r["metric"]) for r in records}
    assert keys == {(w, d, p, m) for w in ("pretrained", "untrained")
                    for d in ("en-fr", "fr-en") for p in ("mean", "first")
                    for m in ("p@1", "p@1_csls")}
    assert len(records) == len(keys)
    for record in records:
        assert record["task"] == "retrieval" and record["lang"] == "en-fr"
        assert record["sentences"] == N and record["split"] == "test"
        assert record["csls_k"] == 10 and "git_revision" in record
        # chance is 0.5%; a random network only matches shared words, numbers and names
        assert 0 <= record["value"] < 15, record
    table = retrieval_table(records, {})
    assert table.columns == ("en-fr", "fr-en", "avg")
    markdown = to_markdown(table)
    assert "| untrained | mean | p@1 |" in markdown and f"n here: {N}" in markdown


def test_a_set_retrieves_itself_perfectly(flores):
    model, dictionary, langs = load_pretrained(flores["model"])
    encoder = TextEncoder(dictionary, None, {"en": {"lowercase": True}})
    src, tgt, counts = load_pair(encoder, "en-en", str(flores["en"]), str(flores["en"]),
                                 "self", None, 254)
    assert counts == {"sentences": N, "skipped_empty": 0, "clipped": 0}
    records = evaluate_pair(model, langs, "model.pt", "en-en", src, tgt, 10, 4000)
    assert len(records) == 8 and {r["value"] for r in records} == {100.0}


def test_mean_pooling_ignores_padding(flores):
    """A sentence batched alone or with longer ones (so padded) gets the same embedding,
    also with the model's dropout (eval mode)."""
    model, dictionary, langs = load_pretrained(flores["model"])
    assert model.config.dropout > 0
    encoder = TextEncoder(dictionary, None, {})
    lines = flores["en"].read_text(encoding="utf-8").splitlines()
    sentences = [with_eos(ids, 254) for ids in encoder("en", lines[:40])]
    short = int(np.argmin([len(s) for s in sentences]))
    alone = sentence_embeddings(model, [sentences[short]], 0, tokens_per_batch=10_000)
    batched = sentence_embeddings(model, sentences, 0, tokens_per_batch=10_000)
    assert len(sentences[short]) < max(len(s) for s in sentences)
    for pooling in ("mean", "first"):
        np.testing.assert_allclose(batched[pooling][short], alone[pooling][0], atol=1e-5)
    assert np.abs(batched["mean"][short] - batched["mean"][(short + 1) % 40]).max() > 1e-3


def test_csls_discounts_a_hub_and_duplicates_count_as_hits():
    # Queries e_i + u; the hub u is nearer to each (cos 0.71) than its translation
    # e_i + 1.2 e_{i+3} + 0.5 u (cos 0.65); CSLS discounts the hub's closeness to all.
    eye = np.eye(7)
    queries = eye[:3] + eye[6]
    gold = eye[:3] + 1.2 * eye[3:6] + 0.5 * eye[6]
    candidates = np.concatenate([eye[6:], gold])
    result = precision_at_1(queries, candidates, [{1}, {2}, {3}], csls_k=2)
    assert result == {"p@1": 0.0, "p@1_csls": 100.0}
    twins = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert precision_at_1(twins, twins, [{0, 1}, {0, 1}, {2}])["p@1"] == 100.0


def test_misaligned_and_missing_files_are_one_line(flores, tmp_path):
    model, dictionary, langs = load_pretrained(flores["model"])
    encoder = TextEncoder(dictionary, None, {})
    short = tmp_path / "short.fr"
    short.write_text("Une phrase.\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"^key 'retrieval.pairs.en-fr': .* has 200 lines but "
                                        r".*short.fr has 1 lines"):
        load_pair(encoder, "en-fr", str(flores["en"]), str(short), "retrieval.pairs.en-fr",
                  None, 254)
    result = subprocess.run([sys.executable, "-m", "xlm", "retrieval", "--model",
                             str(flores["model"]), "--name", "tiny", "--pair", "en-fr",
                             str(flores["en"]), str(tmp_path / "nope.fr"), "--out",
                             str(tmp_path / "m.json")], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: --pair en-fr: ") and "nope.fr does not exist" \
        in result.stderr
    assert not (tmp_path / "m.json").exists()


def test_a_missing_retrieval_file_stops_the_workflow_at_start(shared_data, tmp_path):
    from workflow import tiny_pipeline_config

    config = tiny_pipeline_config(shared_data)
    config["retrieval"]["pairs"]["en-fr"]["fr"] = "flores/devtest.fr"
    assert the_error(start(tmp_path, config)) == (
        f"error: {tmp_path / 'my-run.yaml'}: key 'retrieval.pairs.en-fr.fr': flores/devtest.fr "
        f"does not exist (relative to {tmp_path}); fix the path or put the file there")
    nothing_made(tmp_path)


def test_the_workflow_records_retrieval_and_tables_it(tiny_pipeline):
    workdir, config = tiny_pipeline
    records = json.loads((workdir / "results/mlm_tlm/retrieval/metrics.json").read_text())
    assert {(r["direction"], r["weights"]) for r in records} == {
        (d, w) for d in ("en-fr", "fr-en") for w in ("pretrained", "untrained")}
    assert all(r["sentences"] == 100 and r["run_name"] == "tiny" for r in records)
    table = (workdir / "results/tables/table_retrieval.md").read_text(encoding="utf-8")
    found = next(r for r in records if r["direction"] == "fr-en" and r["metric"] == "p@1"
                 and r["pooling"] == "mean" and r["weights"] == "pretrained")
    assert "| tiny | mlm_tlm | pretrained | mean | p@1 | " in table
    assert f"{found['value']:.1f}" in table


def test_table_puts_each_pairs_directions_side_by_side():
    records = [{"task": "retrieval", "model": "mlm", "split": "test", "lang": pair,
                "direction": direction, "pooling": "mean", "weights": weights,
                "metric": "p@1", "value": value, "sentences": 100, "run_name": "r"}
               for pair, direction, weights, value in (
                   ("en-fr", "fr-en", "pretrained", 40.0), ("en-fr", "en-fr", "pretrained", 30.0),
                   ("en-de", "de-en", "pretrained", 20.0), ("en-de", "en-de", "untrained", 2.0))]
    table = retrieval_table(records, {})
    assert table.columns == ("en-de", "de-en", "en-fr", "fr-en", "avg")
    pretrained, untrained = table.rows
    assert pretrained.descriptors == ("mlm", "pretrained", "mean", "p@1")
    assert pretrained.cells == (None, 20.0, 30.0, 40.0, 30.0)
    assert untrained.cells == (2.0, None, None, None, 2.0)
