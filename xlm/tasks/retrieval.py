"""`xlm retrieval`: cross-lingual sentence retrieval with a pretrained encoder (paper 3.4).

How well a model aligns languages without fine-tuning: each sentence of a line-aligned pair
of files (e.g. FLORES devtest en/fr) is embedded by the pretrained encoder, and each source
sentence must find its translation among all target sentences (and back). Raw text is
tokenized with the workflow's tokenizers (settings given as JSON) and BPE'd with the run's
codes restricted to the model's dictionary, as `xlm translate` does, so any pair of files
works.

- Sentence embedding: the last layer's hidden states, framed `</s> sentence </s>` with the
  sentence's language id, **mean-pooled over the real tokens** (the two `</s>` included,
  padding excluded); the first position's (`</s>`) state is recorded too (`pooling: first`,
  the state XNLI's classifier reads).
- Retrieval: nearest neighbour by cosine (`p@1`) and by CSLS (`p@1_csls`, Conneau et al.
  2018, k neighbours: `--csls-k`), precision@1 in percent, in both directions. A hit is
  the aligned line, or any line whose token ids are identical to it (duplicates cannot be
  told apart).
- `--untrained-baseline` also scores the same architecture with fresh random weights
  (`weights: untrained`): what shared subwords, numbers and names give without learning.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xlm.data.dictionary import Dictionary
from xlm.errors import UserError
from xlm.io import open_text
from xlm.model.transformer import TransformerModel
from xlm.report.records import write_metrics
from xlm.tasks.common import (
    add_provenance_arguments,
    lang_id,
    length_batches,
    pad_sequences,
    provenance,
    with_eos,
)
from xlm.tasks.translate import bpe_encoder
from xlm.text.inputs import check_aligned
from xlm.text.tokenizers import TokenizerOptions, get_tokenizer
from xlm.train.checkpoint import load_pretrained

log = logging.getLogger(__name__)

POOLINGS = ("mean", "first")


def read_lines(path: str | Path, limit: int | None = None) -> list[str]:
    """The first `limit` lines of a text file (plain, .gz or .xz)."""
    lines = []
    with open_text(path) as handle:
        for line in handle:
            if limit is not None and len(lines) >= limit:
                break
            lines.append(line.rstrip("\n"))
    return lines


@torch.inference_mode()
def sentence_embeddings(model: TransformerModel, sentences: list[np.ndarray],
                        lang: int | None, tokens_per_batch: int = 4000,
                        device: torch.device | None = None) -> dict[str, np.ndarray]:
    """{"mean": (n, dim), "first": (n, dim)} float32 embeddings of framed id sequences
    (`</s> ... </s>`): mean of the last layer over real tokens, and its first position.
    Batches hold sentences of similar length; padding is masked in attention and left out
    of the mean, so a sentence's embedding does not depend on its batch."""
    device = device or next(model.parameters()).device
    model.eval()
    out = {pooling: np.zeros((len(sentences), model.config.dim), dtype=np.float32)
           for pooling in POOLINGS}
    lengths = np.array([len(s) for s in sentences])
    for rows in length_batches(lengths, tokens_per_batch):
        tokens, mask = pad_sequences([sentences[i] for i in rows])
        tokens, mask = tokens.to(device), mask.to(device)
        langs = None if lang is None else torch.full_like(tokens, lang)
        hidden = model(tokens, langs=langs, pad_mask=mask).hidden.float()
        real = mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * real).sum(dim=1) / real.sum(dim=1)
        out["mean"][rows] = mean.cpu().numpy()
        out["first"][rows] = hidden[:, 0].cpu().numpy()
    return out


def _normalise(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def precision_at_1(queries: np.ndarray, candidates: np.ndarray, gold: list[set[int]],
                   csls_k: int = 10) -> dict[str, float]:
    """P@1 (percent) of retrieving a gold candidate for each query, by cosine nearest
    neighbour (`p@1`) and by CSLS (`p@1_csls`): 2 cos(x, y) - r_T(x) - r_S(y), r the mean
    cosine to the `csls_k` nearest neighbours on the other side."""
    similarity = _normalise(queries) @ _normalise(candidates).T
    k_t = min(csls_k, similarity.shape[1])
    k_s = min(csls_k, similarity.shape[0])
    r_target = np.partition(similarity, -k_t, axis=1)[:, -k_t:].mean(axis=1)
    r_source = np.partition(similarity, -k_s, axis=0)[-k_s:, :].mean(axis=0)
    csls = 2 * similarity - r_target[:, None] - r_source[None, :]
    results = {}
    for name, scores in (("p@1", similarity), ("p@1_csls", csls)):
        best = scores.argmax(axis=1)
        results[name] = 100.0 * float(np.mean([int(b) in g for b, g in zip(best, gold,
                                                                           strict=True)]))
    return results


def identical_groups(sentences: list[np.ndarray]) -> list[set[int]]:
    """For each sentence, the indices of every sentence with the same ids (itself too)."""
    groups: dict[tuple[int, ...], set[int]] = defaultdict(set)
    for index, ids in enumerate(sentences):
        groups[tuple(ids.tolist())].add(index)
    return [groups[tuple(ids.tolist())] for ids in sentences]


class TextEncoder:
    """Raw line -> framed ids: the language's tokenizer, the codes, the model's dictionary."""

    def __init__(self, dictionary: Dictionary, codes: str | None,
                 tokenizers: dict[str, dict[str, Any]], pretokenized: bool = False) -> None:
        self.dictionary = dictionary
        self.tokenizers = tokenizers
        self.pretokenized = pretokenized
        codes_text = None
        if codes and not pretokenized:
            if not Path(codes).is_file():
                raise UserError(f"{codes}: BPE codes not found; give the codes the model's "
                                "data was BPE'd with (--codes)")
            codes_text = Path(codes).read_text(encoding="utf-8")
        self.bpe = bpe_encoder(codes_text, dictionary)  # fastBPE's chatter goes to the log

    def __call__(self, lang: str, lines: list[str]) -> list[np.ndarray]:
        if self.pretokenized:
            pieces = lines
        else:
            options = self.tokenizers.get(lang, {})
            try:
                tokenize = get_tokenizer(lang, TokenizerOptions(**options))
            except TypeError as error:
                raise UserError(f"--tokenizer: options of {lang} {options}: {error}; give "
                                "keys of the config's `tokenize` section") from None
            pieces = self.bpe([tokenize(line) for line in lines]) if lines else []
        return [self.dictionary.encode(line) for line in pieces]


def evaluate_pair(model: TransformerModel, langs: list[str], model_path: str,
                  pair: str, src_ids: list[np.ndarray], tgt_ids: list[np.ndarray],
                  csls_k: int, tokens_per_batch: int) -> list[dict[str, Any]]:
    """Records of one line-aligned pair, both directions, both poolings."""
    sides = list(zip(pair.split("-"), (src_ids, tgt_ids), strict=True))  # l1-l1 works too
    embeddings = []
    for lang, sentences in sides:
        lang_index = None if model.config.n_langs == 1 else lang_id(langs, lang, model_path)
        embeddings.append(sentence_embeddings(model, sentences, lang_index, tokens_per_batch))
    records = []
    for query, candidate in ((0, 1), (1, 0)):
        gold = identical_groups(sides[candidate][1])
        for pooling in POOLINGS:
            metrics = precision_at_1(embeddings[query][pooling],
                                     embeddings[candidate][pooling], gold, csls_k)
            records += [{"direction": f"{sides[query][0]}-{sides[candidate][0]}",
                         "pooling": pooling, "metric": metric, "value": value}
                        for metric, value in metrics.items()]
    return records


def load_pair(encoder: TextEncoder, pair: str, src: str, tgt: str, key: str,
              max_sentences: int | None, max_len: int,
              ) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, int]]:
    """Framed ids of both sides (first `max_sentences` pairs); pairs with an empty side
    are dropped and counted, sentences longer than `max_len` ids are clipped and counted."""
    where = key if key.startswith("--") else f"key '{key}'"  # an option, or a config key
    for path in (src, tgt):
        if not Path(path).is_file():
            raise UserError(f"{where}: {path} does not exist; fix the path or put the file "
                            "there")
    check_aligned([Path(src), Path(tgt)], key)
    src_lang, tgt_lang = pair.split("-")
    src_raw = encoder(src_lang, read_lines(src, max_sentences))
    tgt_raw = encoder(tgt_lang, read_lines(tgt, max_sentences))
    kept = [i for i, (a, b) in enumerate(zip(src_raw, tgt_raw, strict=True)) if len(a) and len(b)]
    clipped = sum(len(side[i]) > max_len for side in (src_raw, tgt_raw) for i in kept)
    counts = {"sentences": len(kept), "skipped_empty": len(src_raw) - len(kept),
              "clipped": clipped}
    if len(kept) < 2:
        raise UserError(f"{where}: {src} and {tgt} have {len(kept)} pair(s) with both sides "
                        "non-empty; retrieval needs at least 2")
    return ([with_eos(src_raw[i], max_len) for i in kept],
            [with_eos(tgt_raw[i], max_len) for i in kept], counts)


def untrained_copy(model: TransformerModel, seed: int) -> TransformerModel:
    """The same architecture with fresh random weights (the baseline of no pretraining)."""
    torch.manual_seed(seed)
    return TransformerModel(model.config).to(next(model.parameters()).device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="pretrained model.pt")
    parser.add_argument("--name", required=True, help="model name recorded in metrics")
    parser.add_argument("--pair", nargs=3, action="append", required=True,
                        metavar=("L1-L2", "L1_FILE", "L2_FILE"),
                        help="a line-aligned pair of files (plain, .gz or .xz); repeatable")
    parser.add_argument("--codes", default=None,
                        help="BPE codes the model's data used (none: words as they are)")
    parser.add_argument("--tokenizer", default="{}",
                        help="JSON {lang: tokenizer options} (the config's tokenize settings)")
    parser.add_argument("--pretokenized", action="store_true",
                        help="the files are already tokenized and BPE'd: only map to ids")
    parser.add_argument("--max-sentences", type=int, default=None,
                        help="first N lines of each pair (default: all)")
    parser.add_argument("--csls-k", type=int, default=10, help="neighbours of CSLS")
    parser.add_argument("--tokens-per-batch", type=int, default=4000,
                        help="padded tokens per forward batch")
    parser.add_argument("--untrained-baseline", action="store_true",
                        help="also score the same architecture with random weights")
    parser.add_argument("--seed", type=int, default=0, help="seed of the untrained baseline")
    parser.add_argument("--split", default="test", help="split recorded in metrics")
    parser.add_argument("--key", default=None,
                        help="config key of the pairs, for error messages (e.g. retrieval.pairs)")
    parser.add_argument("--out", required=True, help="metrics.json to write")
    add_provenance_arguments(parser)


def run(args: argparse.Namespace) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, dictionary, langs = load_pretrained(args.model)
    model.to(device)
    try:
        tokenizers = json.loads(args.tokenizer)
    except json.JSONDecodeError as error:
        raise UserError(f"--tokenizer: not valid JSON ({error}); give {{lang: options}}") from None
    encoder = TextEncoder(dictionary, args.codes, tokenizers, args.pretokenized)
    max_len = model.config.max_positions - 2
    weights = {"pretrained": model}
    if args.untrained_baseline:
        weights["untrained"] = untrained_copy(model, args.seed)
    common = {"task": "retrieval", "model": args.name, "split": args.split,
              "csls_k": args.csls_k, **provenance(args.config_hash, args.run_name)}
    records = []
    for pair, src, tgt in args.pair:
        key = f"{args.key}.{pair}" if args.key else f"--pair {pair}"
        if len(pair.split("-")) != 2:
            raise UserError(f"--pair {pair}: give the pair as L1-L2, e.g. en-fr")
        src_ids, tgt_ids, counts = load_pair(encoder, pair, src, tgt, key, args.max_sentences,
                                             max_len)
        for kind, weighted in weights.items():
            found = evaluate_pair(weighted, langs, args.model, pair, src_ids, tgt_ids,
                                  args.csls_k, args.tokens_per_batch)
            extra = {"weights": kind, **({"seed": args.seed} if kind == "untrained" else {})}
            records += [{**common, "lang": pair, **counts, **extra, **record}
                        for record in found]
            log.info("%s %s (%d sentences): %s", pair, kind, counts["sentences"], ", ".join(
                f"{r['direction']} {r['pooling']} {r['metric']} {r['value']:.1f}"
                for r in found))
    write_metrics(args.out, records)
