"""One BPE vocabulary shared by all languages (paper 3.1), learned and applied with fastBPE.

The codes are learned on sentences sampled from every language with q_i ∝ p_i^α
(p_i = n_i / Σ n_k, α = 0.5): low-resource languages get more than their natural share,
so their words are not all split into characters. fastBPE's `fast` tool learns the
codes and counts the vocabulary; its Python binding applies the codes, in parallel
processes (the binding holds the GIL).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np

from xlm.errors import UserError
from xlm.io import atomic_open, atomic_path, compression, count_lines, progress

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- sampling


def sampling_probabilities(line_counts: dict[str, int], alpha: float) -> dict[str, float]:
    """q_i = p_i^α / Σ_k p_k^α with p_i = n_i / Σ n_k (α = 1: natural shares; α → 0: uniform)."""
    if alpha < 0:
        raise UserError(f"bpe.alpha: {alpha} is negative; use a value in [0, 1]")
    empty = [lang for lang, n in line_counts.items() if n <= 0]
    if empty:
        raise UserError(f"languages {empty} have no training sentences; "
                        "check their text pipeline output or remove them from `languages`")
    counts = np.array(list(line_counts.values()), dtype=np.float64)
    weights = (counts / counts.sum()) ** alpha
    return dict(zip(line_counts, weights / weights.sum(), strict=True))


def sample_counts(line_counts: dict[str, int], alpha: float, total: int,
                  seed: int) -> dict[str, int]:
    """How many sentences each language gives to the BPE sample: a multinomial draw over q."""
    probs = sampling_probabilities(line_counts, alpha)
    drawn = np.random.default_rng(seed).multinomial(total, list(probs.values()))
    return {lang: int(n) for lang, n in zip(probs, drawn, strict=True)}


def write_sample(inputs: dict[str, Path], output: Path, alpha: float, total: int | None,
                 seed: int) -> dict[str, int]:
    """Write the α-sampled BPE training sentences of all languages to `output`.

    A language asked for more sentences than it has is sampled with replacement.
    `total` None takes every line of every language once, in order, without sampling:
    XLM's get-data-nmt.sh learns its per-pair codes on both tokenized corpora whole.
    Files are streamed; memory holds only the chosen line numbers.
    """
    for lang, path in inputs.items():
        if not Path(path).is_file():
            raise UserError(f"{path}: tokenized training text of {lang!r} not found; "
                            "run the tokenize stage first")
    line_counts = {lang: count_lines(path) for lang, path in inputs.items()}
    for lang, path in inputs.items():
        if line_counts[lang] == 0:
            raise UserError(f"{path}: language {lang!r} has no training sentences; "
                            "check its text pipeline output or remove it from `languages`")
    if total is None:
        with atomic_open(output) as out:
            for lang, path in inputs.items():
                with open(path, encoding="utf-8") as handle:
                    out.writelines(line if line.endswith("\n") else line + "\n"
                                   for line in handle)
                log.info("%s: all its %d lines taken (no sampling)", lang, line_counts[lang])
        return line_counts
    counts = sample_counts(line_counts, alpha, total, seed)
    probs = sampling_probabilities(line_counts, alpha)
    rng = np.random.default_rng(seed + 1)
    with atomic_open(output) as out:
        for lang, path in inputs.items():
            n_lines, wanted = line_counts[lang], counts[lang]
            chosen = rng.choice(n_lines, size=wanted, replace=wanted > n_lines)
            repeats = np.bincount(chosen, minlength=n_lines)
            with open(path, encoding="utf-8") as handle:
                for line, times in zip(handle, repeats, strict=True):
                    if times:
                        out.write(line * int(times))
            log.info("%s: %d sentences drawn from its %d lines (p=%.4f, q=%.4f)", lang, wanted,
                     n_lines, n_lines / sum(line_counts.values()), probs[lang])
    return counts


# ---------------------------------------------------------------- fastBPE


def fast_binary() -> str:
    """The `fast` command of fastBPE: on PATH, or next to the running Python (the venv)."""
    found = shutil.which("fast")
    if found:
        return found
    beside = Path(sys.executable).parent / "fast"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise UserError("fastBPE's `fast` command not found on PATH or in the venv; "
                    "build it with `make` (see the Makefile) or put it on PATH")


def _run_fast(args: Sequence[str], output: Path) -> None:
    """Run `fast ARGS`, capturing stdout into `output` atomically."""
    command = [fast_binary(), *args]
    log.info("running %s", " ".join(command))
    with atomic_path(output) as tmp, open(tmp, "wb") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, check=False)
        if result.returncode != 0:
            raise UserError(f"{output}: `{' '.join(command)}` failed: "
                            f"{result.stderr.decode(errors='replace').strip()[-500:]}")


def learn_codes(sample: Path, n_codes: int, output: Path) -> None:
    """Learn `n_codes` merges on the sample with `fast learnbpe`."""
    if count_lines(sample) == 0:
        raise UserError(f"{sample}: empty BPE sample; check the tokenized training text")
    _run_fast(["learnbpe", str(n_codes), str(sample)], output)


def build_vocab(inputs: Sequence[Path], output: Path, max_vocab: int | None) -> int:
    """Count BPE tokens of the BPE'd training data (`fast getvocab`) and keep the top ones.

    fastBPE's getvocab reads at most two files, so the inputs are counted one by one
    and the counts summed here, sorted like fastBPE (count desc, then word).
    """
    totals: dict[str, int] = {}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(output).parent) as scratch:
        for number, path in enumerate(inputs):
            part = Path(scratch) / f"vocab.{number}"
            _run_fast(["getvocab", str(path)], part)
            with open(part, encoding="utf-8") as handle:
                for line in handle:
                    word, count = line.rstrip("\n").split(" ")
                    totals[word] = totals.get(word, 0) + int(count)
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_vocab is not None:
        ordered = ordered[:max_vocab]
    with atomic_open(output) as out:
        for word, count in ordered:
            out.write(f"{word} {count}\n")
    log.info("vocabulary: %d words kept of %d (max_vocab=%s)", len(ordered), len(totals),
             max_vocab)
    return len(ordered)


_APPLIER = None


def _init_applier(codes: str, vocab: str) -> None:
    global _APPLIER
    import fastBPE

    _APPLIER = fastBPE.fastBPE(codes, vocab)


def apply_to_lines(applier, lines: Sequence[str]) -> list[str]:
    """BPE of each line of space-separated tokens with a `fastBPE.fastBPE` applier.

    BPE works word by word, so each distinct word of the lines is looked up once (about
    half the time of applying it line by line on real text); splitting on any whitespace
    also keeps fastBPE, which splits on single spaces, from seeing empty "words".
    """
    split = [line.split() for line in lines]
    words = list({word for tokens in split for word in tokens})
    pieces = dict(zip(words, applier.apply(words), strict=True))
    return [" ".join([pieces[word] for word in tokens]) for tokens in split]


def _apply_chunk(lines: list[str]) -> list[str]:
    return apply_to_lines(_APPLIER, lines)


def _chunks(handle, size: int) -> Iterator[list[str]]:
    while True:
        chunk = [line.rstrip("\n") for line in itertools.islice(handle, size)]
        if not chunk:
            return
        yield chunk


def apply_codes(codes: Path, vocab: Path | None, inputs: Sequence[Path],
                outputs: Sequence[Path], processes: int = 1, chunk_lines: int = 10000) -> None:
    """Apply BPE codes (and, if given, restrict merges to `vocab`) to each input file.

    Lines are processed in chunks by `processes` worker processes, in order.
    """
    if not Path(codes).is_file():
        raise UserError(f"{codes}: BPE codes not found; learn them or fix `bpe.codes`")
    if vocab is not None and not Path(vocab).is_file():
        raise UserError(f"{vocab}: BPE vocabulary not found; fix `bpe.vocab`")
    for given, key in ((codes, "bpe.codes"), (vocab, "bpe.vocab")):
        kind = compression(given) if given is not None else None
        if kind:  # read by fastBPE's C++ code and by every later stage as plain text
            raise UserError(f"{given}: {kind}-compressed, but BPE codes and vocabularies are "
                            f"read as plain text; decompress it and point `{key}` at the "
                            "plain file")
    init_args = (str(codes), str(vocab) if vocab else "")
    executor = None
    if processes > 1:
        executor = ProcessPoolExecutor(processes, multiprocessing.get_context("spawn"),
                                       initializer=_init_applier, initargs=init_args)
    else:
        _init_applier(*init_args)
    try:
        for source, target in zip(inputs, outputs, strict=True):
            if not Path(source).is_file():
                raise UserError(f"{source}: tokenized text not found; run its tokenize rule")
            with open(source, encoding="utf-8") as handle, atomic_open(target) as out:
                chunks = _chunks(handle, chunk_lines)
                applied = (_in_order(executor, chunks, 2 * processes) if executor
                           else map(_apply_chunk, chunks))
                for chunk in progress(applied, desc=f"bpe {Path(source).name}", unit="chunks"):
                    for line in chunk:
                        out.write(line + "\n")
                    # Free the written chunk before the next is built: one chunk alive at
                    # a time (benchmarks/memory.py saw two from 4x the corpus on).
                    del chunk
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)


def _in_order(executor: ProcessPoolExecutor, chunks: Iterator[list[str]],
              window: int) -> Iterator[list[str]]:
    """Results in input order with at most `window` chunks in flight (flat memory; a dead
    worker raises BrokenProcessPool instead of hanging)."""
    pending: deque[Future] = deque()
    for chunk in chunks:
        pending.append(executor.submit(_apply_chunk, chunk))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def remove_bpe(line: str) -> str:
    """Undo BPE: join `@@ `-marked pieces back into words (XLM's `sed 's/@@ //g'`)."""
    return re.sub(r"@@( |$)", "", line)


# ---------------------------------------------------------------- CLI


def add_bpe_sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="LANG=PATH",
                        help="tokenized training text of each language")
    parser.add_argument("--output", type=Path, required=True, help="sampled sentences")
    parser.add_argument("--alpha", type=float, default=0.5, help="q_i ∝ p_i^alpha")
    parser.add_argument("--sentences", type=int, default=None,
                        help="total sample size (omitted: every line of every input once)")
    parser.add_argument("--seed", type=int, default=0)


def _lang_paths(items: Sequence[str]) -> dict[str, Path]:
    pairs: dict[str, Path] = {}
    for item in items:
        lang, sep, path = item.partition("=")
        if not sep or not lang or not path:
            raise UserError(f"--input {item!r}: expected LANG=PATH")
        pairs[lang] = Path(path)
    return pairs


def run_bpe_sample(args: argparse.Namespace) -> None:
    if args.sentences is not None and args.sentences < 1:
        raise UserError(f"--sentences {args.sentences}: must be at least 1 (bpe.sample_sentences)")
    write_sample(_lang_paths(args.input), args.output, args.alpha, args.sentences, args.seed)


def add_bpe_learn_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, required=True, help="BPE training sample")
    parser.add_argument("--codes", type=int, required=True, help="number of merges")
    parser.add_argument("--output", type=Path, required=True, help="codes file")


def run_bpe_learn(args: argparse.Namespace) -> None:
    learn_codes(args.input, args.codes, args.output)


def add_bpe_vocab_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, nargs="+", required=True, help="BPE'd train text")
    parser.add_argument("--output", type=Path, required=True, help="vocab file")
    parser.add_argument("--max-vocab", type=int, default=None, help="keep the N most frequent")


def run_bpe_vocab(args: argparse.Namespace) -> None:
    build_vocab(args.input, args.output, args.max_vocab)


def add_bpe_apply_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codes", type=Path, required=True)
    parser.add_argument("--vocab", type=Path, default=None,
                        help="only produce subwords in this vocab (released vocabularies)")
    parser.add_argument("--input", type=Path, nargs="+", required=True)
    parser.add_argument("--output", type=Path, nargs="+", required=True)
    parser.add_argument("--processes", type=int, default=1, help="worker processes")


def run_bpe_apply(args: argparse.Namespace) -> None:
    if len(args.input) != len(args.output):
        raise UserError("--input and --output: give as many outputs as inputs")
    apply_codes(args.codes, args.vocab, args.input, args.output, args.processes)
