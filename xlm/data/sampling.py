"""Which language (or language pair) each training batch comes from.

XLM section 3.5: batches are drawn from language i with probability q_i ∝ p_i^α,
p_i = n_i / Σ n_k (n_i: sentences), α = 0.7, which lifts low-resource languages.
Draws are a pure function of (seed, draw number), so a resumed or distributed run
makes exactly the same choices without saving any sampler state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sampling_probabilities(counts: Sequence[float], alpha: float) -> np.ndarray:
    """q_i ∝ (n_i / Σ n)^α; α = 1 keeps the data's proportions, α = 0 is uniform."""
    counts = np.asarray(counts, dtype=np.float64)
    if (counts <= 0).any():
        raise ValueError(f"every source needs at least one sentence, got counts {counts}")
    p = counts / counts.sum()
    q = p ** alpha
    return q / q.sum()


class SourceSampler:
    """Draws source names (e.g. 'en' or 'en-fr') with q ∝ p^α, reproducibly."""

    def __init__(self, names: Sequence[str], counts: Sequence[float], alpha: float,
                 seed: int) -> None:
        self.names = list(names)
        self.probabilities = sampling_probabilities(counts, alpha)
        self.seed = seed

    def draw(self, number: int) -> str:
        """The source of draw `number` (the same on every rank and after a restart)."""
        if len(self.names) == 1:
            return self.names[0]
        rng = np.random.default_rng([self.seed, number])
        return self.names[int(rng.choice(len(self.names), p=self.probabilities))]
