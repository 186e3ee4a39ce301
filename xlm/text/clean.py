"""Turn WikiExtractor's article text into clean paragraphs, one per line, as XLM did."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator

WHITESPACE = re.compile(r"\s+")
DOC_MARKER = re.compile(r"^\s*</?doc\b")
# What survives WikiExtractor only as noise: table rows and cells, unclosed templates or
# links, leftover HTML tags, list or heading syntax.
MARKUP = re.compile(r"^(\{\||\|[-}+]?|!)|\{\{|\}\}|\[\[|\]\]|</?[a-zA-Z][^>]*>|^=+.*=+$|^[*#]+\s")


def clean_paragraph(paragraph: str) -> str:
    """Unescape entities and normalise whitespace; '' when nothing readable is left."""
    text = WHITESPACE.sub(" ", html.unescape(paragraph)).strip()
    if not text or DOC_MARKER.match(text) or MARKUP.search(text):
        return ""
    return text


def clean_article(text: str, min_chars: int = 1) -> Iterator[str]:
    """Yield the clean paragraphs of one article (empty or too short ones dropped)."""
    for paragraph in text.split("\n"):
        cleaned = clean_paragraph(paragraph)
        if len(cleaned) >= min_chars:
            yield cleaned


def clean_articles(texts: Iterable[str], min_chars: int = 1) -> Iterator[str]:
    for text in texts:
        yield from clean_article(text, min_chars)
