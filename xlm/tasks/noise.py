"""Noise of the denoising auto-encoder (Lample et al. 2018, used by XLM for unsupervised MT).

A sentence `</s> w1 .. wn </s>` is corrupted by, in this order: a local shuffle (sort by
index + U(0, shuffle), XLM's word_shuffle, so a word moves fewer than `shuffle` places),
word dropout (each word removed with probability `dropout`, at least one kept) and word
blanking (each word replaced by `<unk>`-like `blank_index` with probability `blank`). The first
and last tokens (`</s>`) never move or change, and the length never grows. As in XLM,
words are BPE units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlm.data.dictionary import MASK


@dataclass(frozen=True)
class NoiseConfig:
    shuffle: float = 3.0  # XLM's word_shuffle
    dropout: float = 0.1  # word_dropout
    blank: float = 0.1  # word_blank
    blank_index: int = MASK  # XLM blanks with the mask token


def word_shuffle(words: np.ndarray, k: float, rng: np.random.Generator) -> np.ndarray:
    """Words reordered by index + U(0, k) as XLM does, so none moves k places or more."""
    if k <= 0 or len(words) < 2:
        return words
    keys = np.arange(len(words)) + rng.uniform(0, k, size=len(words))
    return words[np.argsort(keys, kind="stable")]


def word_dropout(words: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Each word removed with probability p; one random word is kept if none survive."""
    if p <= 0 or len(words) == 0:
        return words
    keep = rng.random(len(words)) >= p
    if not keep.any():
        keep[rng.integers(len(words))] = True
    return words[keep]


def word_blank(words: np.ndarray, p: float, blank_index: int,
               rng: np.random.Generator) -> np.ndarray:
    """Each word replaced by `blank_index` with probability p."""
    if p <= 0:
        return words
    return np.where(rng.random(len(words)) < p, blank_index, words)


def add_noise(sentence: np.ndarray, config: NoiseConfig, rng: np.random.Generator) -> np.ndarray:
    """Noisy copy of `</s> words </s>`: shuffle, drop, blank; both `</s>` kept in place."""
    first, words, last = sentence[:1], sentence[1:-1], sentence[-1:]
    words = word_shuffle(words, config.shuffle, rng)
    words = word_dropout(words, config.dropout, rng)
    words = word_blank(words, config.blank, config.blank_index, rng)
    return np.concatenate([first, words, last])
