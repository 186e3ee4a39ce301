"""Memory: peak RSS of `xlm binarize` and of the training data loader at 1x, 4x, 16x corpus.

The corpus is real BPE'd text (the text_to_ids benchmark's sentences, with its codes),
repeated up to a unit of at least 4 MB (1x) and then 4 and 16 times that. Each
measurement is a child process; its peak RSS is its ru_maxrss (see `MEASURE`). The
loader reads a fixed number of MLM batches (stream rows, masking) from the
memory-mapped dataset, as the trainer does; its resident file pages (memory-mapped
tokens it touched) are reported apart from its anonymous memory.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from benchmarks import text_to_ids
from benchmarks.common import Options, Result, Row, python

SCALES = (1, 4, 16)
UNIT_BYTES = 4 << 20

LOADER = """
import json, sys
import torch
from xlm.data.batching import stream_batch
from xlm.data.dictionary import MASK, Dictionary
from xlm.data.indexed import IndexedDataset
from xlm.data.streams import StreamDataset
from xlm.train.masking import MaskingConfig, mask_batch, target_weights

vocab, prefix, n_batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
dictionary = Dictionary.read_vocab(vocab)
stream = StreamDataset(IndexedDataset(prefix, dictionary), bptt=256, seed=0)
weights = target_weights(dictionary.counts, 0.5, dictionary.pad_index)
for number in range(n_batches):
    rows = stream.train_rows(number, 64)
    batch = stream_batch(stream.read_rows(rows), 0, len(rows), 0)
    mask_batch(batch, MaskingConfig(), weights, MASK, len(dictionary),
               torch.Generator().manual_seed(number))
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({key: int(status[key].split()[0]) for key in ("RssAnon", "RssFile")}))
"""


def corpus(options: Options) -> tuple[Path, Path]:
    """(vocab, 1x corpus): BPE'd real sentences repeated to at least UNIT_BYTES."""
    from xlm.text import bpe

    texts = text_to_ids.corpora(options)
    codes, vocab = text_to_ids.learn_codes(options, texts)
    work = options.scratch("memory")
    unit = work / "corpus.x1.txt"
    if not unit.is_file():
        applied = options.scratch("text") / "sample.bpe"
        if not applied.is_file():
            bpe.apply_codes(codes, None, [options.scratch("text") / "sample.tok"], [applied])
        text = applied.read_text(encoding="utf-8")
        wanted = 1 if options.quick else -(-UNIT_BYTES // len(text.encode()))
        unit.write_text(text * wanted, encoding="utf-8")
    return vocab, unit


def scaled(unit: Path, scale: int) -> Path:
    path = unit.with_name(f"corpus.x{scale}.txt")
    if not path.is_file():
        text = unit.read_text(encoding="utf-8")
        with open(path, "w", encoding="utf-8") as out:
            for _ in range(scale):
                out.write(text)
    return path


# The child's peak RSS must be read by a small parent: Linux carries the forking
# process's high-water mark over fork and exec into the child's ru_maxrss, so measured
# from this (large) process every child would look as big as the suite itself.
MEASURE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def peak_rss_mb(command: list[str]) -> tuple[float, str]:
    """Run `command` under a small measuring parent; its peak RSS in MB and its stdout."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run([python(), "-c", MEASURE, *command], capture_output=True, text=True,
                          env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    peak = [line for line in done.stderr.splitlines() if line.startswith("MAXRSS_KB ")]
    return int(peak[-1].split()[1]) / 1024, done.stdout


def run(options: Options) -> Result:
    vocab, unit = corpus(options)
    result = Result("memory")
    n_batches = 5 if options.quick else 200
    result.details = {"unit_bytes": unit.stat().st_size, "loader_batches": n_batches,
                      "loader_batch": "64 rows x 256 tokens, MLM masking", "scales": {}}
    binarize_mb, loader_mb = {}, {}
    scales = (1, 16) if options.quick else SCALES
    for scale in scales:
        text = scaled(unit, scale)
        prefix = text.with_suffix("")
        binarize_mb[scale], _ = peak_rss_mb([python(), "-m", "xlm", "binarize", "--vocab",
                                             str(vocab), "--input", str(text), "--output",
                                             str(prefix)])
        loader_mb[scale], out = peak_rss_mb([python(), "-c", LOADER, str(vocab), str(prefix),
                                             str(n_batches)])
        resident = json.loads(out.strip().splitlines()[-1])
        result.details["scales"][scale] = {
            "text_bytes": text.stat().st_size,
            "bin_bytes": Path(f"{prefix}.bin").stat().st_size,
            "binarize_peak_rss_mb": binarize_mb[scale], "loader_peak_rss_mb": loader_mb[scale],
            "loader_end_rss_anon_mb": resident["RssAnon"] / 1024,
            "loader_end_rss_file_mb": resident["RssFile"] / 1024}
        if scale != 1:
            text.unlink()  # keep the scratch folder small
    for name, peaks in (("xlm binarize", binarize_mb), ("training data loader", loader_mb)):
        growth = peaks[16] / peaks[1]
        for scale in scales[1:]:
            last = scale == 16
            result.rows.append(Row(
                f"{name}, {scale}x vs 1x corpus", "peak RSS MB", peaks[scale], peaks[1],
                f"{name} at 1x", "within 10%" if last else "",
                abs(growth - 1) <= 0.10 if last else None,
                note=f"1x = {unit.stat().st_size / 2**20:.1f} MB of BPE'd text"))
    return result
