"""The token dictionary shared by all languages, with XLM's id layout.

Ids: 0 `<s>`, 1 `</s>`, 2 `<pad>`, 3 `<unk>`, 4-13 `<special0>`..`<special9>`
(`<special1>` is the mask), then the words of a fastBPE vocab file (`word count`
lines, most frequent first) in file order. Keeping XLM's layout means released
XLM vocabularies and models line up id for id.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from xlm.errors import UserError
from xlm.io import atomic_open

log = logging.getLogger(__name__)

BOS_WORD, EOS_WORD, PAD_WORD, UNK_WORD = "<s>", "</s>", "<pad>", "<unk>"
N_SPECIAL_WORDS = 10
SPECIAL_WORD = "<special{}>"
BOS, EOS, PAD, UNK = 0, 1, 2, 3
MASK = 5  # <special1>
SPECIAL_WORDS: tuple[str, ...] = (BOS_WORD, EOS_WORD, PAD_WORD, UNK_WORD) + tuple(
    SPECIAL_WORD.format(i) for i in range(N_SPECIAL_WORDS)
)
N_SPECIAL = len(SPECIAL_WORDS)  # 14: the first vocab word has id 14


class Dictionary:
    """Words <-> ids. Build with `Dictionary.read_vocab(path)` (or `load`, the same)."""

    bos_index = BOS
    eos_index = EOS
    pad_index = PAD
    unk_index = UNK
    mask_index = MASK

    def __init__(self, words: Sequence[str], counts: Sequence[int]) -> None:
        """`words`/`counts`: the vocab words only (specials are added in front)."""
        self.id2word: list[str] = list(SPECIAL_WORDS) + list(words)
        self.word2id: dict[str, int] = {word: i for i, word in enumerate(self.id2word)}
        if len(self.word2id) != len(self.id2word):
            raise UserError("vocabulary: duplicate words; each word must appear once")
        self.counts = np.zeros(len(self.id2word), dtype=np.int64)
        self.counts[N_SPECIAL:] = np.asarray(counts, dtype=np.int64)

    @classmethod
    def read_vocab(cls, path: str | os.PathLike[str], max_vocab: int | None = None) -> Dictionary:
        """Read a fastBPE vocab file (`word count`, counts non-increasing).

        `max_vocab` keeps only the first (most frequent) words.
        """
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: vocabulary file not found; check the path in config")
        words: list[str] = []
        counts: list[int] = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if max_vocab is not None and len(words) >= max_vocab:
                    break
                parts = line.rstrip("\n").split(" ")
                if len(parts) != 2 or not parts[0] or not parts[1].isdigit():
                    raise UserError(
                        f"{path}:{number}: expected 'word count', got {line.rstrip()!r}; "
                        "use a fastBPE vocab file (`fast getvocab`)"
                    )
                word, count = parts[0], int(parts[1])
                if word in SPECIAL_WORDS:
                    raise UserError(
                        f"{path}:{number}: special token {word!r} in the vocabulary; remove it"
                    )
                if counts and count > counts[-1]:
                    raise UserError(
                        f"{path}:{number}: count {count} is larger than the previous line's "
                        f"{counts[-1]}; vocab files must be sorted by decreasing count"
                    )
                words.append(word)
                counts.append(count)
        if not words:
            raise UserError(f"{path}: empty vocabulary; rebuild it with `fast getvocab`")
        if len(set(words)) != len(words):
            raise UserError(f"{path}: duplicate words in the vocabulary; rebuild it")
        log.info("read %d words from %s (dictionary size %d)", len(words), path,
                 len(words) + N_SPECIAL)
        return cls(words, counts)

    load = read_vocab

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocab words (not the specials) as `word count` lines, atomically."""
        with atomic_open(path) as handle:
            for i in range(N_SPECIAL, len(self)):
                handle.write(f"{self.id2word[i]} {int(self.counts[i])}\n")

    def __len__(self) -> int:
        return len(self.id2word)

    def __contains__(self, word: str) -> bool:
        return word in self.word2id

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Dictionary) and self.id2word == other.id2word
                and bool(np.array_equal(self.counts, other.counts)))

    def index(self, word: str) -> int:
        """Id of `word`; `<unk>`'s id for an unknown word."""
        return self.word2id.get(word, UNK)

    def word(self, index: int) -> str:
        return self.id2word[index]

    @property
    def dtype(self) -> type[np.integer]:
        """Smallest integer type the binarized files need for these ids."""
        return np.uint16 if len(self) < 65536 else np.int32

    def encode(self, line: str) -> np.ndarray:
        """Ids of the space-separated tokens of `line` (no `</s>` added)."""
        return np.array([self.word2id.get(w, UNK) for w in line.split()], dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """Space-joined words of `ids` (BPE `@@ ` markers are kept)."""
        return " ".join(self.id2word[int(i)] for i in ids)
