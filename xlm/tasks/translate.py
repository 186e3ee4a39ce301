"""`xlm translate`: raw text on stdin, translations on stdout, one line each.

Uses what the MT `model.pt` carries: the tokenizer settings of the source language, the
BPE codes the data was encoded with, the dictionary; the output is BPE-merged and
detokenized. Example: `echo "Hello world ." | xlm translate --model M --src en --tgt ro`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xlm.config import trained_directions
from xlm.errors import UserError
from xlm.tasks.bleu import detokenize
from xlm.tasks.mt import load_translator, translate_dataset
from xlm.text.tokenizers import TokenizerOptions, get_tokenizer

log = logging.getLogger(__name__)


class _Sentences:
    """A list of id arrays that looks like an IndexedDataset to `translate_dataset`."""

    def __init__(self, sentences: list[np.ndarray]) -> None:
        self.sentences = sentences

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.sentences[index]


def check_direction(model_path: str, settings: dict[str, Any], src: str, tgt: str) -> None:
    """Refuse a direction the model was not trained on: it would print fluent nonsense."""
    learned = trained_directions(settings)
    if f"{src}-{tgt}" not in learned:
        known = ", ".join(learned) or "none (denoising only)"
        raise UserError(f"{model_path}: not trained to translate {src}-{tgt}; its directions: "
                        f"{known}; pick --src/--tgt from these")


@contextlib.contextmanager
def native_stderr_to_log(what: str) -> Iterator[None]:
    """Keep what C code writes on file descriptor 2 (fastBPE's "Loading vocabulary from
    /tmp/..." lines) off the console; it is logged at debug level (`xlm -v`) instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace").strip()
            if text:
                log.debug("%s: %s", what, text)


def bpe_encoder(codes: str | None, dictionary):
    """fastBPE applier of the model's codes (restricted to its vocabulary), or identity."""
    if not codes:
        return lambda lines: lines
    import fastBPE

    with tempfile.TemporaryDirectory(prefix="xlm-translate-") as name:  # read at construction
        folder = Path(name)
        (folder / "codes").write_text(codes, encoding="utf-8")
        dictionary.save(folder / "vocab")
        with native_stderr_to_log("fastBPE"):
            applier = fastBPE.fastBPE(str(folder / "codes"), str(folder / "vocab"))
    return lambda lines: applier.apply([" ".join(line.split()) for line in lines])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="MT model.pt (xlm mt-train)")
    parser.add_argument("--src", required=True, help="source language")
    parser.add_argument("--tgt", required=True, help="target language")
    add_decoding_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch")


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """--beam and --length-penalty, as every command that translates with a model takes."""
    parser.add_argument("--beam", type=int, default=4, help="beam size (1: greedy)")
    parser.add_argument("--length-penalty", type=float, default=1.0,
                        help="hypothesis score = log p / length ** this")


class LineTranslator:
    """Raw `src` lines -> detokenized `tgt` translations, with the tokenizer, BPE codes and
    dictionary the MT model.pt carries. A direction the model did not learn is refused when
    it is built, before any input is read."""

    def __init__(self, model_path: str, src: str, tgt: str, beam: int = 4,
                 length_penalty: float = 1.0, batch_size: int = 32) -> None:
        self.model, self.dictionary, state = load_translator(model_path)
        check_direction(model_path, state["settings"], src, tgt)
        options = state.get("tokenizer", {}).get(src, {})
        try:
            self.tokenize = get_tokenizer(src, TokenizerOptions(**options))
        except TypeError as error:
            raise UserError(f"{model_path}: stored tokenizer options {options} "
                            f"({error})") from None
        self.encode_bpe = bpe_encoder(state.get("codes"), self.dictionary)
        self.max_len = state["settings"]["max_len"]
        self.src, self.tgt = src, tgt
        self.beam, self.length_penalty, self.batch_size = beam, length_penalty, batch_size

    def __call__(self, lines: list[str]) -> list[str]:
        bpe_lines = self.encode_bpe([self.tokenize(line) for line in lines]) if lines else []
        sentences = _Sentences([self.dictionary.encode(line) for line in bpe_lines])
        with torch.no_grad():
            hyps, _ = translate_dataset(self.model, self.dictionary, sentences,
                                        f"{self.src}-{self.tgt}", range(len(sentences)),
                                        self.max_len, self.beam, self.length_penalty,
                                        batch_size=self.batch_size)
        outputs = [detokenize(hyp, self.tgt) for hyp in hyps]
        empty = sum(1 for line, output in zip(lines, outputs, strict=True)
                    if line.strip() and not output.strip())
        if empty:
            log.warning("%d of %d non-empty input lines got an empty translation (blank "
                        "lines in the output); is the model trained enough for %s-%s?", empty,
                        sum(1 for line in lines if line.strip()), self.src, self.tgt)
        return outputs


def run(args: argparse.Namespace) -> None:
    translate = LineTranslator(args.model, args.src, args.tgt, args.beam, args.length_penalty,
                               args.batch_size)
    for output in translate(sys.stdin.read().splitlines()):
        sys.stdout.write(output + "\n")
