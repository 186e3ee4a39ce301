"""`xlm shard` / `xlm merge`: cut a text file into contiguous shards and join them back.

Sharding lets one big corpus be tokenized by many jobs at once (all cores, all nodes);
merging in shard order restores the original line order exactly.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
from pathlib import Path

from xlm.io import atomic_open, count_lines, open_text


def shard_file(source: Path, outputs: list[Path]) -> list[int]:
    """Write consecutive, near-equal slices of `source`'s lines to `outputs`."""
    total = count_lines(source)
    base, extra = divmod(total, len(outputs))
    sizes = [base + (1 if i < extra else 0) for i in range(len(outputs))]
    # Read as counted: lines end at "\n" only (a stray "\r" from local_text stays inside).
    with open_text(source) as lines, contextlib.ExitStack() as stack:
        for output, size in zip(outputs, sizes, strict=True):
            out = stack.enter_context(atomic_open(output))
            for _ in range(size):
                out.write(next(lines))
    return sizes


def merge_files(sources: list[Path], output: Path) -> None:
    with atomic_open(output, "wb") as out:
        for source in sources:
            with open(source, "rb") as handle:
                shutil.copyfileobj(handle, out)


def add_shard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, type=Path)
    parser.add_argument("--outputs", required=True, nargs="+", type=Path)


def run_shard(args: argparse.Namespace) -> None:
    shard_file(args.input, args.outputs)


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", required=True, nargs="+", type=Path)
    parser.add_argument("--output", required=True, type=Path)


def run_merge(args: argparse.Namespace) -> None:
    merge_files(args.inputs, args.output)
