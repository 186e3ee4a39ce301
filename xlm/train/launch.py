"""Start every rank of a training run from the one command a Snakemake rule runs.

The rule always runs `xlm pretrain ... --ranks N` once. This module decides how the ranks
start, with the launchers PyTorch and SLURM provide (never a runtime of our own):
- already a rank (torchrun's RANK, or an `srun` step of several tasks): train here;
- inside a SLURM job with `--ranks N > 1` (the profile's `tasks`, over one or more nodes):
  `srun --overlap --ntasks N` starts the ranks, which read their rank from SLURM;
- elsewhere with N > 1, or with several visible GPUs: `torchrun --standalone` starts one
  rank per GPU (or N CPU ranks with gloo);
- otherwise: train in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def is_rank(env: Mapping[str, str]) -> bool:
    """True when a launcher already started this process as one of several ranks."""
    return "RANK" in env or int(env.get("SLURM_STEP_NUM_TASKS", "1")) > 1


def launch_command(argv: list[str], ranks: int, gpus: int,
                   env: Mapping[str, str] = os.environ) -> list[str] | None:
    """The command that starts all ranks of `xlm <argv>`, or None to train in-process."""
    if is_rank(env):
        return None
    xlm = [sys.executable, "-m", "xlm", *argv]
    if ranks > 1 and "SLURM_JOB_ID" in env:
        return ["srun", "--overlap", f"--ntasks={ranks}", "--kill-on-bad-exit=1",
                "--export=ALL", *xlm]
    nproc = ranks if ranks > 1 else gpus
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={nproc}", "-m", "xlm", *argv]
    return None


def run_ranks_if_needed(argv: list[str], ranks: int, use_gpus: bool = True) -> None:
    """Start the ranks in child processes and exit with their status, if needed."""
    import torch

    gpus = torch.cuda.device_count() if use_gpus else 0
    command = launch_command(argv, ranks, gpus)
    if command is not None:
        print("launching ranks: " + " ".join(command), file=sys.stderr, flush=True)
        sys.exit(subprocess.call(command))
