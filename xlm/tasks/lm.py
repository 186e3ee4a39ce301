"""`xlm lm`: low-resource language modelling (paper 4.4, Table 4).

A CLM is pretrained (the pretraining code, xlm/train) on the low-resource language alone
or together with other languages (Nepali; + Hindi, + English, + both), then its
perplexity on the low-resource language's whole test set is recorded (and on valid),
per BPE unit (`ppl`, as XLM and the paper) and per word of the original text
(`ppl_word`), with the training languages in the record. The model is selected on the valid
perplexity of the target language alone (`select_on`; the other languages are there to
help it, as in the paper's Table 4). Resumable like pretraining.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import torch

from xlm.errors import UserError
from xlm.io import keep_log_history
from xlm.report.records import write_metrics
from xlm.tasks.common import add_provenance_arguments, provenance
from xlm.train.settings import PretrainSettings
from xlm.train.trainer import Pretrainer

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="name of the combination (metrics)")
    parser.add_argument("--target", required=True, help="the low-resource language evaluated")
    parser.add_argument("--settings", required=True,
                        help="pretraining settings with the `clm` languages: JSON or @file")
    parser.add_argument("--data", required=True, help="binarized data folder (data/bin)")
    parser.add_argument("--vocab", required=True, help="the dictionary (fastBPE vocab file)")
    parser.add_argument("--out", required=True, help="folder: model.pt, metrics.json, ...")
    add_provenance_arguments(parser)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--cpu", action="store_true", help="train on CPU even with a GPU")


def run(args: argparse.Namespace) -> None:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    keep_log_history(args.out, "lm")
    settings = PretrainSettings.from_json(args.settings)
    if settings.mlm or settings.tlm or args.target not in settings.clm:
        raise UserError(f"--settings: the low-resource LM is a CLM whose `clm` languages "
                        f"include {args.target!r}; got clm={settings.clm}, mlm={settings.mlm}, "
                        f"tlm={settings.tlm}")
    if settings.select_on is None:  # select and stop on the language the task measures
        settings = dataclasses.replace(settings, select_on=[args.target])
    from xlm.train.distributed import setup_distributed

    context = setup_distributed(force_cpu=args.cpu)
    trainer = Pretrainer(settings, data_dir=args.data, vocab=args.vocab, out_dir=args.out,
                         name=args.name, context=context,
                         provenance={"config_hash": args.config_hash, "run_name": args.run_name})
    trainer.run()
    trainer.settings = dataclasses.replace(settings, eval_batches=None)  # whole valid/test sets
    out = Path(args.out)
    trained = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    pretrain_records = [{**record, "seed": settings.seed} for record in trained]  # of seeds
    records = []
    common = {"task": "lm", "model": args.name, "languages": list(settings.clm),
              "seed": settings.seed, **provenance(args.config_hash, args.run_name)}
    for split in ("valid", "test"):
        ppl, acc = trainer.evaluate(split)["clm"][args.target]
        log.info("%s perplexity of %s with %s: %.2f", split, args.target, settings.clm, ppl)
        records.append({**common, "split": split, "lang": args.target, "metric": "ppl",
                        "value": ppl})
        # Per word of the original text (total NLL / words, not BPE units): comparable
        # across vocabularies (XLM's evaluate_clm, and so the paper, report per BPE unit).
        records.append({**common, "split": split, "lang": args.target, "metric": "ppl_word",
                        "value": trainer.word_ppl[(split, args.target)]})
        records.append({**common, "split": split, "lang": args.target, "metric": "acc",
                        "value": 100.0 * acc})
    if context.is_main:
        write_metrics(out / "metrics.json", pretrain_records + records)
