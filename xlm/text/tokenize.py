"""`xlm tokenize`: tokenize a text file line by line with its language's tokenizer."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlm.errors import UserError
from xlm.io import atomic_open, count_lines, open_text, progress
from xlm.text.tokenizers import TokenizerOptions, get_tokenizer

log = logging.getLogger(__name__)


def tokenize_file(lang: str, source: Path, output: Path, options: TokenizerOptions) -> int:
    """Tokenize `source` into `output`, one line out per line in; return the line count."""
    if not source.is_file():
        raise UserError(f"{source}: no such file; run the steps before tokenization")
    tokenizer = get_tokenizer(lang, options)
    total = count_lines(source)
    # Parallel sides are read here straight from the config (plain, .gz or .xz).
    with open_text(source) as lines, atomic_open(output) as out:
        for line in progress(lines, desc=f"tokenize {lang} {source.name}", total=total):
            out.write(tokenizer(line.rstrip("\n")) + "\n")
    log.info("tokenized %d lines of %s (%s) -> %s", total, source, lang, output)
    return total


def add_tokenizer_options(parser: argparse.ArgumentParser) -> None:
    """The flags of TokenizerOptions (shared with every command that tokenizes)."""
    parser.add_argument("--lowercase", action="store_true", help="lowercase after tokenizing")
    parser.add_argument("--remove-accents", action="store_true", help="strip combining marks")
    parser.add_argument("--romanian-normalize", action=argparse.BooleanOptionalAction,
                        default=True, help="s/t cedilla to comma (Romanian)")
    parser.add_argument("--romanian-remove-diacritics", action=argparse.BooleanOptionalAction,
                        default=True, help="strip Romanian diacritics")
    parser.add_argument("--kytea-model", help="KyTea model for Japanese (.bin or .bin.gz)")
    parser.add_argument("--thai-engine", default="newmm", help="PyThaiNLP engine")
    parser.add_argument("--chinese-segmenter", default="jieba", choices=["jieba"])


def tokenizer_options(args: argparse.Namespace) -> TokenizerOptions:
    return TokenizerOptions(
        lowercase=args.lowercase, remove_accents=args.remove_accents,
        romanian_normalize=args.romanian_normalize,
        romanian_remove_diacritics=args.romanian_remove_diacritics,
        kytea_model=args.kytea_model, thai_engine=args.thai_engine,
        chinese_segmenter=args.chinese_segmenter,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", required=True, help="ISO code of the text's language")
    parser.add_argument("--input", required=True, type=Path,
                        help="raw text, one per line (plain, .gz or .xz)")
    parser.add_argument("--output", required=True, type=Path, help="tokenized text")
    add_tokenizer_options(parser)


def run(args: argparse.Namespace) -> None:
    tokenize_file(args.lang, args.input, args.output, tokenizer_options(args))
