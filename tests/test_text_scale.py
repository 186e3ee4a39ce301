"""benchmarks/text_scale.py's own parts: a dump cut inside a page is read up to its last
whole page and closed; the projection's arithmetic on hand-made rates."""

from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET

from benchmarks.text_scale import ASSUMED_DUMP_GB, CLUSTER_CORES, projection, whole_pages


def test_a_dump_cut_inside_a_page_ends_at_its_last_whole_page(shared_data, tmp_path):
    data = bz2.decompress((shared_data / "wiki" / "enwiki-sample.xml.bz2").read_bytes())
    cut = tmp_path / "cut.xml.bz2"
    cut.write_bytes(bz2.compress(data)[:-2000])  # the compressed file ends early
    out = tmp_path / "out.xml"
    size = whole_pages(cut, out)
    text = out.read_bytes()
    assert size == len(text) and text.endswith(b"</page>\n</mediawiki>\n")
    root = ET.fromstring(text)  # well-formed XML
    pages = [e for e in root if e.tag.endswith("page")]
    assert 0 < len(pages) < data.count(b"<page>")
    assert data.startswith(text[:-len(b"\n</mediawiki>\n")])


def test_projection_is_the_assumed_text_over_the_measured_rates():
    figures = {"xml_mb": 10.0, "bz2_ratio": 5.0,
               "extract": {"ours_mb_per_cpu_s": 2.0},
               "tokenize": {"words": 100_000, "ours_words_per_cpu_s": 50_000.0},
               "bpe_binarize": {"words": 100_000, "bpe_tokens": 150_000,
                                "bpe_words_per_cpu_s": 1e6, "binarize_tokens_per_cpu_s": 3e6}}
    table = projection({"xx": figures})
    xml_mb = sum(ASSUMED_DUMP_GB.values()) * 1000 * 5.0
    extract_hours = xml_mb / 2.0 / 3600
    words = xml_mb * 10_000
    tokenize_hours = words / 50_000 / 3600
    assert f"| extract | {extract_hours:,.0f} | {extract_hours * 60 / CLUSTER_CORES:,.0f} min |" \
        in table
    assert f"| tokenize | {tokenize_hours:,.0f} |" in table
    assert "1.50 BPE tokens per word" in table
