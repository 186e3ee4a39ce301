"""BPE: the α-sampling of training sentences and fastBPE (binding vs `fast` tool)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import fastBPE
import numpy as np
import pytest

from xlm.errors import UserError
from xlm.io import count_lines
from xlm.text.bpe import (
    apply_codes,
    build_vocab,
    fast_binary,
    learn_codes,
    remove_bpe,
    sample_counts,
    sampling_probabilities,
    write_sample,
)


@pytest.fixture(scope="module")
def corpora(shared_data: Path) -> dict[str, Path]:
    """Real corpora of very different sizes: 17,565 / 5,508 / 1,154 lines."""
    tatoeba = shared_data / "para" / "tatoeba"
    return {"de": tatoeba / "de-en.de", "ro": tatoeba / "en-ro.ro", "th": tatoeba / "en-th.th"}


@pytest.fixture(scope="module")
def line_counts(corpora: dict[str, Path]) -> dict[str, int]:
    return {lang: count_lines(path) for lang, path in corpora.items()}


def test_probabilities_follow_the_formula(line_counts: dict[str, int]) -> None:
    n = np.array(list(line_counts.values()), dtype=float)
    p = n / n.sum()
    expected = p**0.5 / (p**0.5).sum()
    q = sampling_probabilities(line_counts, 0.5)
    assert np.allclose(list(q.values()), expected)
    # Low-resource languages get more than their natural share, high-resource less.
    assert q["th"] > p[2] and q["de"] < p[0]


def test_alpha_one_is_natural_and_alpha_zero_uniform(line_counts: dict[str, int]) -> None:
    n = np.array(list(line_counts.values()), dtype=float)
    assert np.allclose(list(sampling_probabilities(line_counts, 1.0).values()), n / n.sum())
    uniform = sampling_probabilities(line_counts, 1e-9)
    assert np.allclose(list(uniform.values()), 1 / 3, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1e-9])
def test_drawn_shares_match_q(line_counts: dict[str, int], alpha: float) -> None:
    # 20 draws of 20,000 sentences: the standard error of a share is below 0.001,
    # so a tolerance of 0.005 fails only on a real bias.
    q = sampling_probabilities(line_counts, alpha)
    totals = dict.fromkeys(q, 0)
    for seed in range(20):
        for lang, count in sample_counts(line_counts, alpha, 20_000, seed).items():
            totals[lang] += count
    shares = {lang: count / 400_000 for lang, count in totals.items()}
    for lang in q:
        assert abs(shares[lang] - q[lang]) < 0.005, (lang, shares[lang], q[lang])


def test_sample_file_has_the_drawn_lines(corpora: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "sample.txt"
    counts = write_sample(corpora, output, alpha=0.5, total=3000, seed=3)
    assert sum(counts.values()) == 3000 == count_lines(output)
    known = {lang: set(path.read_text(encoding="utf-8").splitlines())
             for lang, path in corpora.items()}
    lines = output.read_text(encoding="utf-8").splitlines()
    start = 0
    for lang, count in counts.items():  # written language after language
        assert all(line in known[lang] for line in lines[start:start + count]), lang
        start += count
    # Same seed, same sample.
    again = tmp_path / "again.txt"
    write_sample(corpora, again, alpha=0.5, total=3000, seed=3)
    assert again.read_bytes() == output.read_bytes()


def test_empty_language_is_refused(corpora: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "ne.train.txt"
    empty.write_text("")
    with pytest.raises(UserError, match=r"ne\.train\.txt: language 'ne' has no training"):
        write_sample({**corpora, "ne": empty}, tmp_path / "sample.txt", 0.5, 100, 0)
    assert not (tmp_path / "sample.txt").exists()


@pytest.fixture(scope="module")
def codes(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500 codes learned on real English, French and Hindi (FLORES-200)."""
    folder = tmp_path_factory.mktemp("bpe")
    flores = shared_data / "para" / "flores200"
    inputs = {lang: flores / f"devtest.{lang}" for lang in ("en", "fr", "hi")}
    write_sample(inputs, folder / "sample.txt", alpha=0.5, total=1500, seed=0)
    learn_codes(folder / "sample.txt", 500, folder / "codes")
    return folder / "codes"


def test_codes_are_learned(codes: Path) -> None:
    lines = codes.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 500
    assert all(len(line.split(" ")) == 3 for line in lines)


def test_binding_and_cli_agree(codes: Path, shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "para" / "tatoeba" / "en-fr.fr"  # text the codes never saw
    by_cli = tmp_path / "cli.txt"
    subprocess.run([fast_binary(), "applybpe", str(by_cli), str(source), str(codes)],
                   check=True, capture_output=True)
    by_binding = tmp_path / "binding.txt"
    apply_codes(codes, None, [source], [by_binding], processes=2, chunk_lines=2000)
    cli_lines = by_cli.read_text(encoding="utf-8").splitlines()
    binding_lines = by_binding.read_text(encoding="utf-8").splitlines()
    assert len(binding_lines) == count_lines(source) == 12681
    assert binding_lines == cli_lines
    assert sum("@@ " in line for line in binding_lines) > 10_000  # codes were applied


def test_binding_and_cli_agree_with_a_vocab(codes: Path, shared_data: Path,
                                            tmp_path: Path) -> None:
    source = shared_data / "para" / "flores200" / "devtest.en"
    applied = tmp_path / "en.bpe"
    apply_codes(codes, None, [source], [applied])
    vocab = tmp_path / "vocab"
    build_vocab([applied], vocab, max_vocab=200)
    assert count_lines(vocab) == 200
    by_cli = tmp_path / "cli.txt"
    subprocess.run([fast_binary(), "applybpe", str(by_cli), str(source), str(codes), str(vocab)],
                   check=True, capture_output=True)
    binding = fastBPE.fastBPE(str(codes), str(vocab))
    lines = source.read_text(encoding="utf-8").splitlines()
    assert binding.apply(lines) == by_cli.read_text(encoding="utf-8").splitlines()


def test_remove_bpe_restores_the_text(codes: Path, shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "para" / "flores200" / "devtest.hi"
    applied = tmp_path / "hi.bpe"
    apply_codes(codes, None, [source], [applied])
    original = [" ".join(line.split()) for line in source.read_text("utf-8").splitlines()]
    restored = [remove_bpe(line) for line in applied.read_text("utf-8").splitlines()]
    assert restored == original


def test_vocab_counts_sum_over_files(codes: Path, shared_data: Path, tmp_path: Path) -> None:
    flores = shared_data / "para" / "flores200"
    outputs = [tmp_path / "en.bpe", tmp_path / "fr.bpe"]
    apply_codes(codes, None, [flores / "devtest.en", flores / "devtest.fr"], outputs)
    build_vocab(outputs, tmp_path / "vocab", max_vocab=None)
    rows = [line.split(" ") for line in (tmp_path / "vocab").read_text("utf-8").splitlines()]
    counts = [int(count) for _, count in rows]
    assert counts == sorted(counts, reverse=True)
    tokens = sum(len(line.split()) for path in outputs for line in path.open(encoding="utf-8"))
    assert sum(counts) == tokens
