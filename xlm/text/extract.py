"""Extract clean paragraphs from a MediaWiki dump with WikiExtractor (paper section 5.2).

WikiExtractor 3.1 does the wiki-markup parsing; this module feeds it a checked dump
(see `xlm.text.dump`), turns off what XLM did not want (HTML escaping, section headings)
and cleans its output into one paragraph per line. With `shard` (index, i, n) it extracts
only shard i of a multistream dump (`xlm.text.multistream`); the shards' outputs joined in
order equal the whole dump's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# WikiExtractor 3.1 has no public API for its default ignored tags; its own CLI builds the
# same list from these names (WikiExtractor.main), which the pinned version keeps.
from wikiextractor.extract import _DEFAULT_IGNORED_TAG_PATTERNS, ignoreTag
from wikiextractor.WikiExtractor import process_dump

from xlm.errors import UserError
from xlm.io import atomic_open, progress
from xlm.text.clean import clean_article

log = logging.getLogger(__name__)


Shard = tuple[Path, int, int]  # (multistream index, shard, shards)


@contextlib.contextmanager
def checked_dump_stream(dump: Path, shard: Shard | None = None) -> Iterator[str]:
    """Yield a path from which the dump's checked XML (or one shard's) can be read once.

    The feeder runs in its own process, so WikiExtractor's forked workers never hold the
    pipe's write end and always see the end of input, even when the dump is cut short.
    """
    command = [sys.executable, "-m", "xlm.text.dump", str(dump)]
    if shard is not None:
        index, number, shards = shard
        command = [sys.executable, "-m", "xlm.text.multistream", str(dump), str(index),
                   str(number), str(shards)]
    feeder = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield f"/dev/fd/{feeder.stdout.fileno()}"
    finally:
        feeder.stdout.close()
        message = feeder.stderr.read().decode("utf-8", errors="replace").strip()
        returncode = feeder.wait()
    if returncode in (0, 3) and message:
        log.warning(message.removeprefix("warning: "))
    if returncode == 2:
        raise UserError(message.removeprefix("error: "))
    if returncode not in (0, 3):  # 3: WikiExtractor stopped reading early, not an error
        raise UserError(f"{dump}: reading the dump failed ({message or returncode})")


def run_wikiextractor(dump: Path, out_dir: Path, processes: int, expand_templates: bool,
                      shard: Shard | None = None) -> None:
    """Run WikiExtractor's own map/reduce over the dump (or the pages of one shard),
    writing JSON lines under out_dir. Templates are always read from the whole dump, so a
    shard expands them as the whole dump does."""
    extractor_kwargs = {
        "keepLinks": False,
        "keepSections": False,  # headings are not paragraphs
        "HtmlFormatting": False,
        "to_json": True,
        "to_text": False,
        "discard_empty": True,
        "ignored_tag_patterns": [*_DEFAULT_IGNORED_TAG_PATTERNS, ignoreTag("a")],
    }
    with contextlib.ExitStack() as stack:
        templates = None
        if expand_templates:  # WikiExtractor reads the dump twice: templates, then pages
            templates = stack.enter_context(checked_dump_stream(dump))
        pages = stack.enter_context(checked_dump_stream(dump, shard))
        process_dump(
            pages, templates, str(out_dir), 1 << 30, False, processes,
            html_safe=False,  # no &lt; escaping: XLM wants plain text
            expand_templates=expand_templates, extractor_kwargs=extractor_kwargs,
            log_level=logging.INFO,
        )


def read_articles(out_dir: Path) -> Iterator[str]:
    """Article texts in dump order (WikiExtractor names its files AA/wiki_00, ...)."""
    for part in sorted(out_dir.rglob("wiki_*")):
        with open(part, encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)["text"]


def extract(dump: Path, output: Path, processes: int = 1, expand_templates: bool = False,
            min_chars: int = 1, shard: Shard | None = None) -> int:
    """Write the dump's clean paragraphs (or those of one shard of a multistream dump) to
    `output`; return how many there are. A shard may hold no text (all redirects): only
    the whole dump must (empty merged shards are refused by `xlm split`)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".extract-") as tmp:
        out_dir = Path(tmp) / "json"
        run_wikiextractor(Path(dump), out_dir, processes, expand_templates, shard)
        articles = paragraphs = 0
        with atomic_open(output) as out:
            for text in progress(read_articles(out_dir), desc=f"clean {dump.name}", unit="docs"):
                articles += 1
                for paragraph in clean_article(text, min_chars):
                    out.write(paragraph + "\n")
                    paragraphs += 1
            if paragraphs == 0 and shard is None:
                raise UserError(
                    f"{dump}: the dump yields no text ({articles} articles, none with "
                    "paragraphs); check that it is a '*-pages-articles' dump"
                )
    log.info("%s: %d articles, %d paragraphs -> %s", dump, articles, paragraphs, output)
    return paragraphs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dump", required=True, type=Path, help="MediaWiki XML dump (.bz2)")
    parser.add_argument("--output", required=True, type=Path, help="clean text, one per line")
    parser.add_argument("--processes", type=int, default=1, help="WikiExtractor workers")
    parser.add_argument("--expand-templates", action="store_true", help="expand templates")
    parser.add_argument("--min-chars", type=int, default=1, help="drop shorter paragraphs")
    parser.add_argument("--index", type=Path, default=None,
                        help="the multistream dump's index (with --shard and --shards)")
    parser.add_argument("--shard", type=int, default=None, help="extract this shard (0-based)")
    parser.add_argument("--shards", type=int, default=None, help="number of shards")


def run(args: argparse.Namespace) -> None:
    given = [args.index is not None, args.shard is not None, args.shards is not None]
    if any(given) and not all(given):
        raise UserError("xlm extract: give --index, --shard and --shards together, or none")
    shard = (args.index, args.shard, args.shards) if all(given) else None
    extract(args.dump, args.output, args.processes, args.expand_templates, args.min_chars,
            shard)
