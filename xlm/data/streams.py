"""Streams for CLM and MLM (XLM sections 3.2-3.3): a language's sentences concatenated,
cut into rows of `bptt` tokens, batches of rows.

The stream is `</s>` followed by the memory-mapped token array (which already has a
`</s>` after each sentence), read in place: a batch reads only its own rows, and each
rank only its share of them. Which rows form a batch is a pure function of (seed,
epoch, batch number), so the data position of a run is just how many batches it drew.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence

import numpy as np

from xlm.data.dictionary import EOS
from xlm.data.indexed import IndexedDataset


def release_pages(array: np.ndarray) -> None:
    """Unmap the pages of a memory-mapped array from this process (they stay in the page
    cache and are mapped again on the next read). Otherwise every page a run has read
    counts in its resident memory, which grows toward the corpus size over an epoch
    (and SLURM's MaxRSS reports it)."""
    mapping = getattr(array, "_mmap", None)  # numpy.memmap keeps its mmap.mmap here
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def rank_share(rows: np.ndarray, rank: int, world_size: int) -> tuple[np.ndarray, int]:
    """This rank's contiguous part of a global batch, and the index of its first row."""
    bounds = np.linspace(0, len(rows), world_size + 1).astype(int)
    return rows[bounds[rank]:bounds[rank + 1]], int(bounds[rank])


class StreamDataset:
    """Rows of `bptt` consecutive tokens of one language's text (the tail is dropped)."""

    def __init__(self, dataset: IndexedDataset, bptt: int, seed: int = 0, key: int = 0) -> None:
        self.dataset = dataset
        self.bptt = bptt
        self.seed = seed
        self.key = key  # distinguishes the shuffles of different languages
        self.n_rows = (dataset.num_tokens + 1) // bptt
        self._order: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n_rows

    def read_rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """(len(rows), bptt) int64 ids; row r is stream tokens [r*bptt, (r+1)*bptt)."""
        out = np.empty((len(rows), self.bptt), dtype=np.int64)
        tokens = self.dataset.tokens
        for i, row in enumerate(rows):
            start = int(row) * self.bptt  # position in the stream, whose token 0 is </s>
            if start == 0:
                out[i, 0] = EOS
                out[i, 1:] = tokens[:self.bptt - 1]
            else:
                out[i] = tokens[start - 1:start - 1 + self.bptt]
        release_pages(tokens)
        return out

    def batches_per_epoch(self, batch_size: int) -> int:
        return max(1, self.n_rows // batch_size)

    def train_rows(self, batch_number: int, batch_size: int) -> np.ndarray:
        """Global row indices of training batch `batch_number` (epochs reshuffle)."""
        per_epoch = self.batches_per_epoch(batch_size)
        epoch, index = divmod(batch_number, per_epoch)
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, self.key, epoch])
            self._order = (epoch, rng.permutation(self.n_rows))
        size = min(batch_size, self.n_rows)
        return self._order[1][index * size:(index + 1) * size]

    def eval_rows(self, batch_size: int, max_batches: int | None) -> list[np.ndarray]:
        """Global row indices of the evaluation batches, in order (no shuffle)."""
        rows = np.arange(self.n_rows)
        batches = [rows[i:i + batch_size] for i in range(0, self.n_rows, batch_size)]
        return batches if max_batches is None else batches[:max_batches]
