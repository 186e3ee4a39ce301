"""Sharded extraction of a multistream dump equals the whole dump's extraction.

The multistream file is built here as Wikimedia builds theirs, from a real sample dump:
one bz2 stream for the header, one per `PAGES_PER_STREAM` pages, one for the closing tag,
and the index `offset:page_id:title` of every page. bz2 reads the same file whole, so the
single-file path extracts it too, and the test compares the two."""

from __future__ import annotations

import bz2
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xlm.errors import UserError
from xlm.text.extract import extract
from xlm.text.multistream import read_index, shard_ranges, stream_shard

PAGES_PER_STREAM = 2  # Wikimedia puts 100; a sample dump has fewer pages


def build_multistream(dump: Path, out: Path) -> tuple[Path, Path, int]:
    """(multistream dump, its bz2 index, number of page streams) from a sample dump."""
    xml = bz2.decompress(dump.read_bytes())
    starts = [xml.rindex(b"\n", 0, m.start()) + 1 for m in re.finditer(rb"<page>", xml)]
    first, last = starts[0], xml.rindex(b"</mediawiki>")
    pages = [xml[a:b] for a, b in zip(starts, [*starts[1:], last], strict=True)]
    streams = [bz2.compress(xml[:first])]
    index = []
    offset = len(streams[0])
    for start in range(0, len(pages), PAGES_PER_STREAM):
        group = pages[start:start + PAGES_PER_STREAM]
        for page in group:
            page_id = re.search(rb"<id>(\d+)</id>", page).group(1).decode()
            title = re.search(rb"<title>(.*?)</title>", page).group(1).decode()
            index.append(f"{offset}:{page_id}:{title}\n")
        streams.append(bz2.compress(b"".join(group)))
        offset += len(streams[-1])
    streams.append(bz2.compress(xml[last:]))
    multistream = out / "wiki-multistream.xml.bz2"
    multistream.write_bytes(b"".join(streams))
    index_path = out / "wiki-multistream-index.txt.bz2"
    index_path.write_bytes(bz2.compress("".join(index).encode("utf-8")))
    assert bz2.decompress(multistream.read_bytes()) == xml
    return multistream, index_path, len(streams) - 2


@pytest.fixture(scope="module")
def multistream(shared_data, tmp_path_factory):
    return build_multistream(shared_data / "wiki" / "enwiki-sample.xml.bz2",
                             tmp_path_factory.mktemp("multistream"))


def test_shards_cut_on_stream_boundaries_and_cover_the_pages(multistream):
    dump, index, n_streams = multistream
    offsets = read_index(index)
    assert len(offsets) == n_streams > 4
    size = dump.stat().st_size
    ranges = shard_ranges(offsets, size, 3)
    assert ranges[0][0] == offsets[0] and ranges[-1][1] == size
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert all(start in offsets for start, end in ranges if start < end)
    assert all(end > start for start, end in ranges)  # enough streams for 3 shards
    # More shards than streams: some shards are empty, the others still cover every
    # stream once, each starting on a stream.
    many = shard_ranges(offsets, size, n_streams + 3)
    assert len(many) == n_streams + 3 and sum(end - start for start, end in many) == (
        size - offsets[0])
    assert all(start in offsets for start, end in many if start < end)
    assert any(start == end for start, end in many)


def test_sharded_extraction_equals_the_whole_dump(multistream, tmp_path):
    dump, index, _ = multistream
    whole = tmp_path / "whole.txt"
    extract(dump, whole)
    parts = []
    for shard in range(3):
        parts.append(tmp_path / f"part{shard}.txt")
        extract(dump, parts[-1], shard=(index, shard, 3))
    joined = "".join(part.read_text(encoding="utf-8") for part in parts)
    assert joined == whole.read_text(encoding="utf-8")
    assert all(part.stat().st_size > 0 for part in parts)
    assert len(joined.splitlines()) > 100


def test_each_shard_is_a_dump_of_its_own_pages(multistream, tmp_path):
    dump, index, _ = multistream
    texts = []
    for shard in range(2):
        with open(tmp_path / f"s{shard}.xml", "wb") as out:
            stream_shard(dump, index, shard, 2, out)
        texts.append((tmp_path / f"s{shard}.xml").read_bytes())
    whole = bz2.decompress(dump.read_bytes())
    for text in texts:
        assert text.startswith(whole[:whole.index(b"<page>")].rstrip(b" "))
        assert text.rstrip().endswith(b"</mediawiki>") and text.count(b"<mediawiki") == 1
    pages = [re.findall(rb"<page>.*?</page>", t, flags=re.DOTALL) for t in texts]
    assert pages[0] + pages[1] == re.findall(rb"<page>.*?</page>", whole, flags=re.DOTALL)


def test_an_index_of_another_dump_is_refused_in_one_line(multistream, shared_data, tmp_path):
    dump, index, _ = multistream
    wrong = tmp_path / "wrong-index.txt"
    wrong.write_text("".join(f"{o + 1}:1:x\n" for o in read_index(index)), encoding="utf-8")
    with pytest.raises(UserError, match="no bz2 stream starts at byte"):
        stream_shard(dump, wrong, 1, 2, open(tmp_path / "out.xml", "wb"))
    ordinary = shared_data / "wiki" / "frwiki-sample.xml.bz2"
    result = subprocess.run([sys.executable, "-m", "xlm", "extract", "--dump", str(ordinary),
                             "--output", str(tmp_path / "fr.txt"), "--index", str(index),
                             "--shard", "0", "--shards", "2"], capture_output=True, text=True)
    assert result.returncode != 0 and not (tmp_path / "fr.txt").exists()
    message = result.stderr.strip().splitlines()[-1]
    assert "frwiki-sample.xml.bz2" in message and "multistream" in message, result.stderr


def test_workflow_extracts_a_multistream_dump_in_shards(multistream, shared_data, tmp_path):
    """`extract.shards: 3` with wiki.local_index: three extract_wiki_shard jobs and a merge,
    giving the text of the single-job extraction; English without an index stays one job."""
    from workflow import base_config, snakemake, write_config

    dump, index, _ = multistream
    config = base_config(shared_data)
    config["wiki"]["local"]["en"] = str(dump)
    config["wiki"]["local_index"] = {"en": str(index)}
    config["extract"]["shards"] = 3
    write_config(tmp_path / "run", config)
    snakemake(tmp_path / "run", "data/extract/en.txt", "data/extract/fr.txt")
    whole = tmp_path / "whole.txt"
    extract(dump, whole)
    run = tmp_path / "run"
    assert (run / "data/extract/en.txt").read_text(encoding="utf-8") == whole.read_text(
        encoding="utf-8")
    assert sorted(p.name for p in (run / "logs/extract_wiki").iterdir()) == [
        "en.0.log", "en.1.log", "en.2.log", "fr.log"]
    assert not list((run / "data/extract/shards").glob("*"))  # temporary, removed
