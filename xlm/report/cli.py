"""The `xlm tables` and `xlm plots` commands: results/**/metrics.json -> tables and PNGs.

Both only read records and logs, so they never retrain anything and can be run by hand at
any time: `xlm tables results -o results/tables`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from xlm.io import atomic_open
from xlm.report.records import load_records
from xlm.report.render import RENDERERS
from xlm.report.tables import PAPER_RESULTS, build_tables, load_references

log = logging.getLogger(__name__)
DEFAULT_RESULTS = "results"


def add_tables_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*",
                        help="metrics.json files, or folders searched for them "
                             "(default: results, when it exists)")
    parser.add_argument("-o", "--out-dir", default="results/tables",
                        help="where table{1..5}_*.{md,csv,tex} go (default: results/tables)")
    parser.add_argument("--formats", nargs="+", choices=sorted(RENDERERS),
                        default=["md", "csv", "tex"], help="output formats (default: all)")
    parser.add_argument("--references", default=str(PAPER_RESULTS),
                        help="YAML file of the paper's numbers (default: the bundled one)")


def _inputs(given: list[str]) -> list[str]:
    """The paths given, or results/ when there is one (a fresh run has no records yet)."""
    if given:
        return given
    return [DEFAULT_RESULTS] if Path(DEFAULT_RESULTS).is_dir() else []


def run_tables(args: argparse.Namespace) -> None:
    records = load_records(_inputs(args.inputs))
    tables = build_tables(records, load_references(args.references))
    out_dir = Path(args.out_dir)
    for table in tables:
        for fmt in args.formats:
            with atomic_open(out_dir / f"{table.name}.{fmt}") as handle:
                handle.write(RENDERERS[fmt](table))
    log.info("%d tables from %d records written to %s", len(tables), len(records), out_dir)


def add_plots_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="plot", metavar="PLOT", required=True)
    curves = sub.add_parser("curves", help="loss, perplexity, lr, tokens/s against step")
    curves.add_argument("train_log", help="a run's train.jsonl")
    curves.add_argument("-o", "--output", required=True, help="PNG file to write")
    curves.add_argument("--title", help="figure title (default: the log's path)")
    xnli = sub.add_parser("xnli", help="XNLI test accuracy per language, as bars")
    xnli.add_argument("inputs", nargs="*",
                      help="metrics.json files or folders (default: results, when it exists)")
    xnli.add_argument("-o", "--output", required=True, help="PNG file to write")
    xnli.add_argument("--no-reference", action="store_true",
                      help="leave out the paper's MLM+TLM zero-shot bars")


def run_plots(args: argparse.Namespace) -> None:
    from xlm.report import plots  # matplotlib only when plotting

    if args.plot == "curves":
        plots.plot_training_curves(args.train_log, args.output, title=args.title)
    else:
        references = []
        if not args.no_reference:
            references = [
                (f"{entry['row']} ({entry['fields'].get('setting', 'zero-shot')})",
                 {k: float(v) for k, v in entry["values"].items() if k != "avg"})
                for entry in load_references()["references"]
                if entry.get("table") == 1 and entry["row"] == "XLM (MLM+TLM)"
                and entry["fields"].get("setting") == "zero-shot"
            ]
        plots.plot_xnli_accuracy(load_records(_inputs(args.inputs)), args.output, references)
    log.info("wrote %s", args.output)
