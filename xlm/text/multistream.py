"""Shards of a Wikimedia `pages-articles-multistream` dump, for extraction in parallel.

A multistream dump is many bz2 streams back to back: the first holds the `<mediawiki>`
header and `<siteinfo>`, each of the next holds 100 `<page>`s, the last closes
`</mediawiki>`. Its index (`...-multistream-index.txt.bz2`, lines `offset:page_id:title`)
gives the byte offset of the stream of every page. A shard is a byte range cut on stream
boundaries; `stream_shard` writes it as a dump of its own (the header, the shard's pages,
the closing tag), so WikiExtractor extracts each shard as a separate job and the shards'
outputs, joined in order, equal the whole dump's.

Run as `python -m xlm.text.multistream DUMP INDEX SHARD SHARDS` it writes shard SHARD
(0-based) of SHARDS to stdout, as `python -m xlm.text.dump` writes a whole dump.
"""

from __future__ import annotations

import bisect
import bz2
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from xlm.errors import UserError
from xlm.text.dump import check_head, open_compressed

CHUNK = 1 << 20
CLOSING = b"</mediawiki>\n"


def read_index(index: Path) -> list[int]:
    """The distinct stream offsets of an index (bz2, gz or plain), in increasing order."""
    index = Path(index)
    if not index.is_file():
        raise UserError(f"{index}: no such file; give the dump's multistream index "
                        "(wiki.local_index or wiki.index_url)")
    offsets: set[int] = set()
    try:
        with open_compressed(index) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                head = line.split(b":", 1)[0]
                if not head.isdigit():
                    raise UserError(f"{index}: line {number} is not 'offset:page_id:title'; "
                                    "give the '-multistream-index' file of the dump")
                offsets.add(int(head))
    except (EOFError, OSError) as error:
        raise UserError(f"{index}: unreadable ({error}); download it again") from None
    if not offsets:
        raise UserError(f"{index}: the index is empty; download it again")
    return sorted(offsets)


def shard_ranges(offsets: list[int], size: int, shards: int) -> list[tuple[int, int]]:
    """`shards` byte ranges of the page streams (from the first offset to the end of the
    file), cut at the stream boundary nearest each equal share; a range may be empty
    when there are fewer streams than shards."""
    start = offsets[0]
    cuts = [start]
    for i in range(1, shards):
        target = start + (size - start) * i / shards
        at = bisect.bisect_left(offsets, target)  # the offsets on either side of target
        near = [o for o in offsets[max(at - 1, 0):at + 1] if o >= cuts[-1]]
        cuts.append(min(near, key=lambda o: abs(o - target)) if near else cuts[-1])
    cuts.append(size)
    return list(zip(cuts, cuts[1:], strict=False))


def decompress_range(handle: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    """The decompressed bytes of the bz2 streams in [start, end) of an open file."""
    handle.seek(start)
    left = end - start
    decompressor = bz2.BZ2Decompressor()
    while left > 0:
        block = handle.read(min(CHUNK, left))
        if not block:
            raise EOFError("the dump ends before the index says")
        left -= len(block)
        while block:
            if decompressor.eof:
                decompressor = bz2.BZ2Decompressor()
            yield decompressor.decompress(block)
            block = decompressor.unused_data if decompressor.eof else b""
    if not decompressor.eof and end > start:
        raise EOFError("a bz2 stream is cut at the end of the range")


def stream_shard(dump: Path, index: Path, shard: int, shards: int, out: BinaryIO) -> int:
    """Write shard `shard` of `shards` of a multistream dump, as a dump, to `out`; return
    the number of bytes written."""
    dump = Path(dump)
    if not dump.is_file():
        raise UserError(f"{dump}: no such file; check wiki.local or the download")
    if not 0 <= shard < shards:
        raise UserError(f"shard {shard} of {shards}: give 0 <= shard < shards")
    offsets = read_index(index)
    size = dump.stat().st_size
    if offsets[-1] >= size:
        raise UserError(f"{index}: offset {offsets[-1]} is past the end of {dump} "
                        f"({size} bytes); give the '-multistream-index' of this very dump")
    start, end = shard_ranges(offsets, size, shards)[shard]
    written = 0
    try:
        with open(dump, "rb") as handle:
            for offset in {offsets[0], start} - {size}:
                handle.seek(offset)
                if handle.read(3) != b"BZh":
                    raise UserError(f"{index}: no bz2 stream starts at byte {offset} of "
                                    f"{dump}; is it the '-multistream' dump of this index?")
            head = check_head(dump, b"".join(decompress_range(handle, 0, offsets[0])))
            end_of_header = head.find(b"<page>")
            if end_of_header >= 0:
                raise UserError(f"{dump}: the first stream holds pages; it is not a "
                                "multistream dump (use the single-file extraction)")
            out.write(head)
            written += len(head)
            for block in decompress_range(handle, start, end):
                out.write(block)
                written += len(block)
            if end < size or start == end:  # the last stream closes </mediawiki> itself
                out.write(CLOSING)
                written += len(CLOSING)
    except EOFError as error:
        raise UserError(f"{dump}: truncated or cut off the stream boundaries ({error}); "
                        "download it again") from None
    except OSError as error:
        raise UserError(f"{dump}: corrupt compressed data ({error}); download it again") from None
    return written


def main() -> None:
    dump, index, shard, shards = sys.argv[1:5]
    try:
        stream_shard(Path(dump), Path(index), int(shard), int(shards), sys.stdout.buffer)
        sys.stdout.flush()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(3)


if __name__ == "__main__":
    main()
