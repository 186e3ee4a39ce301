"""What every task shares: typed settings from JSON, checks that a model fits its data,
records with provenance, checkpoints that survive SIGUSR1/SIGTERM, padded batches.

Tasks fine-tune or evaluate the pretrained `model.pt` files (weights + config +
dictionary + language ids, see xlm/train/checkpoint.py), so the first thing each does
is refuse data binarized with another vocabulary, in one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from xlm.data.dictionary import EOS, PAD, Dictionary
from xlm.data.indexed import IndexedDataset
from xlm.errors import UserError
from xlm.report.records import utc_timestamp
from xlm.train.checkpoint import load_resumable, save_atomic
from xlm.train.fingerprint import make_fingerprint, move_aside
from xlm.train.trainer import git_revision

log = logging.getLogger(__name__)

S = TypeVar("S")


def settings_from_json(cls: type[S], text_or_path: str, what: str) -> S:
    """A settings dataclass from a JSON object (string, `@file` or a path); unknown keys
    are an error so that a typo in the config cannot go unnoticed."""
    source = "--settings"
    if text_or_path.startswith("@") or not text_or_path.lstrip().startswith("{"):
        source = text_or_path.lstrip("@")
        text_or_path = Path(source).read_text(encoding="utf-8")
    try:
        values = json.loads(text_or_path)
    except json.JSONDecodeError as error:
        raise UserError(f"{source}: not valid JSON ({error}); pass a JSON object") from None
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{source}: unknown {what} setting '{unknown[0]}'; "
                        f"allowed: {', '.join(sorted(known))}")
    return cls(**values)


def check_vocabulary(model_dictionary: Dictionary, vocab: str | Path, model: str | Path) -> None:
    """Refuse data binarized with another vocabulary than the model's (ids would not mean
    the same words)."""
    data_dictionary = Dictionary.read_vocab(vocab)
    if data_dictionary.id2word != model_dictionary.id2word:
        first = next((i for i, (a, b) in enumerate(zip(
            data_dictionary.id2word, model_dictionary.id2word, strict=False)) if a != b),
            min(len(data_dictionary), len(model_dictionary)))
        raise UserError(
            f"{vocab}: vocabulary does not match the model {model} ({len(data_dictionary)} vs "
            f"{len(model_dictionary)} words, first difference at id {first}); binarize the data "
            "with the model's vocabulary or pretrain the model on this one")


def open_dataset(prefix: str | Path, dictionary: Dictionary) -> IndexedDataset:
    """A binarized dataset whose ids all exist in `dictionary` (else one clear line)."""
    dataset = IndexedDataset(prefix, dictionary)
    if dataset.num_tokens and int(np.max(dataset.tokens)) >= len(dictionary):
        raise UserError(f"{prefix}.bin: token id {int(np.max(dataset.tokens))} is outside the "
                        f"model's vocabulary of {len(dictionary)}; rebinarize with its vocabulary")
    return dataset


def lang_id(langs: Sequence[str], lang: str, model: str | Path) -> int:
    """The model's id of `lang`; a model without that language is refused."""
    if lang not in langs:
        raise UserError(f"{model}: the model has no language {lang!r} (it knows {list(langs)}); "
                        "pretrain it with that language or drop the language from the task")
    return list(langs).index(lang)


def add_provenance_arguments(parser: argparse.ArgumentParser) -> None:
    """--config-hash and --run-name, defaulting to what the rules export (tasks_common.smk),
    so that the whole-config hash is recorded without being part of the job's command."""
    parser.add_argument("--config-hash", default=os.environ.get("XLM_CONFIG_HASH", "unknown"),
                        help="provenance for metrics (default: $XLM_CONFIG_HASH)")
    parser.add_argument("--run-name", default=os.environ.get("XLM_RUN_NAME", "unknown"),
                        help="provenance for metrics (default: $XLM_RUN_NAME)")


def provenance(config_hash: str, run_name: str) -> dict[str, str]:
    return {"config_hash": config_hash, "run_name": run_name, "git_revision": git_revision(),
            "timestamp": utc_timestamp()}


def pad_sequences(sequences: Sequence[np.ndarray], pad: int = PAD) -> tuple[Tensor, Tensor]:
    """(batch, max_len) ids right-padded with `pad`, and the mask of real tokens."""
    width = max(len(s) for s in sequences)
    tokens = np.full((len(sequences), width), pad, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tokens[row, :len(sequence)] = sequence
    tokens_t = torch.from_numpy(tokens)
    return tokens_t, tokens_t != pad


def with_eos(ids: np.ndarray, max_len: int) -> np.ndarray:
    """`</s> ids </s>`, the sentence clipped to `max_len` tokens (XLM's sentence layout)."""
    return np.concatenate([[EOS], np.asarray(ids[:max_len], dtype=np.int64), [EOS]])


def length_batches(lengths: np.ndarray, tokens_per_batch: int,
                   max_sentences: int | None = None) -> list[np.ndarray]:
    """Indices grouped by similar length, each group at most `tokens_per_batch` padded
    tokens (and `max_sentences` rows), so that little compute goes to padding."""
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        end = start + 1
        while end < len(order) and lengths[order[end]] * (end + 1 - start) <= tokens_per_batch \
                and (max_sentences is None or end - start < max_sentences):
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


class TaskCheckpoint:
    """`latest.pt` in an undeclared folder, written atomically, resumed only by the same
    run (same settings and same input contents: see xlm/train/fingerprint.py), plus the
    signals that stop a job: SLURM's warning before a time limit (SIGUSR1 with
    `--signal=USR1@600`), SIGTERM and Ctrl-C (SIGINT). Each one checkpoints after the
    current step and exits with 128 + signal; the rerun resumes (as pretraining does).

    `inputs` names every file that shapes the run ({"pretrained model M": path, ...}).
    """

    def __init__(self, folder: str | Path, inputs: dict[str, str | Path] | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "latest.pt"
        self.inputs = dict(inputs or {})
        self.signal: int | None = None
        self._digests: dict[str, Any] | None = None

    def fingerprint(self, settings: dict[str, Any]) -> dict[str, Any]:
        if self._digests is None:
            self._digests = make_fingerprint({}, self.inputs)["inputs"]
        return {"settings": settings, "inputs": self._digests}

    def load(self, settings: dict[str, Any], continuable: Callable[[dict[str, Any]], str | None]
             | None = None) -> dict[str, Any] | None:
        """The saved state when this very run wrote it and `continuable` (if given) does not
        object to it, else None (stale files moved aside): see `load_resumable`."""
        state = load_resumable(self.path, self.fingerprint(settings), continuable)
        if state is None:
            move_aside(self.folder)  # a best.pt without latest.pt is stale too
            return None
        log.info("resuming from %s", self.path)
        return state

    def save(self, settings: dict[str, Any], state: dict[str, Any]) -> None:
        save_atomic({**state, "settings": settings, "fingerprint": self.fingerprint(settings)},
                    self.path)
        log.info("checkpoint written to %s", self.path)

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.warning("received %s: checkpoint after this step", signal.Signals(signum).name)
        self.signal = signum

    @contextmanager
    def signals(self) -> Iterator[TaskCheckpoint]:
        handlers = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def after_step(self, settings: dict[str, Any], state: dict[str, Any]) -> None:
        """Checkpoint and exit when a signal came (rerun to resume)."""
        if self.signal is None:
            return
        received, self.signal = self.signal, None
        self.save(settings, state)
        log.warning("stopping on %s; rerun to resume", signal.Signals(received).name)
        raise SystemExit(128 + received)
