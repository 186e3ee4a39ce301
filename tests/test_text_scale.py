"""benchmarks/text_scale.py's own parts: a dump cut inside a page is read up to its last
whole page and closed; the projection's arithmetic on hand-made rates, and its
recomputation from a recorded result."""

from __future__ import annotations

import bz2
import json
import xml.etree.ElementTree as ET

import pytest

from benchmarks.text_scale import CLUSTER_CORES, DUMP_BYTES, projection, reproject, whole_pages

FIGURES = {"xml_mb": 10.0, "bz2_ratio": 5.0,
           "extract": {"ours_mb_per_cpu_s": 2.0},
           "tokenize": {"words": 100_000, "ours_words_per_cpu_s": 50_000.0},
           "bpe_binarize": {"words": 100_000, "bpe_tokens": 150_000,
                            "bpe_words_per_cpu_s": 1e6, "binarize_tokens_per_cpu_s": 3e6}}


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


def test_projection_is_the_dumps_text_over_the_measured_rates():
    table = projection({"xx": FIGURES})
    xml_mb = sum(DUMP_BYTES.values()) / 1e6 * 5.0
    extract_hours = xml_mb / 2.0 / 3600
    words = xml_mb * 10_000
    tokenize_hours = words / 50_000 / 3600
    assert f"| extract | {extract_hours:,.0f} | {extract_hours * 60 / CLUSTER_CORES:,.0f} min |" \
        in table
    assert f"| tokenize | {tokenize_hours:,.0f} |" in table
    assert "1.50 BPE tokens per word" in table
    # Per language: English's extraction is its XML over the rate, and its share of the text.
    english = next(line for line in table.splitlines() if line.startswith("| en |"))
    cells = [cell.strip() for cell in english.strip("|").split("|")]
    en_xml_mb = DUMP_BYTES["en"] / 1e6 * 5.0
    assert float(cells[3]) == pytest.approx(en_xml_mb / 2.0 / 3600, abs=0.05)
    assert cells[-1] == f"{DUMP_BYTES['en'] / sum(DUMP_BYTES.values()):.1%}"
    assert sum(1 for line in table.splitlines() if line.startswith("| ")) == 2 + 5 + 2 + 15


def test_reproject_recomputes_only_the_projection(tmp_path):
    path = tmp_path / "text_scale.json"
    recorded = {"name": "text_scale", "machine": {"date": "then"}, "rows": [{"ours": 1.0}],
                "details": {"xx": FIGURES, "projection": "stale"}}
    path.write_text(json.dumps(recorded), encoding="utf-8")
    table = reproject(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["details"]["projection"] == table == projection({"xx": FIGURES})
    assert data["details"]["xx"] == FIGURES and data["machine"] == {"date": "then"}
    assert data["details"]["dump_sizes"]["bytes"] == DUMP_BYTES
