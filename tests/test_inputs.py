"""User inputs as they come: plain, .gz or .xz (real files of ../shared/data, compressed in
the test), and line-aligned pairs of unequal length refused before tokenizing, naming the
files and the config key."""

from __future__ import annotations

import bz2
import gzip
import itertools
import json
import lzma
import shutil
import tracemalloc
from pathlib import Path

import pytest
from workflow import absolute_demo_paths, base_config, snakemake, write_config

from xlm.cli import main
from xlm.data.xnli import read_pairs
from xlm.errors import UserError
from xlm.io import compression, copy_text, count_lines, open_text
from xlm.tasks.embeddings import read_dictionary
from xlm.tasks.mt_eval import read_lines
from xlm.text.bpe import apply_codes
from xlm.text.inputs import check_aligned
from xlm.text.shard import merge_files, shard_file
from xlm.text.split import split_file
from xlm.text.tokenize import tokenize_file
from xlm.text.tokenizers import TokenizerOptions

OPENERS = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}


def compressed(source: Path, folder: Path, suffix: str, data: bytes | None = None) -> Path:
    """A copy of `source` (or of `data`) compressed by suffix, in `folder`."""
    target = folder / (source.name + suffix)
    with OPENERS[suffix](target, "wb") as out:
        out.write(source.read_bytes() if data is None else data)
    return target


def head(source: Path, folder: Path, lines: int, name: str | None = None) -> Path:
    """The first `lines` lines of a real file, as a plain file in `folder`."""
    target = folder / (name or source.name)
    with open(source, encoding="utf-8") as handle:
        target.write_text("".join(itertools.islice(handle, lines)), encoding="utf-8")
    return target


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".bz2"])
def test_compressed_copy_reads_like_the_plain_file(tmp_path, shared_data, suffix):
    plain = shared_data / "para" / "tatoeba" / "en-th.th"
    packed = compressed(plain, tmp_path, suffix)
    assert compression(plain) is None and compression(packed) is not None
    with open(plain, encoding="utf-8") as handle, open_text(packed) as lines:
        assert list(lines) == list(handle)
    assert count_lines(packed) == count_lines(plain) == 1154
    # Recognised by content: a compressed corpus saved as .txt (a downloaded side) reads too.
    renamed = packed.rename(tmp_path / "downloaded.txt")
    assert list(open_text(renamed)) == plain.read_text(encoding="utf-8").splitlines(True)


@pytest.mark.parametrize("suffix", [".gz", ".xz"])
def test_reading_a_compressed_corpus_keeps_memory_flat(tmp_path, shared_data, suffix):
    """11 MB of real text (a Tatoeba side 20 times) counted and read in under 4 MB."""
    text = (shared_data / "para" / "tatoeba" / "en-fr.fr").read_bytes()
    path = tmp_path / ("big.fr" + suffix)
    options = {"compresslevel": 1} if suffix == ".gz" else {"preset": 0}
    with OPENERS[suffix](path, "wb", **options) as out:
        for _ in range(20):
            out.write(text)
    del text
    tracemalloc.start()
    try:
        lines = count_lines(path)
        read = sum(1 for _ in open_text(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == read == 20 * 12681
    assert peak < 4 * 2**20, peak


def test_lines_end_at_newline_only(tmp_path):
    """CRLF reads as LF; a stray CR stays inside its line; a last line without a newline
    counts, so counted lines are read lines."""
    path = tmp_path / "odd.txt"
    path.write_bytes(b"one\r\ntwo\rstill two\nthree")
    packed = compressed(path, tmp_path, ".xz")
    for source in (path, packed):
        assert list(open_text(source)) == ["one\n", "two\rstill two\n", "three"]
        assert count_lines(source) == 3
    assert count_lines(tmp_path / "odd.txt") == 3
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert count_lines(empty) == 0 and list(open_text(empty)) == []


def test_truncated_or_foreign_input_is_one_clear_error(tmp_path, shared_data):
    whole = compressed(shared_data / "para" / "tatoeba" / "en-fr.fr", tmp_path, ".gz")
    cut = tmp_path / "cut.fr.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(UserError, match=r"cut\.fr\.gz: cannot be read as gzip-compressed"):
        list(open_text(cut))
    with pytest.raises(UserError, match=r"cut\.fr\.gz: cannot be read as gzip-compressed"):
        count_lines(cut)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1\.txt: cannot be read as UTF-8 text"):
        list(open_text(latin1))
    with pytest.raises(UserError, match=r"missing\.gz: no such file"):
        open_text(tmp_path / "missing.gz")


@pytest.mark.parametrize("suffix", [".gz", ".xz"])
def test_split_of_compressed_local_text(tmp_path, shared_data, suffix):
    plain = shared_data / "lowres" / "flores1-dev.ne-en.ne"
    outputs = {}
    for name, source in (("plain", plain), ("packed", compressed(plain, tmp_path, suffix))):
        outputs[name] = {split: tmp_path / name / f"{split}.txt"
                         for split in ("train", "valid", "test")}
        counts = split_file(source, outputs[name], 100, 100, 0.1, seed=3)
    assert counts == {"train": 2359, "valid": 100, "test": 100}
    for split in ("train", "valid", "test"):
        assert outputs["packed"][split].read_bytes() == outputs["plain"][split].read_bytes()


def test_split_of_text_without_final_newline(tmp_path, shared_data):
    """The last line of a file lacking a final newline is kept as a line of its own."""
    source = head(shared_data / "lowres" / "flores1-dev.ne-en.ne", tmp_path, 50)
    source.write_bytes(source.read_bytes().rstrip(b"\n"))
    outputs = {split: tmp_path / f"{split}.txt" for split in ("train", "valid", "test")}
    split_file(source, outputs, 5, 5, 0.1, seed=0)
    lines = sorted(line for path in outputs.values()
                   for line in path.read_text(encoding="utf-8").splitlines())
    assert lines == sorted(source.read_text(encoding="utf-8").splitlines())


def test_stray_carriage_return_stays_inside_its_line_through_split_and_shards(tmp_path,
                                                                              shared_data):
    """Lines counted are lines read at every step, so shards hold every line."""
    lines = head(shared_data / "lowres" / "flores1-dev.ne-en.ne", tmp_path, 200
                 ).read_text(encoding="utf-8").splitlines(True)
    lines[7] = lines[7].replace(" ", "\r", 1)
    source = tmp_path / "ne.txt.gz"
    with gzip.open(source, "wt", encoding="utf-8", newline="") as out:
        out.write("".join(lines))
    outputs = {split: tmp_path / f"{split}.txt" for split in ("train", "valid", "test")}
    counts = split_file(source, outputs, 10, 10, 0.1, seed=0)
    assert counts["train"] == 180 == count_lines(outputs["train"])
    shards = [tmp_path / f"train.{i}" for i in range(3)]
    assert shard_file(outputs["train"], shards) == [60, 60, 60]
    merge_files(shards, tmp_path / "merged.txt")
    assert (tmp_path / "merged.txt").read_bytes() == outputs["train"].read_bytes()


@pytest.mark.parametrize("suffix", [".gz", ".xz"])
def test_tokenize_of_a_compressed_parallel_side(tmp_path, shared_data, suffix):
    plain = head(shared_data / "para" / "tatoeba" / "en-fr.fr", tmp_path, 300)
    options = TokenizerOptions()
    tokenize_file("fr", plain, tmp_path / "plain.tok", options)
    assert tokenize_file("fr", compressed(plain, tmp_path, suffix), tmp_path / "packed.tok",
                         options) == 300
    assert (tmp_path / "packed.tok").read_bytes() == (tmp_path / "plain.tok").read_bytes()


@pytest.mark.parametrize("suffix", [".gz", ".xz"])
def test_xnli_tsv_and_muse_dictionary_compressed(tmp_path, shared_data, suffix):
    tsv = tmp_path / "dev.de.tsv"
    with gzip.open(shared_data / "xnli" / "dev.de.tsv.gz", "rb") as handle:
        tsv.write_bytes(handle.read())
    rows = read_pairs(tsv, "de")
    assert len(rows) == 2490
    assert read_pairs(compressed(tsv, tmp_path, suffix), "de") == rows
    muse = shared_data / "dict" / "muse-test-5000-6500.en-de.txt"
    pairs = read_dictionary(muse)
    assert len(pairs) > 1000
    assert read_dictionary(compressed(muse, tmp_path, suffix)) == pairs


def test_mt_reference_copy_is_plain(tmp_path, shared_data):
    plain = shared_data / "mt" / "wmt16-en-ro" / "newstest2016.ro"
    assert copy_text(compressed(plain, tmp_path, ".xz"), tmp_path / "ref") == 1999
    assert (tmp_path / "ref").read_bytes() == plain.read_bytes()


def test_references_split_at_newlines_only(tmp_path, shared_data):
    """A real sentence holding U+001D (XNLI Greek test) stays one reference line."""
    with gzip.open(shared_data / "xnli" / "test.el.tsv.gz", "rt", encoding="utf-8") as handle:
        sentence = next(line.split("\t")[0] for line in handle if "\x1d" in line)
    ref = head(shared_data / "mt" / "wmt16-en-ro" / "newstest2016.ro", tmp_path, 20, "ref")
    with open(ref, "a", encoding="utf-8") as out:
        out.write(sentence + "\n")
    lines = read_lines(ref)
    assert len(lines) == count_lines(ref) == 21
    assert lines[-1] == sentence


def test_compressed_bpe_codes_are_refused(tmp_path, shared_data):
    codes = tmp_path / "codes"
    codes.write_text("e s</w> 10\n", encoding="utf-8")
    packed = compressed(codes, tmp_path, ".gz")
    with pytest.raises(UserError, match=r"codes\.gz: gzip-compressed.*`bpe\.codes`"):
        apply_codes(packed, None, [], [])


def test_aligned_sides_counted_compressed(tmp_path, shared_data):
    sides = [compressed(shared_data / "para" / "tatoeba" / f"en-ro.{lang}", tmp_path, suffix)
             for lang, suffix in (("en", ".gz"), ("ro", ".xz"))]
    assert check_aligned(sides, "parallel.pairs.en-ro.train") == 5508


def test_unaligned_sides_are_one_line_naming_files_and_key(tmp_path, shared_data, capsys):
    en = head(shared_data / "mt" / "wmt16-en-ro" / "newstest2016.en", tmp_path, 40)
    ro = compressed(head(shared_data / "mt" / "wmt16-en-ro" / "newstest2016.ro", tmp_path, 39),
                    tmp_path, ".gz")
    output = tmp_path / "aligned.json"
    with pytest.raises(SystemExit) as exit_info:
        main(["check-aligned", "--inputs", str(en), str(ro), "--key",
              "mt_data.pairs.en-ro.test", "--output", str(output)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert error.startswith("error: key 'mt_data.pairs.en-ro.test': ")
    assert f"{en} has 40 lines but {ro} has 39 lines" in error
    assert not output.exists()
    main(["check-aligned", "--inputs", str(en), str(en), "--key", "k", "--output", str(output)])
    assert json.loads(output.read_text())["lines"] == 40


def test_study_corpora_are_read_as_distributed(tmp_path, shared_data):
    """The gzip corpora of ../shared/data/study, unpacked by nobody: line-aligned pairs of
    the documented sizes, an NLI TSV, monolingual text split."""
    study = shared_data / "study"
    for folder, pair, lines in (("libreoffice", "en-hi", 5783), ("wmt-news", "en-fr", 18044)):
        sides = [study / "para" / folder / f"{pair}.{lang}.gz" for lang in pair.split("-")]
        assert check_aligned(sides, f"parallel.pairs.{pair}.train") == lines
    assert len(read_pairs(study / "nli" / "sick.tsv.gz", "en")) == 9840
    outputs = {split: tmp_path / f"{split}.txt" for split in ("train", "valid", "test")}
    assert sum(split_file(study / "mono" / "news" / "ne.txt.gz", outputs, 20, 20, 0.1,
                          seed=0).values()) == 386


def test_workflow_reads_compressed_inputs_and_refuses_unaligned_pairs(tmp_path, shared_data):
    """One Snakemake run (--keep-going): Nepali local_text as .gz, an en-fr parallel split
    with an .xz French side and an MT test set with a .gz French side are read like the
    plain files; an en-ro parallel split and an en-ro MT test set whose sides differ by
    one line stop before tokenizing, naming both files and their config keys."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    ne = head(shared_data / "lowres" / "flores1-dev.ne-en.ne", inputs, 300, "ne.txt")
    para = {lang: head(shared_data / "para" / "flores200" / f"devtest.{lang}", inputs, 60,
                       f"valid.{lang}") for lang in ("en", "fr")}
    mt = {lang: head(shared_data / "mt" / "wmt14-en-fr" / f"newstest2014.{lang}", inputs, 50,
                     f"test.{lang}") for lang in ("en", "fr")}
    bad_en = head(shared_data / "para" / "tatoeba" / "en-ro.en", inputs, 80, "bad.en")
    bad_ro = compressed(head(shared_data / "para" / "tatoeba" / "en-ro.ro", inputs, 79,
                             "bad.ro"), inputs, ".gz")
    bad_mt = {"en": head(shared_data / "mt" / "wmt16-en-ro" / "newstest2016.en", inputs, 30,
                         "newstest.en"),
              "ro": compressed(head(shared_data / "mt" / "wmt16-en-ro" / "newstest2016.ro",
                                    inputs, 31, "newstest.ro"), inputs, ".xz")}

    config = absolute_demo_paths(base_config(shared_data))
    config["local_text"]["ne"] = str(compressed(ne, inputs, ".gz"))
    config["parallel"]["pairs"]["en-fr"]["valid"] = {
        "en": str(para["en"]), "fr": str(compressed(para["fr"], inputs, ".xz"))}
    config["parallel"]["pairs"]["en-ro"]["train"] = {"en": str(bad_en), "ro": str(bad_ro)}
    config["mt_data"]["pairs"]["en-fr"]["test"] = {
        "en": str(mt["en"]), "fr": str(compressed(mt["fr"], inputs, ".gz"))}
    config["mt_data"]["pairs"]["en-ro"]["test"] = {lang: str(p) for lang, p in bad_mt.items()}
    workdir = tmp_path / "run"
    write_config(workdir, config)
    good = ["data/tok/ne.train.txt", "data/para/tok/en-fr.valid.en.txt",
            "data/para/tok/en-fr.valid.fr.txt", "data/mt/en-fr.fr.test.ref",
            "data/mt/tok/en-fr.test.fr.txt"]
    bad = ["data/para/tok/en-ro.train.en.txt", "data/para/tok/en-ro.train.ro.txt",
           "data/mt/en-ro.en.test.ref", "data/mt/en-ro.ro.test.ref"]
    result = snakemake(workdir, "--keep-going", *good, *bad, check=False)
    assert result.returncode != 0

    # The unaligned split: one line naming both given files and the key; nothing tokenized.
    log = (workdir / "logs/parallel/check/en-ro.train.log").read_text(encoding="utf-8")
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {workdir / 'config.yaml'}: key 'parallel.pairs.en-ro.train': "
                      f"{bad_en} has 80 lines but {bad_ro} has 79 lines; the sides must be "
                      "line-aligned (one sentence pair per line): fix the files or point "
                      "'parallel.pairs.en-ro.train' at aligned ones"]
    assert "Traceback" not in log
    assert "check_parallel" in result.stderr and errors[0] in result.stderr  # shown to users
    assert not any((workdir / path).exists() for path in bad)
    assert not list((workdir / "logs/parallel/tokenize").glob("en-ro.*"))
    log = (workdir / "logs/mt/check/en-ro.test.log").read_text(encoding="utf-8")
    assert (f"error: {workdir / 'config.yaml'}: key 'mt_data.pairs.en-ro.test': {bad_mt['en']} "
            f"has 30 lines but {bad_mt['ro']} has 31 lines") in log

    # The compressed inputs gave what the plain files give.
    for path in good:
        assert (workdir / path).is_file(), result.stderr[-3000:]
    split_lines = sum(count_lines(workdir / f"data/text/ne.{split}.txt")
                      for split in ("train", "valid", "test"))
    assert split_lines == 300
    split_file(ne, {split: tmp_path / "plain" / f"ne.{split}.txt"
                    for split in ("train", "valid", "test")},
               config["split"]["valid"], config["split"]["test"],
               config["split"]["max_heldout_fraction"], config["split"]["seed"])
    assert ((workdir / "data/text/ne.train.txt").read_bytes()
            == (tmp_path / "plain" / "ne.train.txt").read_bytes())
    tokenize_file("fr", para["fr"], tmp_path / "plain.fr.tok", TokenizerOptions())
    assert ((workdir / "data/para/tok/en-fr.valid.fr.txt").read_bytes()
            == (tmp_path / "plain.fr.tok").read_bytes())
    assert (workdir / "data/mt/en-fr.fr.test.ref").read_bytes() == mt["fr"].read_bytes()
    assert json.loads((workdir / "data/para/aligned/en-fr.valid.json").read_text())["lines"] == 60

    # The same config under another name reruns nothing (the checks' error messages take
    # the file name from the environment, not from params that would trigger a rerun).
    other = workdir / "other.yaml"
    shutil.copy(workdir / "config.yaml", other)
    dry = snakemake(workdir, *good, "--configfile", str(other), "--dry-run")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout
