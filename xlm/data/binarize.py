"""`xlm binarize` and `xlm binarize-pair`: BPE'd text -> memory-mapped datasets.

Monolingual files keep every line (empty ones too), so line-aligned data (XNLI
premises/hypotheses, MT test sets) stays aligned. Parallel training corpora go through
`binarize-pair`, which drops pairs with an empty side or a side longer than `max_len`
BPE tokens and writes both sides, still aligned.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from xlm.data.dictionary import Dictionary
from xlm.data.indexed import IndexedDatasetWriter, binarize_lines
from xlm.errors import UserError
from xlm.io import count_lines, progress

log = logging.getLogger(__name__)


def binarize_file(vocab: Path, source: Path, prefix: Path) -> None:
    """Binarize one text file of BPE tokens with the dictionary of `vocab`."""
    if not Path(source).is_file():
        raise UserError(f"{source}: BPE'd text not found; run its bpe rule")
    dictionary = Dictionary.read_vocab(vocab)
    with open(source, encoding="utf-8") as handle:
        lines = progress(handle, desc=f"binarize {Path(source).name}")
        stats = binarize_lines(lines, dictionary, prefix, str(source))
    log.info("%s: %s", prefix, stats.summary())


@dataclass
class PairStats:
    kept: int = 0
    dropped_empty: int = 0
    dropped_long: int = 0


def binarize_pair(vocab: Path, sources: tuple[Path, Path], prefixes: tuple[Path, Path],
                  max_len: int | None, keep_all: bool = False) -> PairStats:
    """Binarize the two sides of a parallel corpus, dropping empty or too-long pairs.

    `keep_all` keeps every pair (test sets: line i must stay line i of the references).
    """
    for source in sources:
        if not Path(source).is_file():
            raise UserError(f"{source}: BPE'd parallel text not found; run its bpe rule")
    counts = [count_lines(source) for source in sources]
    if counts[0] != counts[1]:
        raise UserError(f"{sources[0]} has {counts[0]} lines but {sources[1]} has {counts[1]}; "
                        "the two sides of a parallel corpus must be line-aligned")
    dictionary = Dictionary.read_vocab(vocab)
    stats = PairStats()
    with (open(sources[0], encoding="utf-8") as left, open(sources[1], encoding="utf-8") as right,
          IndexedDatasetWriter(prefixes[0], dictionary, str(sources[0])) as writer0,
          IndexedDatasetWriter(prefixes[1], dictionary, str(sources[1])) as writer1):
        pairs = progress(zip(left, right, strict=True), desc="binarize pair", total=counts[0])
        for number, (line0, line1) in enumerate(pairs, start=1):
            len0, len1 = len(line0.split()), len(line1.split())
            if not keep_all and (len0 == 0 or len1 == 0):
                stats.dropped_empty += 1
                continue
            if not keep_all and max_len is not None and max(len0, len1) > max_len:
                stats.dropped_long += 1
                continue
            writer0.add_line(line0, number)
            writer1.add_line(line1, number)
            stats.kept += 1
    log.info("%s: kept %d pairs, dropped %d with an empty side and %d longer than %s tokens",
             prefixes[0], stats.kept, stats.dropped_empty, stats.dropped_long, max_len)
    log.info("%s: %s", prefixes[0], writer0.stats.summary())
    log.info("%s: %s", prefixes[1], writer1.stats.summary())
    return stats


def add_binarize_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vocab", type=Path, required=True, help="fastBPE vocab file")
    parser.add_argument("--input", type=Path, required=True, help="BPE'd text, one sentence a line")
    parser.add_argument("--output", type=Path, required=True,
                        help="dataset prefix: writes PREFIX.bin and PREFIX.idx")


def run_binarize(args: argparse.Namespace) -> None:
    binarize_file(args.vocab, args.input, args.output)


def add_binarize_pair_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vocab", type=Path, required=True, help="fastBPE vocab file")
    parser.add_argument("--input", type=Path, nargs=2, required=True, metavar=("SRC", "TGT"),
                        help="the two BPE'd sides, line-aligned")
    parser.add_argument("--output", type=Path, nargs=2, required=True,
                        metavar=("SRC_PREFIX", "TGT_PREFIX"), help="dataset prefixes")
    parser.add_argument("--max-len", type=int, default=None,
                        help="drop pairs with a side longer than this many BPE tokens")
    parser.add_argument("--keep-all", action="store_true",
                        help="keep every pair, empty or long (test sets; still checks alignment)")


def run_binarize_pair(args: argparse.Namespace) -> None:
    binarize_pair(args.vocab, tuple(args.input), tuple(args.output), args.max_len,
                  args.keep_all)
