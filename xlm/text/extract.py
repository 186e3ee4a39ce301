"""Extract clean paragraphs from a MediaWiki dump with WikiExtractor (paper section 5.2).

WikiExtractor 3.1 does the wiki-markup parsing; this module feeds it a checked dump
(see `xlm.text.dump`), turns off what XLM did not want (HTML escaping, section headings)
and cleans its output into one paragraph per line.
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


@contextlib.contextmanager
def checked_dump_stream(dump: Path) -> Iterator[str]:
    """Yield a path from which the dump's checked XML can be read once.

    The feeder runs in its own process, so WikiExtractor's forked workers never hold the
    pipe's write end and always see the end of input, even when the dump is cut short.
    """
    feeder = subprocess.Popen(
        [sys.executable, "-m", "xlm.text.dump", str(dump)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
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


def run_wikiextractor(dump: Path, out_dir: Path, processes: int, expand_templates: bool) -> None:
    """Run WikiExtractor's own map/reduce over the dump, writing JSON lines under out_dir."""
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
        pages = stack.enter_context(checked_dump_stream(dump))
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
            min_chars: int = 1) -> int:
    """Write the dump's clean paragraphs to `output`; return how many there are."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".extract-") as tmp:
        out_dir = Path(tmp) / "json"
        run_wikiextractor(Path(dump), out_dir, processes, expand_templates)
        articles = paragraphs = 0
        with atomic_open(output) as out:
            for text in progress(read_articles(out_dir), desc=f"clean {dump.name}", unit="docs"):
                articles += 1
                for paragraph in clean_article(text, min_chars):
                    out.write(paragraph + "\n")
                    paragraphs += 1
            if paragraphs == 0:
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


def run(args: argparse.Namespace) -> None:
    extract(args.dump, args.output, args.processes, args.expand_templates, args.min_chars)
