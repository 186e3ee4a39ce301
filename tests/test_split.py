"""Train/valid/test splitting: seeded, complete, scaled down for tiny corpora."""

from __future__ import annotations

import numpy as np
import pytest

from xlm.errors import UserError
from xlm.text.split import heldout_sizes, shuffled_lines, split_file


def write_lines(path, n):
    path.write_text("".join(f"line {i}\n" for i in range(n)), encoding="utf-8")
    return path


def run_split(tmp_path, source, name, **kw):
    outputs = {s: tmp_path / name / f"{s}.txt" for s in ("train", "valid", "test")}
    counts = split_file(source, outputs, **{"valid": 5000, "test": 5000,
                                             "max_fraction": 0.1, "seed": 0, **kw})
    texts = {s: p.read_text(encoding="utf-8").splitlines() for s, p in outputs.items()}
    return counts, texts


def test_split_is_a_seeded_partition(tmp_path):
    source = write_lines(tmp_path / "all.txt", 1000)
    counts, texts = run_split(tmp_path, source, "a")
    assert counts == {"train": 800, "valid": 100, "test": 100}
    every = texts["train"] + texts["valid"] + texts["test"]
    assert sorted(every) == sorted(f"line {i}" for i in range(1000))
    _, again = run_split(tmp_path, source, "b")
    assert again == texts
    _, other_seed = run_split(tmp_path, source, "c", seed=1)
    assert other_seed["valid"] != texts["valid"]


def test_split_holds_out_the_lines_of_the_seeded_permutation(tmp_path):
    """Drawn in 4 bytes a line (uint32), the split is the one the int64
    `default_rng(seed).permutation` gave before (issue 16): same held-out lines."""
    for total, seed in ((1, 0), (2, 3), (10_007, 5), (65_537, 11)):
        order = shuffled_lines(total, seed)
        assert order.dtype == np.uint32
        assert np.array_equal(order, np.random.default_rng(seed).permutation(total))
    source = write_lines(tmp_path / "all.txt", 10_007)
    counts, texts = run_split(tmp_path, source, "a", seed=5)
    order = np.random.default_rng(5).permutation(10_007)
    assert texts["valid"] == [f"line {i}" for i in sorted(order[:1000])]
    assert texts["test"] == [f"line {i}" for i in sorted(order[1000:2000])]
    assert counts == {"train": 8007, "valid": 1000, "test": 1000}


def test_paper_sizes_on_a_large_corpus():
    assert heldout_sizes(1_000_000, 5000, 5000, 0.1) == (5000, 5000)
    assert heldout_sizes(20, 5000, 5000, 0.1) == (2, 2)
    assert heldout_sizes(5, 5000, 5000, 0.1) == (1, 1)


def test_too_small_corpus_is_refused(tmp_path):
    with pytest.raises(UserError, match="only 2 lines"):
        run_split(tmp_path, write_lines(tmp_path / "tiny.txt", 2), "t")


def test_empty_text_says_it_is_empty(tmp_path, capsys):
    """An empty local_text file: the fix is to give text, not a larger dump."""
    from xlm.cli import main

    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["split", "--input", str(tmp_path / "empty.txt")]
             + [f"--{s}={tmp_path / s}.txt" for s in ("train", "valid", "test")])
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "the text is empty (0 lines)" in error[0], error
    assert "larger dump" not in error[0] and not (tmp_path / "train.txt").exists()
