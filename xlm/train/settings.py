"""The typed settings of one pretraining run (a model's resolved config slice).

The workflow merges `pretrain:` defaults with the model's entry under `models:` and
passes the result as JSON; unknown keys are an error, so a typo cannot go unnoticed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlm.errors import UserError

OBJECTIVES = ("clm", "mlm", "tlm")


@dataclass
class PretrainSettings:
    # Objectives: languages for CLM and MLM streams, "l1-l2" pairs for TLM.
    clm: list[str] = field(default_factory=list)
    mlm: list[str] = field(default_factory=list)
    tlm: list[str] = field(default_factory=list)
    # Model size (paper: 12 layers for XNLI, 6 for MT, dim 1024, 8 heads, dropout 0.1).
    n_layers: int = 12
    dim: int = 1024
    n_heads: int = 8
    dropout: float = 0.1
    attention_dropout: float = 0.1
    max_positions: int = 512
    # Data: stream rows, rows per step (all ranks together), TLM tokens per step.
    bptt: int = 256
    batch_size: int = 64
    tokens_per_batch: int = 4000
    max_len: int = 100
    lang_alpha: float = 0.7
    # Masking (MLM, TLM).
    word_pred: float = 0.15
    pred_probs: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    sample_alpha: float = 0.0
    # Optimisation.
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-6
    weight_decay: float = 0.0
    schedule: str = "inverse_sqrt"
    warmup_steps: int = 4000
    min_lr_ratio: float = 0.0
    clip_norm: float = 5.0
    accumulate: int = 1
    max_steps: int = 100_000
    # Evaluation, stopping, logging, checkpoints.
    eval_every: int = 1000
    eval_batches: int | None = None
    patience: int = 10
    # Languages whose valid perplexity selects the best model and drives early stopping
    # (XLM's --validation_metrics / --stopping_criterion); None: every language of the
    # monolingual objectives, averaged. `xlm lm` sets its target language.
    select_on: list[str] | None = None
    log_every: int = 50
    checkpoint_every: int = 1000
    precision: str = "auto"
    compile: bool = False  # torch.compile the model (GPU runs; minutes to compile)
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "settings") -> PretrainSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{source}: unknown pretrain setting '{unknown[0]}'; "
                            f"allowed: {', '.join(sorted(known))}")
        settings = cls(**values)
        settings.check(source)
        return settings

    @classmethod
    def from_json(cls, text_or_path: str) -> PretrainSettings:
        """Settings from a JSON object string, or from the JSON file at a path (or `@path`)."""
        source = "--settings"
        if not text_or_path.lstrip().startswith("{"):
            source = text_or_path.removeprefix("@")
            if not Path(source).is_file():
                raise UserError(f"{source}: settings file not found; pass a JSON object or file")
            text_or_path = Path(source).read_text(encoding="utf-8")
        try:
            values = json.loads(text_or_path)
        except json.JSONDecodeError as error:
            raise UserError(f"{source}: not valid JSON ({error}); pass a JSON object") from None
        return cls.from_dict(values, source)

    def check(self, source: str) -> None:
        if not self.objectives:
            raise UserError(f"{source}: no objective; list languages under clm, mlm or tlm")
        for pair in self.tlm:
            if len(pair.split("-")) != 2:
                raise UserError(f"{source}: TLM pair {pair!r} must look like 'en-fr'")
        if self.precision not in ("auto", "bf16", "fp16", "fp32"):
            raise UserError(f"{source}: precision {self.precision!r}; use auto, bf16, fp16, fp32")
        if self.schedule not in ("inverse_sqrt", "cosine", "constant"):
            raise UserError(f"{source}: schedule {self.schedule!r}; "
                            "use inverse_sqrt, cosine or constant")
        if self.bptt > self.max_positions or self.max_len + 2 > self.max_positions:
            raise UserError(f"{source}: bptt/max_len exceed max_positions {self.max_positions}")
        if self.select_on is not None:
            monolingual = set(self.clm) | set(self.mlm)
            unknown = [lang for lang in self.select_on if lang not in monolingual]
            if not self.select_on or unknown:
                raise UserError(f"{source}: select_on {self.select_on!r} must list languages "
                                f"of the clm/mlm objectives ({sorted(monolingual)}) or be null")
        if abs(sum(self.pred_probs) - 1) > 1e-6 or len(self.pred_probs) != 3:
            raise UserError(f"{source}: pred_probs must be 3 numbers summing to 1")

    @property
    def objectives(self) -> list[str]:
        """Configured objectives in a fixed order; steps cycle through them."""
        return [name for name in OBJECTIVES if getattr(self, name)]

    @property
    def languages(self) -> list[str]:
        """All languages, sorted: a language's id is its index here (as in XLM)."""
        langs = set(self.clm) | set(self.mlm)
        for pair in self.tlm:
            langs.update(pair.split("-"))
        return sorted(langs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
