"""Smoke test of the benchmark suite (issue 8): every benchmark at a tiny size, so the code
does not rot. The figures mean nothing here; `make bench` measures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` is not installed

from benchmarks.common import Options, summary_table  # noqa: E402
from benchmarks.run import BENCHMARKS, run_benchmarks  # noqa: E402


def test_every_benchmark_runs_quick(tmp_path: Path) -> None:
    options = Options(quick=True, repeats=1, work=tmp_path / "work", results=tmp_path / "results")
    written = run_benchmarks(list(BENCHMARKS), options)
    assert [path.stem for path in written] == list(BENCHMARKS)
    for path in written:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["rows"] and data["machine"]["versions"]["torch"]
        assert all(row["ours"] > 0 for row in data["rows"])
    table = summary_table(tmp_path / "results")
    assert "text_to_ids" in table and "| case |" in table
    text = json.loads((tmp_path / "results" / "text_to_ids.json").read_text(encoding="utf-8"))
    assert all(same == 1.0 for corpus in text["details"]["corpora"].values()
               for same in corpus["same_ids_as_ours"].values())
