"""Downloaded corpora as the pipeline reads them: archive members, concatenations, splits.

Corpora come as archives (OPUS's Moses zips, IIT Bombay's `parallel.tgz`, `XNLI-1.0.zip`,
WMT's `dev.tgz` of SGML test sets). A config source `URL#member` names one file inside;
`extract-member` takes it out (a `.sgm` member becomes its segments, one per line, as
Moses' input-from-sgm.perl does). `concat-text` joins several sources of one language
(the reference concatenates e.g. Tanzil and GlobalVoices for Swahili), and `split-pair`
holds out seeded valid/test lines from a parallel corpus given whole, as XLM's
get-data-para.sh does, keeping both sides line-aligned.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import re
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from xlm.errors import UserError
from xlm.io import atomic_open, count_lines, open_text, progress
from xlm.text.split import SPLITS, heldout_sizes

log = logging.getLogger(__name__)
SEGMENT = re.compile(r"<seg[^>]*>\s*(.*?)\s*</seg>", re.IGNORECASE)


def _missing(archive: str, member: str, names: list[str]) -> UserError:
    """One line naming the archive, the member and (some of) what the archive holds."""
    files = [name for name in names if not name.endswith("/")]
    close = difflib.get_close_matches(member, files, n=3, cutoff=0.5)
    shown = close or files[:8]
    more = "" if close or len(files) <= 8 else f" and {len(files) - 8} more"
    what = "closest" if close else "it has"
    return UserError(f"{archive}: no member '{member}' ({what}: {', '.join(shown)}{more}); "
                     "fix the name after '#' in the config")


@contextlib.contextmanager
def open_member(archive: Path, member: str, label: str) -> Iterator[IO[bytes]]:
    """The bytes of `member` in a zip or tar (.tar, .tgz, .tar.gz, .tar.xz) archive."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            if member not in bundle.namelist():
                raise _missing(label, member, bundle.namelist())
            with bundle.open(member) as handle:
                yield handle
        return
    try:
        bundle = tarfile.open(archive, "r:*")
    except tarfile.TarError:
        raise UserError(f"{label}: not a zip or tar archive, so it has no member '{member}'; "
                        "drop '#...' from the source (a .gz/.xz file is read as it is)") from None
    with bundle:
        try:
            info = bundle.getmember(member)
        except KeyError:
            raise _missing(label, member, bundle.getnames()) from None
        handle = bundle.extractfile(info)
        if handle is None:
            raise UserError(f"{label}: member '{member}' is not a regular file; name a file")
        with handle:
            yield handle


def extract_member(archive: Path, member: str, output: Path, label: str | None = None) -> int:
    """Write `member` of `archive` to `output` (a `.sgm` member as its segments); return
    the bytes (or segment lines) written."""
    label = label or str(archive)
    with open_member(Path(archive), member, label) as handle:
        if not member.endswith(".sgm"):
            with atomic_open(output, "wb") as out:
                shutil.copyfileobj(handle, out, 1 << 20)
                return out.tell()
        lines = 0
        with atomic_open(output) as out:
            for raw in handle:
                found = SEGMENT.search(raw.decode("utf-8"))
                if found:
                    out.write(found.group(1) + "\n")
                    lines += 1
        if not lines:
            raise UserError(f"{label}: member '{member}' has no <seg> lines; is it SGML?")
        return lines


def _lines(sources: list[Path]) -> Iterator[str]:
    """The lines of several text inputs (plain or compressed), in order, each ending in \\n."""
    for source in sources:
        with open_text(source) as handle:
            for line in handle:
                yield line if line.endswith("\n") else line + "\n"


def concat_text(sources: list[Path], output: Path, max_lines: int | None = None) -> int:
    """Join text inputs into one plain file, the first `max_lines` only if given (XLM's
    get-data-nmt.sh keeps 5,000,000 lines of News Crawl); return its lines."""
    lines = 0
    with atomic_open(output) as out:
        for line in _lines(sources):
            if max_lines is not None and lines == max_lines:
                break
            out.write(line)
            lines += 1
    return lines


def split_pair(sides: dict[str, list[Path]], outputs: dict[str, dict[str, Path]], key: str,
               valid: int, test: int, max_fraction: float, seed: int) -> dict[str, int]:
    """Seeded train/valid/test split of a parallel corpus: the same lines of both sides go
    to the same split. `outputs[split][lang]` are the files; returns the line counts."""
    counts = {lang: sum(count_lines(path) for path in paths) for lang, paths in sides.items()}
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{lang} {count} lines" for lang, count in counts.items())
        raise UserError(f"key '{key}': the sides are not line-aligned ({detail}); give sources "
                        "with one sentence pair per line")
    total = next(iter(counts.values()))
    if total < 3:
        raise UserError(f"key '{key}': {total} line pairs, too few to split into "
                        "train/valid/test; give a larger corpus")
    n_valid, n_test = heldout_sizes(total, valid, test, max_fraction)
    which = np.zeros(total, dtype=np.uint8)  # 0 train, 1 valid, 2 test
    order = np.random.default_rng(seed).permutation(total)
    which[order[:n_valid]] = 1
    which[order[n_valid:n_valid + n_test]] = 2
    sizes = dict.fromkeys(SPLITS, 0)
    for lang, paths in sides.items():
        with contextlib.ExitStack() as stack:
            outs = [stack.enter_context(atomic_open(outputs[name][lang])) for name in SPLITS]
            for index, line in enumerate(progress(_lines(paths), desc=f"split {key}.{lang}",
                                                  total=total)):
                outs[which[index]].write(line)
    for name, code in zip(SPLITS, range(3), strict=True):
        sizes[name] = int((which == code).sum())
    log.info("%s: %s", key, ", ".join(f"{k} {v}" for k, v in sizes.items()))
    return sizes


def add_extract_member_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--archive", required=True, type=Path, help="zip or tar archive")
    parser.add_argument("--member", required=True, help="path of the file inside it")
    parser.add_argument("--output", required=True, type=Path, help="where to write it")
    parser.add_argument("--label", help="how to name the archive in errors (its URL)")


def run_extract_member(args: argparse.Namespace) -> None:
    size = extract_member(args.archive, args.member, args.output, args.label)
    unit = "segments" if args.member.endswith(".sgm") else "bytes"
    log.info("%s#%s: %d %s -> %s", args.label or args.archive, args.member, size, unit,
             args.output)


def add_concat_text_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", required=True, nargs="+", type=Path,
                        help="text inputs (plain, .gz or .xz), joined in this order")
    parser.add_argument("--output", required=True, type=Path, help="plain UTF-8 text")
    parser.add_argument("--max-lines", type=int, help="keep only the first N lines")


def run_concat_text(args: argparse.Namespace) -> None:
    lines = concat_text(args.inputs, args.output, args.max_lines)
    log.info("%d lines from %d inputs -> %s", lines, len(args.inputs), args.output)


def add_split_pair_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--langs", required=True, nargs=2, help="the two languages")
    parser.add_argument("--side", required=True, nargs="+", action="append", type=Path,
                        help="a side's inputs, joined (give --side twice, in --langs order)")
    parser.add_argument("--prefix", required=True,
                        help="outputs are {prefix}.{split}.{lang}.txt")
    parser.add_argument("--key", required=True, help="the config key, for error messages")
    parser.add_argument("--valid-size", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=5000)
    parser.add_argument("--max-heldout-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)


def run_split_pair(args: argparse.Namespace) -> None:
    if len(args.side) != 2:
        raise UserError("split-pair needs --side twice, once per language of --langs")
    sides = dict(zip(args.langs, args.side, strict=True))
    outputs = {split: {lang: Path(f"{args.prefix}.{split}.{lang}.txt") for lang in args.langs}
               for split in SPLITS}
    split_pair(sides, outputs, args.key, args.valid_size, args.test_size,
               args.max_heldout_fraction, args.seed)
