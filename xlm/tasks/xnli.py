"""`xlm xnli`: cross-lingual classification (paper 4.1, Table 1).

A linear classifier on the first hidden state of the last layer; all parameters are
fine-tuned on English pairs laid out as `</s> premise </s> hypothesis </s>` (each
sentence clipped to `max_len` tokens with its `</s>`s at training, as XLM's `truncate`;
evaluation reads whole pairs) with the language id of the evaluated language, Adam and no
gradient clipping by default (XLM's glue-xnli.py). Every (lr, batch size) of the
settings is tried, for `epochs` epochs each; an epoch is `epoch_size` training pairs of a
fresh shuffle (XLM's `--epoch_size 20000`) or, with `epoch_size` null, a full pass. The
epoch and values with the best English valid accuracy are kept (model selection on valid
only), and that model is evaluated
zero-shot on every language's valid and test sets. TRANSLATE-TRAIN (`--translate-train
fr ...`): the same grid is run again for each listed language on its translated training set
(`data/xnli/{lang}.train.*`), selected on that language's valid set and evaluated on its
valid and test sets. TRANSLATE-TEST (`--translate-test fr ...`): the English-selected model
is also evaluated on each listed language's test set machine-translated into English
(`data/xnli/en.test-from-{lang}.*`, English text with the English language id), recorded
with setting translate-test under that language (English: its own test set).

Resumable: a checkpoint is written every `checkpoint_every` steps, at each epoch end and on
SIGUSR1/SIGTERM (one folder per training language).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xlm.data.dictionary import EOS
from xlm.data.xnli import LABELS, load_labels
from xlm.errors import UserError
from xlm.io import keep_log_history
from xlm.model.transformer import TransformerModel
from xlm.report.records import write_metrics
from xlm.tasks.common import (
    TaskCheckpoint,
    add_provenance_arguments,
    check_vocabulary,
    lang_id,
    open_dataset,
    pad_sequences,
    provenance,
    settings_from_json,
)
from xlm.train.checkpoint import load_pretrained, restore_rng_states, rng_states
from xlm.train.fingerprint import dataset_files
from xlm.train.optim import adam_implementation

log = logging.getLogger(__name__)


@dataclass
class XnliSettings:
    lr: list[float] = field(default_factory=lambda: [5e-6])  # tried in turn, best kept
    batch_size: list[int] = field(default_factory=lambda: [8])  # paper: 8 or 16
    epochs: int = 3
    epoch_size: int | None = None  # training pairs per epoch (XLM: 20000); None: all
    max_len: int = 256  # tokens per sentence with its </s>s, at training (XLM's truncate)
    dropout: float = 0.0  # before the classifier (XLM's glue-xnli.py --dropout: 0)
    max_train: int | None = None  # first N training pairs of a language (None: all)
    max_eval: int | None = None  # first N pairs of each valid/test set (None: all)
    eval_batch_size: int = 32
    clip_norm: float = 0.0  # XLM's XNLI fine-tuning does not clip
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    compile: bool = False  # torch.compile the classifier for training (not in the key)

    def __post_init__(self) -> None:
        if not self.lr or not self.batch_size:
            raise UserError("xnli settings: give at least one lr and one batch_size")


class XnliClassifier(nn.Module):
    """The pretrained encoder and a linear layer on its first output state."""

    def __init__(self, encoder: TransformerModel, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(encoder.config.dim, len(LABELS))

    def forward(self, tokens: torch.Tensor, langs: torch.Tensor | None,
                pad_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(tokens, langs=langs, pad_mask=pad_mask).hidden
        return self.proj(self.dropout(hidden[:, 0]))


@dataclass
class XnliSplit:
    """Premises, hypotheses and labels of one language and split, as model inputs."""

    inputs: list[np.ndarray]
    labels: np.ndarray

    @classmethod
    def load(cls, data: Path, lang: str, split: str, dictionary, max_len: int,
             limit: int | None, max_positions: int, training: bool = False) -> XnliSplit:
        """Training pairs get each sentence clipped to `max_len` tokens with its `</s>`s
        (XLM's `truncate`); evaluation pairs are read whole. Both are cut at the model's
        `max_positions`."""
        prefix = data / f"{lang}.{split}"
        premises = open_dataset(f"{prefix}.s1", dictionary)
        hypotheses = open_dataset(f"{prefix}.s2", dictionary)
        labels = load_labels(f"{prefix}.label")
        if not len(premises) == len(hypotheses) == len(labels):
            raise UserError(f"{prefix}: {len(premises)} premises, {len(hypotheses)} hypotheses "
                            f"and {len(labels)} labels; rebuild the XNLI data")
        n = len(labels) if limit is None else min(limit, len(labels))
        keep = max_len - 2 if training else None
        inputs = [np.concatenate([[EOS], premises[i][:keep], [EOS], hypotheses[i][:keep],
                                  [EOS]])[:max_positions] for i in range(n)]
        return cls(inputs, labels[:n])

    def batch(self, rows: np.ndarray, lang: int | None, device: torch.device):
        tokens, mask = pad_sequences([self.inputs[i] for i in rows])
        langs = None if lang is None else torch.full_like(tokens, lang)
        def move(tensor: torch.Tensor) -> torch.Tensor:  # without waiting for the GPU
            return tensor.to(device, non_blocking=True)

        return (move(tokens), None if langs is None else move(langs), move(mask),
                move(torch.from_numpy(self.labels[rows])))


@torch.no_grad()
def accuracy(model: XnliClassifier, data: XnliSplit, lang: int | None, batch_size: int,
             device: torch.device) -> float:
    """Accuracy in percent; pairs are batched by length to waste little on padding."""
    model.eval()
    order = np.argsort([len(x) for x in data.inputs], kind="stable")
    correct = torch.zeros((), dtype=torch.int64, device=device)  # summed on the device
    for start in range(0, len(order), batch_size):
        tokens, langs, mask, labels = data.batch(order[start:start + batch_size], lang, device)
        correct += (model(tokens, langs, mask).argmax(-1) == labels).sum()
    return 100.0 * int(correct) / max(len(order), 1)


def _snapshot(position: tuple[int, int, int], best: dict[str, Any], model: nn.Module,
              optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Everything needed to continue exactly from `position` (grid point, epoch, batch)."""
    return {"position": position, "best": best, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "rng": rng_states()}


class XnliFineTuner:
    """Grid over (lr, batch size), epochs, best on the training language's valid set
    (English, or the language of a translated training set); resumable."""

    def __init__(self, settings: XnliSettings, *, model_path: str | Path, data: str | Path,
                 vocab: str | Path, languages: list[str], out: str | Path,
                 device: torch.device | None = None, train_lang: str = "en",
                 translate_test: list[str] | None = None) -> None:
        self.settings = settings
        self.translate_test = list(translate_test or [])
        if self.translate_test and train_lang != "en":
            raise UserError("xnli: translate-test evaluates the model fine-tuned on English")
        self.model_path = Path(model_path)
        self.data = Path(data)
        self.out = Path(out)
        self.languages = languages
        self.train_lang = train_lang
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        encoder, self.dictionary, self.langs = load_pretrained(model_path)
        check_vocabulary(self.dictionary, vocab, model_path)
        self.pretrained = encoder.state_dict()
        self.encoder_config = encoder.config
        if train_lang not in languages:
            raise UserError(f"xnli languages: the training language ({train_lang}) must be "
                            "evaluated; model selection uses its valid set")
        self.lang_ids = {lang: self._lang(lang) for lang in languages}
        s = settings
        self.train = XnliSplit.load(self.data, train_lang, "train", self.dictionary, s.max_len,
                                    s.max_train, self.encoder_config.max_positions,
                                    training=True)
        self.valid = XnliSplit.load(self.data, train_lang, "valid", self.dictionary, s.max_len,
                                    s.max_eval, self.encoder_config.max_positions)
        # English keeps checkpoints/ itself, so runs from before translate-train still resume.
        folder = self.out / "checkpoints"
        inputs: dict[str, str | Path] = {f"pretrained model {model_path}": model_path,
                                         f"dictionary {vocab}": vocab}
        for split in ("train", "valid"):
            prefix = self.data / f"{train_lang}.{split}"
            for path in [*dataset_files(f"{prefix}.s1"), *dataset_files(f"{prefix}.s2"),
                         Path(f"{prefix}.label")]:
                inputs[f"{split} data {path}"] = path
        self.checkpoint = TaskCheckpoint(
            folder if train_lang == "en" else folder / f"translate-train.{train_lang}", inputs)
        self.grid = list(itertools.product(s.lr, s.batch_size))

    def _lang(self, lang: str) -> int | None:
        if self.encoder_config.n_langs == 1:
            return None
        return lang_id(self.langs, lang, self.model_path)

    def _fresh_model(self, combo: int) -> XnliClassifier:
        torch.manual_seed(self.settings.seed * 1000 + combo)
        encoder = TransformerModel(self.encoder_config)
        encoder.load_state_dict(self.pretrained)
        return XnliClassifier(encoder, self.settings.dropout).to(self.device)

    def run(self) -> list[dict[str, Any]]:
        """Fine-tune every grid point, keep the best, evaluate it; return result rows."""
        s = self.settings
        # `compile` changes how steps run, not what they compute: not part of the key.
        key = {k: v for k, v in asdict(s).items() if k != "compile"} | {
            "model": str(self.model_path)}
        if self.train_lang != "en":
            key["train_lang"] = self.train_lang
        state = self.checkpoint.load(key) or {}
        combo, epoch, batch_index = state.get("position", (0, 0, 0))
        best = state.get("best", {"acc": -1.0})
        model: XnliClassifier | None = None
        optimizer: torch.optim.Optimizer | None = None
        with self.checkpoint.signals():
            while combo < len(self.grid):
                lr, batch_size = self.grid[combo]
                if model is None:
                    model = self._fresh_model(combo)
                    forward = torch.compile(model) if s.compile else model
                    optimizer = torch.optim.Adam(model.parameters(), lr=lr,
                                                 **adam_implementation(model))
                    if "model" in state:
                        model.load_state_dict(state["model"])
                        optimizer.load_state_dict(state["optimizer"])
                        restore_rng_states(state["rng"])
                order = np.random.default_rng([s.seed, combo, epoch]).permutation(
                    len(self.train.labels))[:s.epoch_size]
                batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
                # The window's loss is summed on the device (float64, as Python sums the
                # steps' values) and read when logged, not every step; tokens are counted
                # from the host's lengths.
                window_start, window_tokens = time.perf_counter(), 0
                window_loss: torch.Tensor | float = 0.0
                window_steps = 0
                while batch_index < len(batches):
                    model.train()
                    rows = batches[batch_index]
                    tokens, langs, mask, labels = self.train.batch(
                        rows, self.lang_ids[self.train_lang], self.device)
                    loss = nn.functional.cross_entropy(forward(tokens, langs, mask), labels)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if s.clip_norm > 0:
                        nn.utils.clip_grad_norm_(model.parameters(), s.clip_norm)
                    optimizer.step()
                    batch_index += 1
                    window_tokens += sum(len(self.train.inputs[i]) for i in rows)
                    window_loss = window_loss + loss.detach().double()
                    window_steps += 1
                    if batch_index % s.log_every == 0 or batch_index == len(batches):
                        elapsed = max(time.perf_counter() - window_start, 1e-9)
                        log.info("lr %g batch %d epoch %d step %d/%d | loss %.4f | %.0f tokens/s",
                                 lr, batch_size, epoch + 1, batch_index, len(batches),
                                 float(window_loss) / window_steps, window_tokens / elapsed)
                        window_start, window_tokens, window_loss, window_steps = (
                            time.perf_counter(), 0, 0.0, 0)
                    position = (combo, epoch, batch_index)
                    if batch_index % s.checkpoint_every == 0:
                        self.checkpoint.save(key, _snapshot(position, best, model, optimizer))
                    if self.checkpoint.signal is not None:
                        self.checkpoint.after_step(
                            key, _snapshot(position, best, model, optimizer))
                acc = accuracy(model, self.valid, self.lang_ids[self.train_lang],
                               s.eval_batch_size, self.device)
                improved = acc > best["acc"]
                log.info("lr %g batch %d epoch %d: %s valid accuracy %.2f%%%s", lr, batch_size,
                         epoch + 1, self.train_lang, acc, " (best)" if improved else "")
                if improved:
                    best = {"acc": acc, "lr": lr, "batch_size": batch_size, "epoch": epoch + 1,
                            "weights": copy.deepcopy(model.state_dict())}
                epoch, batch_index = epoch + 1, 0
                if epoch == s.epochs:
                    combo, epoch, model = combo + 1, 0, None
                    state = {}
                if model is not None:
                    self.checkpoint.save(key, _snapshot((combo, epoch, 0), best, model, optimizer))
                else:
                    self.checkpoint.save(key, {"position": (combo, 0, 0), "best": best})
        return self._evaluate(best)

    def _evaluate(self, best: dict[str, Any]) -> list[dict[str, Any]]:
        s = self.settings
        model = self._fresh_model(0)
        model.load_state_dict(best["weights"])
        chosen = {"lr": best["lr"], "batch_size": best["batch_size"], "epoch": best["epoch"]}
        log.info("selected on %s valid: %s (%.2f%%)", self.train_lang, chosen, best["acc"])
        rows = []
        for split in ("valid", "test"):
            values = []
            for lang in self.languages:
                data = XnliSplit.load(self.data, lang, split, self.dictionary, s.max_len,
                                      s.max_eval, self.encoder_config.max_positions)
                acc = accuracy(model, data, self.lang_ids[lang], s.eval_batch_size, self.device)
                values.append(acc)
                rows.append({"split": split, "lang": lang, "value": acc, **chosen})
                log.info("%s %s accuracy %.2f%% (%d pairs)", split, lang, acc, len(data.labels))
            if self.train_lang != "en":  # translate-train evaluates one language: no average
                continue
            # Not metric `acc`: Table 1 computes its own average over the `acc` columns.
            rows.append({"split": split, "lang": "avg", "metric": "acc_avg",
                         "value": float(np.mean(values)), "languages": list(self.languages),
                         **chosen})
        return rows + self._translate_test(model, rows, chosen)

    def _translate_test(self, model: XnliClassifier, rows: list[dict[str, Any]],
                        chosen: dict[str, Any]) -> list[dict[str, Any]]:
        """Accuracy on each translate-test language's test set translated into English; the
        English cell is the English test set itself, as in the paper's TRANSLATE-TEST row."""
        if not self.translate_test:
            return []
        s = self.settings
        english = next(r["value"] for r in rows if (r["split"], r["lang"]) == ("test", "en"))
        results = [{"split": "test", "lang": "en", "value": english,
                    "setting": "translate-test", **chosen}]
        for lang in self.translate_test:
            data = XnliSplit.load(self.data, "en", f"test-from-{lang}", self.dictionary,
                                  s.max_len, s.max_eval, self.encoder_config.max_positions)
            acc = accuracy(model, data, self.lang_ids["en"], s.eval_batch_size, self.device)
            results.append({"split": "test", "lang": lang, "value": acc,
                            "setting": "translate-test", **chosen})
            log.info("translate-test %s (its test set in English) accuracy %.2f%% (%d pairs)",
                     lang, acc, len(data.labels))
        return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="pretrained model.pt")
    parser.add_argument("--name", required=True, help="model name recorded in metrics")
    parser.add_argument("--data", required=True, help="binarized XNLI folder (data/xnli)")
    parser.add_argument("--vocab", required=True, help="vocabulary the data was binarized with")
    parser.add_argument("--languages", nargs="+", required=True, help="languages evaluated")
    parser.add_argument("--translate-train", nargs="*", default=[], metavar="LANG",
                        help="also fine-tune on each language's translated training set "
                             "(data/xnli/LANG.train.*) and evaluate on that language")
    parser.add_argument("--translate-test", nargs="*", default=[], metavar="LANG",
                        help="also evaluate the English model on each language's test set "
                             "translated into English (data/xnli/en.test-from-LANG.*)")
    parser.add_argument("--settings", required=True, help="JSON object, @file or a path")
    parser.add_argument("--out", required=True, help="folder: metrics.json, checkpoints/")
    add_provenance_arguments(parser)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--cpu", action="store_true", help="run on CPU even with a GPU")


def run(args: argparse.Namespace) -> None:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    keep_log_history(args.out, "xnli")
    settings = settings_from_json(XnliSettings, args.settings, "xnli")
    for option, langs in (("--translate-train", args.translate_train),
                          ("--translate-test", args.translate_test)):
        for lang in langs:
            if lang == "en" or lang not in args.languages:
                raise UserError(f"{option} {lang}: give languages of --languages other than "
                                "en (English is the original language)")
    device = torch.device("cpu") if args.cpu else None
    common = {"task": "xnli", "model": args.name, "metric": "acc", "seed": settings.seed,
              **provenance(args.config_hash, args.run_name)}
    runs = [("en", args.languages, "zero-shot")]
    runs += [(lang, [lang], "translate-train") for lang in dict.fromkeys(args.translate_train)]
    records = []
    for train_lang, languages, setting in runs:
        if setting == "translate-train":
            log.info("translate-train: fine-tuning on the %s training set", train_lang)
        tuner = XnliFineTuner(settings, model_path=args.model, data=args.data, vocab=args.vocab,
                              languages=languages, out=args.out, device=device,
                              train_lang=train_lang,
                              translate_test=args.translate_test if train_lang == "en" else [])
        records += [{**common, "setting": setting, **row} for row in tuner.run()]
    write_metrics(Path(args.out) / "metrics.json", records)
