"""Adam with linear warm-up, then XLM's inverse square root decay or a cosine decay."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def lr_factor(step: int, warmup_steps: int, schedule: str, max_steps: int,
              min_lr_ratio: float = 0.0) -> float:
    """Multiplier of the peak lr after `step` completed updates."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "inverse_sqrt":
        return math.sqrt(max(warmup_steps, 1) / (step + 1))
    if schedule == "cosine":
        progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown lr schedule {schedule!r} (inverse_sqrt, cosine, constant)")


def build_optimizer(model: torch.nn.Module, lr: float, betas: tuple[float, float],
                    eps: float, weight_decay: float, warmup_steps: int, schedule: str,
                    max_steps: int, min_lr_ratio: float = 0.0,
                    ) -> tuple[torch.optim.Optimizer, LambdaLR]:
    """Adam (AdamW when weight_decay > 0) and its schedule, stepped once per update."""
    if weight_decay > 0:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, eps=eps,
                                      weight_decay=weight_decay)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps)
    scheduler = LambdaLR(optimizer, lambda step: lr_factor(
        step, warmup_steps, schedule, max_steps, min_lr_ratio))
    return optimizer, scheduler
