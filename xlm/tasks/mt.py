"""`xlm mt-train`: supervised and unsupervised machine translation (paper 4.2-4.3).

One encoder-decoder for all directions of an experiment; language ids tell the
direction. Encoder and decoder are each initialised from a pretrained model (CLM, MLM,
...) or randomly (`encoder_init` / `decoder_init`); a decoder initialised from a
pretrained model gets fresh cross-attention layers. Each side keeps the language ids of
the model it came from.

Training objectives, one per step in turn:
- `directions` ("ro-en"): supervised pairs from the parallel data (`{pair}.{lang}.train`);
- `dae` ("en"): denoising auto-encoding of monolingual text (shuffle 3, dropout 0.1,
  blank 0.1; xlm/tasks/noise.py);
- `bt` ("en-fr"): online back-translation: an English sentence is translated to French
  by the current model (greedy, no gradient), and the model learns French -> English
  from that pair (Lample et al. 2018).
Batches hold `tokens_per_batch` padded tokens of similar-length sentences. Every
`eval_every` steps greedy tokenized BLEU on the first `valid_sentences` valid pairs of each
evaluated direction is averaged; the best model is kept as `model.pt`; with `patience` the
run stops after that many evaluations without a better BLEU (XLM's `--stopping_criterion
valid_en-fr_mt_bleu,10`). Resumable.

Several ranks (`--ranks N`, torchrun or SLURM tasks, as `xlm pretrain`): every rank draws
the same batch of `tokens_per_batch` tokens and trains on its share of the sentences
(rank r: sentences r, r + N, ...); each share's summed loss is divided by the whole
batch's target count and DistributedDataParallel sums the gradients, so an update is the
one a single process makes with the same batch. Back-translation generates only the
rank's share. Valid BLEU is rank 0's, shared with every rank; rank 0 writes the files.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from xlm.data.batching import regroup
from xlm.data.dictionary import N_SPECIAL, PAD, Dictionary
from xlm.data.indexed import IndexedDataset
from xlm.errors import UserError
from xlm.io import atomic_open, keep_log_history
from xlm.model.generate import greedy
from xlm.model.transformer import IGNORE_INDEX, ModelConfig, TransformerModel
from xlm.tasks.bleu import tok_bleu
from xlm.tasks.common import (
    TaskCheckpoint,
    check_vocabulary,
    length_batches,
    open_dataset,
    pad_sequences,
    settings_from_json,
    with_eos,
)
from xlm.tasks.noise import NoiseConfig, add_noise
from xlm.text.bpe import remove_bpe
from xlm.train.checkpoint import (
    dictionary_state,
    load_file,
    load_pretrained,
    restore_rng_states,
    rng_states,
    save_atomic,
)
from xlm.train.continuation import continuation_problem, trajectory
from xlm.train.distributed import (
    DistributedContext,
    all_reduce_sum,
    barrier,
    cleanup,
    setup_distributed,
)
from xlm.train.fingerprint import dataset_files
from xlm.train.launch import run_ranks_if_needed
from xlm.train.optim import build_optimizer, parse_weight_schedule, weight_at

log = logging.getLogger(__name__)

RANDOM = "random"


@dataclass
class MtSettings:
    kind: str = "supervised"  # or "unsupervised" (records: mt_sup / mt_unsup)
    setting: str = "unidirectional"  # recorded: unidirectional, bidirectional, ...+bt
    directions: list[str] = field(default_factory=list)  # supervised "src-tgt"
    dae: list[str] = field(default_factory=list)  # denoising auto-encoding languages
    bt: list[str] = field(default_factory=list)  # "src-tgt": src text -> tgt -> learn tgt->src
    eval_directions: list[str] = field(default_factory=list)  # model selection and test
    encoder_init: str = RANDOM  # a pretrained model's name, or "random"
    decoder_init: str = RANDOM
    # Sizes when both sides are random (else the pretrained model's sizes are used).
    n_layers: int = 6
    dim: int = 1024
    n_heads: int = 8
    dropout: float = 0.1
    attention_dropout: float = 0.1
    max_positions: int = 256
    # Batches and optimisation.
    tokens_per_batch: int = 2000
    max_len: int = 100
    # XLM's MT optimiser: adam_inverse_sqrt, beta2 0.98, warm-up 4000 (its README command).
    lr: float = 1e-4
    schedule: str = "inverse_sqrt"  # or cosine, constant (xlm/train/optim.py)
    warmup_steps: int = 4000
    clip_norm: float = 5.0
    max_steps: int = 1000
    # Loss weights per objective, XLM's syntax: a number, or piecewise linear in the
    # round (one update of each objective, XLM's iteration), e.g. '0:1,100000:0.1,300000:0'
    # (its lambda_ae); a weight of 0 skips that objective's update, as in XLM.
    lambda_mt: float | str = 1.0
    lambda_ae: float | str = 1.0
    lambda_bt: float | str = 1.0
    # Denoising noise (Lample et al. 2018 / XLM).
    word_shuffle: float = 3.0
    word_dropout: float = 0.1
    word_blank: float = 0.1
    # Evaluation, logging, checkpoints.
    eval_every: int = 200
    valid_sentences: int | None = 200  # None: the whole valid set (XLM)
    patience: int | None = None  # evaluations without a better BLEU before stopping; None: never
    log_every: int = 20
    checkpoint_every: int = 500
    seed: int = 0
    compile: bool = False  # torch.compile encoder and decoder for training (not in the key)

    def __post_init__(self) -> None:
        if self.kind not in ("supervised", "unsupervised"):
            raise UserError(f"mt settings: kind {self.kind!r}; use supervised or unsupervised")
        if not (self.directions or self.dae or self.bt):
            raise UserError("mt settings: no objective; give directions, dae or bt")
        for name in ("directions", "bt", "eval_directions"):
            for direction in getattr(self, name):
                if len(direction.split("-")) != 2:
                    raise UserError(f"mt settings: {name} entry {direction!r} must look like "
                                    "'ro-en'")
        if self.schedule not in ("inverse_sqrt", "cosine", "constant"):
            raise UserError(f"mt settings: schedule {self.schedule!r}; use inverse_sqrt, "
                            "cosine or constant")
        for name in ("lambda_mt", "lambda_ae", "lambda_bt"):
            parse_weight_schedule(getattr(self, name), f"mt settings: {name}")
        if self.patience is not None and self.patience < 1:
            raise UserError(f"mt settings: patience {self.patience}; give at least 1, or null "
                            "to train max_steps")
        if not self.eval_directions:
            self.eval_directions = list(self.directions) or [
                "-".join(reversed(d.split("-"))) for d in self.bt]

    @property
    def languages(self) -> list[str]:
        langs = set(self.dae)
        for direction in self.directions + self.bt + self.eval_directions:
            langs.update(direction.split("-"))
        return sorted(langs)

    @property
    def task(self) -> str:
        return "mt_sup" if self.kind == "supervised" else "mt_unsup"


def init_name(path: str | None) -> str:
    return RANDOM if not path else Path(path).parent.parent.name


class Translator(nn.Module):
    """Encoder + decoder with each side's language list; what model.pt of MT holds."""

    def __init__(self, encoder: TransformerModel, decoder: TransformerModel,
                 encoder_langs: list[str], decoder_langs: list[str]) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.encoder_langs, self.decoder_langs = encoder_langs, decoder_langs

    def lang_ids(self, src: str, tgt: str) -> tuple[int | None, int | None]:
        def side(model: TransformerModel, langs: list[str], lang: str, what: str) -> int | None:
            if lang not in langs:
                raise UserError(f"the MT {what} has no language {lang!r} (it knows {langs}); "
                                "pretrain it with that language")
            return langs.index(lang) if model.config.n_langs > 1 else None

        return (side(self.encoder, self.encoder_langs, src, "encoder"),
                side(self.decoder, self.decoder_langs, tgt, "decoder"))

    def loss(self, src: Tensor, src_mask: Tensor, src_lang: int | None, tgt: Tensor,
             tgt_mask: Tensor, tgt_lang: int | None,
             targets: Tensor | None = None) -> tuple[Tensor, int]:
        """Summed cross-entropy of the target tokens after `</s>`, and their number.

        `targets` (`target_ids` of the batch on the host) spares the GPU a wait: the
        decoder finds the predicted positions where the targets are."""
        def langs(tokens: Tensor, lang: int | None) -> Tensor | None:
            return None if lang is None else torch.full_like(tokens, lang)

        memory = self.encoder(src, langs=langs(src, src_lang), pad_mask=src_mask).hidden
        inputs = tgt[:, :-1]
        if targets is None:
            targets = target_ids(tgt, tgt_mask)
        out = self.decoder(inputs, langs=langs(inputs, tgt_lang), pad_mask=tgt_mask[:, :-1],
                           causal=True, memory=memory, memory_pad_mask=src_mask,
                           targets=targets)
        return out.loss, out.n_targets

    forward = loss  # so that DistributedDataParallel, which wraps forward, runs the loss

    def file_state(self, dictionary: Dictionary, settings: dict[str, Any],
                   extra: dict[str, Any]) -> dict[str, Any]:
        return {"encoder": {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()},
                "decoder": {k: v.detach().cpu() for k, v in self.decoder.state_dict().items()},
                "encoder_config": self.encoder.config.to_dict(),
                "decoder_config": self.decoder.config.to_dict(),
                "encoder_langs": self.encoder_langs, "decoder_langs": self.decoder_langs,
                "dictionary": dictionary_state(dictionary), "settings": settings, **extra}


def target_ids(tgt: Tensor, tgt_mask: Tensor) -> Tensor:
    """What the decoder predicts: each token after the first, IGNORE_INDEX on padding."""
    return tgt[:, 1:].masked_fill(~tgt_mask[:, 1:], IGNORE_INDEX)


def load_translator(path: str | Path) -> tuple[Translator, Dictionary, dict[str, Any]]:
    """An MT model.pt: the translator, its dictionary and the whole file's state."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: MT model not found; train it with `xlm mt-train`")
    state = load_file(path, "MT model")
    if "encoder" not in state:
        raise UserError(f"{path}: not an MT model (no encoder/decoder); use a model written "
                        "by `xlm mt-train`")
    encoder = TransformerModel(ModelConfig(**state["encoder_config"]))
    decoder = TransformerModel(ModelConfig(**state["decoder_config"]))
    encoder.load_state_dict(state["encoder"])
    decoder.load_state_dict(state["decoder"])
    dictionary = Dictionary(state["dictionary"]["words"], state["dictionary"]["counts"])
    translator = Translator(encoder, decoder, state["encoder_langs"], state["decoder_langs"])
    return translator.eval(), dictionary, state


def build_translator(settings: MtSettings, encoder_path: str | None, decoder_path: str | None,
                     vocab: str | Path) -> tuple[Translator, Dictionary]:
    """Each side from its pretrained model.pt, or random with the other side's sizes."""
    # A pretrained decoder gets fresh cross-attention layers while it is loaded: seed first,
    # or their initial weights (and the whole run) would differ from process to process.
    torch.manual_seed(settings.seed)
    loaded: dict[str, tuple[TransformerModel, Dictionary, list[str]]] = {}
    for side, path in (("encoder", encoder_path), ("decoder", decoder_path)):
        if path:
            loaded[side] = load_pretrained(path, is_decoder=side == "decoder")
            check_vocabulary(loaded[side][1], vocab, path)
    dictionary = (next(iter(loaded.values()))[1] if loaded else Dictionary.read_vocab(vocab))
    if loaded:
        template = next(iter(loaded.values()))
        base_config, base_langs = template[0].config.to_dict(), template[2]
    else:
        base_langs = settings.languages
        base_config = ModelConfig(
            n_words=len(dictionary), n_langs=len(base_langs), dim=settings.dim,
            n_layers=settings.n_layers, n_heads=settings.n_heads, dropout=settings.dropout,
            attention_dropout=settings.attention_dropout,
            max_positions=settings.max_positions, pad_index=PAD).to_dict()
    torch.manual_seed(settings.seed)
    sides = {}
    for side in ("encoder", "decoder"):
        if side in loaded:
            sides[side] = (loaded[side][0], loaded[side][2])
        else:
            config = ModelConfig(**{**base_config, "is_decoder": side == "decoder"})
            sides[side] = (TransformerModel(config), list(base_langs))
    return Translator(sides["encoder"][0], sides["decoder"][0], sides["encoder"][1],
                      sides["decoder"][1]), dictionary


def find_pair(data: Path, a: str, b: str, split: str) -> str:
    """The pair name under which the parallel data of languages a and b is stored."""
    for pair in (f"{a}-{b}", f"{b}-{a}"):
        if Path(f"{data}/{pair}.{a}.{split}.bin").is_file():
            return pair
    raise UserError(f"{data}: no {split} parallel data for {a} and {b} ({a}-{b}.{a}.{split}.bin "
                    f"or {b}-{a}.{a}.{split}.bin); configure the pair under parallel.pairs")


class Batches:
    """Length-grouped batches of sentence indices; each epoch redraws which sentences of
    similar length share a batch, and the batch order (seeded; XLM's get_iterator)."""

    def __init__(self, lengths: np.ndarray, tokens_per_batch: int, seed: int, key: int) -> None:
        self.lengths = lengths
        self.batches = length_batches(lengths, tokens_per_batch)
        self.seed, self.key = seed, key
        self._epoch: tuple[int, list[np.ndarray]] | None = None

    def get(self, number: int) -> np.ndarray:
        epoch, index = divmod(number, len(self.batches))
        if self._epoch is None or self._epoch[0] != epoch:
            rng = np.random.default_rng([self.seed, self.key, epoch, 1])
            self._epoch = (epoch, regroup(self.batches, self.lengths, rng))
        order = np.random.default_rng([self.seed, self.key, epoch]).permutation(len(self.batches))
        return self._epoch[1][order[index]]


class MtTrainer:
    def __init__(self, settings: MtSettings, *, data: str | Path, vocab: str | Path,
                 out: str | Path, encoder_path: str | None = None,
                 decoder_path: str | None = None, extra: dict[str, Any] | None = None,
                 device: torch.device | None = None,
                 context: DistributedContext | None = None) -> None:
        self.settings = settings
        self.data = Path(data)
        self.out = Path(out)
        self.extra = extra or {}
        self.context = context or DistributedContext(device=device or torch.device(
            "cuda" if torch.cuda.is_available() else "cpu"))
        self.device = self.context.device
        self.model, self.dictionary = build_translator(settings, encoder_path, decoder_path,
                                                       vocab)
        self.model.to(self.device)
        # MT never reads the encoder's output layer: its bias gets no gradient, which
        # DistributedDataParallel would wait for. Frozen, it is left out (Adam skipped it
        # anyway).
        self.model.encoder.pred_bias.requires_grad_(False)
        # What the updates run: the same modules, compiled with `compile: true`
        # (decoding for back-translation and BLEU runs them uncompiled), wrapped in
        # DistributedDataParallel when there are several ranks.
        self.train_model: nn.Module = self.model if not settings.compile else Translator(
            torch.compile(self.model.encoder), torch.compile(self.model.decoder),
            self.model.encoder_langs, self.model.decoder_langs)
        if self.context.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(
                self.train_model, device_ids=[self.device] if self.device.type == "cuda"
                else None)
        self.init = {"encoder_init": settings.encoder_init, "decoder_init": settings.decoder_init}
        s = settings
        self.noise = NoiseConfig(s.word_shuffle, s.word_dropout, s.word_blank)
        self.objectives = ([("para", d) for d in s.directions] + [("dae", lang) for lang in s.dae]
                           + [("bt", d) for d in s.bt])
        self.sources: dict[str, Any] = {}
        for key, (kind, name) in enumerate(self.objectives):
            if kind == "para":
                src, tgt = name.split("-")
                pair = find_pair(self.data, src, tgt, "train")
                sides = [open_dataset(self.data / f"{pair}.{lang}.train", self.dictionary)
                         for lang in (src, tgt)]
                lengths = np.minimum(sides[0].lengths, s.max_len) + np.minimum(
                    sides[1].lengths, s.max_len) + 4
                self.sources[f"{kind}:{name}"] = (sides, Batches(lengths, s.tokens_per_batch,
                                                                 s.seed, key))
            else:
                lang = name if kind == "dae" else name.split("-")[0]
                mono = open_dataset(self.data / f"{lang}.train", self.dictionary)
                lengths = 2 * (np.minimum(mono.lengths, s.max_len) + 2)
                self.sources[f"{kind}:{name}"] = ([mono], Batches(lengths, s.tokens_per_batch,
                                                                  s.seed, key))
        self.valid = {}
        for direction in s.eval_directions:
            src, tgt = direction.split("-")
            pair = find_pair(self.data, src, tgt, "valid")
            self.valid[direction] = [
                open_dataset(self.data / f"{pair}.{lang}.valid", self.dictionary)
                for lang in (src, tgt)]
        for direction in s.eval_directions + s.directions + s.bt:
            self.model.lang_ids(*direction.split("-"))
        # XLM's adam_inverse_sqrt: betas (0.9, 0.98), eps 1e-8 (its Adam's default).
        self.optimizer, self.scheduler = build_optimizer(
            self.model, s.lr, (0.9, 0.98), 1e-8, 0.0, s.warmup_steps, s.schedule, s.max_steps)
        self.weights = {kind: parse_weight_schedule(getattr(s, f"lambda_{name}"), name)
                        for kind, name in (("para", "mt"), ("dae", "ae"), ("bt", "bt"))}
        inputs: dict[str, str | Path] = {f"dictionary {vocab}": vocab}
        for side, path in (("encoder", encoder_path), ("decoder", decoder_path)):
            if path:
                inputs[f"pretrained {side} {path}"] = path
        datasets = [d for sides, _ in self.sources.values() for d in sides]
        datasets += [d for sides in self.valid.values() for d in sides]
        for dataset in datasets:
            for file in dataset_files(dataset.prefix):
                inputs[f"data {file}"] = file
        self.checkpoint = TaskCheckpoint(self.out / "checkpoints", inputs)
        self.step = 0
        self.best_bleu, self.best_step, self.last_eval_step = -1.0, 0, -1
        self.bad_evals = self.peak_bad_evals = 0  # evaluations in a row without progress

    # ----------------------------------------------------------------- batches
    def _tensors(self, sentences: list[np.ndarray]) -> tuple[Tensor, Tensor]:
        tokens, mask = pad_sequences(sentences)
        return tokens.to(self.device), mask.to(self.device)

    def _batch(self, kind: str, name: str, number: int, rng: np.random.Generator,
               on_device: bool = True):
        """(src tokens, mask, src lang, tgt tokens, mask, tgt lang, whole batch's target
        count) of this rank's share of one training batch, on the device (`on_device`
        False: the tensors stay on the CPU; back-translation runs on the device either
        way)."""
        src, src_mask, src_id, tgt, tgt_mask, tgt_id, n_targets = self._host_batch(
            kind, name, number, rng)
        if not on_device:
            return src, src_mask, src_id, tgt, tgt_mask, tgt_id, n_targets
        return (src.to(self.device), src_mask.to(self.device), src_id, tgt.to(self.device),
                tgt_mask.to(self.device), tgt_id, n_targets)

    def _share(self, sentences: list) -> list:
        """This rank's sentences of a batch: r, r + N, ... (all of them on one rank)."""
        return sentences[self.context.rank::self.context.world_size]

    def _host_batch(self, kind: str, name: str, number: int, rng: np.random.Generator):
        s = self.settings
        datasets, batches = self.sources[f"{kind}:{name}"]
        rows = batches.get(number)
        if len(rows) < self.context.world_size:
            raise UserError(f"mt settings: a batch of {len(rows)} sentences cannot be shared "
                            f"by {self.context.world_size} ranks; raise tokens_per_batch")
        # Every rank reads (and noises) the whole batch, so that each sentence gets the
        # draws it gets on one rank, and keeps its share.
        if kind == "para":
            src_lang, tgt_lang = name.split("-")
            src = [with_eos(datasets[0][int(i)], s.max_len) for i in rows]
            tgt = [with_eos(datasets[1][int(i)], s.max_len) for i in rows]
        elif kind == "dae":
            src_lang = tgt_lang = name
            tgt = [with_eos(datasets[0][int(i)], s.max_len) for i in rows]
            src = [add_noise(sentence, self.noise, rng) for sentence in tgt]
        else:  # back-translation: mono text in `a` -> generated `b`; learn b -> a
            a, b = name.split("-")
            tgt = [with_eos(datasets[0][int(i)], s.max_len) for i in rows]
        n_targets = sum(len(sentence) - 1 for sentence in tgt)  # tokens after the first </s>
        if kind == "bt":  # generated for this rank's share only
            tgt = self._share(tgt)
            self.model.eval()
            tokens, mask = self._tensors(tgt)
            a_id, b_id = self.model.lang_ids(a, b)
            generated = greedy(self.model.encoder, self.model.decoder, tokens, mask, a_id, b_id,
                               max_len=min(s.max_len + 2, int(1.3 * tokens.shape[1] + 5)))
            src = [with_eos(np.asarray(g, dtype=np.int64), s.max_len) for g in generated]
            src_lang, tgt_lang = b, a
        else:
            src, tgt = self._share(src), self._share(tgt)
        src_t, src_mask = pad_sequences(src)
        tgt_t, tgt_mask = pad_sequences(tgt)
        src_id, tgt_id = self.model.lang_ids(src_lang, tgt_lang)
        return src_t, src_mask, src_id, tgt_t, tgt_mask, tgt_id, n_targets

    # ----------------------------------------------------------------- evaluation
    @torch.no_grad()
    def valid_bleu(self) -> dict[str, float]:
        """Greedy tokenized BLEU (BPE removed) on the first valid pairs of each direction,
        decoded by rank 0 and shared with the other ranks (they agree on every decision)."""
        self.model.eval()
        scores = {direction: 0.0 for direction in self.valid}
        if self.context.is_main:
            for direction, (src_data, tgt_data) in self.valid.items():
                n = min(len(src_data), self.settings.valid_sentences or len(src_data))
                hyps, _ = translate_dataset(self.model, self.dictionary, src_data, direction,
                                            range(n), self.settings.max_len, beam_size=1)
                refs = [remove_bpe(self.dictionary.decode(tgt_data[i])) for i in range(n)]
                scores[direction] = tok_bleu(hyps, refs)
        if self.context.distributed:  # rank 0's scores, the others' zeros
            scores = dict(zip(scores, all_reduce_sum(list(scores.values()), self.context,
                                                     host=True), strict=True))
        return scores

    # ----------------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        return {"step": self.step, "best_bleu": self.best_bleu, "best_step": self.best_step,
                "last_eval_step": self.last_eval_step, "bad_evals": self.bad_evals,
                "peak_bad_evals": self.peak_bad_evals, "patience": self.settings.patience,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "rng": rng_states()}

    def _key(self) -> dict[str, Any]:
        """The settings a checkpoint must share to be resumed: all but how long the run goes
        (within `continuation_problem`), how often it logs and checkpoints, and `compile`."""
        return trajectory(asdict(self.settings), ("max_steps", "patience", "log_every",
                                                  "checkpoint_every", "compile"))

    def _resume(self) -> None:
        """Rank 0 decides whether the checkpoint is resumed (or moves it aside); then every
        rank loads what is left."""
        state = None
        if self.context.is_main:
            state = self.checkpoint.load(self._key(), lambda saved: continuation_problem(
                saved, self.settings.max_steps, self.settings.patience))
            self._trim_train_log(state["step"] if state else 0,
                                 state["last_eval_step"] if state else 0)
        barrier(self.context)
        if not self.context.is_main and self.checkpoint.path.is_file():
            state = load_file(self.checkpoint.path, "checkpoint")
        if state is None:
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.best_bleu, self.best_step, self.last_eval_step = (
            state["step"], state["best_bleu"], state["best_step"], state["last_eval_step"])
        # Checkpoints from before early stopping had none: never an evaluation counted.
        self.bad_evals = state.get("bad_evals", 0)
        self.peak_bad_evals = state.get("peak_bad_evals", 0)
        restore_rng_states(state["rng"])

    def _trim_train_log(self, step: int, last_eval_step: int) -> None:
        """Keep only the train.jsonl records up to the resumed step (none when fresh),
        without the untracked end-of-run evaluation at that step (see `_evaluate`)."""
        path = self.out / "train.jsonl"
        if not path.exists():
            return
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line else {"step": math.inf}
            end_of_run = "valid_bleu" in record and record["step"] == step != last_eval_step
            if record["step"] <= step and not end_of_run:
                keep.append(line)
        with atomic_open(path) as handle:
            handle.writelines(line + "\n" for line in keep)

    def _evaluate(self, at_end: bool = False) -> bool:
        """Valid BLEU; keep the best weights; True when this step is the best so far.

        `at_end` is the evaluation at the last step when it is off the `eval_every` grid:
        it may make these weights the output but is not tracked (nor checkpointed), so
        that a longer run continued from here selects among the steps a fresh one does.
        """
        scores = self.valid_bleu()
        average = float(np.mean(list(scores.values())))
        improved = average > self.best_bleu
        if not at_end:
            self.last_eval_step = self.step
            if improved:
                self.best_bleu, self.best_step, self.bad_evals = average, self.step, 0
                if self.context.is_main:
                    save_atomic(copy.deepcopy(self.model.state_dict()),
                                self.checkpoint.folder / "best.pt")
            else:
                self.bad_evals += 1
                self.peak_bad_evals = max(self.peak_bad_evals, self.bad_evals)
        if self.context.is_main:
            log.info("valid step %d | %s | average BLEU %.2f%s", self.step,
                     " | ".join(f"{d} BLEU {b:.2f}" for d, b in scores.items()), average,
                     " (best)" if improved else f" (end of run; best step {self.best_step})"
                     if at_end else f" ({self.bad_evals} without progress)")
            with open(self.out / "train.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": self.step, "valid_bleu": average}) + "\n")
        if at_end and improved:
            self.best_bleu, self.best_step = average, self.step  # reported, not checkpointed
        return improved

    def stopped_early(self) -> bool:
        return self.settings.patience is not None and self.bad_evals >= self.settings.patience

    # ----------------------------------------------------------------- the run
    def run(self) -> dict[str, Any]:
        s = self.settings
        self.out.mkdir(parents=True, exist_ok=True)
        self.checkpoint.folder.mkdir(parents=True, exist_ok=True)
        self._resume()
        n_params = sum(p.numel() for p in self.model.parameters())
        log.info("MT %s (%s): %s parameters, objectives %s, init encoder %s decoder %s",
                 s.kind, s.setting, f"{n_params:,}", [f"{k}:{n}" for k, n in self.objectives],
                 s.encoder_init, s.decoder_init)
        # The window's loss is a float64 sum on the device, read when logged (reading each
        # step's loss would wait for the GPU every step); counts are known on the host.
        window = {"loss": 0.0, "targets": 0, "tokens": 0, "start": time.perf_counter()}
        with self.checkpoint.signals():
            while self.step < s.max_steps and not self.stopped_early():
                kind, name = self.objectives[self.step % len(self.objectives)]
                number = self.step // len(self.objectives)  # the round, XLM's iteration
                weight = weight_at(self.weights[kind], number)
                if weight > 0:
                    loss, n_targets, n_tokens = self._update(kind, name, number, weight)
                    window["loss"] = window["loss"] + loss.double()
                    window["targets"] += n_targets
                    window["tokens"] += n_tokens
                self.step += 1
                if self.step % s.log_every == 0:
                    self._log(window)
                    window = {"loss": 0.0, "targets": 0, "tokens": 0,
                              "start": time.perf_counter()}
                if self.step % s.eval_every == 0:
                    self._evaluate()
                    if self.stopped_early():
                        log.info("stopping: no better valid BLEU in %d evaluations",
                                 self.bad_evals)
                if self.step % s.checkpoint_every == 0:
                    self._save_checkpoint()
                received = self._signal_received()
                if received:  # SLURM's warning before a time limit, or preemption
                    self._save_checkpoint()
                    log.warning("stopping on %s; rerun to resume",
                                signal.Signals(received).name)
                    raise SystemExit(128 + received)
        self._save_checkpoint()  # before an off-grid last evaluation
        current_is_best = self.last_eval_step != self.step and self._evaluate(at_end=True)
        if self.context.is_main:
            if not current_is_best:
                best = load_file(self.checkpoint.folder / "best.pt", "best MT weights")
                self.model.load_state_dict(best)
            save_atomic(self.model.file_state(self.dictionary, asdict(s),
                                              {**self.extra, **self.init}),
                        self.out / "model.pt")
        barrier(self.context)
        return {"best_bleu": self.best_bleu, "best_step": self.best_step}

    def _save_checkpoint(self) -> None:
        if self.context.is_main:
            self.checkpoint.save(self._key(), self._state())

    def _signal_received(self) -> int:
        """The signal any rank got (0 if none), so that all ranks stop at the same step."""
        received, self.checkpoint.signal = self.checkpoint.signal or 0, None
        if self.context.distributed:
            received = int(max(all_reduce_sum([float(received)], self.context,
                                               host=True)[0], 0))
        return received

    def release_process_group(self) -> None:
        """Drop the DistributedDataParallel wrapper before the process group goes (see
        `Pretrainer.release_process_group`: else its reducer may destroy the group with the
        GIL held and deadlock)."""
        self.train_model = self.model

    def _update(self, kind: str, name: str, number: int,
                weight: float) -> tuple[Tensor, int, int]:
        """One optimizer update of an objective, its loss scaled by `weight` (XLM's
        lambda); returns the unscaled summed loss (a detached tensor on the device, not
        read here), targets and tokens for the log."""
        s = self.settings
        rng = np.random.default_rng([s.seed, 7, self.step])
        # Dropout: each rank its own draws (rank 0's are those of a single process).
        torch.manual_seed(s.seed * 100003 + self.step + 1_000_003 * self.context.rank)
        src, src_mask, src_id, tgt, tgt_mask, tgt_id, n_targets = self._batch(
            kind, name, number, rng, on_device=False)
        targets = target_ids(tgt, tgt_mask)  # on the host: counted without a device wait
        n_tokens = int(src_mask.sum() + tgt_mask.sum())
        self.model.train()
        def move(tensor: Tensor) -> Tensor:  # a blocking copy would wait for the GPU
            return tensor.to(self.device, non_blocking=True)

        loss, _ = self.train_model(move(src), move(src_mask), src_id, move(tgt),
                                   move(tgt_mask), tgt_id, targets=targets)
        self.optimizer.zero_grad(set_to_none=True)
        # The share's loss over the whole batch's targets; DistributedDataParallel averages
        # gradients over ranks, so x ranks makes the sum: one process's gradient.
        (weight * loss * self.context.world_size / max(n_targets, 1)).backward()
        if s.clip_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), s.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach(), n_targets, n_tokens

    def _log(self, window: dict[str, Any]) -> None:
        """One progress line and train.jsonl record: the whole batches' loss per target
        (the shares' losses summed over ranks) and every rank's tokens per second."""
        elapsed = max(time.perf_counter() - window["start"], 1e-9)
        summed_loss, tokens = all_reduce_sum([float(window["loss"]), window["tokens"]],
                                             self.context)
        loss = summed_loss / max(window["targets"], 1)
        tokens_per_s = tokens / elapsed
        lr = self.optimizer.param_groups[0]["lr"]
        if not self.context.is_main:
            return
        log.info("step %d/%d | mt loss %.4f | ppl %.2f | lr %.2e | %.0f tokens/s", self.step,
                 self.settings.max_steps, loss, math.exp(min(loss, 50)), lr, tokens_per_s)
        with open(self.out / "train.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": self.step, "mt_loss": loss, "lr": lr,
                                     "tokens_per_s": tokens_per_s}) + "\n")


@torch.no_grad()
def translate_dataset(model: Translator, dictionary: Dictionary, src_data: IndexedDataset,
                      direction: str, indices, max_len: int, beam_size: int = 1,
                      length_penalty: float = 1.0, early_stopping: bool = True,
                      batch_size: int = 32) -> tuple[list[str], list[int]]:
    """Translations (tokenized, BPE removed) of the given sentences, in their order. At
    most 1.5 x the longest source + 10 tokens, XLM's evaluation limit (its 1.3 x + 5 is
    for back-translation only)."""
    from xlm.model.generate import beam_search, greedy, max_output_length

    model.eval()
    src_lang, tgt_lang = direction.split("-")
    src_id, tgt_id = model.lang_ids(src_lang, tgt_lang)
    indices = list(indices)
    order = sorted(range(len(indices)), key=lambda j: len(src_data[indices[j]]))
    device = next(model.parameters()).device
    out: list[str] = [""] * len(indices)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        tokens, mask = pad_sequences([with_eos(src_data[indices[j]], max_len) for j in chunk])
        tokens, mask = tokens.to(device), mask.to(device)
        limit = max_output_length(mask, model.decoder, 1.5, 10)
        if beam_size <= 1:
            generated = greedy(model.encoder, model.decoder, tokens, mask, src_id, tgt_id,
                               max_len=limit)
        else:
            generated = beam_search(model.encoder, model.decoder, tokens, mask, src_id, tgt_id,
                                    beam_size, length_penalty, early_stopping, max_len=limit)
        for j, ids in zip(chunk, generated, strict=True):
            ids = [i for i in ids if i >= N_SPECIAL or i == 3]
            out[j] = remove_bpe(dictionary.decode(ids))
    return out, indices


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", required=True, help="JSON object, @file or a path")
    parser.add_argument("--encoder", default=None, help="pretrained model.pt for the encoder "
                        "(left out: random)")
    parser.add_argument("--decoder", default=None, help="pretrained model.pt for the decoder "
                        "(left out: random)")
    parser.add_argument("--data", required=True, help="binarized data folder (data/bin)")
    parser.add_argument("--vocab", required=True, help="vocabulary the data was binarized with")
    parser.add_argument("--codes", default=None, help="BPE codes, stored for `xlm translate`")
    parser.add_argument("--tokenizer", default="{}", help="JSON {lang: tokenizer options}, "
                        "stored for `xlm translate`")
    parser.add_argument("--out", required=True, help="folder: model.pt, train.jsonl, "
                        "checkpoints/")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--cpu", action="store_true", help="run on CPU even with a GPU")
    parser.add_argument("--ranks", type=int, default=1,
                        help="ranks to start (several: srun inside SLURM, else torchrun); "
                             "several visible GPUs start one rank each")


def run(args: argparse.Namespace) -> None:
    settings = settings_from_json(MtSettings, args.settings, "mt")
    run_ranks_if_needed(args.command_line, args.ranks, use_gpus=not args.cpu)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    context = setup_distributed(force_cpu=args.cpu)
    if context.is_main:
        keep_log_history(args.out, "mt-train")
    else:
        logging.getLogger().setLevel(logging.WARNING)
    extra: dict[str, Any] = {"tokenizer": json.loads(args.tokenizer), "codes": None}
    if args.codes:
        extra["codes"] = Path(args.codes).read_text(encoding="utf-8")
    trainer = None
    try:
        trainer = MtTrainer(settings, data=args.data, vocab=args.vocab, out=args.out,
                            encoder_path=args.encoder, decoder_path=args.decoder, extra=extra,
                            context=context)
        result = trainer.run()
        if context.is_main:
            with atomic_open(Path(args.out) / "valid.json") as handle:
                json.dump(result, handle)
            log.info("best valid BLEU %.2f at step %d", result["best_bleu"],
                     result["best_step"])
    finally:
        if trainer is not None:
            trainer.release_process_group()
        cleanup()
