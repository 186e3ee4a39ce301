"""`xlm xnli-extract`: XNLI (or MultiNLI-shaped) TSV -> premise, hypothesis and label files.

Two layouts are read, plain or compressed (.gz, .xz):
- XNLI 1.0 as distributed: `xnli.dev.tsv` / `xnli.test.tsv` with a `language` column,
  the text in `sentence1`/`sentence2` and the label in `gold_label`; rows of other
  languages are skipped;
- simple per-language TSVs with the header `premise hypothesis label`.
Several inputs (a training set given as a list, e.g. SNLI + SICK) are read in order into
the same outputs, each with its own header. The three outputs are line-aligned: premises
and hypotheses (raw text, tokenized and BPE'd next like any text of the language) and one
label word per line.
`load_labels` turns a label file into ids in the order of `LABELS`.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np

from xlm.errors import UserError
from xlm.io import atomic_open, open_text

log = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
SIMPLE_COLUMNS = ("premise", "hypothesis", "label")
XNLI_COLUMNS = ("sentence1", "sentence2", "gold_label")


def read_pairs(path: Path, lang: str) -> list[tuple[str, str, str]]:
    """(premise, hypothesis, label) rows of `lang` in the TSV at `path`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: XNLI file not found; fix the `xnli` paths in config")
    csv.field_size_limit(sys.maxsize)
    rows: list[tuple[str, str, str]] = []
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise UserError(f"{path}: empty file; expected a TSV with a header line")
        if "language" in header and all(c in header for c in XNLI_COLUMNS):
            columns = [header.index(c) for c in XNLI_COLUMNS]
            lang_column = header.index("language")
        elif all(c in header for c in SIMPLE_COLUMNS):
            columns = [header.index(c) for c in SIMPLE_COLUMNS]
            lang_column = None
        elif header[:3] == ["premise", "hypo", "label"]:  # XNLI-MT 1.0's multinli TSVs
            columns, lang_column = [0, 1, 2], None
        else:
            raise UserError(f"{path}: header {header[:6]} is neither 'premise hypothesis label' "
                            "nor XNLI 1.0's (language, gold_label, sentence1, sentence2)")
        for number, row in enumerate(reader, start=2):
            if lang_column is not None and row[lang_column] != lang:
                continue
            if len(row) < len(header):
                raise UserError(f"{path}:{number}: {len(row)} columns, expected {len(header)}")
            premise, hypothesis, label = (row[i] for i in columns)
            # XNLI-MT's multinli.train.*.tsv spell it 'contradictory' (XLM's
            # get-data-xnli.sh rewrites it too).
            label = "contradiction" if label == "contradictory" else label
            if label not in LABELS:
                raise UserError(f"{path}:{number}: label {label!r} is not one of {LABELS}")
            rows.append((" ".join(premise.split()), " ".join(hypothesis.split()), label))
    if not rows:
        raise UserError(f"{path}: no sentence pairs for language {lang!r}")
    return rows


def write_pairs(rows: list[tuple[str, str, str]], premises: Path, hypotheses: Path,
                labels: Path) -> None:
    """Write premises, hypotheses (text) and labels to three line-aligned files."""
    for column, path in enumerate((premises, hypotheses, labels)):
        with atomic_open(path) as out:
            for row in rows:
                out.write(row[column] + "\n")


def load_labels(path: str | Path) -> np.ndarray:
    """Label ids (index in `LABELS`) of a `.label` file."""
    with open(path, encoding="utf-8") as handle:
        words = [line.strip() for line in handle]
    unknown = sorted(set(words) - set(LABELS))
    if unknown:
        raise UserError(f"{path}: unknown labels {unknown}; expected {LABELS}")
    return np.array([LABELS.index(w) for w in words], dtype=np.int64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, nargs="+", required=True,
                        help="XNLI/MultiNLI TSV(s) (.gz, .xz ok), read in order")
    parser.add_argument("--lang", required=True, help="language to keep (XNLI 1.0 layout)")
    parser.add_argument("--premises", type=Path, required=True, help="output: one per line")
    parser.add_argument("--hypotheses", type=Path, required=True, help="output: one per line")
    parser.add_argument("--labels", type=Path, required=True, help="output: label words")


def label_counts(rows: list[tuple[str, str, str]]) -> dict[str, int]:
    return {label: sum(r[2] == label for r in rows) for label in LABELS}


def run(args: argparse.Namespace) -> None:
    rows: list[tuple[str, str, str]] = []
    for path in args.input:  # every file is checked before anything is written
        file_rows = read_pairs(path, args.lang)
        log.info("%s (%s): %d pairs, labels %s", path, args.lang, len(file_rows),
                 label_counts(file_rows))
        rows.extend(file_rows)
    write_pairs(rows, args.premises, args.hypotheses, args.labels)
    if len(args.input) > 1:
        log.info("all %d files (%s): %d pairs, labels %s", len(args.input), args.lang,
                 len(rows), label_counts(rows))
