"""Pretraining loop for CLM, MLM and TLM: resumable, distributed, evaluated.

Update u trains objective u mod (number of objectives), so MLM and TLM updates
alternate and each update is one objective, as each of XLM's mlm_steps is its own
optimizer step. It draws `accumulate` batches (draw d = u x accumulate + micro), each
from a source sampled with q ∝ p^0.7 (XLM: each GPU samples its own language). Every
random choice is a function of (seed, draw[, rank]): the language, the batch rows,
the masks and the dropout. So the data position is just the number of batches drawn
per source, and N ranks reproduce one rank with the same global batch.

Losses are summed over targets and divided by the number of targets of the *global*
batch, so gradients do not depend on how rows are split across ranks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from xlm.config import config_hash
from xlm.data.batching import Batch, ParallelDataset, stream_batch, tlm_flipped
from xlm.data.dictionary import Dictionary
from xlm.data.indexed import IndexedDataset
from xlm.data.sampling import SourceSampler
from xlm.data.streams import StreamDataset, rank_share
from xlm.io import atomic_open
from xlm.model.transformer import ModelConfig, TransformerModel, flops_per_token
from xlm.train.checkpoint import (
    BEST,
    LATEST,
    load_checkpoint,
    load_resumable,
    restore_rng_states,
    rng_states,
    save_atomic,
    save_pretrained,
)
from xlm.train.continuation import continuation_problem, trajectory
from xlm.train.distributed import (
    DistributedContext,
    all_reduce_count,
    all_reduce_sum,
    barrier,
)
from xlm.train.fingerprint import dataset_files, make_fingerprint, move_aside
from xlm.train.masking import MaskingConfig, mask_batch, target_weights
from xlm.train.optim import build_optimizer
from xlm.train.settings import PretrainSettings

log = logging.getLogger(__name__)

# Dense bf16 peak FLOP/s per GPU, for the MFU column of the log (None: not shown).
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "V100": 125e12}


def seed_of(*parts: int) -> int:
    """A 63-bit seed from integers: independent streams for (seed, draw, rank, ...)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, np.uint64)[0] >> 1)


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# Settings that change how long a run goes or how often it logs and checkpoints, not its
# trajectory: a checkpoint stays valid when they change (e.g. more steps to continue a
# run), within what xlm/train/continuation.py allows. `eval_every` and `eval_batches` are
# not among them: they decide which step is selected and when the run stops early.
RUN_LENGTH_KEYS = ("max_steps", "patience", "log_every", "checkpoint_every")


# How a run executes, not what it computes (up to float rounding): a checkpoint stays
# valid when they change, and so do checkpoints from before they existed.
EXECUTION_KEYS = ("compile",)


@dataclass
class Stats:
    """Sums for one objective and source: loss, predicted tokens, correct, input tokens.

    Loss and correct predictions stay tensors on the model's device (float64, so the sums
    equal Python's sums of each step's value) and are read by `values()` when a window is
    logged: reading them every step would wait for the GPU every step. The counts are
    known on the host.
    """

    loss: torch.Tensor | float = 0.0
    targets: float = 0.0
    correct: torch.Tensor | float = 0.0
    tokens: float = 0.0

    def add(self, loss: torch.Tensor, targets: int, correct: torch.Tensor | int,
            tokens: int) -> None:
        self.loss = self.loss + loss.detach().double()
        self.targets += targets
        self.correct = self.correct + (correct.double() if isinstance(correct, torch.Tensor)
                                       else correct)
        self.tokens += tokens

    def values(self) -> list[float]:
        """[loss, targets, correct, tokens] as numbers (the one read of the device)."""
        return [float(self.loss), float(self.targets), float(self.correct), float(self.tokens)]


class Pretrainer:
    """Trains one model as configured; `run()` resumes from the latest checkpoint."""

    def __init__(self, settings: PretrainSettings, *, data_dir: str | Path, vocab: str | Path,
                 out_dir: str | Path, name: str, context: DistributedContext | None = None,
                 provenance: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.name = name
        self.context = context or DistributedContext()
        self.device = self.context.device
        self.data_dir = Path(data_dir)
        self.out_dir = Path(out_dir)
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.provenance = {"git_revision": git_revision(),
                           "config_hash": config_hash(settings.to_dict()), **(provenance or {})}
        self.vocab_path = Path(vocab)
        self.dictionary = Dictionary.read_vocab(vocab)
        self.langs = settings.languages
        self.lang_id = {lang: i for i, lang in enumerate(self.langs)}

        self.model_config = ModelConfig(
            n_words=len(self.dictionary), n_langs=len(self.langs), dim=settings.dim,
            n_layers=settings.n_layers, n_heads=settings.n_heads, dropout=settings.dropout,
            attention_dropout=settings.attention_dropout, max_positions=settings.max_positions,
            pad_index=self.dictionary.pad_index)
        torch.manual_seed(settings.seed)  # the same initial weights on every rank
        self.model = TransformerModel(self.model_config).to(self.device)
        self.ddp: torch.nn.Module = self.model
        if self.context.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=device_ids)
        if settings.compile:  # training steps run compiled; evaluation runs `self.model`
            self.ddp = torch.compile(self.ddp)
        self.optimizer, self.scheduler = build_optimizer(
            self.model, settings.lr, tuple(settings.betas), settings.eps, settings.weight_decay,
            settings.warmup_steps, settings.schedule, settings.max_steps, settings.min_lr_ratio)
        self.precision = self._resolve_precision()
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None

        self.masking = MaskingConfig(settings.word_pred, tuple(settings.pred_probs),
                                     settings.sample_alpha)
        self.mask_weights = target_weights(self.dictionary.counts, settings.sample_alpha,
                                           self.dictionary.pad_index)
        # Evaluation as XLM's Evaluator.mask_out: uniform targets, every one replaced by the
        # mask token (no 80/10/10), the same draws at every evaluation.
        self.eval_masking = MaskingConfig(settings.word_pred, (1.0, 0.0, 0.0), 0.0)
        # Ids that end a word of the original text (not a BPE `@@` piece; `</s>` ends a
        # sentence): per-word perplexity divides the total NLL by how many of them.
        self.word_end = torch.tensor([not word.endswith("@@")
                                      for word in self.dictionary.id2word])
        self.word_ppl: dict[tuple[str, str], float] = {}  # (split, CLM language) -> ppl
        self.eval_mask_weights = target_weights(self.dictionary.counts, 0.0,
                                                self.dictionary.pad_index)
        self.data = {"train": self._open("train")}
        self.samplers = {
            objective: SourceSampler(
                list(sources), [self._sentences(d) for d in sources.values()],
                settings.lang_alpha, seed_of(settings.seed, zlib.crc32(objective.encode())))
            for objective, sources in self.data["train"].items()
        }
        # Training state, all of it in the checkpoint.
        self.step = 0
        self.drawn: dict[str, int] = {}
        self.best_ppl = math.inf
        self.best_step = 0
        self.output_step = 0  # the step of the weights written to model.pt
        self.bad_evals = 0
        self.peak_bad_evals = 0  # the longest run of evaluations without progress
        self.last_eval_step = -1
        self.stopped_early = False
        self._signal: int | None = None
        self._window = {objective: Stats() for objective in settings.objectives}
        self._window_start = time.perf_counter()
        self._tensorboard = None
        self._fingerprint: dict[str, Any] | None = None

    # ----------------------------------------------------------------- set-up helpers
    def _resolve_precision(self) -> str:
        wanted = self.settings.precision
        if self.device.type != "cuda":
            if wanted in ("bf16", "fp16"):
                log.warning("precision %s asked for on CPU; training in fp32", wanted)
            return "fp32"
        if wanted == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return wanted

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _open(self, split: str) -> dict[str, dict[str, StreamDataset | ParallelDataset]]:
        """The datasets of a split: objective -> source ('en' or 'en-fr') -> dataset."""
        s = self.settings
        data: dict[str, dict[str, StreamDataset | ParallelDataset]] = {}
        for objective in s.objectives:
            data[objective] = {}
            for source in getattr(s, objective):
                key = zlib.crc32(f"{objective}:{source}".encode())
                if objective == "tlm":
                    l1, l2 = source.split("-")
                    sides = [IndexedDataset(self.data_dir / f"{source}.{lang}.{split}",
                                            self.dictionary) for lang in (l1, l2)]
                    data[objective][source] = ParallelDataset(*sides, s.max_len, s.seed, key)
                else:
                    dataset = IndexedDataset(self.data_dir / f"{source}.{split}", self.dictionary)
                    data[objective][source] = StreamDataset(dataset, s.bptt, s.seed, key)
        return data

    @staticmethod
    def _sentences(dataset: StreamDataset | ParallelDataset) -> int:
        return len(dataset) if isinstance(dataset, ParallelDataset) else len(dataset.dataset)

    def _split_data(self, split: str):
        if split not in self.data:
            self.data[split] = self._open(split)
        return self.data[split]

    # ----------------------------------------------------------------- batches
    def _batch(self, dataset: StreamDataset | ParallelDataset, source: str,
               rows: np.ndarray, flip: bool = False) -> Batch:
        """This rank's share of the global batch `rows` (stream rows or pair indices);
        `flip` lays TLM pairs out target side first."""
        if isinstance(dataset, ParallelDataset):
            l1, l2 = source.split("-")
            return dataset.tlm_batch(rows, (self.lang_id[l1], self.lang_id[l2]),
                                     self.context.rank, self.context.world_size, flip)
        local, offset = rank_share(rows, self.context.rank, self.context.world_size)
        return stream_batch(dataset.read_rows(local), self.lang_id[source], len(rows), offset)

    def _train_rows(self, objective: str, source: str, number: int) -> np.ndarray:
        dataset = self.data["train"][objective][source]
        if isinstance(dataset, ParallelDataset):
            return dataset.train_pairs(number, self.settings.tokens_per_batch)
        return dataset.train_rows(number, self.settings.batch_size)

    def _model_inputs(self, objective: str, batch: Batch, noise_seed: int,
                      evaluation: bool = False) -> dict[str, Any]:
        """Keyword arguments of the model's forward for this objective (`evaluation`:
        MLM/TLM targets all masked, as XLM evaluates).

        Targets stay on the CPU, where the model finds the predicted positions and the
        trainer counts them without waiting for the device; a padding mask that hides
        nothing is dropped here, on the host, so the model's fast unmasked path runs."""
        if objective == "clm":
            tokens = batch.tokens.to(self.device, non_blocking=True)
            langs = batch.langs.to(self.device, non_blocking=True)
            return {"tokens": tokens[:, :-1], "langs": langs[:, :-1], "causal": True,
                    "targets": batch.tokens[:, 1:]}
        masking, weights = ((self.eval_masking, self.eval_mask_weights) if evaluation
                            else (self.masking, self.mask_weights))
        inputs, targets = mask_batch(batch, masking, weights, self.dictionary.mask_index,
                                     len(self.dictionary),
                                     torch.Generator().manual_seed(noise_seed))
        if batch.pad_mask is not None and bool(batch.pad_mask.all()):
            batch = Batch(batch.tokens, batch.langs, batch.positions, None, batch.global_rows,
                          batch.row_offset, batch.global_length)
        batch = batch.to(self.device)
        return {"tokens": inputs.to(self.device, non_blocking=True),
                "positions": batch.positions, "langs": batch.langs, "pad_mask": batch.pad_mask,
                "targets": targets}

    # ----------------------------------------------------------------- training
    def _global_count(self, n_local: int) -> float | torch.Tensor:
        """Targets of the global batch, at least 1: this rank's count on one rank, else a
        tensor all-reduced on the device that the loss divides by without reading it."""
        if not self.context.distributed:
            return float(max(n_local, 1))
        return all_reduce_count(n_local, self.context)

    def train_step(self) -> None:
        """One update: `accumulate` batches, clipped gradients, optimizer and lr step."""
        s, ctx = self.settings, self.context
        self.ddp.train()
        for micro in range(s.accumulate):
            draw = self.step * s.accumulate + micro
            objective = s.objectives[self.step % len(s.objectives)]  # one per update
            source = self.samplers[objective].draw(draw)
            key = f"{objective}:{source}"
            number = self.drawn.get(key, 0)
            self.drawn[key] = number + 1
            rows = self._train_rows(objective, source, number)
            flip = objective == "tlm" and tlm_flipped(s.seed, draw)  # both orders, as XLM
            batch = self._batch(self.data["train"][objective][source], source, rows, flip)
            inputs = self._model_inputs(objective, batch, seed_of(s.seed, 1, draw))
            n_local = int((inputs["targets"] != -100).sum())  # on the host: no device wait
            n_global = self._global_count(n_local)
            torch.manual_seed(seed_of(s.seed, 2, draw, ctx.rank))  # dropout
            last = micro == s.accumulate - 1
            no_sync = ctx.distributed and not last
            with self.ddp.no_sync() if no_sync else contextlib.nullcontext():
                with self._autocast():
                    out = self.ddp(**inputs)
                loss = out.loss * ctx.world_size / n_global / s.accumulate
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            self._window[objective].add(out.loss, out.n_targets, out.n_correct,
                                        batch.n_tokens)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if s.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.clip_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    # ----------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, dict[str, tuple[float, float]]]:
        """objective -> source -> (perplexity, accuracy) on `split`, over all ranks; CLM
        perplexities per word of the original text go to `self.word_ppl`."""
        s = self.settings
        self.model.eval()
        results: dict[str, dict[str, tuple[float, float]]] = {}
        for objective, sources in self._split_data(split).items():
            results[objective] = {}
            for source, dataset in sources.items():
                if isinstance(dataset, ParallelDataset):
                    batches = dataset.eval_pairs(s.tokens_per_batch, s.eval_batches)
                else:
                    batches = dataset.eval_rows(s.batch_size, s.eval_batches)
                stats, words = Stats(), 0
                for number, rows in enumerate(batches):
                    batch = self._batch(dataset, source, rows)
                    if batch.tokens.shape[0] == 0:
                        continue
                    inputs = self._model_inputs(objective, batch, seed_of(s.seed, 3, number),
                                                evaluation=True)
                    with self._autocast():
                        out = self.model(**inputs)
                    stats.add(out.loss, out.n_targets, out.n_correct, batch.n_tokens)
                    if objective == "clm":
                        predicted = inputs["targets"][inputs["targets"] != -100]
                        words += int(self.word_end[predicted].sum())
                loss, targets, correct, _ = stats.values()
                loss, targets, correct, words = all_reduce_sum(
                    [loss, targets, correct, words], self.context)
                results[objective][source] = (
                    math.exp(min(loss / max(targets, 1), 100.0)), correct / max(targets, 1))
                if objective == "clm":
                    self.word_ppl[(split, source)] = math.exp(min(loss / max(words, 1), 100.0))
        return results

    @staticmethod
    def average_ppl(results: dict[str, dict[str, tuple[float, float]]],
                    select_on: list[str] | None = None) -> float:
        """The stopping criterion: perplexity averaged over the languages of the
        monolingual objectives (MLM, CLM), as XLM's `_valid_mlm_ppl` / `_valid_clm_ppl`;
        TLM pairs count only in a TLM-only model. `select_on` keeps only those languages
        (the low-resource LM is selected on its target language alone)."""
        mono = [objective for objective in results if objective != "tlm"] or list(results)
        values = [ppl for objective in mono for source, (ppl, _) in results[objective].items()
                  if select_on is None or source in select_on]
        return float(np.mean(values))

    def _evaluate_and_track(self, at_end: bool = False) -> bool:
        """Validate; track the best step and early stopping; True when this step is best.

        `at_end` is the evaluation at the last step of a run when it is off the
        `eval_every` grid: it may make these weights the output, but it is not tracked
        (nor in the checkpoint), so that a longer run continued from here evaluates and
        selects at exactly the steps a fresh one does (xlm/train/continuation.py).
        """
        results = self.evaluate("valid")
        average = self.average_ppl(results, self.settings.select_on)
        improved = average < self.best_ppl
        if not at_end:
            self._track(average, improved)
        parts = [f"{objective} {source} ppl {ppl:.2f} acc {100 * acc:.1f}%"
                 for objective, sources in results.items()
                 for source, (ppl, acc) in sources.items()]
        progress = f" ({self.bad_evals} without progress)" if not at_end else (
            f" (end of run; best step {self.best_step})")
        log.info("valid step %d | %s | average ppl %.3f%s", self.step, " | ".join(parts),
                 average, " (best)" if improved else progress)
        valid_ppl = {f"{objective}_{source}": ppl for objective, sources in results.items()
                     for source, (ppl, _) in sources.items()}
        self._add_to_train_log({"valid_ppl": {**valid_ppl, "avg": average},
                                "best_step": self.step if improved else self.best_step})
        if self.context.is_main and self._tensorboard is not None:
            self._tensorboard.add_scalar("valid/average_ppl", average, self.step)
            for objective, sources in results.items():
                for source, (ppl, acc) in sources.items():
                    self._tensorboard.add_scalar(f"valid/{objective}_{source}_ppl", ppl,
                                                 self.step)
                    self._tensorboard.add_scalar(f"valid/{objective}_{source}_acc", 100 * acc,
                                                 self.step)
        if not at_end and self.bad_evals >= self.settings.patience:
            log.info("stopping: no better valid perplexity in %d evaluations", self.bad_evals)
            self.stopped_early = True
        return improved

    def _track(self, average: float, improved: bool) -> None:
        """The selection state a checkpoint carries: best step and weights, and how many
        evaluations in a row (and at most) went without progress."""
        self.last_eval_step = self.step
        if improved:
            self.best_ppl, self.best_step, self.bad_evals = average, self.step, 0
            if self.context.is_main:
                save_atomic({k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                            self.checkpoint_dir / BEST)
        else:
            self.bad_evals += 1
            self.peak_bad_evals = max(self.peak_bad_evals, self.bad_evals)

    # ----------------------------------------------------------------- logging
    def _add_to_train_log(self, fields: dict[str, Any]) -> None:
        """Validation results into train.jsonl, for the curves (xlm/report/plots.py): into
        this step's training record when it was just written, else a record of their own."""
        if not self.context.is_main:
            return
        path = self.out_dir / "train.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        last = json.loads(lines[-1]) if lines else {}
        if last.get("step") == self.step:
            lines[-1] = json.dumps({**last, **fields})
            with atomic_open(path) as handle:
                handle.writelines(line + "\n" for line in lines)
        else:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": self.step, **fields}) + "\n")

    def _log_window(self) -> None:
        """All-reduce the window's sums; one progress line, train.jsonl, TensorBoard."""
        elapsed = time.perf_counter() - self._window_start
        record: dict[str, Any] = {"step": self.step,
                                  "lr": self.optimizer.param_groups[0]["lr"]}
        parts, tokens = [], 0.0
        for objective, stats in self._window.items():
            loss, targets, correct, n_tokens = all_reduce_sum(stats.values(), self.context)
            tokens += n_tokens
            if targets:
                record[f"{objective}_loss"] = loss / targets
                record[f"{objective}_acc"] = 100 * correct / targets  # percent, as records
                parts.append(f"{objective} loss {loss / targets:.4f}")
        record["tokens_per_s"] = tokens / max(elapsed, 1e-9)
        line = (f"step {self.step}/{self.settings.max_steps} | {' | '.join(parts)} | "
                f"lr {record['lr']:.2e} | {record['tokens_per_s']:,.0f} tokens/s")
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
            peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
            if peak:
                flops = flops_per_token(self.model_config, self.settings.bptt)
                record["mfu"] = flops * record["tokens_per_s"] / (peak * self.context.world_size)
                line += f" | MFU {100 * record['mfu']:.1f}%"
        log.info(line)
        if self.context.is_main:
            with open(self.out_dir / "train.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
            if self._tensorboard is not None:
                for key, value in record.items():
                    if key != "step":
                        self._tensorboard.add_scalar(f"train/{key}", value, self.step)
        self._window = {objective: Stats() for objective in self.settings.objectives}
        self._window_start = time.perf_counter()

    # ----------------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> None:
        if self.context.is_main:
            save_atomic({
                "settings": self.settings.to_dict(),
                "fingerprint": self.fingerprint(),
                "step": self.step,
                "drawn": {source: int(n) for source, n in self.drawn.items()},
                "best_ppl": float(self.best_ppl),
                "best_step": int(self.best_step),
                "bad_evals": int(self.bad_evals),
                "peak_bad_evals": int(self.peak_bad_evals),
                "last_eval_step": int(self.last_eval_step),
                "stopped_early": bool(self.stopped_early),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "rng": rng_states(),
            }, self.checkpoint_dir / LATEST)
            log.info("checkpoint at step %d written to %s", self.step,
                     self.checkpoint_dir / LATEST)
        barrier(self.context)

    def _input_files(self) -> dict[str, Path]:
        """Every file that shapes the trajectory: the dictionary and the train and valid
        datasets (valid decides the best step and early stopping)."""
        s = self.settings
        files = {f"dictionary {self.vocab_path}": self.vocab_path}
        for split in ("train", "valid"):
            for objective in s.objectives:
                for source in getattr(s, objective):
                    prefixes = ([self.data_dir / f"{source}.{lang}.{split}"
                                 for lang in source.split("-")] if objective == "tlm"
                                else [self.data_dir / f"{source}.{split}"])
                    for prefix in prefixes:
                        for path in dataset_files(prefix):
                            files[f"{split} data {path}"] = path
        return files

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must have been written with to be resumed (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = make_fingerprint(trajectory(self.settings.to_dict(),
                                                        RUN_LENGTH_KEYS + EXECUTION_KEYS),
                                                 self._input_files())
        return self._fingerprint

    def resume(self) -> bool:
        """Continue from the latest checkpoint if this very run wrote it (same settings
        and same input contents); else start from step 0 with the stale one moved aside."""
        path = self.checkpoint_dir / LATEST
        if self.context.is_main:
            state = load_resumable(path, self.fingerprint(), lambda saved: continuation_problem(
                saved, self.settings.max_steps, self.settings.patience))
            if state is None and path.parent.is_dir():
                move_aside(path.parent)  # a best.pt without latest.pt is stale too
        barrier(self.context)
        state = load_checkpoint(path) if path.is_file() else None
        if state is None:
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        for key in ("step", "drawn", "best_ppl", "best_step", "bad_evals", "last_eval_step"):
            setattr(self, key, state[key])
        # Older checkpoints lack the peak: take the most their patience allowed, so that a
        # later, lower patience trains afresh rather than continue wrongly.
        self.peak_bad_evals = state.get("peak_bad_evals",
                                        max(self.bad_evals, state["settings"]["patience"]))
        self.stopped_early = self.bad_evals >= self.settings.patience  # patience may rise
        restore_rng_states(state["rng"])
        log.info("resumed from %s at step %d", path, self.step)
        return True

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.warning("received %s: checkpoint after this step", signal.Signals(signum).name)
        self._signal = signum

    def _signal_received(self) -> int:
        """The signal seen by any rank (0 if none), so that all ranks act together."""
        value = float(self._signal or 0)
        return int(max(all_reduce_sum([value], self.context, host=True)[0], 0)) if (
            self.context.distributed) else int(value)

    # ----------------------------------------------------------------- the run
    def _trim_train_log(self) -> None:
        """Keep only the train.jsonl records up to the resumed step (none when fresh),
        without the untracked end-of-run evaluation at that step (`at_end`)."""
        path = self.out_dir / "train.jsonl"
        if not self.context.is_main or not path.exists():
            return
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line else {"step": math.inf}
            if record["step"] == self.step and self.last_eval_step != self.step:
                record = {k: v for k, v in record.items() if k not in ("valid_ppl", "best_step")}
            if record["step"] <= self.step and len(record) > 1:
                keep.append(json.dumps(record))
        with atomic_open(path) as handle:
            handle.writelines(line + "\n" for line in keep)

    def run(self, stop_at: int | None = None) -> bool:
        """Train (resuming), evaluate, write model.pt and metrics.json; True when finished.

        `stop_at` ends the run after that step with a checkpoint and no outputs, as a
        preemption would (used by tests).
        """
        s = self.settings
        if self.context.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.resume()
        self._trim_train_log()
        if self.context.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.out_dir / "tensorboard"),
                                              purge_step=self.step)
        log.info("model %s: %s parameters, languages %s, objectives %s, %d rank(s), %s, %s",
                 self.name, f"{self.model.num_parameters():,}", self.langs, s.objectives,
                 self.context.world_size, self.device, self.precision)
        handlers = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)}
        try:
            self._window_start = time.perf_counter()
            while self.step < s.max_steps and not self.stopped_early:
                self.train_step()
                if self.step % s.log_every == 0:
                    self._log_window()
                if self.step % s.eval_every == 0:
                    self._evaluate_and_track()
                received = self._signal_received()
                if self.step % s.checkpoint_every == 0 or received or self.step == stop_at:
                    self.save_checkpoint()
                self._signal = None
                if received:  # SLURM's warning before a time limit, or preemption
                    log.warning("stopping on %s; rerun to resume from step %d",
                                signal.Signals(received).name, self.step)
                    raise SystemExit(128 + received)
                if self.step == stop_at:
                    return False
            self.save_checkpoint()  # before an off-grid last evaluation: see at_end
            current_is_best = self.last_eval_step != self.step and self._evaluate_and_track(
                at_end=True)
            self._finish(current_is_best)
            return True
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            if self._tensorboard is not None:
                self._tensorboard.close()

    def _finish(self, current_is_best: bool = False) -> None:
        """Best weights (the current ones when `current_is_best`): final valid and test
        evaluation, model.pt and metrics.json."""
        self.output_step = self.step if current_is_best else self.best_step
        best = None if current_is_best else load_checkpoint(self.checkpoint_dir / BEST)
        if best is not None:
            self.model.load_state_dict(best)
        records = []
        for split in ("valid", "test"):
            results = self.evaluate(split)
            for objective, sources in results.items():
                for source, (ppl, acc) in sources.items():
                    records.append(self._record(split, source, f"{objective}_ppl", ppl))
                    records.append(self._record(split, source, f"{objective}_acc", 100 * acc))
                    if objective == "clm":  # total NLL over the words of the original text
                        records.append(self._record(split, source, "clm_ppl_word",
                                                    self.word_ppl[(split, source)]))
                ppls = [ppl for ppl, _ in sources.values()]
                accs = [acc for _, acc in sources.values()]
                records.append(self._record(split, "avg", f"{objective}_ppl", np.mean(ppls)))
                records.append(self._record(split, "avg", f"{objective}_acc",
                                            100 * np.mean(accs)))
            average = self.average_ppl(results)
            records.append(self._record(split, "avg", "ppl", average))
            log.info("%s average perplexity %.3f; selection criterion %.3f (best step %d)",
                     split, average, self.average_ppl(results, self.settings.select_on),
                     self.output_step)
        if self.context.is_main:
            save_pretrained(self.out_dir / "model.pt", self.model, self.dictionary, self.langs,
                            self.settings.to_dict())
            with atomic_open(self.out_dir / "metrics.json") as handle:
                json.dump(records, handle, indent=1)
        barrier(self.context)

    def release_process_group(self) -> None:
        """Drop the DistributedDataParallel wrapper (evaluation goes on with `self.model`).

        Call it before the process group is destroyed (`distributed.cleanup`). DDP's reducer
        holds the group; if the reducer were its last owner, the group's destructor would
        run from the reducer's, with the GIL held, and wait for gloo's worker thread, which
        may itself wait for the GIL to free a finished collective's tensors: a deadlock
        after training, seen about 1 run in 5 on 2 busy cores (pytorch/pytorch#56297).
        Released here, the group dies in `destroy_process_group`, whose binding releases
        the GIL first."""
        self.ddp = self.model

    def _record(self, split: str, lang: str, metric: str, value: float) -> dict[str, Any]:
        return {"task": "pretrain", "model": self.name, "split": split, "lang": lang,
                "metric": metric, "value": float(value), "step": self.output_step,
                **self.provenance}
