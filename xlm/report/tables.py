"""Build the counterparts of the paper's Tables 1-5 from metric records.

Pure functions: records (and the paper's reference numbers) in, `Table` values out; no
file system, no clock. The same records always give the same tables, so the rendered
files are byte-identical (see `xlm.report.render`). A cell without a record is `None`
and shows as missing, never as zero.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xlm.errors import UserError
from xlm.report.records import Record, direction, newest

PAPER_RESULTS = Path(__file__).with_name("paper_results.yaml")

# The paper's column orders; languages or directions we have beyond these are appended.
XNLI_LANGUAGES = ("en", "fr", "es", "de", "el", "bg", "ru", "tr", "ar", "vi", "th", "zh", "hi",
                  "sw", "ur")
UNSUP_DIRECTIONS = ("en-fr", "fr-en", "en-de", "de-en", "en-ro", "ro-en")
PRETRAININGS = ("random", "clm", "mlm")
EMBEDDING_METRICS = ("cosine", "l2", "semeval17", "p@1", "p@5", "p@10")
BLEU_METRICS = ("bleu", "bleu_tok")
DECIMALS = {"cosine": 2, "l2": 2, "semeval17": 2, "n_pairs": 0}  # everything else: 1
PER_WORD = " per word"  # Table 4: the column of a language's perplexity per word
DIFFERENT_SPELLING = "different spelling"  # Table 5: pairs whose two words differ

Cell = float | str | None


@dataclass(frozen=True)
class Row:
    """One table row: what it is (descriptors), its cells, and where it comes from."""

    source: str  # "paper" for reference rows, else the run name
    descriptors: tuple[str, ...]
    cells: tuple[Cell, ...]
    provenance: tuple[str, ...] = ("", "", "", "")  # run_name, config_hash, git, date
    reference: bool = False  # a number from the paper, not from a run


@dataclass(frozen=True)
class Provenance:
    """Where a table's numbers come from: every distinct value among its records."""

    run_names: tuple[str, ...] = ()
    config_hashes: tuple[str, ...] = ()
    git_revisions: tuple[str, ...] = ()
    date: str = ""
    sacrebleu_signatures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """A rendered-format-independent table."""

    name: str  # file stem, e.g. "table1_xnli"
    title: str
    descriptor_names: tuple[str, ...]
    columns: tuple[str, ...]
    decimals: tuple[int, ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()
    provenance: Provenance = field(default_factory=Provenance)
    reference_source: str = ""


PROVENANCE_NAMES = ("run_name", "config_hash", "git_revision", "date")


def _distinct(records: Iterable[Record], key: str) -> tuple[str, ...]:
    return tuple(sorted({str(r[key]) for r in records if r.get(key) not in (None, "")}))


def _row_provenance(records: Sequence[Record]) -> tuple[str, ...]:
    joined = [" ".join(_distinct(records, key)) for key in PROVENANCE_NAMES[:3]]
    return (*joined, _date(records))


def _date(records: Iterable[Record]) -> str:
    stamps = _distinct(records, "timestamp")
    return stamps[-1] if stamps else ""


def table_provenance(records: Sequence[Record]) -> Provenance:
    """Provenance of the records that filled a table's cells."""
    return Provenance(
        run_names=_distinct(records, "run_name"),
        config_hashes=_distinct(records, "config_hash"),
        git_revisions=_distinct(records, "git_revision"),
        date=_date(records),
        sacrebleu_signatures=_distinct(
            [r for r in records if r["metric"] == "bleu"], "sacrebleu_signature"),
    )


def load_references(path: str | Path = PAPER_RESULTS) -> dict[str, Any]:
    """The paper's numbers: ``{"source": str, "references": [entry, ...]}``."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"{path}: cannot read the paper's reference numbers ({error}); "
                        "restore xlm/report/paper_results.yaml from git") from None
    if not isinstance(data, dict) or not isinstance(data.get("references"), list):
        raise UserError(f"{path}: expected a mapping with a 'references' list; "
                        "see the comments at the top of xlm/report/paper_results.yaml")
    return data


def _references(refs: dict[str, Any], table: int) -> list[dict[str, Any]]:
    return [entry for entry in refs["references"] if entry.get("table") == table]


def _columns(fixed: Sequence[str], present: Iterable[str]) -> tuple[str, ...]:
    extra = sorted(set(present) - set(fixed))
    return (*fixed, *extra)


def _decimals(metric: str) -> int:
    return DECIMALS.get(metric, 1)


def per_seed(records: Iterable[Record]) -> list[Record]:
    """The newest record of each `seed` (records without one count as one seed)."""
    by_seed: dict[str, list[Record]] = {}
    for record in records:
        by_seed.setdefault(str(record.get("seed")), []).append(record)
    return [newest(found) for _, found in sorted(by_seed.items())]


@dataclass
class _Grid:
    """Records grouped into cells: row key -> column -> records. A cell shows the mean over
    seeds of each seed's newest record (runs with `seeds`; one seed: its value)."""

    cells: dict[tuple[str, ...], dict[str, list[Record]]] = field(default_factory=dict)

    def add(self, row: tuple[str, ...], column: str, record: Record) -> None:
        self.cells.setdefault(row, {}).setdefault(column, []).append(record)

    def value(self, row: tuple[str, ...], column: str) -> float | None:
        found = self.cells.get(row, {}).get(column)
        if not found:
            return None
        values = [record["value"] for record in per_seed(found)]
        return values[0] if len(values) == 1 else round(statistics.fmean(values), 10)

    def used(self, row: tuple[str, ...]) -> list[Record]:
        return [record for found in self.cells.get(row, {}).values()
                for record in per_seed(found)]

    def all_used(self) -> list[Record]:
        return [record for row in sorted(self.cells) for record in self.used(row)]


def _grid(records: Iterable[Record], keep: Callable[[Record], bool],
          row_key: Callable[[Record], tuple[str, ...]],
          column: Callable[[Record], str]) -> _Grid:
    grid = _Grid()
    for record in records:
        if keep(record):
            grid.add(row_key(record), column(record), record)
    return grid


def _our_rows(grid: _Grid, columns: Sequence[str], source_of: Callable[[Record], str],
              extra_cells: Callable[[tuple[Cell, ...]], tuple[Cell, ...]] = lambda c: ()
              ) -> list[Row]:
    rows = []
    for key in sorted(grid.cells):
        used = grid.used(key)
        cells = tuple(grid.value(key, column) for column in columns)
        sources = sorted({source_of(record) for record in used})
        rows.append(Row(source=" ".join(sources), descriptors=key,
                        cells=cells + extra_cells(cells), provenance=_row_provenance(used)))
    return rows


def _run_name(record: Record) -> str:
    return str(record.get("run_name") or "ours")


def _setting(record: Record, default: str) -> str:
    return str(record.get("setting") or default)


def xnli_table(records: Sequence[Record], refs: dict[str, Any]) -> Table:
    """Table 1: XNLI test accuracy per language and its average, per model and setting."""
    grid = _grid(
        records,
        keep=lambda r: r["task"] == "xnli" and r["metric"] == "acc" and r["split"] == "test",
        row_key=lambda r: (r["model"], _setting(r, "zero-shot")),
        column=lambda r: r["lang"],
    )
    languages = _columns(XNLI_LANGUAGES, (col for row in grid.cells.values() for col in row))
    total = len(languages)

    def average(cells: tuple[Cell, ...]) -> tuple[Cell, ...]:
        present = [cell for cell in cells if isinstance(cell, float)]
        mean = round(statistics.fmean(present), 10) if present else None
        return mean, f"{len(present)}/{total}"

    rows = [
        Row(source="paper", reference=True,
            descriptors=(entry["row"], entry["fields"].get("setting", "zero-shot")),
            cells=(*(_ref_value(entry, lang) for lang in languages),
                   _ref_value(entry, "avg"),
                   f"{sum(lang in entry['values'] for lang in languages)}/{total}"))
        for entry in _references(refs, 1)
    ]
    rows += _our_rows(grid, languages, _run_name, average)
    return Table(
        name="table1_xnli",
        title="Table 1: XNLI test accuracy (%)",
        descriptor_names=("model", "setting"),
        columns=(*languages, "avg*", "langs"),
        decimals=(*(1 for _ in languages), 1, 0),
        rows=tuple(rows),
        notes=(f"avg*: mean over the languages that have a result in that row (their number "
               f"is in 'langs'), not over all {total}; the paper's avg is its own, over 15.",),
        provenance=table_provenance(grid.all_used()),
        reference_source=refs.get("source", ""),
    )


def _ref_value(entry: dict[str, Any], column: str) -> float | None:
    value = entry.get("values", {}).get(column)
    return None if value is None else float(value)


def _bleu_kind(record: Record) -> bool:
    return record["metric"] in BLEU_METRICS and record["split"] == "test"


def unsupervised_mt_table(records: Sequence[Record], refs: dict[str, Any]) -> Table:
    """Table 2: unsupervised MT BLEU per direction, per encoder/decoder initialisation."""
    grid = _grid(
        records,
        keep=lambda r: r["task"] == "mt_unsup" and _bleu_kind(r),
        row_key=lambda r: (r["model"], str(r.get("encoder_init") or "random"),
                           str(r.get("decoder_init") or "random"), r["metric"]),
        column=direction,
    )
    directions = _columns(UNSUP_DIRECTIONS, (col for row in grid.cells.values() for col in row))
    rows = [
        Row(source="paper", reference=True,
            descriptors=(entry["row"], entry["fields"]["encoder_init"],
                         entry["fields"]["decoder_init"], entry["metric"]),
            cells=tuple(_ref_value(entry, d) for d in directions))
        for entry in _references(refs, 2)
    ]
    rows += _our_rows(grid, directions, _run_name)
    return Table(
        name="table2_mt_unsup",
        title="Table 2: unsupervised MT, test BLEU",
        descriptor_names=("model", "encoder", "decoder", "metric"),
        columns=directions,
        decimals=tuple(1 for _ in directions),
        rows=tuple(rows),
        notes=(_BLEU_NOTE, "encoder/decoder: initialisation (random, emb, clm, mlm)."),
        provenance=table_provenance(grid.all_used()),
        reference_source=refs.get("source", ""),
    )


_BLEU_NOTE = ("metric: bleu = detokenized sacreBLEU (signature in the provenance); "
              "bleu_tok = BLEU of tokenized text (multi-bleu.perl, as in the paper). "
              "The two are not comparable.")


def supervised_mt_table(records: Sequence[Record], refs: dict[str, Any]) -> Table:
    """Table 3: supervised MT BLEU per training setting, against the pretraining used."""
    grid = _grid(
        records,
        keep=lambda r: r["task"] == "mt_sup" and _bleu_kind(r),
        row_key=lambda r: (_setting(r, "unidirectional"), direction(r), r["metric"]),
        column=lambda r: str(r.get("encoder_init") or "random"),
    )
    pretrainings = _columns(PRETRAININGS, (col for row in grid.cells.values() for col in row))
    rows = [
        Row(source="paper", reference=True,
            descriptors=(entry["fields"]["setting"], entry["fields"]["direction"],
                         entry["metric"]),
            cells=tuple(_ref_value(entry, p) for p in pretrainings))
        for entry in _references(refs, 3)
    ]
    rows += _our_rows(grid, pretrainings, _run_name)
    labels = {"random": "no pretraining", "clm": "CLM", "mlm": "MLM"}
    return Table(
        name="table3_mt_sup",
        title="Table 3: supervised MT, test BLEU, without and with pretraining",
        descriptor_names=("training", "direction", "metric"),
        columns=tuple(labels.get(p, p) for p in pretrainings),
        decimals=tuple(1 for _ in pretrainings),
        rows=tuple(rows),
        notes=(_BLEU_NOTE, "training: unidirectional (ro→en), bidirectional (ro↔en), "
               "bidirectional+bt (ro↔en with back-translation)."),
        provenance=table_provenance(grid.all_used()),
        reference_source=refs.get("source", ""),
    )


def _languages(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "+".join(str(v) for v in value)
    return str(value or "")


def low_resource_lm_table(records: Sequence[Record], refs: dict[str, Any]) -> Table:
    """Table 4: test perplexity per evaluated language, per combination of training
    languages: per BPE unit (`ppl`, the paper's unit), then per word (`ppl_word`) where
    recorded."""
    grid = _grid(
        records,
        keep=lambda r: (r["task"] == "lm" and r["metric"] in ("ppl", "ppl_word")
                        and r["split"] == "test"),
        row_key=lambda r: (r["model"], _languages(r.get("languages")) or r["lang"]),
        column=lambda r: r["lang"] + (PER_WORD if r["metric"] == "ppl_word" else ""),
    )
    present = {col for row in grid.cells.values() for col in row}
    per_word = sorted(col for col in present if col.endswith(PER_WORD))
    languages = (*_columns(("ne",), present - set(per_word)), *per_word)
    rows = [
        Row(source="paper", reference=True,
            descriptors=(entry["row"], _languages(entry["fields"]["languages"])),
            cells=tuple(_ref_value(entry, lang) for lang in languages))
        for entry in _references(refs, 4)
    ]
    rows += _our_rows(grid, languages, _run_name)
    return Table(
        name="table4_lm",
        title="Table 4: low-resource language modelling, test perplexity",
        descriptor_names=("model", "training languages"),
        columns=languages,
        decimals=tuple(1 for _ in languages),
        rows=tuple(rows),
        notes=("Columns: the language whose perplexity is measured (lower is better), per "
               "BPE unit: the paper's unit (XLM's evaluate_clm divides the NLL by the BPE "
               "tokens predicted). 'per word': the same NLL over the words of the original "
               "text, comparable across vocabularies (the paper gives none).",),
        provenance=table_provenance(grid.all_used()),
        reference_source=refs.get("source", ""),
    )


def embeddings_table(records: Sequence[Record], refs: dict[str, Any]) -> Table:
    """Table 5: cross-lingual word embedding quality per method (any split)."""
    grid = _grid(
        records,
        keep=lambda r: r["task"] == "embeddings",
        row_key=lambda r: (str(r.get("method") or r["model"]), r["lang"] + (
            f" ({DIFFERENT_SPELLING})" if r.get("subset") == DIFFERENT_SPELLING else "")),
        column=lambda r: r["metric"],
    )
    present = {col for row in grid.cells.values() for col in row}
    metrics = (*EMBEDDING_METRICS, *sorted(present - set(EMBEDDING_METRICS)))
    rows = [
        Row(source="paper", reference=True, descriptors=(entry["row"], ""),
            cells=tuple(_ref_value(entry, m) for m in metrics))
        for entry in _references(refs, 5)
    ]
    rows += _our_rows(grid, metrics, _run_name)
    return Table(
        name="table5_embeddings",
        title="Table 5: cross-lingual word embeddings",
        descriptor_names=("method", "pair"),
        columns=metrics,
        decimals=tuple(_decimals(m) for m in metrics),
        rows=tuple(rows),
        notes=("cosine: mean cosine similarity of dictionary translation pairs (higher is "
               "better); l2: their mean L2 distance (lower is better); semeval17: SemEval'17 "
               "cross-lingual word similarity, Pearson; p@k: word translation precision (%).",
               f"Pairs: all dictionary pairs, and '({DIFFERENT_SPELLING})' only those whose "
               "two words are spelled differently: identical spellings (names, numbers) share "
               "their subwords, so a shared vocabulary scores them trivially. n_pairs: the "
               "pairs each row uses.",),
        provenance=table_provenance(grid.all_used()),
        reference_source=refs.get("source", ""),
    )


def retrieval_table(records: Sequence[Record], refs: dict[str, Any]) -> Table:
    """Cross-lingual sentence retrieval P@1 per direction, per model, weights and pooling
    (not a table of the paper: its claim 3.4 that TLM aligns languages, measured directly)."""
    grid = _grid(
        records,
        keep=lambda r: r["task"] == "retrieval" and r["metric"].startswith("p@"),
        row_key=lambda r: (r["model"], str(r.get("weights") or "pretrained"),
                           str(r.get("pooling") or "mean"), r["metric"]),
        column=direction,
    )
    # Each configured pair's two directions side by side: en-fr, fr-en, en-de, de-en, ...
    pairs = sorted({r["lang"] for r in grid.all_used() if r["lang"].count("-") == 1})
    paired = [d for pair in pairs for d in (pair, "-".join(reversed(pair.split("-"))))]
    present = {col for row in grid.cells.values() for col in row}
    directions = _columns([d for d in dict.fromkeys(paired) if d in present], present)

    def average(cells: tuple[Cell, ...]) -> tuple[Cell, ...]:
        present = [cell for cell in cells if isinstance(cell, float)]
        return (round(statistics.fmean(present), 10) if present else None,)

    sizes = sorted({int(r["sentences"]) for r in grid.all_used()
                    if isinstance(r.get("sentences"), int | float)})
    return Table(
        name="table_retrieval",
        title="Cross-lingual sentence retrieval, precision@1 (%)",
        descriptor_names=("model", "weights", "pooling", "metric"),
        columns=(*directions, "avg"),
        decimals=tuple(1 for _ in range(len(directions) + 1)),
        rows=tuple(_our_rows(grid, directions, _run_name, average)),
        notes=("Each sentence of a line-aligned test set retrieves its translation among all "
               "sentences of the other side (column: query-candidate languages); p@1 by cosine "
               "nearest neighbour, p@1_csls by CSLS. pooling: mean of the last layer over the "
               "real tokens (padding excluded), or the first position (</s>). avg: over the "
               "directions present in the row.",
               "weights: pretrained, or untrained = the same architecture with random weights "
               "and no training, the baseline that pretraining must beat: it retrieves only "
               "through shared subwords, numbers and names. Chance is 100/n % for n "
               f"sentences (n here: {', '.join(map(str, sizes)) or '–'}).",),
        provenance=table_provenance(grid.all_used()),
    )


TABLE_BUILDERS: tuple[Callable[[Sequence[Record], dict[str, Any]], Table], ...] = (
    xnli_table, unsupervised_mt_table, supervised_mt_table, low_resource_lm_table,
    embeddings_table, retrieval_table,
)
TABLE_NAMES = ("table1_xnli", "table2_mt_unsup", "table3_mt_sup", "table4_lm",
               "table5_embeddings", "table_retrieval")


SEEDS_NOTE = ("Cells of runs with several seeds (`seeds:` in the config) are the mean over "
              "the seeds ({seeds} here); the study's findings table gives their spread.")
TABLE_TASKS = {"table1_xnli": "xnli", "table2_mt_unsup": "mt_unsup", "table3_mt_sup": "mt_sup",
               "table4_lm": "lm", "table5_embeddings": "embeddings",
               "table_retrieval": "retrieval"}


def averaged_seeds(records: Sequence[Record], task: str) -> list[str]:
    """The seeds averaged in some cell of a task's table (none when every cell has one)."""
    cells: dict[tuple[str, ...], set[str]] = {}
    for record in records:
        if record["task"] == task and record.get("seed") is not None:
            key = (record["model"], record["lang"], direction(record), record["metric"],
                   record["split"], str(record.get("setting")), str(record.get("subset")))
            cells.setdefault(key, set()).add(str(record["seed"]))
    several = [seeds for seeds in cells.values() if len(seeds) > 1]
    return sorted(set().union(*several), key=lambda s: (len(s), s)) if several else []


def build_tables(records: Sequence[Record], refs: dict[str, Any] | None = None) -> list[Table]:
    """All tables: the paper's five in its order, then sentence retrieval; a note on the
    tables whose cells average several seeds."""
    refs = load_references() if refs is None else refs
    tables = []
    for build in TABLE_BUILDERS:
        table = build(records, refs)
        seeds = averaged_seeds(records, TABLE_TASKS.get(table.name, ""))
        if seeds:
            note = SEEDS_NOTE.format(seeds=", ".join(seeds))
            table = dataclasses.replace(table, notes=(*table.notes, note))
        tables.append(table)
    return tables
