"""Open a MediaWiki XML dump (.bz2, .gz or plain) and check it is one, while streaming it.

WikiExtractor hangs when its input ends early (its worker pool waits forever), and it
silently mangles UTF-16 or non-dump files. So the dump is decompressed and checked by a
separate feeder process that writes clean UTF-8 XML to a pipe: on a problem the feeder
closes the pipe (WikiExtractor finishes cleanly) and reports one line, and the extraction
is refused. Run as `python -m xlm.text.dump DUMP` it writes the XML to stdout.
"""

from __future__ import annotations

import bz2
import gzip
import sys
from pathlib import Path
from typing import BinaryIO

from xlm.errors import UserError

SNIFF_BYTES = 1 << 16
CHUNK = 1 << 20
DEFAULT_SITEINFO = b"""
  <siteinfo>
    <namespaces>
      <namespace key="10" case="first-letter">Template</namespace>
      <namespace key="828" case="first-letter">Module</namespace>
    </namespaces>
  </siteinfo>
"""


def open_compressed(path: Path) -> BinaryIO:
    """Open by content (magic bytes), not by name: a renamed file still works."""
    with open(path, "rb") as handle:
        magic = handle.read(3)
    if magic == b"BZh":
        return bz2.open(path, "rb")
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def check_head(path: Path, head: bytes) -> bytes:
    """Refuse what is not a UTF-8 MediaWiki dump; return the head without a UTF-8 BOM."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:1024]:
        raise UserError(
            f"{path}: the dump is UTF-16, not UTF-8; convert it with "
            f"'bzcat {path.name} | iconv -f UTF-16 -t UTF-8 | bzip2 > fixed.xml.bz2'"
        )
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if not head.strip():
        raise UserError(f"{path}: the file is empty; download it again")
    if b"<mediawiki" not in head:
        raise UserError(
            f"{path}: not a MediaWiki XML dump (no <mediawiki> element at the start); "
            "use a '*-pages-articles.xml.bz2' file"
        )
    if b"<siteinfo" not in head:
        # Special:Export files have no <siteinfo>; WikiExtractor would read past every
        # page looking for one. Give it an empty one (default namespaces).
        start = head.index(b"<mediawiki")
        end = head.index(b">", start) + 1
        head = head[:end] + DEFAULT_SITEINFO + head[end:]
        print(f"warning: {path}: no <siteinfo> in the dump; using defaults", file=sys.stderr)
    return head


def stream_dump(path: Path, out: BinaryIO) -> int:
    """Write the decompressed, checked dump to `out`; return the number of bytes."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; check wiki.local or the download")
    try:
        with open_compressed(path) as source:
            head = check_head(path, source.read(SNIFF_BYTES))
            out.write(head)
            written = len(head)
            for block in iter(lambda: source.read(CHUNK), b""):
                out.write(block)
                written += len(block)
    except EOFError as error:
        raise UserError(
            f"{path}: the compressed file is truncated ({error}); download it again"
        ) from None
    except OSError as error:
        raise UserError(f"{path}: corrupt compressed data ({error}); download it again") from None
    return written


def main() -> None:
    path = Path(sys.argv[1])
    try:
        stream_dump(path, sys.stdout.buffer)
        sys.stdout.flush()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(3)


if __name__ == "__main__":
    main()
