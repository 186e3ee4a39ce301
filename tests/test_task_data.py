"""XNLI reading (both layouts), MT test sets kept whole, and the demo's task data."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
import yaml

from xlm.cli import main
from xlm.data.binarize import binarize_pair
from xlm.data.dictionary import Dictionary
from xlm.data.indexed import IndexedDataset
from xlm.data.xnli import LABELS, load_labels, read_pairs, write_pairs
from xlm.errors import UserError
from xlm.io import count_lines


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_per_language_tsv(shared_data: Path) -> None:
    rows = read_pairs(shared_data / "xnli" / "dev.fr.tsv.gz", "fr")
    assert len(rows) == 2490
    assert {label for _, _, label in rows} == set(LABELS)
    assert all(premise and hypothesis for premise, hypothesis, _ in rows)
    assert all("\t" not in premise for premise, _, _ in rows)


def test_test_labels_share_one_row_order(shared_data: Path) -> None:
    english = read_pairs(shared_data / "xnli" / "test.en.tsv.gz", "en")
    thai = read_pairs(shared_data / "xnli" / "test.th.tsv.gz", "th")
    assert len(english) == len(thai) == 5010
    assert [r[2] for r in english] == [r[2] for r in thai]


def xnli_1_0_file(shared_data: Path, path: Path) -> None:
    """XNLI 1.0's all-language layout, filled with the real English and French dev rows."""
    header = ["language", "gold_label", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "promptID",
              "pairID", "genre", "label1", "label2", "label3", "label4", "label5",
              "sentence1_tokenized", "sentence2_tokenized", "match"]
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None,
                            lineterminator="\n")
        writer.writerow(header)
        for lang in ("en", "fr"):
            with gzip.open(shared_data / "xnli" / f"dev.{lang}.tsv.gz", "rt",
                           encoding="utf-8") as handle:
                next(handle)
                for number, line in enumerate(handle):
                    premise, hypothesis, label = line.rstrip("\n").split("\t")
                    writer.writerow([lang, label, "", "", "", "", premise, hypothesis, number,
                                     number, "fiction", label, "", "", "", "", premise,
                                     hypothesis, "True"])


def test_xnli_1_0_layout_keeps_one_language(shared_data: Path, tmp_path: Path) -> None:
    combined = tmp_path / "xnli.dev.tsv"
    xnli_1_0_file(shared_data, combined)
    french = read_pairs(combined, "fr")
    assert french == read_pairs(shared_data / "xnli" / "dev.fr.tsv.gz", "fr")
    assert len(read_pairs(combined, "en")) == 2490
    with pytest.raises(UserError, match="no sentence pairs for language 'de'"):
        read_pairs(combined, "de")


def test_written_files_are_aligned(shared_data: Path, tmp_path: Path) -> None:
    rows = read_pairs(shared_data / "xnli" / "test.zh.tsv.gz", "zh")
    write_pairs(rows, tmp_path / "s1", tmp_path / "s2", tmp_path / "label")
    assert count_lines(tmp_path / "s1") == count_lines(tmp_path / "s2") == 5010
    labels = load_labels(tmp_path / "label")
    assert labels.dtype == np.int64 and labels.shape == (5010,)
    assert [LABELS[i] for i in labels[:5]] == [r[2] for r in rows[:5]]


def test_bad_xnli_files(tmp_path: Path) -> None:
    bad_header = tmp_path / "a.tsv"
    bad_header.write_text("sentence_a\tsentence_b\tlabel\nx\ty\tneutral\n")
    with pytest.raises(UserError, match=r"a\.tsv: header"):
        read_pairs(bad_header, "en")
    bad_label = tmp_path / "b.tsv"
    bad_label.write_text("premise\thypothesis\tlabel\nx\ty\tmaybe\n")
    with pytest.raises(UserError, match=r"b\.tsv:2: label 'maybe'"):
        read_pairs(bad_label, "en")


def test_training_set_of_several_files(shared_data: Path, tmp_path: Path) -> None:
    """`xnli.train` as a list (SNLI + SICK): xnli-extract reads the files in order, each in
    its own layout; a bad file anywhere stops it before any output is written."""
    combined = tmp_path / "xnli.dev.tsv"
    xnli_1_0_file(shared_data, combined)
    sick = shared_data / "study" / "nli" / "sick.tsv.gz"
    outputs = {name: tmp_path / name for name in ("s1", "s2", "label")}
    args = ["xnli-extract", "--lang", "en", "--input", str(sick), str(combined),
            "--premises", str(outputs["s1"]), "--hypotheses", str(outputs["s2"]),
            "--labels", str(outputs["label"])]
    main(args)
    expected = read_pairs(sick, "en") + read_pairs(combined, "en")
    assert len(expected) == 9840 + 2490
    for column, name in enumerate(("s1", "s2", "label")):
        assert lines(outputs[name]) == [row[column] for row in expected]

    bad = tmp_path / "bad.tsv"
    bad.write_text("premise\thypothesis\tlabel\nx\ty\tmaybe\n", encoding="utf-8")
    for path in outputs.values():
        path.unlink()
    args[args.index(str(combined))] = str(bad)
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert not any(path.exists() for path in outputs.values())


def test_mt_test_sets_keep_every_line(shared_data: Path, tmp_path: Path) -> None:
    """Test sets are binarized whole, empty or long lines too, so line i stays line i."""
    wmt = shared_data / "mt" / "wmt16-en-ro"
    vocab = tmp_path / "vocab"
    vocab.write_text("the 100\n, 50\n. 40\n")
    en = (wmt / "newstest2016.en").read_text("utf-8").splitlines()[:300]
    ro = (wmt / "newstest2016.ro").read_text("utf-8").splitlines()[:300]
    en[5] = ""
    (tmp_path / "en").write_text("\n".join(en) + "\n", encoding="utf-8")
    (tmp_path / "ro").write_text("\n".join(ro) + "\n", encoding="utf-8")
    stats = binarize_pair(vocab, (tmp_path / "en", tmp_path / "ro"),
                          (tmp_path / "b.en", tmp_path / "b.ro"), max_len=5, keep_all=True)
    assert stats.kept == 300 and stats.dropped_empty == stats.dropped_long == 0
    d = Dictionary.read_vocab(vocab)
    source = IndexedDataset(tmp_path / "b.en", d)
    assert len(source) == 300 and len(source[5]) == 0
    assert source.lengths.tolist() == [len(line.split()) for line in en]


def test_demo_task_data_is_aligned(repo: Path) -> None:
    """Every pair of the default config names line-aligned files that exist."""
    config = yaml.safe_load((repo / "config.yaml").read_text(encoding="utf-8"))
    for section in ("parallel", "mt_data"):
        for pair, splits in config[section]["pairs"].items():
            for split, sides in splits.items():
                counts = {lang: count_lines(repo / path) for lang, path in sides.items()}
                assert sorted(sides) == sorted(pair.split("-")), (pair, split)
                assert len(set(counts.values())) == 1 and min(counts.values()) > 0, counts
    xnli = config["xnli"]
    for path in [xnli["train"]] if isinstance(xnli["train"], str) else xnli["train"]:
        assert read_pairs(repo / path, "en")
    for lang in xnli["languages"]:
        for split in ("valid", "test"):
            assert read_pairs(repo / xnli[split].format(lang=lang), lang)
