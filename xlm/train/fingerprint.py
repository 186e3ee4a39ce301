"""What shaped a training run, so that a checkpoint is resumed only by the same run.

A resumable command (pretrain, lm, xnli, mt-train) stores in each checkpoint its
*fingerprint*: the settings that shape the trajectory and a digest of every input file
(the dictionary, each dataset, each model it starts from). A rerun compares the stored
fingerprint with its own before resuming; on any difference it names what changed, moves
the stale checkpoints aside and trains from step 0. Settings that only say how long a run
goes or how often it logs (max_steps, log_every, ...) are left out by the callers, so
raising max_steps still continues a run; xlm/train/continuation.py checks that the
continued run ends where a fresh one would.

Digests are of file *content*, not size or date: a vocabulary relearned with the same
size but other ids, or a pretrained model retrained with the same config, is a change.
Files up to FULL_HASH_LIMIT bytes are hashed whole; larger ones (paper-scale datasets of
many GB, read by every rank) by their size plus SAMPLES blocks spread evenly over the file,
which any re-binarization or retraining changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FULL_HASH_LIMIT = 1 << 30
SAMPLES = 1024
BLOCK = 1 << 16
MAX_LISTED = 3  # changed inputs named in the log line before 'and N more'


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of the file (or of its size and evenly spread blocks, when very large)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        if size <= FULL_HASH_LIMIT:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:
            for i in range(SAMPLES):
                handle.seek((size - BLOCK) * i // (SAMPLES - 1))
                digest.update(handle.read(BLOCK))
    return digest.hexdigest()


def dataset_files(prefix: str | os.PathLike[str]) -> list[Path]:
    """The two files of a binarized dataset (`prefix.bin`, `prefix.idx`)."""
    return [Path(f"{prefix}.bin"), Path(f"{prefix}.idx")]


def input_digests(inputs: Mapping[str, str | os.PathLike[str]]) -> dict[str, str]:
    """{what the input is, e.g. 'dictionary data/bpe/vocab': digest of its content}."""
    return {name: file_digest(path) for name, path in sorted(inputs.items())}


def make_fingerprint(settings: Mapping[str, Any],
                     inputs: Mapping[str, str | os.PathLike[str]]) -> dict[str, Any]:
    """The plain dict stored in checkpoints: trajectory settings and input digests."""
    return {"settings": dict(settings), "inputs": input_digests(inputs)}


def differences(stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """What differs between a checkpoint's fingerprint and this run's, in words ([] if same)."""
    if not stored or "settings" not in stored or "inputs" not in stored:
        return ["the checkpoint records no fingerprint of its inputs (written by an older "
                "version)"]
    changes = []
    old_settings, new_settings = stored["settings"], current["settings"]
    for key in sorted(set(old_settings) | set(new_settings)):
        if old_settings.get(key) != new_settings.get(key):
            changes.append(f"setting {key} ({old_settings.get(key)!r} -> "
                           f"{new_settings.get(key)!r})")
    old_inputs, new_inputs = stored["inputs"], current["inputs"]
    inputs = []
    for name in sorted(set(old_inputs) | set(new_inputs), key=lambda n: ("data " in n, n)):
        if name not in old_inputs:
            inputs.append(f"new input {name}")
        elif name not in new_inputs:
            inputs.append(f"input {name} no longer used")
        elif old_inputs[name] != new_inputs[name]:
            inputs.append(f"{name} changed")
    # Models and the dictionary first, then data files; one line stays readable.
    if len(inputs) > MAX_LISTED:
        inputs = [*inputs[:MAX_LISTED], f"and {len(inputs) - MAX_LISTED} more input files"]
    return changes + inputs


def move_aside(folder: str | os.PathLike[str]) -> Path | None:
    """Move the files of `folder` (not its subfolders) to `folder.stale-<time>/`.

    Stale checkpoints are neither reused nor silently deleted: the user can look at them
    or remove them. Returns the new folder, or None when there was nothing to move.
    """
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    if not files:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = folder.with_name(f"{folder.name}.stale-{stamp}")
    suffix = 1
    while target.exists():
        suffix += 1
        target = folder.with_name(f"{folder.name}.stale-{stamp}-{suffix}")
    target.mkdir(parents=True)
    for path in files:
        shutil.move(str(path), target / path.name)
    return target
