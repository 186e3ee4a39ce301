"""`xlm convert-model`: rewrite an older file of this pipeline in the safe format.

Files written before the safe format (model.pt, MT model.pt, checkpoints) pickled NumPy
and Python RNG states and NumPy numbers, so they need full unpickling, which can run code
from the file. This one-off command reads such a file only with an explicit
`--trust-pickle`, converts every value to tensors and plain containers, checks that the
result loads with `weights_only=True`, and writes it atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xlm.errors import UserError
from xlm.train.checkpoint import load_file, save_atomic

log = logging.getLogger(__name__)


def _plain_rng(states: dict[str, Any]) -> dict[str, Any]:
    """The RNG states of an older checkpoint (NumPy/Python tuples) in the safe layout."""
    converted = dict(states)
    numpy_state = states.get("numpy")
    if isinstance(numpy_state, tuple):
        name, keys, position, has_gauss, cached = numpy_state
        converted["numpy"] = {"name": str(name),
                              "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
                              "position": int(position), "has_gauss": int(has_gauss),
                              "cached_gaussian": float(cached)}
    python_state = states.get("python")
    if isinstance(python_state, tuple):
        version, internal, gauss_next = python_state
        converted["python"] = {"version": int(version), "internal": [int(x) for x in internal],
                               "gauss_next": gauss_next}
    return {key: to_plain(value) for key, value in converted.items()}


def to_plain(value: Any) -> Any:
    """`value` with NumPy arrays as tensors, NumPy numbers as Python numbers, paths as
    strings and dataclasses as dicts, recursively (what weights_only loading accepts)."""
    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        return value.item()
    if isinstance(value, torch.Tensor) or value is None or isinstance(
            value, bool | int | float | str | bytes):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {to_plain(k): (_plain_rng(v) if k == "rng" and isinstance(v, dict)
                              else to_plain(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_plain(v) for v in value)
    if isinstance(value, torch.Size):
        return list(value)
    raise UserError(f"cannot convert a value of type {type(value).__name__} to the safe format")


def convert(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Read `source` with full unpickling (trusted by the caller), write `target` safely."""
    source = Path(source)
    if not source.is_file():
        raise UserError(f"{source}: file not found; check --input")
    log.warning("%s: loading with full unpickling (--trust-pickle): only for a file from a "
                "source you trust", source)
    state = torch.load(source, map_location="cpu", weights_only=False)
    if not isinstance(state, dict):
        raise UserError(f"{source}: not a file of this pipeline (holds a "
                        f"{type(state).__name__}, not a dict)")
    try:
        plain = to_plain(state)
    except UserError as error:
        raise UserError(f"{source}: {error}") from None
    save_atomic(plain, target)
    load_file(target, "converted file")  # proves the result loads with weights_only=True
    log.info("wrote %s (loads with weights_only=True)", target)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="an older model.pt or checkpoint")
    parser.add_argument("--output", required=True, help="where to write the safe file "
                        "(may be the same path as --input)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="required: reading the old file runs code from it, so only "
                             "convert files from a source you trust")


def run(args: argparse.Namespace) -> None:
    if not args.trust_pickle:
        raise UserError(f"{args.input}: converting reads the file with full unpickling, which "
                        "can run code from it; add --trust-pickle if you trust its source")
    convert(args.input, args.output)
