"""MLM/TLM target selection (XLM section 3.3).

15% (`word_pred`) of the real tokens of each row become targets; of those, 80% are
replaced by the mask token, 10% by a random token and 10% left unchanged
(`pred_probs`). Targets are drawn without replacement with weight ∝ count^-sample_alpha
(0: uniform; the paper subsamples frequent tokens), padding and position 0 never (XLM's
`pred_mask[0] = 0`: the row's first token, `</s>` of a TLM pair). Selection uses
Efraimidis-Spirakis keys (-log u / w, smallest k per row), vectorised. XLM draws a
Bernoulli(0.15) per token (sample_alpha 0) or ceil(0.15 x tokens) per batch (> 0); an
exact count per row has the same expectation and less variance.

The noise is drawn for the whole global batch (rows x global length) and each rank
takes its rows, so masking does not depend on how a batch is split across ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from xlm.data.batching import Batch
from xlm.model.transformer import IGNORE_INDEX


@dataclass
class MaskingConfig:
    word_pred: float = 0.15
    pred_probs: tuple[float, float, float] = (0.8, 0.1, 0.1)  # mask, random, keep
    sample_alpha: float = 0.0


def target_weights(counts: np.ndarray, sample_alpha: float, pad_index: int) -> Tensor:
    """Weight of each token id as a target: count^-alpha (XLM: ids never seen get 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.maximum(counts, 1.0) ** -sample_alpha
    if sample_alpha > 0:
        weights[counts == 0] = 0.0
    weights[pad_index] = 0.0
    return torch.from_numpy(weights).float()


def mask_batch(batch: Batch, config: MaskingConfig, weights: Tensor, mask_index: int,
               n_words: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Return (inputs with masking applied, targets with -100 where not predicted).

    `generator` must be in the same state on every rank (seed it from the step).
    """
    tokens = batch.tokens
    rows, length = tokens.shape
    shape = (max(batch.global_rows, rows), max(batch.global_length, length))
    mine = (slice(batch.row_offset, batch.row_offset + rows), slice(0, length))
    key_noise = torch.rand(shape, generator=generator)[mine].clamp_min(1e-12)
    action_noise = torch.rand(shape, generator=generator)[mine]
    random_words = torch.randint(n_words, shape, generator=generator)[mine]

    weight = weights[tokens.cpu()]
    if batch.pad_mask is not None:
        weight = weight * batch.pad_mask.cpu()
    weight[:, 0] = 0.0  # never position 0, as XLM
    eligible = weight > 0
    keys = torch.where(eligible, -key_noise.log() / weight.clamp_min(1e-30),
                       torch.full_like(weight, float("inf")))
    n_eligible = eligible.sum(1)
    n_targets = torch.where(
        n_eligible > 0, (n_eligible * config.word_pred).round().clamp_min(1), n_eligible)
    rank_in_row = keys.argsort(dim=1).argsort(dim=1)
    selected = rank_in_row < n_targets[:, None]

    p_mask, p_random, _ = config.pred_probs
    to_mask = selected & (action_noise < p_mask)
    to_random = selected & (action_noise >= p_mask) & (action_noise < p_mask + p_random)
    inputs = tokens.cpu().clone()
    inputs[to_random] = random_words[to_random]
    inputs[to_mask] = mask_index
    targets = torch.where(selected, tokens.cpu(), torch.full_like(tokens.cpu(), IGNORE_INDEX))
    return inputs.to(tokens.device), targets.to(tokens.device)
