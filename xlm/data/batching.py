"""Batches as the model reads them: stream batches (CLM, MLM) and TLM pair batches.

TLM (XLM section 3.4): a sentence and its translation are concatenated as
`</s> a </s> </s> b </s>`; positions restart at 0 on the second sentence and each
half carries its own language id, so the model can attend across languages but
still knows which is which. Each training draw lays a pair out in either order (`a b`
or `b a`, half the time each), as XLM trains both `en-fr` and `fr-en`. Pairs of similar
length are batched together up to `tokens_per_batch` (padded size), which keeps padding
low.

A `Batch` is one rank's rows of a global batch; `global_rows`, `row_offset` and
`global_length` let random masking draw noise for the global batch and take this
rank's part, so N ranks see exactly the noise that one rank would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from xlm.data.dictionary import EOS, PAD
from xlm.data.indexed import IndexedDataset
from xlm.data.streams import rank_share


@dataclass
class Batch:
    tokens: Tensor  # (rows, length) int64
    langs: Tensor  # (rows, length) language ids
    positions: Tensor | None = None  # None: 0..length-1 on every row
    pad_mask: Tensor | None = None  # True on real tokens; None: no padding
    global_rows: int = 0
    row_offset: int = 0
    global_length: int = 0

    def to(self, device: torch.device | str) -> Batch:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(move(self.tokens), move(self.langs), move(self.positions),
                     move(self.pad_mask), self.global_rows, self.row_offset,
                     self.global_length)

    @property
    def n_tokens(self) -> int:
        return int(self.tokens.numel() if self.pad_mask is None else self.pad_mask.sum())


def stream_batch(rows: np.ndarray, lang_id: int, global_rows: int, row_offset: int) -> Batch:
    """A batch of full stream rows (no padding) of one language."""
    tokens = torch.from_numpy(rows)
    return Batch(tokens=tokens, langs=torch.full_like(tokens, lang_id), global_rows=global_rows,
                 row_offset=row_offset, global_length=tokens.shape[1])


class ParallelDataset:
    """Two line-aligned binarized sides (`{l1}-{l2}.{l1}` and `.{l2}`) for TLM."""

    def __init__(self, source: IndexedDataset, target: IndexedDataset, max_len: int,
                 seed: int = 0, key: int = 0) -> None:
        if len(source) != len(target):
            raise ValueError(f"{source.prefix} has {len(source)} sentences but {target.prefix} "
                             f"has {len(target)}; the sides of a parallel corpus must align")
        self.source, self.target = source, target
        self.max_len = max_len  # each side is clipped to this many tokens
        self.seed, self.key = seed, key
        lengths_a = np.minimum(source.lengths, max_len)
        lengths_b = np.minimum(target.lengths, max_len)
        self.pair_lengths = lengths_a + lengths_b + 4  # `</s> a </s> </s> b </s>`
        self._batches: dict[int, list[np.ndarray]] = {}
        self._epoch: tuple[int, int, list[np.ndarray]] | None = None  # (tokens, epoch, batches)

    def __len__(self) -> int:
        return len(self.source)

    def length_batches(self, tokens_per_batch: int) -> list[np.ndarray]:
        """Pair indices grouped by similar length, each group <= tokens_per_batch padded."""
        if tokens_per_batch in self._batches:
            return self._batches[tokens_per_batch]
        order = np.argsort(self.pair_lengths, kind="stable")
        batches, start = [], 0
        while start < len(order):
            end = start + 1
            # Sorted, so the padded size of order[start:end] is its last length times rows.
            while end < len(order) and self.pair_lengths[order[end]] * (end + 1 - start) <= (
                    tokens_per_batch):
                end += 1
            batches.append(order[start:end])
            start = end
        self._batches[tokens_per_batch] = batches
        return batches

    def train_pairs(self, batch_number: int, tokens_per_batch: int) -> np.ndarray:
        """Pair indices of training batch `batch_number`; each epoch redraws which pairs
        of similar length share a batch, and the batch order (XLM's get_iterator)."""
        batches = self.length_batches(tokens_per_batch)
        epoch, index = divmod(batch_number, len(batches))
        if self._epoch is None or self._epoch[:2] != (tokens_per_batch, epoch):
            rng = np.random.default_rng([self.seed, self.key, epoch, 1])
            self._epoch = (tokens_per_batch, epoch, regroup(batches, self.pair_lengths, rng))
        order = np.random.default_rng([self.seed, self.key, epoch]).permutation(len(batches))
        return self._epoch[2][order[index]]

    def eval_pairs(self, tokens_per_batch: int, max_batches: int | None) -> list[np.ndarray]:
        batches = self.length_batches(tokens_per_batch)
        return batches if max_batches is None else batches[:max_batches]

    def tlm_batch(self, pairs: np.ndarray, lang_ids: tuple[int, int], rank: int = 0,
                  world_size: int = 1, flip: bool = False) -> Batch:
        """This rank's share of the TLM batch of `pairs` (global pair indices); `flip`
        puts the target side first (`b a`, with the language ids swapped too)."""
        local, offset = rank_share(pairs, rank, world_size)
        global_length = int(self.pair_lengths[pairs].max())
        halves = [
            (self.source[int(i)][:self.max_len], self.target[int(i)][:self.max_len])
            for i in local
        ]
        if flip:
            halves = [(b, a) for a, b in halves]
            lang_ids = (lang_ids[1], lang_ids[0])
        return tlm_layout(halves, lang_ids, global_rows=len(pairs), row_offset=offset,
                          global_length=global_length)


def regroup(batches: list[np.ndarray], lengths: np.ndarray,
            rng: np.random.Generator) -> list[np.ndarray]:
    """Length-grouped `batches` (indices sorted by length, then cut) with members redrawn:
    XLM shuffles the sentences before its stable sort by length at every epoch, so
    sentences of equal length land in other batches each time. The cuts depend only on
    the sorted lengths, so the batch sizes (and the number of batches) stay."""
    shuffled = rng.permutation(len(lengths))
    order = shuffled[np.argsort(lengths[shuffled], kind="stable")]
    return np.split(order, np.cumsum([len(batch) for batch in batches])[:-1])


def tlm_flipped(seed: int, draw: int) -> bool:
    """Whether TLM draw `draw` lays its pairs out as `b a`: XLM's commands list both
    orders of each pair (`--mlm_steps ...,en-fr,...,fr-en`) with the same sampling weight,
    so each order is trained half the time. A pure function of (seed, draw), so ranks and
    resumed runs agree."""
    return bool(np.random.default_rng([seed, 11, draw]).random() < 0.5)


def tlm_layout(pairs: list[tuple[np.ndarray, np.ndarray]], lang_ids: tuple[int, int],
               global_rows: int | None = None, row_offset: int = 0,
               global_length: int | None = None) -> Batch:
    """`</s> a </s> </s> b </s>` rows, padded; positions restart and langs switch at b."""
    lengths = [len(a) + len(b) + 4 for a, b in pairs]
    width = max(lengths)
    tokens = np.full((len(pairs), width), PAD, dtype=np.int64)
    positions = np.zeros((len(pairs), width), dtype=np.int64)
    langs = np.full((len(pairs), width), lang_ids[0], dtype=np.int64)
    for row, (a, b) in enumerate(pairs):
        first = np.concatenate([[EOS], a, [EOS]])
        second = np.concatenate([[EOS], b, [EOS]])
        n1, n2 = len(first), len(second)
        tokens[row, :n1], tokens[row, n1:n1 + n2] = first, second
        positions[row, :n1], positions[row, n1:n1 + n2] = np.arange(n1), np.arange(n2)
        langs[row, n1:] = lang_ids[1]
    pad_mask = tokens != PAD
    return Batch(tokens=torch.from_numpy(tokens), langs=torch.from_numpy(langs),
                 positions=torch.from_numpy(positions), pad_mask=torch.from_numpy(pad_mask),
                 global_rows=len(pairs) if global_rows is None else global_rows,
                 row_offset=row_offset, global_length=width if global_length is None else (
                     global_length))
