"""Extraction of real dumps, and one clear error (and no output) for each kind of bad dump."""

from __future__ import annotations

import bz2
import re
import subprocess
import sys

import pytest

from xlm.errors import UserError
from xlm.text.clean import clean_article
from xlm.text.extract import extract

MARKUP = re.compile(r"\[\[|\]\]|\{\{|\}\}|</?[a-z]+[ >]|&[a-z]+;|^=|^\{\||^\|")


def test_real_dump_gives_clean_paragraphs(shared_data, tmp_path):
    out = tmp_path / "en.txt"
    count = extract(shared_data / "wiki" / "enwiki-table-markup.xml.bz2", out, processes=2)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert count == len(lines) > 100
    assert all(line and line == line.strip() and "  " not in line for line in lines)
    assert not [line for line in lines if MARKUP.search(line)]
    # Headings such as "==Germany==" are not kept as paragraphs of their own.
    assert "Germany." not in lines and "Germany" not in lines
    assert lines[0].startswith("The constructive vote of no confidence (in German:")


def test_non_latin_dump(shared_data, tmp_path):
    out = tmp_path / "th.txt"
    extract(shared_data / "wiki" / "thwiki-sample.xml.bz2", out)
    text = out.read_text(encoding="utf-8")
    assert len(re.findall(r"[\u0e00-\u0e7f]", text)) > 1000  # Thai script survives


def test_entities_unescaped_and_whitespace_normalised():
    article = "A &amp; B &gt; C   here\n\n   \nSecond\tline &quot;x&quot;"
    assert list(clean_article(article)) == ["A & B > C here", 'Second line "x"']


def truncated(shared_data, tmp_path):
    data = (shared_data / "wiki" / "enwiki-sample.xml.bz2").read_bytes()
    path = tmp_path / "truncated.xml.bz2"
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def corrupt(shared_data, tmp_path):
    data = bytearray((shared_data / "wiki" / "frwiki-sample.xml.bz2").read_bytes())
    data[5000:5100] = bytes(100)
    path = tmp_path / "corrupt.xml.bz2"
    path.write_bytes(bytes(data))
    return path


def not_a_dump(shared_data, tmp_path):
    path = tmp_path / "notes.xml.bz2"
    path.write_bytes(bz2.compress(b"<html><body>not a dump</body></html>\n" * 10))
    return path


def utf16(shared_data, tmp_path):
    return shared_data / "wiki-extra" / "bgwiki-utf16-sample.xml.bz2"


def no_text(shared_data, tmp_path):
    xml = bz2.decompress((shared_data / "wiki" / "frwiki-sample.xml.bz2").read_bytes())
    xml = re.sub(rb"<text([^>]*)>.*?</text>", rb"<text\1 />", xml, flags=re.S)
    path = tmp_path / "empty.xml.bz2"
    path.write_bytes(bz2.compress(xml))
    return path


@pytest.mark.parametrize(("make", "message"), [
    (truncated, "the compressed file is truncated"),
    (corrupt, "corrupt compressed data"),
    (not_a_dump, "not a MediaWiki XML dump"),
    (utf16, "the dump is UTF-16, not UTF-8"),
    (no_text, "the dump yields no text"),
])
def test_bad_dump_is_one_clear_line_and_leaves_no_output(make, message, shared_data, tmp_path):
    dump = make(shared_data, tmp_path)
    out = tmp_path / "out" / "x.txt"
    result = subprocess.run(
        [sys.executable, "-m", "xlm", "extract", "--dump", str(dump), "--output", str(out),
         "--processes", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {dump}: {message}"), last
    assert "Traceback" not in result.stderr
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_missing_dump_names_the_file(tmp_path):
    with pytest.raises(UserError, match="nowhere.xml.bz2: no such file"):
        extract(tmp_path / "nowhere.xml.bz2", tmp_path / "x.txt")
