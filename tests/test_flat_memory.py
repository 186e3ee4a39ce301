"""The memory fixes of issue 8 change no data: a writer flushing every few tokens writes
the same dataset, and stream rows read after their pages were released are the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xlm.data import indexed
from xlm.data.dictionary import Dictionary
from xlm.data.indexed import IndexedDataset, binarize_lines
from xlm.data.streams import StreamDataset, release_pages


@pytest.fixture()
def lines(shared_data: Path) -> list[str]:
    return (shared_data / "para" / "flores200" / "devtest.en").read_text(
        encoding="utf-8").splitlines()[:300]


@pytest.fixture()
def dictionary(lines: list[str]) -> Dictionary:
    counts: dict[str, int] = {}
    for line in lines:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return Dictionary([w for w, _ in ordered], [c for _, c in ordered])


def test_small_flushes_write_the_same_dataset(lines: list[str], dictionary: Dictionary,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    binarize_lines(lines, dictionary, tmp_path / "big")
    monkeypatch.setattr(indexed, "_FLUSH_TOKENS", 7)
    monkeypatch.setattr(indexed, "_FLUSH_SENTENCES", 3)
    binarize_lines(lines, dictionary, tmp_path / "small")
    for suffix in (".bin", ".idx"):
        big, small = tmp_path / f"big{suffix}", tmp_path / f"small{suffix}"
        assert big.read_bytes() == small.read_bytes()
    dataset = IndexedDataset(tmp_path / "small", dictionary)
    assert len(dataset) == len(lines)
    assert dictionary.decode(dataset[5]) == " ".join(lines[5].split())


def test_rows_after_release_are_the_same(lines: list[str], dictionary: Dictionary,
                                         tmp_path: Path) -> None:
    binarize_lines(lines, dictionary, tmp_path / "data")
    stream = StreamDataset(IndexedDataset(tmp_path / "data", dictionary), bptt=32)
    rows = np.arange(len(stream))
    first = stream.read_rows(rows)
    release_pages(stream.dataset.tokens)
    np.testing.assert_array_equal(stream.read_rows(rows), first)
    tokens = np.asarray(stream.dataset.tokens, dtype=np.int64)
    np.testing.assert_array_equal(first[1], tokens[31:63])
