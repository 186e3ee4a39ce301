"""The suite's command line: run some or all benchmarks, write results, regenerate the README."""

from __future__ import annotations

import argparse
import importlib
import logging
import time
from pathlib import Path

from benchmarks.common import RESULTS_DIR, Options, machine_info, update_readme, write_result

BENCHMARKS = ("text_to_ids", "train_step", "memory", "workflow", "decode")


def run_benchmarks(names: list[str], options: Options) -> list[Path]:
    """Run the named benchmarks in order; return the result files written."""
    written = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        start = time.perf_counter()
        result = module.run(options)
        result.details["wall_seconds"] = round(time.perf_counter() - start, 1)
        written.append(write_result(result, options, machine_info()))
        logging.info("%s done in %.0f s", name, result.details["wall_seconds"])
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], default=[],
                        metavar="NAME", help=f"benchmarks to run (default: all of {BENCHMARKS})")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (the smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="keep the best of N (default 3)")
    parser.add_argument("--workflow-target", default="data",
                        help="snakemake target timed by `workflow` (default: data; `all` for "
                             "the whole demo)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR,
                        help="where <name>.json go (the README table is regenerated only for "
                             "the default)")
    parser.add_argument("--device", default="auto", help="train_step: auto, cpu or cuda")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    options = Options(quick=args.quick, repeats=args.repeats, results=args.results,
                      workflow_target=args.workflow_target, device=args.device)
    run_benchmarks(list(args.names) or list(BENCHMARKS), options)
    if args.results == RESULTS_DIR:
        update_readme()
