"""`xlm xnli-translate`: an XNLI set translated into English by one of our MT models, for
TRANSLATE-TEST (paper 4.1) without an outside MT system.

The language's rows of the set (`xlm xnli-extract`'s reading: a per-language TSV or
XNLI 1.0's all-language file) are read; premises and hypotheses are translated with the
MT model.pt (its tokenizer, BPE codes and dictionary; beam search) and written with their
labels as a `premise hypothesis label` TSV, which the workflow then prepares as English
text like any translated test set.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlm.data.xnli import SIMPLE_COLUMNS, read_pairs
from xlm.io import atomic_open
from xlm.tasks.translate import LineTranslator, add_decoding_arguments

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="MT model.pt trained on LANG-en")
    parser.add_argument("--input", required=True, help="the XNLI set (TSV, .gz or .xz)")
    parser.add_argument("--lang", required=True, help="the set's language")
    parser.add_argument("--output", required=True, help="English TSV to write")
    add_decoding_arguments(parser)


def run(args: argparse.Namespace) -> None:
    translate = LineTranslator(args.model, args.lang, "en", args.beam, args.length_penalty)
    rows = read_pairs(Path(args.input), args.lang)
    premises = translate([premise for premise, _, _ in rows])
    hypotheses = translate([hypothesis for _, hypothesis, _ in rows])
    with atomic_open(Path(args.output)) as handle:  # read back without quoting, as written
        handle.write("\t".join(SIMPLE_COLUMNS) + "\n")
        for premise, hypothesis, (_, _, label) in zip(premises, hypotheses, rows, strict=True):
            handle.write(f"{' '.join(premise.split())}\t{' '.join(hypothesis.split())}\t"
                         f"{label}\n")
    log.info("%s: %d %s pairs translated into English with %s", args.output, len(rows),
             args.lang, args.model)
