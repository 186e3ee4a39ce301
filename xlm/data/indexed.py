"""Binarized, memory-mapped datasets: what every training stage reads.

Format of a dataset at `prefix`:
- `prefix.bin`: the token ids of all sentences, each followed by `</s>` (id 1); uint16
  when the dictionary has fewer than 65,536 entries, else int32;
- `prefix.idx`: int64 offsets, in tokens, into `.bin`: n + 1 of them, the first 0.
  Sentence i is `tokens[idx[i]:idx[i + 1]]`, its trailing `</s>` included.
The id type is not stored: the reader takes it from the `.bin` size and the last
offset (bytes per token). The dictionary is kept apart (`data/bpe/vocab`) and passed
where text is needed. Writing streams (flat memory whatever the corpus size) and is
atomic; reading uses `numpy.memmap`, so RAM does not grow with the corpus either.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

from xlm.data.dictionary import EOS, N_SPECIAL, UNK, Dictionary
from xlm.errors import UserError
from xlm.io import atomic_path

log = logging.getLogger(__name__)

# Pending sentences are written out at whichever comes first: a small buffer keeps the
# writer's memory the same on a corpus of a thousand lines or a billion.
_FLUSH_SENTENCES = 1 << 13
_FLUSH_TOKENS = 1 << 18


def bin_path(prefix: str | os.PathLike[str]) -> Path:
    return Path(f"{prefix}.bin")


def idx_path(prefix: str | os.PathLike[str]) -> Path:
    return Path(f"{prefix}.idx")


@dataclass
class BinarizeStats:
    """What a binarization did, for the rule log."""

    sentences: int = 0
    tokens: int = 0  # words, without the `</s>` separators
    unknown: int = 0
    empty: int = 0
    unknown_words: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        share = 100.0 * self.unknown / max(self.tokens, 1)
        top = sorted(self.unknown_words.items(), key=lambda kv: -kv[1])[:10]
        return (f"{self.sentences} sentences, {self.tokens} tokens, {self.unknown} unknown "
                f"({share:.3f}%), {self.empty} empty sentences; most frequent unknown: {top}")


class IndexedDatasetWriter:
    """Append sentences to `prefix.bin`/`prefix.idx`; both appear only on `close()` success.

    Use as a context manager. `add_line` encodes and checks text; `add_ids` takes ids.
    """

    def __init__(self, prefix: str | os.PathLike[str], dictionary: Dictionary,
                 source: str = "<input>") -> None:
        self.prefix = Path(prefix)
        self.dictionary = dictionary
        self.source = source
        self.dtype = dictionary.dtype
        self.stats = BinarizeStats()
        self._bin_ctx = atomic_path(bin_path(prefix))
        self._idx_ctx = atomic_path(idx_path(prefix))
        self._bin = open(self._bin_ctx.__enter__(), "wb")
        self._idx = open(self._idx_ctx.__enter__(), "wb")
        self._offset = 0
        self._pending_bin: list[np.ndarray] = []
        self._pending_idx: list[int] = [0]
        self._pending_tokens = 0

    def add_line(self, line: str, line_number: int | None = None) -> None:
        """Encode a line of space-separated tokens; unknown words become `<unk>`."""
        words = line.split()
        word2id = self.dictionary.word2id
        ids = np.fromiter((word2id.get(w, -1) for w in words), dtype=np.int64, count=len(words))
        if len(ids) and ids.min() < N_SPECIAL:
            special = (ids >= 0) & (ids < N_SPECIAL)
            if special.any():
                word = words[int(np.flatnonzero(special)[0])]
                where = f"{self.source}:{line_number}" if line_number else self.source
                raise UserError(
                    f"{where}: the text contains the special token {word!r}; "
                    "remove or escape it before binarizing"
                )
            unknown = ids < 0
            if unknown.any():
                for i in np.flatnonzero(unknown):
                    word = words[int(i)]
                    self.stats.unknown_words[word] = self.stats.unknown_words.get(word, 0) + 1
                self.stats.unknown += int(unknown.sum())
                ids[unknown] = UNK
        self.add_ids(ids)

    def add_ids(self, ids: np.ndarray | list[int]) -> None:
        """Append one sentence given as ids (without `</s>`; it is added here)."""
        ids = np.asarray(ids, dtype=np.int64)
        self.stats.sentences += 1
        self.stats.tokens += len(ids)
        self.stats.empty += int(len(ids) == 0)
        self._pending_bin.append(np.append(ids, EOS).astype(self.dtype))
        self._offset += len(ids) + 1
        self._pending_idx.append(self._offset)
        self._pending_tokens += len(ids) + 1
        if len(self._pending_idx) >= _FLUSH_SENTENCES or self._pending_tokens >= _FLUSH_TOKENS:
            self._flush()

    def _flush(self) -> None:
        if self._pending_bin:
            self._bin.write(np.concatenate(self._pending_bin).tobytes())
        if self._pending_idx:
            self._idx.write(np.asarray(self._pending_idx, dtype=np.int64).tobytes())
        self._pending_bin, self._pending_idx, self._pending_tokens = [], [], 0

    def __enter__(self) -> IndexedDatasetWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self._flush()
        self._bin.close()
        self._idx.close()
        # atomic_path renames on a clean exit and deletes the temporary file otherwise.
        self._bin_ctx.__exit__(exc_type, exc, tb)
        self._idx_ctx.__exit__(exc_type, exc, tb)


def binarize_lines(lines: Iterable[str], dictionary: Dictionary,
                   prefix: str | os.PathLike[str], source: str = "<input>") -> BinarizeStats:
    """Write the lines (space-separated tokens) as a dataset at `prefix`; return its stats."""
    with IndexedDatasetWriter(prefix, dictionary, source) as writer:
        for number, line in enumerate(lines, start=1):
            writer.add_line(line, number)
    return writer.stats


class IndexedDataset:
    """Read-only view of a binarized dataset; nothing is loaded into RAM.

    `ds[i]` is sentence i's ids WITHOUT its trailing `</s>`; `ds.tokens` is the whole
    token stream WITH the `</s>` separators (what stream-based pretraining reads);
    `ds.offsets[i]` is where sentence i starts in `ds.tokens`.
    """

    def __init__(self, prefix: str | os.PathLike[str],
                 dictionary: Dictionary | None = None) -> None:
        self.prefix = Path(prefix)
        self.dictionary = dictionary
        bin_file, idx_file = bin_path(prefix), idx_path(prefix)
        for path in (bin_file, idx_file):
            if not path.is_file():
                raise UserError(f"{path}: binarized dataset file missing; run `xlm binarize`")
        self.offsets = np.memmap(idx_file, dtype=np.int64, mode="r")
        if len(self.offsets) == 0 or self.offsets[0] != 0:
            raise UserError(f"{idx_file}: not a dataset index (must start with offset 0)")
        self.num_tokens = int(self.offsets[-1])
        size = bin_file.stat().st_size
        if self.num_tokens == 0:
            self.tokens = np.zeros(0, dtype=np.uint16)
        else:
            itemsize = size // self.num_tokens
            dtypes = {2: np.uint16, 4: np.int32}
            if itemsize not in dtypes or itemsize * self.num_tokens != size:
                raise UserError(f"{bin_file}: size {size} bytes does not match "
                                f"{self.num_tokens} tokens in {idx_file}; rebinarize")
            self.tokens = np.memmap(bin_file, dtype=dtypes[itemsize], mode="r")
        if dictionary is not None and self.tokens.dtype != dictionary.dtype:
            raise UserError(f"{bin_file}: written with a dictionary of another size "
                            f"({self.tokens.dtype}); rebinarize with this vocabulary")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Number of tokens of each sentence, without `</s>`."""
        return np.diff(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sentence {index} out of range ({len(self)} sentences)")
        index %= len(self)
        return np.asarray(self.tokens[self.offsets[index]:self.offsets[index + 1] - 1],
                          dtype=np.int64)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def decode(self, index: int, dictionary: Dictionary | None = None) -> str:
        """Sentence `index` as space-separated tokens (BPE markers kept)."""
        dictionary = dictionary or self.dictionary
        if dictionary is None:
            raise ValueError("decode needs a Dictionary (pass it here or to the constructor)")
        return dictionary.decode(self[index])
