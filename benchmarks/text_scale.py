"""The text stages per core on the largest real dumps here (issue 16), with the peers of
the reference pipeline side by side, and a projection to the XNLI-15 Wikipedias.

`python -m benchmarks.text_scale [--langs hy vi el]` writes
`benchmarks/results/text_scale.json`; `--reproject` only recomputes its projection from
the recorded rates (after a change of the dump sizes, `DUMP_BYTES`).
The dumps of `../shared/data/wiki-extra` are the first ~100k lines of real 2023-05-01
dumps, closed after their last whole page (15-19 MB of XML each; `whole_pages` also
copes with one that is cut inside a page). Per dump:
- extract: `xlm extract` (WikiExtractor with one worker, then cleaning) against the plain
  WikiExtractor command line (`--json`, one worker) on the same bz2 dump: MB of XML per
  CPU second (bz2 decompression included);
- tokenize: our tokenizer for the language (sacremoses normalisation + tokenizer) against
  the reference XLM pipeline's Moses Perl scripts as packaged by `mosestokenizer` 1.2.1
  (`normalize-punctuation.perl -l L | tokenizer.perl -q -no-escape -l L`, one pipe over
  the file, as XLM's tokenize.sh), lines per CPU second;
- BPE apply (our fastBPE wrapper, codes learned on the text) and binarize: tokens per
  CPU second.
Rates are per CPU second of the processes doing the work (`getrusage`, children
included), so a busy machine slows them less than wall time would; they are still
measured on a shared, loaded machine.
"""

from __future__ import annotations

import argparse
import bz2
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, SHARED_DATA, Options, Result, Row, machine_info, write_result

log = logging.getLogger("text_scale")
WIKI_EXTRA = SHARED_DATA / "wiki-extra"


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(function: Callable[[], Any]) -> tuple[float, float, Any]:
    """(CPU seconds, wall seconds, result) of one call."""
    cpu, wall = cpu_seconds(), time.perf_counter()
    result = function()
    return cpu_seconds() - cpu, time.perf_counter() - wall, result


def whole_pages(dump: Path, out: Path) -> int:
    """The readable part of a cut-short bz2 dump, up to its last whole page, closed: a
    plain XML dump. Returns its size in bytes."""
    decompressor, data = bz2.BZ2Decompressor(), bytearray()
    with open(dump, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            try:
                data += decompressor.decompress(block)
            except (EOFError, OSError):
                break
    end = data.rfind(b"</page>")
    xml = bytes(data[:end + len(b"</page>")]) + b"\n</mediawiki>\n"
    out.write_bytes(xml)
    return len(xml)


def extract_rates(xml: Path, work: Path) -> dict[str, float]:
    """Both extractors read the dump bz2-compressed, as real dumps come (the XML written
    again with bz2 level 9, as Wikimedia's): decompression is part of the cost."""
    from xlm.text.extract import extract

    dump = xml.with_suffix(".xml.bz2")
    dump.write_bytes(bz2.compress(xml.read_bytes(), 9))
    ours = work / "ours.txt"
    cpu, wall, _ = measure(lambda: extract(dump, ours, processes=1))
    plain = work / "plain"
    command = [sys.executable, "-m", "wikiextractor.WikiExtractor", str(dump), "-o",
               str(plain), "--json", "--processes", "1", "-q", "-b", "1G"]
    cpu_plain, wall_plain, _ = measure(lambda: subprocess.run(command, check=True))
    mb = xml.stat().st_size / 1e6
    return {"ours_mb_per_cpu_s": mb / cpu, "ours_wall_s": wall,
            "wikiextractor_mb_per_cpu_s": mb / cpu_plain, "wikiextractor_wall_s": wall_plain}


def tokenize_rates(lang: str, text: Path, work: Path) -> tuple[dict[str, float], Path]:
    from xlm.text.tokenizers import TokenizerOptions, get_tokenizer

    lines = text.read_text(encoding="utf-8").splitlines()
    tokenize = get_tokenizer(lang, TokenizerOptions())
    tokenized = work / "tok.txt"
    cpu, _, out = measure(lambda: [tokenize(line) for line in lines])
    tokenized.write_text("\n".join(out) + "\n", encoding="utf-8")
    import mosestokenizer

    scripts = Path(mosestokenizer.__file__).parent
    moses = work / "moses.txt"
    pipe = (f"perl {scripts / 'normalize-punctuation.perl'} -l {lang} < {text} | "
            f"perl {scripts / 'tokenizer-v1.1.perl'} -q -no-escape -l {lang} > {moses}")
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    cpu_moses, _, _ = measure(lambda: subprocess.run(pipe, shell=True, check=True, env=env))
    moses_lines = len(moses.read_text(encoding="utf-8").splitlines())
    assert moses_lines == len(lines), (moses_lines, len(lines))
    words = sum(len(line.split()) for line in lines)
    return {"lines": len(lines), "words": words, "ours_lines_per_cpu_s": len(lines) / cpu,
            "moses_perl_lines_per_cpu_s": len(lines) / cpu_moses,
            "ours_words_per_cpu_s": words / cpu,
            "moses_perl_words_per_cpu_s": words / cpu_moses}, tokenized


def bpe_and_binarize_rates(tokenized: Path, work: Path) -> dict[str, float]:
    import fastBPE

    from xlm.data.dictionary import Dictionary
    from xlm.data.indexed import binarize_lines
    from xlm.text import bpe

    fast = Path(sys.executable).parent / "fast"
    codes, tok_vocab, vocab = work / "codes", work / "tok.vocab", work / "vocab"
    for args, out in ((["learnbpe", "8000", str(tokenized)], codes),
                      (["getvocab", str(tokenized)], tok_vocab)):
        with open(out, "w", encoding="utf-8") as handle:
            subprocess.run([str(fast), *args], stdout=handle, check=True)
    lines = tokenized.read_text(encoding="utf-8").splitlines()
    applier = fastBPE.fastBPE(str(codes), str(tok_vocab))
    chunks = [lines[i:i + 10_000] for i in range(0, len(lines), 10_000)]  # as apply_codes
    cpu, _, pieces = measure(lambda: [piece for chunk in chunks
                                      for piece in bpe.apply_to_lines(applier, chunk)])
    words = sum(len(line.split()) for line in lines)
    applied = work / "bpe.txt"
    applied.write_text("\n".join(pieces) + "\n", encoding="utf-8")
    with open(vocab, "w", encoding="utf-8") as handle:
        subprocess.run([str(fast), "getvocab", str(applied)], stdout=handle, check=True)
    dictionary = Dictionary.read_vocab(vocab)
    n_tokens = sum(len(line.split()) for line in pieces)
    cpu_bin, _, _ = measure(lambda: binarize_lines(pieces, dictionary, work / "bin"))
    return {"words": words, "bpe_tokens": n_tokens, "bpe_words_per_cpu_s": words / cpu,
            "binarize_tokens_per_cpu_s": n_tokens / cpu_bin}


def run(langs: list[str], options: Options) -> Result:
    result = Result("text_scale")
    for lang in langs:
        dump = WIKI_EXTRA / f"{lang}wiki-truncated.xml.bz2"
        work = Path(tempfile.mkdtemp(prefix=f"text_scale_{lang}_", dir=options.scratch("text")))
        xml = work / f"{lang}wiki.xml"
        size = whole_pages(dump, xml)
        log.info("%s: %.1f MB of XML from %s", lang, size / 1e6, dump.name)
        figures: dict[str, Any] = {"dump": dump.name, "xml_mb": size / 1e6,
                                   "bz2_ratio": size / dump.stat().st_size}
        figures["extract"] = extract_rates(xml, work)
        figures["tokenize"], tokenized = tokenize_rates(lang, work / "ours.txt", work)
        figures["bpe_binarize"] = bpe_and_binarize_rates(tokenized, work)
        result.details[lang] = figures
        e, t, b = figures["extract"], figures["tokenize"], figures["bpe_binarize"]
        result.rows += [
            Row(f"extract {lang}wiki ({size / 1e6:.0f} MB XML), per core", "MB XML/CPU s",
                e["ours_mb_per_cpu_s"], e["wikiextractor_mb_per_cpu_s"], "WikiExtractor CLI"),
            Row(f"tokenize {lang} ({t['lines']:,} paragraphs, {t['words']:,} words), per core",
                "lines/CPU s", t["ours_lines_per_cpu_s"], t["moses_perl_lines_per_cpu_s"],
                "Moses Perl (mosestokenizer 1.2.1)"),
            Row(f"BPE apply {lang}, per core", "words/CPU s", b["bpe_words_per_cpu_s"]),
            Row(f"binarize {lang}, per core", "tokens/CPU s", b["binarize_tokens_per_cpu_s"]),
        ]
        log.info("%s: %s", lang, json.dumps(figures, indent=1))
    return result


# The XNLI-15 Wikipedias' `{lang}wiki-20230601-pages-articles-multistream` dumps, in bytes:
# the `downloadSize` that TFDS recorded for its `wikipedia/20230601.{lang}` configs
# (tensorflow/datasets, tensorflow_datasets/testing/metadata/wikipedia/20230601.{lang}/
# 1.0.0/dataset_info.json). Its builder downloads
# https://dumps.wikimedia.your.org/{lang}wiki/20230601/dumpstatus.json and every `.xml`
# file of that dump's `articlesmultistreamdump` job (the multistream dump, in parts for
# the large wikis; indexes excluded), so each is the multistream dump plus that JSON file
# (a few kB). A multistream dump (100 pages a bz2 stream) is a little larger than the
# single-stream `pages-articles.xml.bz2` of the same date.
DUMP_DATE = "2023-06-01"
DUMP_SOURCE = ("tensorflow/datasets: tensorflow_datasets/testing/metadata/wikipedia/"
               "20230601.{lang}/1.0.0/dataset_info.json, downloadSize")
DUMP_BYTES = {"en": 22_043_010_674, "de": 6_977_822_458, "fr": 6_052_276_823,
              "ru": 5_224_425_751, "es": 4_352_379_204, "zh": 2_810_105_574,
              "ar": 1_633_358_749, "vi": 986_777_359, "tr": 866_994_122, "el": 517_212_544,
              "bg": 437_288_457, "th": 386_129_391, "ur": 229_692_781, "hi": 206_039_720,
              "sw": 46_879_638}
CLUSTER_CORES = 10 * 32


def measured(details: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-language figures of a text_scale result's details (not its projection)."""
    return {lang: figures for lang, figures in details.items()
            if isinstance(figures, dict) and "extract" in figures}


def projection(details: dict[str, Any], dump_bytes: dict[str, int] | None = None) -> str:
    """Markdown: core-hours per stage for the XNLI-15 Wikipedias (`DUMP_BYTES`) and wall
    time on 10 nodes x 32 cores, from the median per-core rates measured here; then the
    same per language."""
    import statistics

    dump_bytes = DUMP_BYTES if dump_bytes is None else dump_bytes
    figures_by_lang = measured(details)

    def median(get: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(get(figures) for figures in figures_by_lang.values())

    ratio = median(lambda f: f["bz2_ratio"])
    words_per_mb = median(lambda f: f["tokenize"]["words"] / f["xml_mb"])
    tokens_per_word = median(lambda f: f["bpe_binarize"]["bpe_tokens"]
                             / f["bpe_binarize"]["words"])
    rates = {  # seconds per MB of XML, per stage
        "extract": 1 / median(lambda f: f["extract"]["ours_mb_per_cpu_s"]),
        "tokenize": words_per_mb / median(lambda f: f["tokenize"]["ours_words_per_cpu_s"]),
        "BPE apply": words_per_mb / median(lambda f: f["bpe_binarize"]["bpe_words_per_cpu_s"]),
        "binarize": words_per_mb * tokens_per_word / median(
            lambda f: f["bpe_binarize"]["binarize_tokens_per_cpu_s"]),
    }
    xml_mb = {lang: size / 1e6 * ratio for lang, size in dump_bytes.items()}
    total_xml = sum(xml_mb.values())
    lines = [f"Dumps: {sum(dump_bytes.values()) / 1e9:.1f} GB of bz2 ({DUMP_DATE}) x "
             f"{ratio:.1f} (measured bz2 ratio) = {total_xml / 1000:.0f} GB of XML, "
             f"{words_per_mb:,.0f} words per MB of XML and {tokens_per_word:.2f} BPE tokens "
             "per word (both measured here; tokens per word with 8,000 codes, more than with "
             "XLM's 95,000).", "",
             "| stage | core-hours | wall on 10 x 32 cores |", "| --- | ---: | ---: |"]
    for stage, per_mb in rates.items():
        seconds = total_xml * per_mb
        lines.append(f"| {stage} | {seconds / 3600:,.0f} | "
                     f"{seconds / CLUSTER_CORES / 60:,.0f} min |")
    total = total_xml * sum(rates.values())
    lines.append(f"| all four | {total / 3600:,.0f} | {total / CLUSTER_CORES / 60:,.0f} min |")
    lines += ["", "| language | dump GB (bz2) | XML GB | " + " | ".join(rates)
              + " | all four | share |", "| --- |" + " ---: |" * (len(rates) + 4)]
    for lang, mb in sorted(xml_mb.items(), key=lambda item: -item[1]):
        hours = [mb * per_mb / 3600 for per_mb in rates.values()]
        lines.append(f"| {lang} | {dump_bytes[lang] / 1e9:.2f} | {mb / 1000:.1f} | "
                     + " | ".join(f"{h:.1f}" for h in hours)
                     + f" | {sum(hours):.1f} | {mb / total_xml:.1%} |")
    lines.append("")
    lines.append("(core-hours per language and stage)")
    return "\n".join(lines)


def reproject(path: Path) -> str:
    """Recompute the projection of a recorded result (after a change of `DUMP_BYTES`)
    from its measured rates, without measuring again; write it back into the file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["details"]["projection"] = projection(data["details"])
    data["details"]["dump_sizes"] = {"date": DUMP_DATE, "source": DUMP_SOURCE,
                                     "bytes": DUMP_BYTES}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return data["details"]["projection"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", nargs="+", default=["hy", "vi", "el"],
                        help="languages of ../shared/data/wiki-extra/{lang}wiki-truncated")
    parser.add_argument("--reproject", action="store_true",
                        help="only recompute the projection of results/text_scale.json from "
                             "its recorded rates (no measurement)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    os.chdir(REPO)
    options = Options()
    if args.reproject:
        print(reproject(options.results / "text_scale.json"))
        return
    result = run(args.langs, options)
    result.details["projection"] = projection(dict(result.details))
    result.details["dump_sizes"] = {"date": DUMP_DATE, "source": DUMP_SOURCE,
                                    "bytes": DUMP_BYTES}
    path = write_result(result, options, machine_info())
    print(result.details["projection"])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
