"""How `xlm pretrain --ranks N` starts its ranks in each environment."""

from __future__ import annotations

import sys

from xlm.train.launch import launch_command

ARGV = ["pretrain", "--name", "m"]


def test_single_process_trains_in_place():
    assert launch_command(ARGV, ranks=1, gpus=0, env={}) is None
    assert launch_command(ARGV, ranks=1, gpus=1, env={}) is None


def test_several_gpus_start_one_torchrun_rank_each():
    command = launch_command(ARGV, ranks=1, gpus=4, env={})
    assert command == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       "--nproc-per-node=4", "-m", "xlm", *ARGV]


def test_slurm_tasks_start_with_srun():
    command = launch_command(ARGV, ranks=16, gpus=8, env={"SLURM_JOB_ID": "7"})
    assert command[:3] == ["srun", "--overlap", "--ntasks=16"]
    assert command[-len(ARGV) - 3:] == [sys.executable, "-m", "xlm", *ARGV]


def test_a_rank_never_launches_again():
    assert launch_command(ARGV, ranks=2, gpus=8, env={"RANK": "0", "WORLD_SIZE": "2"}) is None
    assert launch_command(ARGV, ranks=2, gpus=0,
                          env={"SLURM_JOB_ID": "7", "SLURM_STEP_NUM_TASKS": "2"}) is None
