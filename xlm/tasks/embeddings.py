"""`xlm embeddings`: cross-lingual word embeddings from a model's lookup table (4.5, Table 5).

For a bilingual dictionary (MUSE format: `source<TAB>target` or `source target` per line,
plain, .gz or .xz), each word is BPE-encoded with the model's codes and embedded as the MEAN
of its subword rows of the input embedding table (a word that BPE keeps whole is its own
row); a word with a subword missing from the vocabulary is skipped and counted. Records:
- `cosine`, `l2`: mean cosine similarity and mean L2 distance of the translation pairs;
- `p@1`, `p@5`: word translation precision (percent) by nearest neighbour with cosine, and
  `p@1_csls`, `p@5_csls` with CSLS (Conneau et al. 2018): each source word retrieves among
  the dictionary's target words; a hit is any of its gold translations;
- `n_pairs`: the pairs used.
Each set is scored twice: on all its pairs (`subset` "all") and on the pairs whose two
words are spelled differently (`subset` "different spelling"): identical spellings
(names, numbers) share their subwords, so a shared vocabulary gets them right trivially.

SemEval'17 cross-lingual word similarity (Camacho-Collados et al. 2017, Task 2, subtask 2;
`--semeval17 PAIR DATA GOLD`): DATA has `word1<TAB>word2` lines, GOLD one human score per
line (the task's data and key files). `semeval17` is the Pearson correlation between the
scores and the cosine of the two words' embeddings, over the pairs whose words are both
embeddable (`pairs`, `skipped` beside it).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from xlm.data.dictionary import Dictionary
from xlm.errors import UserError
from xlm.io import open_text
from xlm.report.records import write_metrics
from xlm.tasks.common import add_provenance_arguments, provenance
from xlm.train.checkpoint import load_pretrained

log = logging.getLogger(__name__)


def read_dictionary(path: str | Path, max_pairs: int | None = None,
                    lowercase: bool = False) -> list[tuple[str, str]]:
    """(source, target) pairs of a MUSE dictionary file, in file order, duplicates dropped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: bilingual dictionary not found; fix `embeddings.dictionaries`")
    pairs: list[tuple[str, str]] = []
    seen = set()
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise UserError(f"{path}:{number}: expected 'source target', got {line!r}")
            pair = (parts[0].lower(), parts[1].lower()) if lowercase else (parts[0], parts[1])
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
            if max_pairs is not None and len(pairs) >= max_pairs:
                break
    return pairs


class WordEmbedder:
    """Word -> mean of its BPE subword embeddings (None when a subword is unknown)."""

    def __init__(self, table: np.ndarray, dictionary: Dictionary, codes: str | None) -> None:
        self.table = table
        self.dictionary = dictionary
        self.apply = lambda words: words
        if codes:
            import fastBPE

            with tempfile.TemporaryDirectory(prefix="xlm-embeddings-") as name:
                dictionary.save(Path(name) / "vocab")  # read when the applier is built
                applier = fastBPE.fastBPE(str(codes), str(Path(name) / "vocab"))
            self.apply = applier.apply

    def embed(self, words: list[str]) -> dict[str, np.ndarray]:
        vectors = {}
        for word, pieces in zip(words, self.apply(list(words)), strict=True):
            ids = [self.dictionary.word2id.get(piece) for piece in pieces.split()]
            if ids and None not in ids:
                vectors[word] = self.table[ids].mean(axis=0)
        return vectors


def _normalise(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def pair_metrics(src: np.ndarray, tgt: np.ndarray) -> dict[str, float]:
    """Mean cosine and mean L2 distance of row-aligned source/target vectors."""
    cosine = np.sum(_normalise(src) * _normalise(tgt), axis=1)
    return {"cosine": float(cosine.mean()), "l2": float(np.linalg.norm(src - tgt, axis=1).mean())}


def retrieval_precision(queries: np.ndarray, candidates: np.ndarray, gold: list[set[int]],
                        ks: tuple[int, ...] = (1, 5), csls_k: int = 10) -> dict[str, float]:
    """Precision@k (percent) of retrieving a gold candidate for each query, by cosine
    nearest neighbour and by CSLS: 2 cos(x, y) - r_T(x) - r_S(y), r the mean cosine to
    the `csls_k` nearest neighbours in the other language."""
    similarity = _normalise(queries) @ _normalise(candidates).T
    k_t = min(csls_k, similarity.shape[1])
    k_s = min(csls_k, similarity.shape[0])
    r_target = np.sort(similarity, axis=1)[:, -k_t:].mean(axis=1)
    r_source = np.sort(similarity, axis=0)[-k_s:, :].mean(axis=0)
    csls = 2 * similarity - r_target[:, None] - r_source[None, :]
    results = {}
    for name, scores in (("", similarity), ("_csls", csls)):
        ranking = np.argsort(-scores, axis=1, kind="stable")
        for k in ks:
            hits = [bool(set(ranking[i, :k].tolist()) & gold[i]) for i in range(len(gold))]
            results[f"p@{k}{name}"] = 100.0 * float(np.mean(hits)) if hits else 0.0
    return results


def evaluate_pairs(embedder: WordEmbedder, pairs: list[tuple[str, str]],
                   csls_k: int = 10) -> tuple[dict[str, float], dict[str, int]]:
    """All metrics of one dictionary, and counts of pairs used and skipped."""
    src_vectors = embedder.embed(sorted({s for s, _ in pairs}))
    tgt_vectors = embedder.embed(sorted({t for _, t in pairs}))
    usable = [(s, t) for s, t in pairs if s in src_vectors and t in tgt_vectors]
    counts = {"pairs": len(usable), "skipped": len(pairs) - len(usable)}
    if not usable:
        raise UserError("no dictionary pair has both words in the model's vocabulary; "
                        "check the dictionary's languages and the BPE codes")
    metrics = pair_metrics(np.stack([src_vectors[s] for s, _ in usable]),
                           np.stack([tgt_vectors[t] for _, t in usable]))
    sources = sorted({s for s, _ in usable})
    targets = sorted({t for _, t in usable})
    target_index = {t: i for i, t in enumerate(targets)}
    gold: dict[str, set[int]] = defaultdict(set)
    for s, t in usable:
        gold[s].add(target_index[t])
    metrics.update(retrieval_precision(
        np.stack([src_vectors[s] for s in sources]), np.stack([tgt_vectors[t] for t in targets]),
        [gold[s] for s in sources], csls_k=csls_k))
    return metrics, counts


def read_similarity(data: str | Path, gold: str | Path,
                    lowercase: bool = False) -> list[tuple[str, str, float]]:
    """(word1, word2, score) of a SemEval'17 cross-lingual set: the data file's word pairs
    with the key file's scores, line by line."""
    with open_text(Path(data)) as handle:
        pairs = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    with open_text(Path(gold)) as handle:
        scores = [line.strip() for line in handle if line.strip()]
    if len(pairs) != len(scores):
        raise UserError(f"{data}: {len(pairs)} word pairs but {gold} has {len(scores)} scores; "
                        "give the data file and the key (gold) file of the same set")
    rows = []
    for number, (words, score) in enumerate(zip(pairs, scores, strict=True), start=1):
        try:
            value = float(score.split()[0])
        except ValueError:
            raise UserError(f"{gold}:{number}: {score!r} is not a similarity score") from None
        if len(words) != 2:
            raise UserError(f"{data}:{number}: expected 'word1<TAB>word2', got {words!r}")
        first, second = (w.strip().lower() if lowercase else w.strip() for w in words)
        rows.append((first, second, value))
    return rows


def similarity_correlation(embedder: WordEmbedder, rows: list[tuple[str, str, float]]
                           ) -> tuple[float, dict[str, int]]:
    """Pearson correlation of the gold scores with the cosine of the embedded word pairs,
    and counts of pairs used and skipped."""
    vectors = embedder.embed(sorted({w for a, b, _ in rows for w in (a, b)}))
    usable = [(a, b, score) for a, b, score in rows if a in vectors and b in vectors]
    counts = {"pairs": len(usable), "skipped": len(rows) - len(usable)}
    if len(usable) < 2:
        raise UserError("fewer than 2 word pairs have both words in the model's vocabulary; "
                        "check the set's languages and the BPE codes")
    cosine = np.sum(_normalise(np.stack([vectors[a] for a, _, _ in usable]))
                    * _normalise(np.stack([vectors[b] for _, b, _ in usable])), axis=1)
    gold = np.array([score for _, _, score in usable])
    return float(np.corrcoef(cosine, gold)[0, 1]), counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="pretrained model.pt")
    parser.add_argument("--name", required=True, help="model name recorded in metrics")
    parser.add_argument("--dictionaries", nargs="+", required=True, metavar="PAIR=PATH",
                        help="MUSE dictionaries, e.g. en-fr=dict/en-fr.txt")
    parser.add_argument("--semeval17", nargs=3, action="append", default=[],
                        metavar=("PAIR", "DATA", "GOLD"),
                        help="a SemEval'17 cross-lingual similarity set: its word pairs "
                             "and its gold scores (repeat for several pairs)")
    parser.add_argument("--codes", default=None, help="BPE codes the model's data used")
    parser.add_argument("--lowercase", action="store_true", help="lowercase dictionary words")
    parser.add_argument("--max-pairs", type=int, default=None, help="first N pairs per file")
    parser.add_argument("--csls-k", type=int, default=10, help="neighbours of CSLS")
    parser.add_argument("--out", required=True, help="metrics.json to write")
    add_provenance_arguments(parser)


def run(args: argparse.Namespace) -> None:
    model, dictionary, _ = load_pretrained(args.model)
    table = model.embeddings.weight.detach().to(torch.float32).numpy()
    embedder = WordEmbedder(table, dictionary, args.codes)
    common = {"task": "embeddings", "model": args.name, "method": args.name, "split": "test",
              **provenance(args.config_hash, args.run_name)}
    records = []
    for item in args.dictionaries:
        pair, _, path = item.partition("=")
        if not path or len(pair.split("-")) != 2:
            raise UserError(f"--dictionaries {item!r}: give PAIR=PATH, e.g. en-fr=dict.txt")
        pairs = read_dictionary(path, args.max_pairs, args.lowercase)
        subsets = {"all": pairs, "different spelling": [(s, t) for s, t in pairs if s != t]}
        for subset, chosen in subsets.items():
            if subset != "all" and not chosen:
                log.warning("%s: every pair is spelled the same in both languages", path)
                continue
            try:
                metrics, counts = evaluate_pairs(embedder, chosen, args.csls_k)
            except UserError as error:
                raise UserError(f"{path}: {error}") from None
            metrics["n_pairs"] = counts["pairs"]
            log.info("%s, %s pairs: %s (%d pairs used, %d skipped for unknown subwords)", pair,
                     subset, ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()),
                     counts["pairs"], counts["skipped"])
            records += [{**common, "lang": pair, "subset": subset, "metric": metric,
                         "value": value, **counts} for metric, value in metrics.items()]
    for pair, data, gold in args.semeval17:
        rows = read_similarity(data, gold, args.lowercase)
        try:
            correlation, counts = similarity_correlation(embedder, rows)
        except UserError as error:
            raise UserError(f"{data}: {error}") from None
        log.info("%s SemEval'17 similarity: Pearson %.3f (%d pairs used, %d skipped for "
                 "unknown subwords)", pair, correlation, counts["pairs"], counts["skipped"])
        records.append({**common, "lang": pair, "subset": "all", "metric": "semeval17",
                        "value": correlation, **counts})
    write_metrics(args.out, records)
