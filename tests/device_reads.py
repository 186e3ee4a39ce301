"""A CPU stand-in for `torch.cuda.set_sync_debug_mode`: which host reads of device values
a piece of training code makes.

On a GPU, reading a tensor's value on the host (`.item()`, `int(t)`, `bool(t)`,
`.tolist()`, `.cpu()`, a boolean-mask index or `nonzero`, whose result size depends on
the data) waits until the device has computed it. Without a GPU every tensor is on the
CPU, so `DeviceReads` tracks which tensors *would* be on the device: the parameters
given to it, every tensor moved with `.to(device)` (the very `torch.device` object the
trainer holds, so that `.to(other.device)` stays where `other` is) or `.cuda()` (copied,
so that the host original stays a host tensor), and every new result of a torch call
that takes one of these (as `p.grad` and the optimizer's state). Each value read of such
a tensor is recorded with the source line that made it, and so is every blocking copy to
the device (`.to(device)` without `non_blocking=True`: on CUDA it synchronises the
stream).

Limits: it sees only what goes through `__torch_function__` (Python-level torch calls,
not what C++ code does inside one call), it cannot see waits that CUDA itself adds
(e.g. copying from pageable host memory), a tensor created on the device from host
values (`torch.zeros(..., device=device)`) counts as a host tensor until something from
the device enters it (on the CPU, `device="cpu"` cannot tell the trainer's device from
the host; torch's own optimizer says `device="cpu"` for host state), and `.to(<device>)`
of a tensor already on the device counts as staying there.
"""

from __future__ import annotations

import linecache
import sys
import weakref
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

READS = {"item", "__bool__", "__int__", "__float__", "__index__", "__format__", "tolist",
         "numpy", "cpu", "nonzero", "argwhere", "masked_select", "unique",
         "unique_consecutive", "repeat_interleave", "__array__"}
MOVES = {"to", "cuda"}
HERE = Path(__file__).resolve()


def _tensors(*trees: Any) -> list[torch.Tensor]:
    return [leaf for tree in trees for leaf in tree_flatten(tree)[0]
            if isinstance(leaf, torch.Tensor)]


class DeviceReads(TorchFunctionMode):
    """Records host reads of (would-be) device tensors: `reads` counts 'file:line: code'."""

    def __init__(self, parameters: Iterable[torch.Tensor], device: torch.device) -> None:
        super().__init__()
        self.device = device
        # id -> weak reference (not a WeakSet: that compares tensors with `==`).
        self._device: dict[int, weakref.ref] = {}
        self.reads: Counter[str] = Counter()
        for parameter in parameters:
            self._add(parameter)

    def _add(self, tensor: torch.Tensor) -> None:
        self._device[id(tensor)] = weakref.ref(tensor)

    def on_device(self, tensor: torch.Tensor) -> bool:
        ref = self._device.get(id(tensor))
        return ref is not None and ref() is tensor

    def _caller(self) -> str:
        """The first frame outside torch and this file: the code that made the read."""
        frame = sys._getframe(2)
        while frame is not None:
            path = Path(frame.f_code.co_filename)
            if "torch" not in path.parts and path.resolve() != HERE:
                line = linecache.getline(str(path), frame.f_lineno).strip()
                return f"{path.name}:{frame.f_lineno}: {line}"
            frame = frame.f_back
        return "<unknown>"

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        inputs = _tensors(args, kwargs)
        from_device = any(self.on_device(t) for t in inputs)
        if name == "__getitem__" and any(self.on_device(t) and t.dtype == torch.bool
                                         for t in _tensors(args[1:])):
            self.reads[self._caller()] += 1  # a boolean mask: the result size is data
        elif name in READS and from_device:
            self.reads[self._caller()] += 1
        result = func(*args, **kwargs)
        moved = name in MOVES and not from_device and (
            name == "cuda" or kwargs.get("device") is self.device
            or any(a is self.device for a in args[1:]))
        if moved and not kwargs.get("non_blocking"):
            # A blocking copy to the GPU waits for the device's queue (a stream sync).
            self.reads[self._caller() + "  (blocking copy to the device)"] += 1
        if moved and isinstance(result, torch.Tensor):
            if result is args[0]:  # `.to(cpu)` of a CPU tensor: keep the host one apart
                result = result.clone()
            self._add(result)
        elif from_device:
            # New tensors only: a call that hands back its inputs regrouped (as the
            # optimizer's grouping by device) leaves a host tensor on the host.
            given = {id(t) for t in inputs}
            for tensor in _tensors(result):
                if id(tensor) not in given:
                    self._add(tensor)
        return result

    def per_step(self, steps: int) -> dict[str, int]:
        """The reads made at least once per step over `steps` steps."""
        return {site: n for site, n in self.reads.items() if n >= steps}
