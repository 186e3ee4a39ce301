"""`xlm pretrain`: train one CLM/MLM/TLM model; the same command on 1 CPU, 1 GPU,
`torchrun --nproc-per-node N` or N SLURM tasks (see xlm.train.distributed).

Reruns resume from `OUT/checkpoints/latest.pt` when the settings are unchanged (run-length
settings such as max_steps may change: raising max_steps continues a finished run).

A paper-size MLM (settings.json: {"mlm": [...], "n_layers": 12, "dim": 1024, "n_heads": 8,
"bptt": 256, "batch_size": 64, "lr": 0.0001, "warmup_steps": 4000, ...}; `batch_size` is
rows per update over all ranks together, `accumulate` multiplies it):
    one GPU:   xlm pretrain --name mlm --settings @settings.json --data data/bin \
                   --vocab data/bpe/vocab --out results/mlm/pretrain
    8 GPUs:    torchrun --nproc-per-node 8 -m xlm pretrain <same arguments>
    SLURM:     srun --nodes 2 --ntasks-per-node 8 --gpus-per-node 8 \
                   python -m xlm pretrain <same arguments>
bf16 autocast on GPU by default (`precision: fp16` for loss-scaled fp16, V100). Ask SLURM
for `--signal=USR1@120` (or rely on SIGTERM): the run checkpoints before it is killed.
"""

from __future__ import annotations

import argparse
import logging

import torch

from xlm.io import keep_log_history
from xlm.train.distributed import cleanup, setup_distributed
from xlm.train.launch import run_ranks_if_needed
from xlm.train.settings import PretrainSettings
from xlm.train.trainer import Pretrainer

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="model name (recorded in metrics)")
    parser.add_argument("--settings", required=True,
                        help="the model's settings: a JSON object, or @file / a path to one")
    parser.add_argument("--data", required=True,
                        help="folder of binarized data ({lang}.{split}, {l1}-{l2}.{lang}.{split})")
    parser.add_argument("--vocab", required=True, help="the dictionary (fastBPE vocab file)")
    parser.add_argument("--out", required=True,
                        help="output folder: model.pt, metrics.json, train.jsonl, checkpoints/")
    parser.add_argument("--config-hash", default=None,
                        help="provenance for metrics (default: hash of the settings)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--cpu", action="store_true", help="train on CPU even with a GPU")
    parser.add_argument("--ranks", type=int, default=1,
                        help="ranks to start (several: srun inside SLURM, else torchrun); "
                             "several visible GPUs start one rank each")
    parser.add_argument("--stop-at", type=int, default=None,
                        help="stop after this step with a checkpoint (as a preemption would)")


def run(args: argparse.Namespace) -> None:
    settings = PretrainSettings.from_json(args.settings)
    run_ranks_if_needed(args.command_line, args.ranks, use_gpus=not args.cpu)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    context = setup_distributed(force_cpu=args.cpu)
    if context.is_main:
        keep_log_history(args.out, "pretrain")
    else:
        logging.getLogger().setLevel(logging.WARNING)
    trainer = None
    try:
        trainer = Pretrainer(settings, data_dir=args.data, vocab=args.vocab, out_dir=args.out,
                             name=args.name, context=context,
                             provenance={"config_hash": args.config_hash} if (
                                 args.config_hash) else None)
        trainer.run(stop_at=args.stop_at)
    finally:
        if trainer is not None:
            trainer.release_process_group()  # before the group goes (see its docstring)
        cleanup()
