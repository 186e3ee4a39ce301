"""File helpers shared by every stage: atomic outputs and progress bars.

A failed or interrupted job must never leave a file that looks complete, so every
output is written under a temporary name in the same folder and renamed at the end.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it to `path` only on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """Open a temporary file for writing; it becomes `path` only if the block succeeds."""
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as handle:
        yield handle


def progress(items: Iterable[T], desc: str, unit: str = "lines", total: int | None = None):
    """A tqdm bar on stderr (which the rules send to their log files)."""
    return tqdm(
        items, desc=desc, unit=unit, total=total, file=sys.stderr, mininterval=2.0,
        dynamic_ncols=False, ncols=100,
    )


def count_lines(path: str | os.PathLike[str]) -> int:
    """Number of lines in a text file, read in binary blocks (fast, flat memory)."""
    count = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
    return count
