"""Checkpoints to continue exactly, and the self-contained `model.pt` later stages read.

A checkpoint holds the model, optimizer, scheduler and loss-scaler states, the step,
the data position (batches drawn per source), RNG states and the run's fingerprint
(xlm/train/fingerprint.py: a checkpoint is resumed only by the same run). It is written
to a temporary file and renamed, so a kill during the write leaves the previous one.

`model.pt` holds the weights with everything needed to use them: the model config,
the dictionary (words and counts), the language ids and the training settings.

Every file we write holds only tensors and plain containers of numbers, strings, booleans
and None, so every file is read with `torch.load(weights_only=True)`: a crafted file
cannot run code as the user. `load_file` is the one loader; a file that needs more is
refused in one line (an old file of ours can be rewritten by `xlm convert-model
--trust-pickle`).
"""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xlm.data.dictionary import N_SPECIAL, Dictionary
from xlm.errors import UserError
from xlm.io import atomic_path
from xlm.model.transformer import ModelConfig, TransformerModel
from xlm.train.fingerprint import differences, move_aside

log = logging.getLogger(__name__)

LATEST = "latest.pt"
BEST = "best.pt"


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """torch.save under a temporary name, renamed at the end (never a half-written file)."""
    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as error:  # torch's writer reports a failed write this way
            if shutil.disk_usage(tmp.parent).free < (1 << 20):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error
            raise UserError(f"{path}: could not be written ({str(error).splitlines()[0]}); "
                            "check the free space and permissions of its folder") from error


def load_file(path: str | os.PathLike[str], what: str = "model file") -> dict[str, Any]:
    """A file written by this package, loaded without running code from it.

    `what` names the kind of file in the error line ("MT model", "checkpoint", ...).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found; check the path")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a {what} (not a file written by torch.save); "
                        "give the model.pt written by the pipeline")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle refusals come in several types
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            names = []
        if not names:
            raise UserError(f"{path}: not a readable {what} ({type(error).__name__}: "
                            f"{str(error).splitlines()[0][:200]}); check the file") from None
        raise UserError(f"{path}: refused: loading this {what} would run code from it (it "
                        f"needs {', '.join(names[:4])}); if it is an older file of this "
                        "pipeline from a source you trust, rewrite it with `xlm convert-model "
                        "--trust-pickle`") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: not a {what} (holds a {type(state).__name__}, not a dict)")
    return state


def rng_states() -> dict[str, Any]:
    """Every RNG state as tensors and plain values (safe to load, see load_file)."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states = {"torch": torch.get_rng_state(),
              "numpy": {"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                        "position": int(position), "has_gauss": int(has_gauss),
                        "cached_gaussian": float(cached)},
              "python": {"version": version, "internal": list(internal),
                         "gauss_next": gauss_next}}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    python_state = states["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]),
                     python_state["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The checkpoint at `path`, or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    return load_file(path, "checkpoint")


def load_resumable(path: str | os.PathLike[str], fingerprint: dict[str, Any],
                   continuable: Callable[[dict[str, Any]], str | None] | None = None,
                   ) -> dict[str, Any] | None:
    """The checkpoint at `path` if it was written by this very run, else None.

    "This very run" means the same fingerprint (settings and input contents) and, when
    `continuable` is given, a state it does not object to (it returns why not, in words:
    xlm/train/continuation.py). Otherwise one log line says why, and the checkpoint
    folder's files are moved to `<folder>.stale-<time>/` so that nothing stale is reused
    or silently deleted.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = load_file(path, "checkpoint")
        changes = differences(_with_saved_settings(state, fingerprint), fingerprint)
    except UserError as error:
        state, changes = None, [f"it cannot be read safely ({error})"]
    if not changes and continuable is not None:
        problem = continuable(state)
        changes = [problem] if problem else []
    if not changes:
        return state
    moved = move_aside(path.parent)
    log.warning("%s: not resuming, since %s; training from step 0 (stale checkpoints "
                "moved to %s)", path, "; ".join(changes), moved)
    return None


def _with_saved_settings(state: dict[str, Any],
                         fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint's fingerprint, where a setting this run's fingerprint has and the
    checkpoint's leaves out (written by a version that did not count it as shaping the
    run) is taken from the settings saved beside it, so that such a checkpoint is still
    resumed when that setting did not change."""
    stored, saved = state.get("fingerprint"), state.get("settings")
    if not (isinstance(stored, dict) and isinstance(stored.get("settings"), dict)
            and isinstance(saved, dict)):
        return stored
    filled = {key: saved[key] for key in fingerprint["settings"]
              if key not in stored["settings"] and key in saved}
    return {**stored, "settings": {**stored["settings"], **filled}}


def dictionary_state(dictionary: Dictionary) -> dict[str, list]:
    return {"words": dictionary.id2word[N_SPECIAL:],
            "counts": [int(c) for c in dictionary.counts[N_SPECIAL:].tolist()]}


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
    state = load_file(path, "pretrained model")
    if "model" not in state or "config" not in state:
        raise UserError(f"{path}: not a pretrained model.pt (no weights and config); give "
                        "a model written by `xlm pretrain` or `xlm import-checkpoint`")
    config = ModelConfig(**{**state["config"], "is_decoder": is_decoder})
    model = TransformerModel(config)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if unexpected or any("cross" not in name for name in missing):
        raise UserError(f"{path}: weights do not fit the model config "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]}); rerun pretrain")
    dictionary = Dictionary(state["dictionary"]["words"], state["dictionary"]["counts"])
    return model, dictionary, list(state["langs"])
