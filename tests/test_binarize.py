"""Dictionary ids, binarized datasets and their round trip on real text."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from sacremoses import MosesTokenizer

from xlm.data.binarize import binarize_file, binarize_pair
from xlm.data.dictionary import MASK, N_SPECIAL, UNK, Dictionary
from xlm.data.indexed import IndexedDataset, binarize_lines
from xlm.errors import UserError
from xlm.io import count_lines
from xlm.text.bpe import apply_codes, build_vocab, learn_codes, remove_bpe


@pytest.fixture(scope="module")
def bpe_data(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Moses-tokenized FLORES-200 English and French, BPE'd with 800 codes and a vocab
    capped at 900 words, so that some BPE units become `<unk>`."""
    folder = tmp_path_factory.mktemp("bin")
    flores = shared_data / "para" / "flores200"
    paths: dict[str, Path] = {}
    for lang in ("en", "fr"):
        tokenizer = MosesTokenizer(lang=lang)
        lines = (flores / f"devtest.{lang}").read_text(encoding="utf-8").splitlines()
        tok = folder / f"{lang}.tok"
        tok.write_text("".join(tokenizer.tokenize(line, return_str=True, escape=True) + "\n"
                               for line in lines[:400]), encoding="utf-8")
        paths[f"{lang}.tok"] = tok
    joined = folder / "train.tok"
    joined.write_text(paths["en.tok"].read_text("utf-8") + paths["fr.tok"].read_text("utf-8"))
    learn_codes(joined, 800, folder / "codes")
    for lang in ("en", "fr"):
        paths[f"{lang}.bpe"] = folder / f"{lang}.bpe"
    apply_codes(folder / "codes", None, [paths["en.tok"], paths["fr.tok"]],
                [paths["en.bpe"], paths["fr.bpe"]])
    build_vocab([paths["en.bpe"], paths["fr.bpe"]], folder / "vocab", max_vocab=900)
    paths["vocab"] = folder / "vocab"
    return paths


def test_special_ids(bpe_data: dict[str, Path]) -> None:
    d = Dictionary.read_vocab(bpe_data["vocab"])
    assert len(d) == 900 + 14
    assert [d.word(i) for i in range(4)] == ["<s>", "</s>", "<pad>", "<unk>"]
    assert [d.word(i) for i in range(4, 14)] == [f"<special{i}>" for i in range(10)]
    assert (d.bos_index, d.eos_index, d.pad_index, d.unk_index, d.mask_index) == (0, 1, 2, 3, 5)
    assert d.word(MASK) == "<special1>"
    first_word, first_count = bpe_data["vocab"].read_text("utf-8").split("\n")[0].split(" ")
    assert d.index(first_word) == N_SPECIAL and d.counts[N_SPECIAL] == int(first_count)
    assert d.counts[:N_SPECIAL].sum() == 0
    assert d.index("never-seen-word") == UNK
    assert Dictionary.read_vocab(bpe_data["vocab"], max_vocab=10).word(23) == d.word(23)


def test_save_and_load(bpe_data: dict[str, Path], tmp_path: Path) -> None:
    d = Dictionary.read_vocab(bpe_data["vocab"])
    d.save(tmp_path / "vocab")
    assert (tmp_path / "vocab").read_bytes() == bpe_data["vocab"].read_bytes()
    assert Dictionary.load(tmp_path / "vocab") == d


def test_increasing_counts_are_refused(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab"
    vocab.write_text("the 10\nof 7\nand 9\n")
    with pytest.raises(UserError, match=r"vocab:3: count 9 is larger than the previous"):
        Dictionary.read_vocab(vocab)


def test_malformed_vocab_line_is_refused(tmp_path: Path) -> None:
    vocab = tmp_path / "vocab"
    vocab.write_text("the 10\nof\n")
    with pytest.raises(UserError, match=r"vocab:2: expected 'word count'"):
        Dictionary.read_vocab(vocab)


def test_round_trip_on_real_text(bpe_data: dict[str, Path], tmp_path: Path) -> None:
    d = Dictionary.read_vocab(bpe_data["vocab"])
    binarize_file(bpe_data["vocab"], bpe_data["en.bpe"], tmp_path / "en.train")
    ds = IndexedDataset(tmp_path / "en.train", d)
    bpe_lines = bpe_data["en.bpe"].read_text("utf-8").splitlines()
    tok_lines = bpe_data["en.tok"].read_text("utf-8").splitlines()
    assert len(ds) == len(bpe_lines) == 400
    n_words = sum(len(line.split()) for line in bpe_lines)
    assert ds.num_tokens == n_words + 400 == len(ds.tokens)
    assert ds.tokens.dtype == np.uint16
    # `</s>` closes every sentence of the stream; ds[i] leaves it out.
    ends = ds.offsets[1:] - 1
    assert (ds.tokens[ends] == d.eos_index).all()
    assert (ds.tokens == d.eos_index).sum() == 400
    assert ds.lengths.tolist() == [len(line.split()) for line in bpe_lines]
    unknown = exact = 0
    for i in range(len(ds)):
        decoded = remove_bpe(ds.decode(i))
        expected_units = [w if w in d else "<unk>" for w in bpe_lines[i].split()]
        unknown += expected_units.count("<unk>")
        assert decoded == remove_bpe(" ".join(expected_units))
        if "<unk>" not in expected_units:
            assert decoded == tok_lines[i]  # the tokenized text, exactly
            exact += 1
    assert exact > 50, "most sentences should need no <unk>"
    assert unknown > 0, "the capped vocabulary should leave some units unknown"
    assert int((ds.tokens == UNK).sum()) == unknown


def test_unknown_words_are_counted(bpe_data: dict[str, Path], tmp_path: Path) -> None:
    d = Dictionary.read_vocab(bpe_data["vocab"])
    lines = bpe_data["fr.bpe"].read_text("utf-8").splitlines()
    stats = binarize_lines(lines, d, tmp_path / "fr")
    expected = sum(w not in d for line in lines for w in line.split())
    assert stats.unknown == expected > 0
    assert sum(stats.unknown_words.values()) == expected
    assert stats.sentences == 400 and stats.empty == 0


def test_special_token_in_text_is_refused(bpe_data: dict[str, Path], tmp_path: Path) -> None:
    d = Dictionary.read_vocab(bpe_data["vocab"])
    lines = ["a b c", "hello </s> world"]
    with pytest.raises(UserError, match=r"corpus\.txt:2: .*special token '</s>'"):
        binarize_lines(lines, d, tmp_path / "x", source="corpus.txt")
    assert not (tmp_path / "x.bin").exists() and not (tmp_path / "x.idx").exists()
    with pytest.raises(UserError, match="<special1>"):
        binarize_lines(["a <special1>"], d, tmp_path / "x")


def test_empty_lines_are_kept(bpe_data: dict[str, Path], tmp_path: Path) -> None:
    d = Dictionary.read_vocab(bpe_data["vocab"])
    stats = binarize_lines(["", "the", ""], d, tmp_path / "x")
    ds = IndexedDataset(tmp_path / "x")
    assert len(ds) == 3 and stats.empty == 2
    assert ds[0].tolist() == [] and ds[1].tolist() == [d.index("the")]
    assert ds.tokens.tolist() == [1, d.index("the"), 1, 1]
    assert ds.offsets.tolist() == [0, 1, 3, 4]


@pytest.mark.parametrize(("n_words", "dtype"), [(65536 - 14 - 1, np.uint16),
                                                (65536 - 14, np.int32)])
def test_dtype_switches_at_65536(tmp_path: Path, n_words: int, dtype: type) -> None:
    words = [f"w{i}" for i in range(n_words)]
    d = Dictionary(words, list(range(n_words, 0, -1)))
    assert len(d) == n_words + 14
    assert d.dtype == dtype
    last = words[-1]
    binarize_lines([f"w0 {last}", last], d, tmp_path / "x")
    ds = IndexedDataset(tmp_path / "x", d)
    assert ds.tokens.dtype == dtype
    assert (tmp_path / "x.bin").stat().st_size == 5 * np.dtype(dtype).itemsize
    assert ds[0].tolist() == [14, len(d) - 1]
    assert ds.decode(1) == last


def test_parallel_sides_of_different_lengths(bpe_data: dict[str, Path], shared_data: Path,
                                             tmp_path: Path) -> None:
    tatoeba = shared_data / "para" / "tatoeba"
    with pytest.raises(UserError, match=r"en-fr\.en has 12681 lines but .*en-ro\.ro has 5508"):
        binarize_pair(bpe_data["vocab"], (tatoeba / "en-fr.en", tatoeba / "en-ro.ro"),
                      (tmp_path / "a", tmp_path / "b"), max_len=100)
    assert not list(tmp_path.iterdir())


def test_pairs_are_filtered_and_stay_aligned(bpe_data: dict[str, Path], tmp_path: Path) -> None:
    en = bpe_data["en.bpe"].read_text("utf-8").splitlines()
    fr = bpe_data["fr.bpe"].read_text("utf-8").splitlines()
    en[3], fr[7] = "", "   "
    (tmp_path / "en").write_text("\n".join(en) + "\n", encoding="utf-8")
    (tmp_path / "fr").write_text("\n".join(fr) + "\n", encoding="utf-8")
    max_len = 40
    stats = binarize_pair(bpe_data["vocab"], (tmp_path / "en", tmp_path / "fr"),
                          (tmp_path / "p.en", tmp_path / "p.fr"), max_len)
    kept = [(a, b) for a, b in zip(en, fr, strict=True)
            if a.split() and b.split() and max(len(a.split()), len(b.split())) <= max_len]
    assert stats.dropped_empty == 2
    assert stats.kept == len(kept) == 400 - 2 - stats.dropped_long
    assert stats.dropped_long > 0
    d = Dictionary.read_vocab(bpe_data["vocab"])
    src, tgt = IndexedDataset(tmp_path / "p.en", d), IndexedDataset(tmp_path / "p.fr", d)
    assert len(src) == len(tgt) == len(kept)
    for i in (0, len(kept) // 2, len(kept) - 1):
        assert src.decode(i) == re.sub(r"\S+", lambda m: m[0] if m[0] in d else "<unk>",
                                       kept[i][0])
        assert len(tgt[i]) == len(kept[i][1].split())
    assert count_lines(tmp_path / "en") == 400
