"""Training step: tokens/s of one MLM update (forward, backward, clipping, Adam).

Ours: `xlm.model.TransformerModel` with targets from `xlm.train.masking.mask_batch`
(the output projection runs on predicted positions only) and `build_optimizer`, as the
trainer does. Peer: `transformers`' `XLMWithLMHeadModel` with the same sizes, inputs
and labels (-100 where nothing is predicted), and the same Adam. Masking is done once,
outside the timed step. On CUDA both run in bf16 autocast at the paper's size, and MFU
is the model FLOPs per second over a large bf16 `torch.matmul` measured in this run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmarks.common import Options, Result, Row

log = logging.getLogger(__name__)


@dataclass
class Size:
    n_layers: int
    dim: int
    n_heads: int
    bptt: int
    batch: int
    n_words: int
    steps: int  # timed steps per round


CPU_SIZE = Size(n_layers=4, dim=256, n_heads=8, bptt=128, batch=16, n_words=10_000, steps=4)
GPU_SIZE = Size(n_layers=12, dim=1024, n_heads=8, bptt=256, batch=64, n_words=95_000, steps=10)
QUICK_SIZE = Size(n_layers=1, dim=32, n_heads=4, bptt=16, batch=4, n_words=200, steps=1)


def masked_inputs(size: Size, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of one MLM batch: 15% targets, 80/10/10, uniform token weights."""
    from xlm.data.batching import stream_batch
    from xlm.data.dictionary import MASK, N_SPECIAL, PAD
    from xlm.train.masking import MaskingConfig, mask_batch, target_weights

    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(N_SPECIAL, size.n_words, (size.batch, size.bptt), generator=generator)
    batch = stream_batch(rows.numpy(), 0, size.batch, 0)
    counts = torch.ones(size.n_words).numpy()
    weights = target_weights(counts, 0.0, PAD)
    return mask_batch(batch, MaskingConfig(), weights, MASK, size.n_words, generator)


def model_flops_per_step(size: Size, n_targets: int) -> float:
    """FLOPs an update needs: 6 x (block weights) per token + attention + the output
    projection on the predicted positions only (what ours computes)."""
    tokens = size.batch * size.bptt
    blocks = 6 * 12 * size.n_layers * size.dim ** 2 * tokens
    attention = 12 * size.n_layers * size.bptt * size.dim * tokens
    projection = 6 * size.n_words * size.dim * n_targets
    return float(blocks + attention + projection)


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int = 8192, iters: int = 20) -> float:
    """Measured FLOP/s of a large square matmul: the ceiling MFU is taken against."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda _: None)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync(device)
    return 2 * n ** 3 * iters / (time.perf_counter() - start)


def build_ours(size: Size, device: torch.device) -> torch.nn.Module:
    from xlm.model.transformer import ModelConfig, TransformerModel

    config = ModelConfig(n_words=size.n_words, n_langs=1, dim=size.dim, n_layers=size.n_layers,
                         n_heads=size.n_heads, dropout=0.1, attention_dropout=0.1,
                         max_positions=512)
    return TransformerModel(config).to(device)


def build_peer(size: Size, device: torch.device) -> torch.nn.Module:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import XLMConfig, XLMWithLMHeadModel

    config = XLMConfig(vocab_size=size.n_words, emb_dim=size.dim, n_layers=size.n_layers,
                       n_heads=size.n_heads, dropout=0.1, attention_dropout=0.1,
                       gelu_activation=True, sinusoidal_embeddings=False, causal=False,
                       asm=False, n_langs=1, use_lang_emb=False, max_position_embeddings=512,
                       pad_index=2, mask_token_id=5)
    return XLMWithLMHeadModel(config).to(device)


def make_step(model: torch.nn.Module, ours: bool, inputs: torch.Tensor, targets: torch.Tensor,
              device: torch.device) -> Callable[[], float]:
    """One update of `model` on the batch; returns the loss (a float: it syncs the device)."""
    from xlm.train.optim import build_optimizer

    optimizer, _ = build_optimizer(model, 1e-4, (0.9, 0.98), 1e-6, 0.0, 0, "constant", 1)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.train()

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            if ours:
                out = model(tokens=inputs, targets=targets)
                loss = out.loss / max(out.n_targets, 1)
            else:
                loss = model(input_ids=inputs, labels=targets).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        return float(loss.detach())

    return step


def time_steps(steps: dict[str, Callable[[], float]], n_steps: int, repeats: int,
               device: torch.device) -> dict[str, float]:
    """Best seconds per step of each side, the sides interleaved round by round."""
    for step in steps.values():
        step()
        step()  # warm up (allocator, kernels, optimizer state)
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(repeats):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            for _ in range(n_steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best[name] = min(best[name], (time.perf_counter() - start) / n_steps)
    return best


def run(options: Options) -> Result:
    cuda = torch.cuda.is_available() and options.device in ("auto", "cuda")
    device = torch.device("cuda" if cuda else "cpu")
    size = QUICK_SIZE if options.quick else (GPU_SIZE if cuda else CPU_SIZE)
    threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(1)  # per core, and steady on a loaded, shared machine
    try:
        return _run(options, device, size, cuda)
    finally:
        torch.set_num_threads(threads)


def _run(options: Options, device: torch.device, size: Size, cuda: bool) -> Result:
    inputs, targets = masked_inputs(size)
    inputs, targets = inputs.to(device), targets.to(device)
    n_targets = int((targets != -100).sum())
    torch.manual_seed(0)
    steps = {"ours": make_step(build_ours(size, device), True, inputs, targets, device),
             "XLMWithLMHeadModel": make_step(build_peer(size, device), False, inputs, targets,
                                             device)}
    seconds = time_steps(steps, size.steps, options.repeats, device)
    tokens = size.batch * size.bptt
    rate = {name: tokens / s for name, s in seconds.items()}
    result = Result("train_step")
    result.details = {"device": str(device), "size": size.__dict__, "n_targets": n_targets,
                      "seconds_per_step": seconds, "tokens_per_s": rate,
                      "precision": "bf16 autocast" if cuda else "fp32",
                      "torch_threads": torch.get_num_threads()}
    shape = (f"{device.type}, {size.n_layers}x{size.dim}, {size.batch}x{size.bptt} tokens, "
             f"vocab {size.n_words}, {n_targets} predicted")
    target, met = ("not slower (>= 1x)", rate["ours"] >= rate["XLMWithLMHeadModel"])
    if cuda:
        target = ">= 1.5x"
        met = rate["ours"] >= 1.5 * rate["XLMWithLMHeadModel"]
    result.rows.append(Row(shape, "tokens/s", rate["ours"], rate["XLMWithLMHeadModel"],
                           "XLMWithLMHeadModel", target, met))
    if cuda:
        peak = matmul_rate(device, torch.bfloat16)
        flops = model_flops_per_step(size, n_targets)
        mfu = {name: flops / s / peak for name, s in seconds.items()}
        result.details.update(matmul_bf16_flops=peak, model_flops_per_step=flops, mfu=mfu,
                              gpu=torch.cuda.get_device_name(device))
        result.rows.append(Row("MFU vs measured bf16 matmul", "fraction", mfu["ours"],
                               mfu["XLMWithLMHeadModel"], "XLMWithLMHeadModel", ">= 0.40",
                               mfu["ours"] >= 0.40, note=f"matmul {peak / 1e12:.0f} TFLOP/s"))
    return result
