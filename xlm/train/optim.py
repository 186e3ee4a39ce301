"""Adam with linear warm-up, then XLM's inverse square root decay or a cosine decay; and
XLM's piecewise-linear loss-weight schedules (`lambda_ae` etc.)."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from xlm.errors import UserError


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


def adam_implementation(model: torch.nn.Module) -> dict[str, bool]:
    """`fused=True` when every parameter is on a CUDA device (one kernel for the whole
    update, and no host read of the step count); else torch's default (foreach on CPU)."""
    parameters = list(model.parameters())
    if parameters and all(p.is_cuda for p in parameters):
        return {"fused": True}
    return {}


def build_optimizer(model: torch.nn.Module, lr: float, betas: tuple[float, float],
                    eps: float, weight_decay: float, warmup_steps: int, schedule: str,
                    max_steps: int, min_lr_ratio: float = 0.0,
                    ) -> tuple[torch.optim.Optimizer, LambdaLR]:
    """Adam (AdamW when weight_decay > 0) and its schedule, stepped once per update;
    fused on CUDA (`adam_implementation`)."""
    implementation = adam_implementation(model)
    if weight_decay > 0:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, eps=eps,
                                      weight_decay=weight_decay, **implementation)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=betas, eps=eps,
                                     **implementation)
    scheduler = LambdaLR(optimizer, lambda step: lr_factor(
        step, warmup_steps, schedule, max_steps, min_lr_ratio))
    return optimizer, scheduler


def parse_weight_schedule(spec: float | int | str, key: str) -> list[tuple[int, float]]:
    """XLM's loss-weight syntax (its `--lambda_ae` etc.): a number is a constant weight;
    `'0:1,100000:0.1,300000:0'` is piecewise linear between (step, weight) points and
    constant after the last one. Bad syntax is one line naming `key`."""
    text = str(spec).strip()
    hint = (f"{key}: weight schedule {text!r}; give a number or 'step:weight,...' with "
            "increasing steps from 0, e.g. '0:1,100000:0.1,300000:0'")
    try:
        if ":" not in text:
            points = [(0, float(text))]
        else:
            points = [(int(step), float(weight)) for step, weight in
                      (part.split(":") for part in text.split(","))]
    except ValueError:
        raise UserError(hint) from None
    steps = [step for step, _ in points]
    if steps[0] != 0 or any(a >= b for a, b in zip(steps, steps[1:], strict=False)) or any(
            weight < 0 for _, weight in points):
        raise UserError(hint)
    return points


def weight_at(points: list[tuple[int, float]], step: int) -> float:
    """The weight of a parsed schedule at `step` (XLM's `get_lambda_value`)."""
    for (x_a, y_a), (x_b, y_b) in zip(points, points[1:], strict=False):
        if x_a <= step < x_b:
            return y_a + (step - x_a) * (y_b - y_a) / (x_b - x_a)
    return points[-1][1]
