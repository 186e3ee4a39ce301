"""`xlm check-aligned` and `xlm copy-text`: the first look at a user's line-aligned inputs.

A parallel corpus or an MT test set is two files that must have one line per sentence
pair. The workflow counts both sides (plain or compressed) before anything is tokenized,
so a mismatch is reported naming the files the user gave and their config key, not
derived files after tokenization and BPE.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from xlm.errors import UserError
from xlm.io import atomic_open, copy_text, count_lines

log = logging.getLogger(__name__)


def check_aligned(sources: Sequence[Path], key: str, config: str | None = None) -> int:
    """The common line count of line-aligned files; a UserError naming the config file,
    `key` and the files if they differ."""
    counts = [count_lines(source) for source in sources]
    if len(set(counts)) > 1:
        sides = " but ".join(f"{source} has {count} lines"
                             for source, count in zip(sources, counts, strict=True))
        where = f"{config}: key '{key}'" if config else f"key '{key}'"
        raise UserError(f"{where}: {sides}; the sides must be line-aligned (one sentence pair "
                        f"per line): fix the files or point '{key}' at aligned ones")
    return counts[0]


def add_check_aligned_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", nargs=2, required=True, type=Path, metavar="SIDE",
                        help="the two sides (plain, .gz or .xz)")
    parser.add_argument("--key", required=True,
                        help="the config key naming them, for the error message")
    parser.add_argument("--config-file", default=os.environ.get("XLM_CONFIG_SOURCE"),
                        help="the config file(s) given, for the error message (default: "
                             "$XLM_CONFIG_SOURCE, which the workflow sets)")
    parser.add_argument("--output", required=True, type=Path,
                        help="JSON record of the line count of each side")


def run_check_aligned(args: argparse.Namespace) -> None:
    lines = check_aligned(args.inputs, args.key, args.config_file)
    with atomic_open(args.output) as out:
        json.dump({"key": args.key, "files": [str(p) for p in args.inputs], "lines": lines},
                  out)
        out.write("\n")
    log.info("%s: %d line-aligned pairs in %s", args.key, lines,
             " and ".join(map(str, args.inputs)))


def add_copy_text_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, type=Path, help="text (plain, .gz or .xz)")
    parser.add_argument("--output", required=True, type=Path, help="plain UTF-8 copy")


def run_copy_text(args: argparse.Namespace) -> None:
    lines = copy_text(args.input, args.output)
    log.info("%s: %d lines -> %s", args.input, lines, args.output)
