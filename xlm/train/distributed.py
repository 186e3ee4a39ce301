"""One launcher for every setting: 1 process, `torchrun --nproc-per-node N`, N SLURM tasks.

Ranks come from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) or, inside an
`srun` step, from SLURM (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID, with the
first node of the step as MASTER_ADDR unless set). NCCL on GPU, gloo on CPU. All
SLURM knowledge lives here; the trainer only sees a `DistributedContext`.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

# With NCCL, a gloo group of the same ranks for the host's own messages (the signal check
# of every step): an all-reduce over it does not wait for the GPU, one over NCCL does.
_HOST_GROUP: dist.ProcessGroup | None = None


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _slurm_master_addr() -> str:
    nodes = os.environ.get("SLURM_STEP_NODELIST") or os.environ.get("SLURM_JOB_NODELIST", "")
    try:
        hosts = subprocess.run(["scontrol", "show", "hostnames", nodes], check=True,
                               capture_output=True, text=True).stdout.split()
        return hosts[0]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return nodes.split(",")[0] or "127.0.0.1"


def ranks_from_environment(env: dict[str, str] | None = None) -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's or SLURM's variables, else (0, 1, 0).

    SLURM counts only inside an `srun` step with several tasks (SLURM_STEP_NUM_TASKS):
    the batch script itself is one process even when the job has many tasks.
    """
    env = dict(os.environ) if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
    if int(env.get("SLURM_STEP_NUM_TASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return (int(env["SLURM_PROCID"]), int(env["SLURM_STEP_NUM_TASKS"]),
                int(env.get("SLURM_LOCALID", 0)))
    return 0, 1, 0


def setup_distributed(force_cpu: bool = False) -> DistributedContext:
    """Join the process group (if several ranks) and pick this rank's device."""
    rank, world_size, local_rank = ranks_from_environment()
    use_cuda = torch.cuda.is_available() and not force_cpu
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ:
            os.environ["MASTER_ADDR"] = _slurm_master_addr()
        if "MASTER_PORT" not in os.environ:
            job = int(os.environ.get("SLURM_JOB_ID", "0"))
            os.environ["MASTER_PORT"] = str(20000 + job % 20000)
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank,
                                world_size=world_size)
        if use_cuda:
            global _HOST_GROUP
            _HOST_GROUP = dist.new_group(backend="gloo")
        log.info("rank %d of %d on %s (%s)", rank, world_size, device, dist.get_backend())
    return DistributedContext(rank, world_size, local_rank, device)


def all_reduce_sum(values: list[float], context: DistributedContext,
                   host: bool = False) -> list[float]:
    """Sum a few numbers over ranks (float64 on CPU for gloo, on the device for NCCL).

    `host`: numbers the host has (not read from the GPU), summed over the gloo group
    without waiting for the GPU (NCCL's result would have to be read back from it)."""
    if not context.distributed:
        return list(values)
    if host and (context.device.type != "cuda" or _HOST_GROUP is not None):
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor, group=_HOST_GROUP)  # None: the default group, gloo
        return tensor.tolist()
    device = context.device if context.device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_reduce_count(value: int, context: DistributedContext) -> torch.Tensor:
    """The sum of a count over ranks, at least 1, as a float32 tensor left on the device
    (no wait for the GPU: the step divides by it without reading it)."""
    device = context.device if context.device.type == "cuda" else torch.device("cpu")
    # torch.full fills on the device; torch.tensor would copy from the host and wait.
    tensor = torch.full((), float(value), dtype=torch.float32, device=device)
    dist.all_reduce(tensor)
    return tensor.clamp_min(1.0)


def barrier(context: DistributedContext) -> None:
    if context.distributed:
        dist.barrier()


def cleanup() -> None:
    """Leave the process group, once nothing else holds it (Pretrainer's
    `release_process_group`): objects in reference cycles are collected first, so that no
    DDP reducer outlives the group and destroys it later with the GIL held."""
    global _HOST_GROUP
    gc.collect()
    _HOST_GROUP = None
    if dist.is_initialized():
        dist.destroy_process_group()
