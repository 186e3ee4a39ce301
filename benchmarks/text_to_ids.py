"""Text to ids: raw sentences -> XLM token ids, sentences per second per core.

Ours: `get_tokenizer` (Moses normalisation + tokenizer) per line, `bpe.apply_to_lines`
(fastBPE on each distinct word of the batch once), `Dictionary.encode`. Peers, on the
same lines with the same codes and vocabulary: `transformers`' `XLMTokenizer`
(sacremoses + Python BPE; kept warm across repeats, so its BPE cache helps it) and a
plain loop of stock sacremoses + the fastBPE binding, one sentence at a time. Scaling:
ours over 1 and 2 worker processes, each with its own tokenizer, on contiguous shards.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import SHARED_DATA, Options, Result, Row, best_of

LANGS = ("en", "fr", "de")
SHARD_LINES = 256


def corpora(options: Options) -> dict[str, tuple[str, list[str]]]:
    """name -> (language, raw lines) of real text (quick: 40 FLORES lines)."""
    flores = SHARED_DATA / "para" / "flores200"
    if options.quick:
        return {"flores.en": ("en", _read(flores / "devtest.en")[:40])}
    found = {
        "newstest2014.en": ("en", _read(SHARED_DATA / "mt" / "wmt14-en-fr" / "newstest2014.en")),
        "flores.devtest.en": ("en", _read(flores / "devtest.en")),
        "flores.devtest.fr": ("fr", _read(flores / "devtest.fr")),
        "flores.devtest.de": ("de", _read(flores / "devtest.de")),
        "wiki.en (paragraphs)": ("en", _read(wiki_text(options))),
    }
    return found


def _read(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def wiki_text(options: Options) -> Path:
    """English Wikipedia paragraphs, extracted once with our `xlm extract`."""
    from xlm.text.extract import extract

    output = options.scratch("text") / "enwiki-large.txt"
    if not output.is_file():
        extract(SHARED_DATA / "wiki" / "enwiki-large-sample.xml.bz2", output)
    return output


def learn_codes(options: Options, texts: dict[str, tuple[str, list[str]]]) -> tuple[Path, Path]:
    """Small BPE codes and vocabulary learned on the benchmark text with our BPE code."""
    from xlm.text import bpe
    from xlm.text.tokenizers import get_tokenizer

    work = options.scratch("text")
    codes, vocab = work / "codes", work / "vocab"
    if codes.is_file() and vocab.is_file():
        return codes, vocab
    sample, applied = work / "sample.tok", work / "sample.bpe"
    tokenizers = {lang: get_tokenizer(lang) for lang in LANGS}
    with open(sample, "w", encoding="utf-8") as out:
        for lang, lines in texts.values():
            out.writelines(tokenizers[lang](line) + "\n" for line in lines)
    bpe.learn_codes(sample, 300 if options.quick else 10000, codes)
    bpe.apply_codes(codes, None, [sample], [applied])
    bpe.build_vocab([applied], vocab, None)
    return codes, vocab


class OurTextToIds:
    """Our pipeline as a library user composes it: tokenizer, fastBPE, Dictionary."""

    def __init__(self, codes: Path, vocab: Path) -> None:
        import fastBPE

        from xlm.data.dictionary import Dictionary
        from xlm.text.tokenizers import get_tokenizer

        self.bpe = fastBPE.fastBPE(str(codes), str(vocab))
        self.dictionary = Dictionary.read_vocab(vocab)
        self.tokenizers = {lang: get_tokenizer(lang) for lang in LANGS}

    def __call__(self, lang: str, lines: Sequence[str]) -> list[list[int]]:
        from xlm.text.bpe import apply_to_lines

        tokenize = self.tokenizers[lang]
        applied = apply_to_lines(self.bpe, [tokenize(line) for line in lines])
        return [self.dictionary.encode(line).tolist() for line in applied]


class PlainLoop:
    """Stock sacremoses + the fastBPE binding, one sentence at a time."""

    def __init__(self, codes: Path, vocab: Path) -> None:
        import fastBPE
        from sacremoses import MosesPunctNormalizer, MosesTokenizer

        from xlm.data.dictionary import Dictionary

        self.bpe = fastBPE.fastBPE(str(codes), str(vocab))
        self.word2id = Dictionary.read_vocab(vocab).word2id
        self.moses = {lang: (MosesPunctNormalizer(lang=lang, pre_replace_unicode_punct=True,
                                                  post_remove_control_chars=True),
                             MosesTokenizer(lang=lang)) for lang in LANGS}

    def __call__(self, lang: str, lines: Sequence[str]) -> list[list[int]]:
        normalizer, tokenizer = self.moses[lang]
        out = []
        for line in lines:
            tokens = tokenizer.tokenize(normalizer.normalize(line), escape=False, return_str=True)
            applied = self.bpe.apply([" ".join(tokens.split())])[0]
            out.append([self.word2id.get(word, 3) for word in applied.split()])
        return out


class HFTokenizer:
    """transformers' XLMTokenizer reading our codes and vocabulary (converted)."""

    def __init__(self, codes: Path, vocab: Path, work: Path) -> None:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from transformers import XLMTokenizer

        from xlm.interop.hf_tokenizer import write_hf_tokenizer_files

        write_hf_tokenizer_files(codes, vocab, work / "hf", langs=LANGS)
        self.tokenizer = XLMTokenizer.from_pretrained(str(work / "hf"))

    def __call__(self, lang: str, lines: Sequence[str]) -> list[list[int]]:
        # `_tokenize`: in transformers 5.23 `tokenize(text, lang=...)` and `__call__` drop
        # `lang`, so every language would get English Moses rules; `_tokenize` is the
        # same Moses + BPE work minus the added-token split (a little faster).
        tokenizer = self.tokenizer
        return [tokenizer.convert_tokens_to_ids(tokenizer._tokenize(line, lang=lang))
                for line in lines]


_WORKER: OurTextToIds | None = None


def _init_worker(codes: Path, vocab: Path) -> None:
    global _WORKER
    logging.disable(logging.INFO)
    _WORKER = OurTextToIds(codes, vocab)


def _work(task: tuple[str, list[str]]) -> float:
    """Encode one shard; return the CPU seconds it took."""
    assert _WORKER is not None
    start = time.process_time()
    _WORKER(*task)
    return time.process_time() - start


def scaled_rate(codes: Path, vocab: Path, texts: dict[str, tuple[str, list[str]]],
                workers: int, repeats: int) -> tuple[float, float]:
    """Sentences per wall-clock second of ours over `workers` processes (pool start-up not
    counted), and sentences per CPU-second of the workers (flat when nothing in our
    code serialises the workers, whatever else loads the machine)."""
    shards = [(lang, lines[i:i + SHARD_LINES]) for lang, lines in texts.values()
              for i in range(0, len(lines), SHARD_LINES)]
    total = sum(len(lines) for _, lines in shards)
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(codes, vocab)) as pool:
        pool.map(_work, shards[:workers], chunksize=1)  # warm up every worker
        best, cpu = float("inf"), float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            cpu_seconds = pool.map(_work, shards, chunksize=1)
            best = min(best, time.perf_counter() - start)
            cpu = min(cpu, sum(cpu_seconds))
    return total / best, total / cpu


def run(options: Options) -> Result:
    """The benchmark with the package's INFO logging quiet, restored afterwards (the
    suite may run inside another process, e.g. the tests)."""
    logger = logging.getLogger("xlm")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return _run(options)
    finally:
        logger.setLevel(level)


def _run(options: Options) -> Result:
    texts = corpora(options)
    codes, vocab = learn_codes(options, texts)
    sides = {"ours": OurTextToIds(codes, vocab), "XLMTokenizer": HFTokenizer(
        codes, vocab, options.scratch("text")), "sacremoses+fastBPE loop": PlainLoop(codes, vocab)}
    result = Result("text_to_ids")
    result.details = {"codes": 300 if options.quick else 10000, "corpora": {}}
    totals = dict.fromkeys(sides, 0.0)
    n_total = 0
    for name, (lang, lines) in texts.items():
        outputs = {side: tokenize(lang, lines) for side, tokenize in sides.items()}
        agree = {side: sum(a == b for a, b in zip(outputs["ours"], out, strict=True)) / len(lines)
                 for side, out in outputs.items() if side != "ours"}
        times = best_of({side: (lambda t=tokenize, lg=lang, ls=lines: t(lg, ls))
                         for side, tokenize in sides.items()}, options.repeats)
        rates = {side: len(lines) / seconds for side, seconds in times.items()}
        for side, seconds in times.items():
            totals[side] += seconds
        n_total += len(lines)
        result.details["corpora"][name] = {"lang": lang, "lines": len(lines), "rates": rates,
                                           "same_ids_as_ours": agree}
        for peer in ("XLMTokenizer", "sacremoses+fastBPE loop"):
            result.rows.append(Row(
                f"{name}, {len(lines)} lines", "sentences/s/core", rates["ours"], rates[peer],
                peer, note=f"same ids {100 * agree[peer]:.1f}%"))
    overall = {side: n_total / seconds for side, seconds in totals.items()}
    ratio = overall["ours"] / overall["XLMTokenizer"]
    result.rows.append(Row("all corpora", "sentences/s/core", overall["ours"],
                           overall["XLMTokenizer"], "XLMTokenizer", ">= 3x", ratio >= 3))
    result.rows.append(Row("all corpora", "sentences/s/core", overall["ours"],
                           overall["sacremoses+fastBPE loop"], "sacremoses+fastBPE loop"))
    one, one_cpu = scaled_rate(codes, vocab, texts, 1, options.repeats)
    two, two_cpu = scaled_rate(codes, vocab, texts, 2, options.repeats)
    result.rows.append(Row("ours, 2 workers vs 1, wall clock", "sentences/s", two, one,
                           "ours, 1 worker", ">= 1.8x (near-linear)", two / one >= 1.8,
                           note=f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
                                "cores"))
    result.rows.append(Row("ours, 2 workers vs 1, per CPU-second of the workers",
                           "sentences/CPU-s", two_cpu, one_cpu, "ours, 1 worker"))
    result.details["scaling"] = {"workers_1": one, "workers_2": two,
                                 "workers_1_per_cpu_s": one_cpu, "workers_2_per_cpu_s": two_cpu,
                                 "cpu_count": os.cpu_count(), "load_average": os.getloadavg()}
    return result
