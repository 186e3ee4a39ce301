"""Cross-lingual embedding metrics on hand-made vectors, and the command on a tiny model
with a real MUSE dictionary (and SemEval'17-shaped similarity files built from it: no
SemEval'17 set is available offline)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from task_helpers import tiny_model, write_vocab

from xlm.data.dictionary import Dictionary
from xlm.errors import UserError
from xlm.report.records import load_metrics_file
from xlm.tasks.embeddings import (
    WordEmbedder,
    pair_metrics,
    read_dictionary,
    read_similarity,
    retrieval_precision,
    similarity_correlation,
)
from xlm.train.checkpoint import load_pretrained


def test_pair_metrics_on_hand_made_vectors():
    src = np.array([[1.0, 0.0], [0.0, 2.0]])
    tgt = np.array([[1.0, 0.0], [2.0, 0.0]])
    metrics = pair_metrics(src, tgt)
    assert metrics["cosine"] == pytest.approx(0.5)  # cos 1 and cos 0
    assert metrics["l2"] == pytest.approx((0.0 + np.sqrt(8.0)) / 2)


def test_precision_by_cosine_and_csls():
    # Target 0 is a hub, close to every query; CSLS discounts it, cosine does not.
    queries = np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.1], [0.1, 0.0, 1.0]])
    hub = np.array([[0.6, 0.6, 0.6]])
    candidates = np.concatenate([hub, np.array([[0.8, 0.0, 0.0], [0.0, 0.8, 0.0],
                                                [0.0, 0.0, 0.8]])])
    gold = [{1}, {2}, {3}]
    result = retrieval_precision(queries, candidates, gold, ks=(1, 2), csls_k=2)
    assert result["p@2"] == 100.0 and result["p@2_csls"] == 100.0
    assert result["p@1_csls"] == 100.0
    perfect = retrieval_precision(candidates[1:], candidates[1:], gold=[{0}, {1}, {2}])
    assert perfect["p@1"] == 100.0


def test_embeddings_command_on_a_tiny_model(tmp_path, shared_data):
    source = shared_data / "dict" / "muse-test-5000-6500.en-de.txt"
    pairs = read_dictionary(source, max_pairs=300)
    words = [word for pair in pairs for word in pair][:400]  # some words left out: skipped
    dictionary = write_vocab([" ".join(words)], tmp_path / "vocab")
    model = tiny_model(tmp_path / "model.pt", dictionary, ["de", "en"])
    out = tmp_path / "metrics.json"
    subprocess.run([sys.executable, "-m", "xlm", "embeddings", "--model", str(model), "--name",
                    "tiny", "--dictionaries", f"en-de={source}", "--max-pairs", "300",
                    "--out", str(out)], check=True)
    records = {r["metric"]: r for r in load_metrics_file(out) if r["subset"] == "all"}
    assert set(records) == {"cosine", "l2", "p@1", "p@5", "p@1_csls", "p@5_csls", "n_pairs"}
    assert all(r["lang"] == "en-de" and r["task"] == "embeddings" for r in records.values())
    assert 0 < records["cosine"]["pairs"] < 300 and records["cosine"]["skipped"] > 0
    assert -1 <= records["cosine"]["value"] <= 1 and records["l2"]["value"] > 0
    assert 0 <= records["p@1"]["value"] <= records["p@5"]["value"] <= 100


def test_bad_dictionary_line_is_one_clear_error(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("the le\nthree words here\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"dict.txt:2: expected 'source target'"):
        read_dictionary(path)


def test_similarity_correlation_on_hand_made_vectors(tmp_path):
    vocab = tmp_path / "vocab"
    vocab.write_text("a 9\nb 8\nc 7\nd 6\n", encoding="utf-8")
    dictionary = Dictionary.read_vocab(vocab)
    table = np.zeros((len(dictionary), 2))
    for word, vector in {"a": [1, 0], "b": [1, 1], "c": [0, 1], "d": [-1, 0.2]}.items():
        table[dictionary.word2id[word]] = vector
    embedder = WordEmbedder(table, dictionary, None)
    rows = [("a", "b", 0.0), ("a", "c", 0.0), ("b", "c", 0.0), ("a", "d", 0.0),
            ("a", "zz", 5.0)]  # zz: not in the vocabulary, skipped
    cosines = [np.sqrt(0.5), 0.0, np.sqrt(0.5), -1 / np.sqrt(1.04)]
    scored = [(a, b, c) for (a, b, _), c in zip(rows, cosines, strict=False)]
    assert similarity_correlation(embedder, scored + rows[4:]) == (
        pytest.approx(1.0), {"pairs": 4, "skipped": 1})
    opposite = [(a, b, -c) for a, b, c in scored]
    assert similarity_correlation(embedder, opposite)[0] == pytest.approx(-1.0)


def test_semeval17_command_correlates_gold_scores_with_the_models_cosines(tmp_path,
                                                                         shared_data):
    """Gold scores made from the tiny model's own cosines correlate exactly (1.0): the
    command embeds the same words the same way; reversed scores give -1.0."""
    source = shared_data / "dict" / "muse-test-5000-6500.en-de.txt"
    pairs = read_dictionary(source, max_pairs=60)
    words = [word for pair in pairs for word in pair][:100]  # the last pairs: skipped
    dictionary = write_vocab([" ".join(words)], tmp_path / "vocab")
    model = tiny_model(tmp_path / "model.pt", dictionary, ["de", "en"])
    encoder, _, _ = load_pretrained(model)
    table = encoder.embeddings.weight.detach().numpy()
    embedder = WordEmbedder(table, dictionary, None)
    vectors = embedder.embed(sorted(set(words)))
    data = tmp_path / "en-de.test.data.txt"
    data.write_text("".join(f"{en}\t{de}\n" for en, de in pairs), encoding="utf-8")

    def command(scores: list[float]) -> dict:
        gold = tmp_path / "en-de.test.gold.txt"
        gold.write_text("".join(f"{score}\n" for score in scores), encoding="utf-8")
        out = tmp_path / "metrics.json"
        subprocess.run([sys.executable, "-m", "xlm", "embeddings", "--model", str(model),
                        "--name", "tiny", "--dictionaries", f"en-de={source}",
                        "--max-pairs", "60", "--semeval17", "en-de", str(data), str(gold),
                        "--out", str(out)], check=True)
        return next(r for r in load_metrics_file(out) if r["metric"] == "semeval17")

    def cosine(a: str, b: str) -> float:
        if a not in vectors or b not in vectors:
            return 0.0  # skipped by the command
        u, v = vectors[a], vectors[b]
        return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))

    scores = [cosine(en, de) for en, de in pairs]
    record = command(scores)
    usable = sum(en in vectors and de in vectors for en, de in pairs)
    assert (record["lang"], record["subset"], record["pairs"]) == ("en-de", "all", usable)
    assert 0 < record["skipped"] == len(pairs) - usable
    assert record["value"] == pytest.approx(1.0, abs=1e-6)
    assert command([-score for score in scores])["value"] == pytest.approx(-1.0, abs=1e-6)


def test_similarity_files_of_different_lengths_are_one_clear_error(tmp_path):
    data, gold = tmp_path / "data.txt", tmp_path / "gold.txt"
    data.write_text("house\tHaus\ncat\tKatze\n", encoding="utf-8")
    gold.write_text("3.5\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"data.txt: 2 word pairs but .*gold.txt has 1 scores"):
        read_similarity(data, gold)
    gold.write_text("3.5\nhigh\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"gold.txt:2: 'high' is not a similarity score"):
        read_similarity(data, gold)


def test_workflow_passes_the_semeval17_sets_to_the_command(tmp_path, shared_data):
    from workflow import absolute_demo_paths, base_config, snakemake, write_config

    config = absolute_demo_paths(base_config(shared_data))
    data, gold = tmp_path / "en-de data.txt", tmp_path / "en-de.gold.txt"
    data.write_text("house\tHaus\n", encoding="utf-8")
    gold.write_text("3.5\n", encoding="utf-8")
    config["embeddings"]["semeval17"] = {"en-de": {"data": str(data), "gold": str(gold)}}
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--dry-run", "results/mlm/embeddings/metrics.json")
    command = next(line for line in result.stdout.splitlines() if "xlm embeddings" in line)
    assert f"--semeval17 en-de '{data}' {gold}" in command
