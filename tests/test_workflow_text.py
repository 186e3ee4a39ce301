"""The text stages as a user runs them: real Snakemake, a real download on loopback,
real dumps; then reruns that do only what a changed setting requires."""

from __future__ import annotations

import hashlib
import re
import shutil

import pytest
from httpserver import serve
from workflow import base_config, mtimes, snakemake, tokenized_files, write_config

DATE = "20231101"
LANGS = ("en", "ro", "ja")
TARGETS = tokenized_files(LANGS)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, shared_data):
    """en is downloaded from a loopback mirror; ro and ja come from local dumps."""
    mirror = tmp_path_factory.mktemp("mirror")
    dump = f"enwiki-{DATE}-pages-articles.xml.bz2"
    shutil.copy(shared_data / "wiki" / "enwiki-table-markup.xml.bz2", mirror / dump)
    digest = hashlib.sha1((mirror / dump).read_bytes()).hexdigest()
    (mirror / f"enwiki-{DATE}-sha1sums.txt").write_text(f"{digest}  {dump}\n")
    workdir = tmp_path_factory.mktemp("run")
    config = base_config(shared_data)
    del config["wiki"]["local"]["en"]  # English is downloaded
    config["tokenize"]["shards"] = 2
    with serve(mirror) as (url, _):
        config["wiki"]["url"] = url + "/{lang}wiki-{date}-pages-articles.xml.bz2"
        config["wiki"]["checksum_url"] = url + "/{lang}wiki-{date}-sha1sums.txt"
        write_config(workdir, config)
        snakemake(workdir, *TARGETS)
        yield workdir, config, url


def test_tokenized_splits_exist_for_every_language(text_run):
    workdir, config, _ = text_run
    assert (workdir / "data/raw/wiki/en.xml.bz2").is_file()
    for lang in LANGS:
        counts = {}
        for split in ("train", "valid", "test"):
            text = workdir / f"data/text/{lang}.{split}.txt"
            tok = workdir / f"data/tok/{lang}.{split}.txt"
            raw_lines = text.read_text(encoding="utf-8").splitlines()
            tok_lines = tok.read_text(encoding="utf-8").splitlines()
            assert len(tok_lines) == len(raw_lines) > 0
            assert all(line.strip() for line in tok_lines)
            assert not any(re.search(r"\[\[|\{\{|</?[a-z]+>|&amp;|&quot;", ln) for ln in tok_lines)
            counts[split] = len(tok_lines)
        extracted = len((workdir / f"data/extract/{lang}.txt").read_text().splitlines())
        assert sum(counts.values()) == extracted
        assert counts["valid"] == counts["test"] == max(1, min(5000, int(extracted * 0.1)))
    assert "ș" not in (workdir / "data/tok/ro.train.txt").read_text(encoding="utf-8")
    assert (workdir / "logs/tokenize/ja.train.0.log").read_text().count("tokenize ja") >= 1


def test_second_run_is_a_no_op(text_run):
    workdir, _, _ = text_run
    result = snakemake(workdir, *TARGETS, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_tokenizer_setting_reruns_tokenization_only(text_run):
    workdir, config, url = text_run
    upstream = {**mtimes(workdir, "data/raw/**/*"), **mtimes(workdir, "data/extract/*"),
                **mtimes(workdir, "data/text/*")}
    before = mtimes(workdir, "data/tok/*.txt")
    # A Romanian-only setting reruns Romanian tokenization and nothing else.
    config["tokenize"]["romanian_remove_diacritics"] = False
    with serve(workdir) as (_, requests):  # any download attempt would fail loudly
        write_config(workdir, config)
        snakemake(workdir, *TARGETS)
    after = mtimes(workdir, "data/tok/*.txt")
    changed = {path for path in before if after[path] != before[path]}
    assert changed == {f"data/tok/ro.{s}.txt" for s in ("train", "valid", "test")}
    assert "ș" in (workdir / "data/tok/ro.train.txt").read_text(encoding="utf-8")
    # A setting of every language reruns all tokenization, still no download or extraction.
    config["tokenize"]["lowercase"] = True
    write_config(workdir, config)
    snakemake(workdir, *TARGETS)
    final = mtimes(workdir, "data/tok/*.txt")
    assert all(final[path] != after[path] for path in after)
    assert {**mtimes(workdir, "data/raw/**/*"), **mtimes(workdir, "data/extract/*"),
            **mtimes(workdir, "data/text/*")} == upstream
    english = (workdir / "data/tok/en.train.txt").read_text(encoding="utf-8")
    assert english == english.lower()
