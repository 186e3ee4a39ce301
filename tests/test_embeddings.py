"""Cross-lingual embedding metrics on hand-made vectors, and the command on a tiny model
with a real MUSE dictionary."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from task_helpers import tiny_model, write_vocab

from xlm.errors import UserError
from xlm.report.records import load_metrics_file
from xlm.tasks.embeddings import pair_metrics, read_dictionary, retrieval_precision


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
