"""MLM masking statistics and the TLM batch layout, on real binarized text."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pretrain_helpers import write_vocab

from xlm.data.batching import ParallelDataset, stream_batch, tlm_layout
from xlm.data.dictionary import EOS, MASK, PAD
from xlm.data.indexed import IndexedDataset, binarize_lines
from xlm.data.streams import StreamDataset
from xlm.model.transformer import IGNORE_INDEX
from xlm.train.masking import MaskingConfig, mask_batch, target_weights


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data):
    """English and French FLORES devtest, binarized (word level)."""
    tmp = tmp_path_factory.mktemp("masking")
    paths = {lang: shared_data / "para" / "flores200" / f"devtest.{lang}" for lang in ("en", "fr")}
    dictionary = write_vocab(list(paths.values()), tmp / "vocab")
    for lang, path in paths.items():
        binarize_lines(path.open(encoding="utf-8"), dictionary, tmp / f"en-fr.{lang}")
    return dictionary, tmp


def masked_stream_batch(dictionary, tmp, config, seed=0):
    streams = StreamDataset(IndexedDataset(tmp / "en-fr.en"), bptt=128)
    batch = stream_batch(streams.read_rows(np.arange(64)), 0, 64, 0)
    weights = target_weights(dictionary.counts, config.sample_alpha, PAD)
    generator = torch.Generator().manual_seed(seed)
    inputs, targets = mask_batch(batch, config, weights, MASK, len(dictionary), generator)
    return batch, inputs, targets


def test_mlm_masking_statistics(corpus):
    dictionary, tmp = corpus
    batch, inputs, targets = masked_stream_batch(dictionary, tmp, MaskingConfig())
    selected = targets != IGNORE_INDEX
    assert abs(selected.float().mean().item() - 0.15) < 0.005
    assert torch.equal(targets[selected], batch.tokens[selected])
    assert torch.equal(inputs[~selected], batch.tokens[~selected])
    n = selected.sum().item()
    masked = (inputs[selected] == MASK).sum().item() / n
    kept = (inputs[selected] == batch.tokens[selected]).sum().item() / n
    random = 1 - masked - kept
    assert abs(masked - 0.8) < 0.03
    assert abs(kept - 0.1) < 0.03 and abs(random - 0.1) < 0.03


def test_padding_is_never_a_target(corpus):
    dictionary, tmp = corpus
    data = ParallelDataset(IndexedDataset(tmp / "en-fr.en"), IndexedDataset(tmp / "en-fr.fr"),
                           max_len=100)
    pairs = data.length_batches(tokens_per_batch=100_000)[0][::7]  # varied lengths
    batch = data.tlm_batch(pairs, (0, 1))
    assert not bool(batch.pad_mask.all())
    weights = target_weights(dictionary.counts, 0.0, PAD)
    for seed in range(5):
        inputs, targets = mask_batch(batch, MaskingConfig(word_pred=0.5), weights, MASK,
                                     len(dictionary), torch.Generator().manual_seed(seed))
        assert not (targets[~batch.pad_mask] != IGNORE_INDEX).any()
        assert (inputs[~batch.pad_mask] == PAD).all()
        assert ((targets != IGNORE_INDEX).sum(1) > 0).all()


def test_frequency_weighting_shifts_targets_to_rare_tokens(corpus):
    dictionary, tmp = corpus
    counts = torch.from_numpy(dictionary.counts).float()

    def mean_log_count(alpha: float) -> float:
        _, _, targets = masked_stream_batch(dictionary, tmp, MaskingConfig(sample_alpha=alpha))
        chosen = targets[targets != IGNORE_INDEX]
        return counts[chosen].clamp_min(1).log().mean().item()

    uniform, weighted = mean_log_count(0.0), mean_log_count(0.5)
    assert weighted < uniform - 1.0, (uniform, weighted)


def test_tlm_layout():
    a, b = np.array([20, 21, 22]), np.array([30, 31])
    batch = tlm_layout([(a, b), (a[:1], b[:1])], lang_ids=(4, 7))
    assert batch.tokens[0].tolist() == [EOS, 20, 21, 22, EOS, EOS, 30, 31, EOS]
    assert batch.positions[0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert batch.langs[0].tolist() == [4] * 5 + [7] * 4
    assert batch.tokens[1].tolist() == [EOS, 20, EOS, EOS, 30, EOS] + [PAD] * 3
    assert batch.positions[1, :6].tolist() == [0, 1, 2, 0, 1, 2]
    assert batch.langs[1, :6].tolist() == [4] * 3 + [7] * 3
    assert batch.pad_mask.sum(1).tolist() == [9, 6]


def test_masking_is_independent_of_the_rank_split(corpus):
    """Two ranks masking their halves equal one rank masking the whole batch."""
    dictionary, tmp = corpus
    data = ParallelDataset(IndexedDataset(tmp / "en-fr.en"), IndexedDataset(tmp / "en-fr.fr"),
                           max_len=100)
    pairs = data.length_batches(tokens_per_batch=2000)[3]
    weights = target_weights(dictionary.counts, 0.5, PAD)
    config = MaskingConfig()

    def masked(rank: int, world: int):
        batch = data.tlm_batch(pairs, (0, 1), rank, world)
        return mask_batch(batch, config, weights, MASK, len(dictionary),
                          torch.Generator().manual_seed(3))

    whole_inputs, whole_targets = masked(0, 1)
    for rank in range(2):
        inputs, targets = masked(rank, 2)
        rows = slice(rank * len(pairs) // 2, (rank + 1) * len(pairs) // 2)
        width = inputs.shape[1]
        assert torch.equal(inputs, whole_inputs[rows, :width])
        assert torch.equal(targets, whole_targets[rows, :width])
