"""Checkpoints to continue exactly, and the self-contained `model.pt` later stages read.

A checkpoint holds the model, optimizer, scheduler and loss-scaler states, the step,
the data position (batches drawn per source) and RNG states. It is written to a
temporary file and renamed, so a kill during the write leaves the previous one.

`model.pt` holds the weights with everything needed to use them: the model config,
the dictionary (words and counts), the language ids and the training settings.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xlm.data.dictionary import N_SPECIAL, Dictionary
from xlm.errors import UserError
from xlm.io import atomic_path
from xlm.model.transformer import ModelConfig, TransformerModel

log = logging.getLogger(__name__)

LATEST = "latest.pt"
BEST = "best.pt"


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
              "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The checkpoint at `path`, or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def dictionary_state(dictionary: Dictionary) -> dict[str, list]:
    return {"words": dictionary.id2word[N_SPECIAL:],
            "counts": dictionary.counts[N_SPECIAL:].tolist()}


def save_pretrained(path: str | os.PathLike[str], model: TransformerModel,
                    dictionary: Dictionary, langs: list[str],
                    settings: dict[str, Any]) -> None:
    """Write the self-contained model file (weights + config + dictionary + languages)."""
    save_atomic({
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": model.config.to_dict(),
        "dictionary": dictionary_state(dictionary),
        "langs": list(langs),
        "settings": settings,
    }, path)


def load_pretrained(path: str | os.PathLike[str], is_decoder: bool = False,
                    ) -> tuple[TransformerModel, Dictionary, list[str]]:
    """Model, dictionary and language list (id order) from a `model.pt`.

    With `is_decoder`, the weights initialise a decoder whose cross-attention layers
    start fresh (as XLM does when it initialises an MT decoder from a pretrained LM).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: pretrained model not found; run the pretrain stage first")
    state = torch.load(path, map_location="cpu", weights_only=False)
    config = ModelConfig(**{**state["config"], "is_decoder": is_decoder})
    model = TransformerModel(config)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if unexpected or any("cross" not in name for name in missing):
        raise UserError(f"{path}: weights do not fit the model config "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]}); rerun pretrain")
    dictionary = Dictionary(state["dictionary"]["words"], state["dictionary"]["counts"])
    return model, dictionary, list(state["langs"])
