"""`xlm mt-eval`: BLEU of an MT model on test sets, as metrics.json records.

For each direction "src-tgt" the source side `DATA/{pair}.{src}.{split}` is translated
with beam search; the output is detokenized and scored with sacreBLEU against the raw
reference `DATA/{pair}.{tgt}.{split}.ref` (record `bleu`, with the signature), and, BPE
removed but still tokenized, against our Moses tokenization of the reference
`TOK/{pair}.{split}.{tgt}.txt` (record `bleu_tok`, comparable with the paper). The
translations are kept beside the metrics (`{direction}.{split}.hyp`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from xlm.errors import UserError
from xlm.io import atomic_open, open_text
from xlm.report.records import write_metrics
from xlm.tasks.bleu import detok_bleu, detokenize, tok_bleu
from xlm.tasks.common import add_provenance_arguments, open_dataset, provenance
from xlm.tasks.mt import find_pair, load_translator, translate_dataset

log = logging.getLogger(__name__)


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"{path}: reference not found; build the MT test data (snakemake data)")
    # Lines end at "\n" only, as they were written: str.splitlines would also cut at
    # characters such as U+001D or U+2028 inside a sentence and misalign the references.
    with open_text(path) as handle:
        return [line.rstrip("\n") for line in handle]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="MT model.pt (xlm mt-train)")
    parser.add_argument("--name", required=True, help="experiment name recorded in metrics")
    parser.add_argument("--directions", nargs="+", required=True, help="e.g. ro-en en-ro")
    parser.add_argument("--data", required=True, help="folder of binarized test sides + .ref")
    parser.add_argument("--tok", required=True, help="folder of tokenized references")
    parser.add_argument("--split", default="test", help="split evaluated (test or valid)")
    parser.add_argument("--beam", type=int, default=4, help="beam size (1: greedy)")
    parser.add_argument("--length-penalty", type=float, default=1.0,
                        help="hypothesis score = log p / length ** this")
    parser.add_argument("--no-early-stopping", action="store_true",
                        help="keep searching until no live beam can beat a finished one")
    parser.add_argument("--max-sentences", type=int, default=None,
                        help="evaluate the first N sentences only (demo)")
    parser.add_argument("--out", required=True, help="metrics.json to write")
    add_provenance_arguments(parser)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")


def run(args: argparse.Namespace) -> None:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    model, dictionary, state = load_translator(args.model)
    settings = state["settings"]
    data, tok, out = Path(args.data), Path(args.tok), Path(args.out)
    records = []
    common = {"task": "mt_sup" if settings["kind"] == "supervised" else "mt_unsup",
              "model": args.name, "split": args.split, "setting": settings["setting"],
              "encoder_init": settings["encoder_init"],
              "decoder_init": settings["decoder_init"],
              "beam": args.beam, "length_penalty": args.length_penalty,
              "seed": int(settings.get("seed", 0)), **provenance(args.config_hash, args.run_name)}
    for direction in args.directions:
        src, tgt = direction.split("-")
        pair = find_pair(data, src, tgt, args.split)
        source = open_dataset(data / f"{pair}.{src}.{args.split}", dictionary)
        references = read_lines(data / f"{pair}.{tgt}.{args.split}.ref")
        tokenized_refs = read_lines(tok / f"{pair}.{args.split}.{tgt}.txt")
        if not len(source) == len(references) == len(tokenized_refs):
            raise UserError(f"{data / pair}: {len(source)} source sentences but "
                            f"{len(references)} references; rebuild the MT test data")
        n = len(source) if args.max_sentences is None else min(args.max_sentences, len(source))
        hyps, _ = translate_dataset(model, dictionary, source, direction, range(n),
                                    settings["max_len"], args.beam, args.length_penalty,
                                    not args.no_early_stopping)
        detok = [detokenize(h, tgt) for h in hyps]
        bleu, signature = detok_bleu(detok, references[:n], tgt)
        bleu_tok = tok_bleu(hyps, tokenized_refs[:n])
        with atomic_open(out.parent / f"{direction}.{args.split}.hyp") as handle:
            handle.writelines(line + "\n" for line in detok)
        log.info("%s %s (%d sentences, beam %d): BLEU %.2f (%s), tokenized BLEU %.2f",
                 direction, args.split, n, args.beam, bleu, signature, bleu_tok)
        extra = {"lang": tgt, "direction": direction, "sentences": n}
        records.append({**common, **extra, "metric": "bleu", "value": bleu,
                        "sacrebleu_signature": signature})
        records.append({**common, **extra, "metric": "bleu_tok", "value": bleu_tok})
    write_metrics(out, records)
