"""File helpers shared by every stage: atomic outputs, text inputs, progress bars.

A failed or interrupted job must never leave a file that looks complete, so every
output is written under a temporary name in the same folder and renamed at the end.
Text inputs (local text, parallel sides, XNLI TSVs, MT test sets, dictionaries) come
plain or compressed, since real corpora are distributed as .gz or .xz: `open_text` and
`count_lines` read all of them, streaming, with flat memory.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, TypeVar

from tqdm import tqdm

from xlm.errors import UserError

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
    except OSError as error:
        if error.filename is None:  # e.g. a full disk on write: name the output
            raise OSError(error.errno, error.strerror, str(final)) from error
        raise
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


# Compression is recognised by the file's first bytes, which agree with the usual .gz,
# .xz and .bz2 names, and still work for a compressed file saved under another name (a
# downloaded corpus side is stored as `.txt`). No UTF-8 text starts with these bytes (the
# bz2 signature includes the block magic, so a line starting "BZh9" stays text).
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "gzip": (b"\x1f\x8b",),
    "xz": (b"\xfd7zXZ\x00",),
    "bz2": tuple(b"BZh" + bytes([level]) + b"1AY&SY" for level in b"123456789"),
}
# What a corrupt or truncated input raises while it is read.
_READ_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, UnicodeDecodeError)


def compression(path: str | os.PathLike[str]) -> str | None:
    """'gzip', 'xz' or 'bz2' when the file is compressed so, None for plain text."""
    with open(path, "rb") as handle:
        head = handle.read(10)
    for name, signatures in _MAGIC.items():
        if head.startswith(signatures):
            return name
    return None


def _open_binary(path: str | os.PathLike[str]) -> BinaryIO:
    """The decompressed bytes of a plain, gzip, xz or bz2 file."""
    kind = compression(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "bz2":
        return bz2.open(path, "rb")
    return open(path, "rb")


def _unreadable(path: str | os.PathLike[str], error: Exception) -> UserError:
    kind = compression(path) if Path(path).is_file() else None
    what = f"{kind}-compressed UTF-8 text" if kind else "UTF-8 text"
    detail = str(error) or type(error).__name__
    return UserError(f"{path}: cannot be read as {what} ({detail}); replace it with a "
                     "complete plain, .gz or .xz file of UTF-8 text")


class TextInput(Iterator[str]):
    """The lines of a text input, each ending in "\n" except perhaps the last.

    Lines end at "\n" only, as `count_lines` and `wc -l` count them, so the lines read
    are the lines counted (a stray "\r" inside a line does not cut it in two, which would
    break line-aligned corpora); a "\r\n" ending is read as "\n". A corrupt, truncated
    or non-UTF-8 file is a UserError naming the file, wherever the problem shows up.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: no such file; fix its path in the config")
        self._handle = io.TextIOWrapper(_open_binary(self.path), encoding="utf-8",
                                        newline="\n")

    def __next__(self) -> str:
        try:
            line = next(self._handle)
        except _READ_ERRORS as error:
            raise _unreadable(self.path, error) from None
        return line[:-2] + "\n" if line.endswith("\r\n") else line

    def readline(self) -> str:
        """One line, "" at the end (like a file's readline)."""
        return next(self, "")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> TextInput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_text(path: str | os.PathLike[str]) -> TextInput:
    """Open a text input to read its lines: plain, .gz, .xz (or .bz2), UTF-8, streaming.

    Use it for every file a user gives (the config's inputs); files the workflow wrote
    itself are plain and may be opened directly.
    """
    return TextInput(path)


def count_lines(path: str | os.PathLike[str]) -> int:
    """Number of lines of a text file, plain or compressed, as `open_text` reads them (a
    last line without "\n" counts); binary blocks, fast, flat memory."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file; fix its path in the config")
    count = 0
    last = b"\n"
    try:
        with _open_binary(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                count += block.count(b"\n")
                last = block[-1:]
    except _READ_ERRORS as error:
        raise _unreadable(path, error) from None
    return count if last == b"\n" else count + 1


def copy_text(source: str | os.PathLike[str], output: str | os.PathLike[str]) -> int:
    """Copy a text input (plain or compressed) to a plain UTF-8 file; return its lines."""
    lines = 0
    with open_text(source) as handle, atomic_open(output) as out:
        for line in handle:
            out.write(line if line.endswith("\n") else line + "\n")
            lines += 1
    return lines


HISTORY_LOG = "train.log"


def keep_log_history(out_dir: str | os.PathLike[str], command: str) -> Path:
    """Append this process's log records to `out_dir/train.log` too.

    Snakemake empties a rule's `log:` file before each attempt, so that file shows the
    current attempt only; training jobs resume across attempts (preemption, Ctrl-C), and
    their whole history (the interrupted attempt, then the one that resumed it) is kept
    here, beside the checkpoints, one dated `started` line per attempt.
    """
    import logging

    path = Path(out_dir) / HISTORY_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    logging.getLogger().addHandler(handler)
    logging.getLogger(__name__).info("== xlm %s started (earlier attempts above) ==", command)
    return path
