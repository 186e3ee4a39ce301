"""Memory: peak RSS of every text stage, of `xlm binarize` and of the training data loader
at 1x, 4x and 16x a corpus.

Text stages (issue 16): `xlm extract`, `xlm split`, `xlm tokenize` and `xlm bpe-apply`,
chained as the workflow chains them. The 1x dump holds the pages of a real one
(`enwiki-large-sample`, 6.1 MB of XML) twice (see `DUMP`), the Nx dump N times that,
written as bz2 streams one after the other as Wikimedia's multistream dumps are
(`scaled_dump`); so the Nx text, split, tokens and BPE are each stage's real output at
that scale. Binarize and the loader: real BPE'd text (the text_to_ids benchmark's
sentences, with its codes), repeated up to a unit of at least 4 MB (1x) and then 4 and
16 times that.

Each measurement is a child process; its peak RSS is its ru_maxrss (see `MEASURE`): for
a command that starts processes of its own (extract: the dump feeder, WikiExtractor's
workers) the largest of them. The loader reads a fixed number of MLM batches (stream
rows, masking) from the memory-mapped dataset, as the trainer does; its resident file
pages (memory-mapped tokens it touched) are reported apart from its anonymous memory.
Repeated text has a fixed vocabulary, so a cache keyed by words would not grow here;
none of these stages keeps one (fastBPE's applier was checked apart: flat over 500,000
distinct words).
"""

from __future__ import annotations

import bz2
import json
import os
import subprocess
from pathlib import Path

from benchmarks import text_to_ids
from benchmarks.common import SHARED_DATA, Options, Result, Row, python

SCALES = (1, 4, 16)
UNIT_BYTES = 4 << 20
# (language, real dump, copies of its pages in the 1x dump) of the text stages; quick: a
# small one. Twice enwiki-large-sample's pages give ~10,700 paragraphs: the 1x text fills
# at least one chunk of `xlm bpe-apply` (10,000 lines, its largest bounded buffer), so
# that growth past 1x is growth with the corpus, not a first chunk filling up.
DUMP = ("en", SHARED_DATA / "wiki" / "enwiki-large-sample.xml.bz2", 2)
QUICK_DUMP = ("fr", SHARED_DATA / "wiki" / "frwiki-sample.xml.bz2", 1)
TARGET = 0.10  # flat: the peak at 16x within 10% of the peak at 1x

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


def corpus(options: Options) -> tuple[Path, Path, Path]:
    """(codes, vocab, 1x corpus): BPE'd real sentences repeated to at least UNIT_BYTES."""
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
    return codes, vocab, unit


def scaled(unit: Path, scale: int) -> Path:
    path = unit.with_name(f"corpus.x{scale}.txt")
    if not path.is_file():
        text = unit.read_text(encoding="utf-8")
        with open(path, "w", encoding="utf-8") as out:
            for _ in range(scale):
                out.write(text)
    return path


def dump_streams(dump: Path) -> tuple[bytes, bytes, bytes]:
    """A real dump as three bz2 streams: the head (up to the line of its first page),
    its pages (whole lines: WikiExtractor reads the XML line by line) and the tail."""
    xml = bz2.decompress(dump.read_bytes())
    start = xml.rfind(b"\n", 0, xml.index(b"<page>")) + 1
    end = xml.index(b"\n", xml.rindex(b"</page>")) + 1
    return tuple(bz2.compress(part, 9) for part in (xml[:start], xml[start:end], xml[end:]))


def scaled_dump(streams: tuple[bytes, bytes, bytes], scale: int, path: Path) -> Path:
    """A dump with the pages `scale` times: a multistream bz2 file, as Wikimedia's."""
    head, pages, tail = streams
    with open(path, "wb") as out:
        out.write(head)
        for _ in range(scale):
            out.write(pages)
        out.write(tail)
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


def text_stages(options: Options, codes: Path, scales: tuple[int, ...]
                ) -> tuple[dict[str, dict[int, float]], dict]:
    """Peak RSS (MB) of extract, split, tokenize and BPE apply at each scale, each stage
    reading the previous one's output at that scale; and the sizes of those inputs."""
    lang, dump, copies = QUICK_DUMP if options.quick else DUMP
    work = options.scratch("memory")
    streams = dump_streams(dump)
    head, pages, tail = (len(bz2.decompress(stream)) for stream in streams)
    peaks: dict[str, dict[int, float]] = {"xlm extract": {}, "xlm split": {},
                                          "xlm tokenize": {}, "xlm bpe-apply": {}}
    details = {"dump": dump.name, "lang": lang, "pages_copies_at_1x": copies, "scales": {}}
    xlm = [python(), "-m", "xlm"]
    for scale in scales:
        wiki = scaled_dump(streams, scale * copies, work / f"wiki.x{scale}.xml.bz2")
        text, tok, applied = (work / f"{name}.x{scale}.txt" for name in ("text", "tok", "bpe"))
        splits = [work / f"split.x{scale}.{name}" for name in ("train", "valid", "test")]
        peaks["xlm extract"][scale], _ = peak_rss_mb(
            [*xlm, "extract", "--dump", str(wiki), "--output", str(text)])
        peaks["xlm split"][scale], _ = peak_rss_mb(
            [*xlm, "split", "--input", str(text), "--train", str(splits[0]), "--valid",
             str(splits[1]), "--test", str(splits[2])])
        peaks["xlm tokenize"][scale], _ = peak_rss_mb(
            [*xlm, "tokenize", "--lang", lang, "--input", str(text), "--output", str(tok)])
        peaks["xlm bpe-apply"][scale], _ = peak_rss_mb(
            [*xlm, "bpe-apply", "--codes", str(codes), "--input", str(tok), "--output",
             str(applied)])
        with open(text, "rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        details["scales"][scale] = {
            "dump_bz2_bytes": wiki.stat().st_size,
            "xml_bytes": head + scale * copies * pages + tail,
            "text_bytes": text.stat().st_size, "text_lines": lines,
            "tokenized_bytes": tok.stat().st_size, "bpe_bytes": applied.stat().st_size,
            **{f"{stage.removeprefix('xlm ')}_peak_rss_mb": peak[scale]
               for stage, peak in peaks.items()}}
        for path in (wiki, text, tok, applied, *splits):
            path.unlink()  # keep the scratch folder small
    return peaks, details


def _rows(name: str, peaks: dict[int, float], scales: tuple[int, ...], note: str) -> list[Row]:
    """One row a scale above 1x; the last (16x) holds the verdict."""
    growth = peaks[scales[-1]] / peaks[1]
    rows = []
    for scale in scales[1:]:
        last = scale == scales[-1]
        rows.append(Row(f"{name}, {scale}x vs 1x corpus", "peak RSS MB", peaks[scale], peaks[1],
                        f"{name} at 1x", f"within {TARGET:.0%}" if last else "",
                        abs(growth - 1) <= TARGET if last else None, note=note))
    return rows


def run(options: Options) -> Result:
    codes, vocab, unit = corpus(options)
    result = Result("memory")
    n_batches = 5 if options.quick else 200
    scales = (1, 16) if options.quick else SCALES
    text_peaks, result.details["text_stages"] = text_stages(options, codes, scales)
    result.details.update({"unit_bytes": unit.stat().st_size, "loader_batches": n_batches,
                           "loader_batch": "64 rows x 256 tokens, MLM masking", "scales": {}})
    binarize_mb, loader_mb = {}, {}
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
    one = result.details["text_stages"]["scales"][1]
    text_notes = {
        "xlm extract": f"1x = {one['xml_bytes'] / 2**20:.1f} MB of XML, "
                       f"{one['dump_bz2_bytes'] / 2**20:.1f} MB of bz2",
        "xlm split": f"1x = {one['text_bytes'] / 2**20:.1f} MB, {one['text_lines']:,} lines",
        "xlm tokenize": f"1x = {one['text_bytes'] / 2**20:.1f} MB of text",
        "xlm bpe-apply": f"1x = {one['tokenized_bytes'] / 2**20:.1f} MB of tokens"}
    for name, peaks in text_peaks.items():
        result.rows += _rows(name, peaks, scales, text_notes[name])
    note = f"1x = {unit.stat().st_size / 2**20:.1f} MB of BPE'd text"
    for name, peaks in (("xlm binarize", binarize_mb), ("training data loader", loader_mb)):
        result.rows += _rows(name, peaks, scales, note)
    return result
