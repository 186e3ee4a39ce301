"""`xlm split`: shuffle clean text with a seed and cut it into train/valid/test.

The paper holds out 5,000 lines each for validation and test. On a small corpus each
held-out split is capped at a fraction of the lines, so tiny demo corpora still split.
Lines keep their corpus order inside each split. Memory grows with the number of lines,
not their length: 5 bytes a line while the split is drawn (a uint32 shuffle of the line
numbers and a byte per line), then 1: 0.5 GB, then 0.1 GB, for 100M lines.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path

import numpy as np

from xlm.errors import UserError
from xlm.io import atomic_open, count_lines, open_text, progress

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


def heldout_sizes(total: int, valid: int, test: int, max_fraction: float) -> tuple[int, int]:
    """Sizes of valid and test: as configured, capped at max_fraction, at least 1 each."""
    cap = max(1, int(total * max_fraction))
    return max(1, min(valid, cap)), max(1, min(test, cap))


def shuffled_lines(total: int, seed: int) -> np.ndarray:
    """`default_rng(seed).permutation(total)` in 4 bytes a line instead of 8: shuffling a
    uint32 range draws the same swaps as permutation's int64 one, so the same order."""
    order = np.arange(total, dtype=np.uint32 if total <= 2**32 else np.int64)
    np.random.default_rng(seed).shuffle(order)
    return order


def split_file(source: Path, outputs: dict[str, Path], valid: int, test: int,
               max_fraction: float, seed: int) -> dict[str, int]:
    """Write the train/valid/test lines of `source`; return the line count of each."""
    total = count_lines(source)
    if total == 0:
        raise UserError(f"{source}: the text is empty (0 lines); give a file with one "
                        "paragraph per line (local_text), or check the extraction of its dump")
    if total < 3:
        raise UserError(f"{source}: only {total} lines of text, too few to split into "
                        "train/valid/test; give more text (a larger dump or local_text file)")
    n_valid, n_test = heldout_sizes(total, valid, test, max_fraction)
    if n_valid + n_test >= total:
        raise UserError(f"{source}: {total} lines leave no training data; lower split sizes")
    order = shuffled_lines(total, seed)
    which = np.zeros(total, dtype=np.uint8)  # 0 train, 1 valid, 2 test
    which[order[:n_valid]] = 1
    which[order[n_valid:n_valid + n_test]] = 2
    del order
    counts = dict.fromkeys(SPLITS, 0)
    with contextlib.ExitStack() as stack:
        outs = [stack.enter_context(atomic_open(outputs[name])) for name in SPLITS]
        with open_text(source) as lines:  # local_text may be .gz or .xz
            for index, line in enumerate(progress(lines, desc=f"split {source.name}",
                                                  total=total)):
                outs[which[index]].write(line if line.endswith("\n") else line + "\n")
                counts[SPLITS[which[index]]] += 1
    log.info("%s: %s", source, ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, type=Path, help="clean text")
    for name in SPLITS:
        parser.add_argument(f"--{name}", required=True, type=Path, help=f"{name} output")
    parser.add_argument("--valid-size", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=5000)
    parser.add_argument("--max-heldout-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> None:
    outputs = {name: getattr(args, name) for name in SPLITS}
    split_file(args.input, outputs, args.valid_size, args.test_size,
               args.max_heldout_fraction, args.seed)
