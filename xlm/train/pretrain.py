"""`xlm pretrain`: train one CLM/MLM/TLM model; the same command on 1 CPU, 1 GPU,
`torchrun --nproc-per-node N` or N SLURM tasks (see xlm.train.distributed).

Reruns resume from `OUT/checkpoints/latest.pt` when the settings are unchanged.
"""

from __future__ import annotations

import argparse
import logging

import torch

from xlm.train.distributed import cleanup, setup_distributed
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
    parser.add_argument("--stop-at", type=int, default=None,
                        help="stop after this step with a checkpoint (as a preemption would)")


def run(args: argparse.Namespace) -> None:
    settings = PretrainSettings.from_json(args.settings)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    context = setup_distributed(force_cpu=args.cpu)
    if not context.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        trainer = Pretrainer(settings, data_dir=args.data, vocab=args.vocab, out_dir=args.out,
                             name=args.name, context=context,
                             provenance={"config_hash": args.config_hash} if (
                                 args.config_hash) else None)
        trainer.run(stop_at=args.stop_at)
    finally:
        cleanup()
