"""`xlm translate`: raw text on stdin, translations on stdout, one line each.

Uses what the MT `model.pt` carries: the tokenizer settings of the source language, the
BPE codes the data was encoded with, the dictionary; the output is BPE-merged and
detokenized. Example: `echo "Hello world ." | xlm translate --model M --src en --tgt ro`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from xlm.errors import UserError
from xlm.tasks.bleu import detokenize
from xlm.tasks.mt import load_translator, translate_dataset
from xlm.text.tokenizers import TokenizerOptions, get_tokenizer


class _Sentences:
    """A list of id arrays that looks like an IndexedDataset to `translate_dataset`."""

    def __init__(self, sentences: list[np.ndarray]) -> None:
        self.sentences = sentences

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.sentences[index]


def bpe_encoder(codes: str | None, dictionary):
    """fastBPE applier of the model's codes (restricted to its vocabulary), or identity."""
    if not codes:
        return lambda lines: lines
    import fastBPE

    with tempfile.TemporaryDirectory(prefix="xlm-translate-") as name:  # read at construction
        folder = Path(name)
        (folder / "codes").write_text(codes, encoding="utf-8")
        dictionary.save(folder / "vocab")
        applier = fastBPE.fastBPE(str(folder / "codes"), str(folder / "vocab"))
    return lambda lines: applier.apply([" ".join(line.split()) for line in lines])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="MT model.pt (xlm mt-train)")
    parser.add_argument("--src", required=True, help="source language")
    parser.add_argument("--tgt", required=True, help="target language")
    parser.add_argument("--beam", type=int, default=4, help="beam size (1: greedy)")
    parser.add_argument("--length-penalty", type=float, default=1.0,
                        help="hypothesis score = log p / length ** this")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch")


def run(args: argparse.Namespace) -> None:
    model, dictionary, state = load_translator(args.model)
    options = state.get("tokenizer", {}).get(args.src, {})
    try:
        tokenize = get_tokenizer(args.src, TokenizerOptions(**options))
    except TypeError as error:
        raise UserError(f"{args.model}: stored tokenizer options {options} ({error})") from None
    encode_bpe = bpe_encoder(state.get("codes"), dictionary)
    max_len = state["settings"]["max_len"]
    lines = sys.stdin.read().splitlines()
    bpe_lines = encode_bpe([tokenize(line) for line in lines]) if lines else []
    sentences = _Sentences([dictionary.encode(line) for line in bpe_lines])
    with torch.no_grad():
        hyps, _ = translate_dataset(model, dictionary, sentences, f"{args.src}-{args.tgt}",
                                    range(len(sentences)), max_len, args.beam,
                                    args.length_penalty, batch_size=args.batch_size)
    for hyp in hyps:
        sys.stdout.write(detokenize(hyp, args.tgt) + "\n")
