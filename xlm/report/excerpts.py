"""README excerpts of a run's outputs, kept in step with what the run writes.

A block of the README between

    <!-- excerpt: results/tables/table4_lm.md -->
    ...
    <!-- end excerpt -->

is a copy of that file as `make run` wrote it; a marker that ends in `(make study)`,

    <!-- excerpt: results/tables/findings.md (make study) -->

names a file that `make study` writes. After a run, `make readme-check` (this module with
`--check`) fails, naming each file of that run whose copy differs from the file on disk, so
that a change of code or config that changes the results cannot leave the README showing
old ones; `make readme-update` (`--update`) copies the files in. `RUN=study` does the same
for the study's blocks after `make study` (`--run study`). Lines that change with every run
whatever the results (git revision, date) are not compared, and headings are shown at level
4 in the README (the tables' own `##` would open a README section).

    python -m xlm.report.excerpts README.md --check [--root .] [--run run|study]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from xlm.errors import UserError
from xlm.io import atomic_open

BLOCK = re.compile(r"^<!-- excerpt: (?P<path>\S+)(?: \(make (?P<run>\w+)\))? -->\n"
                   r"(?P<body>.*?)^<!-- end excerpt -->$", re.M | re.S)
RUNS = ("run", "study")  # the make targets whose outputs the README shows
VOLATILE = ("- git revision:", "- date (newest record):")
HEADING = re.compile(r"^#+ ", re.M)


def comparable(text: str) -> list[str]:
    """The lines that must match: all but those that change with every run, headings
    whatever their level."""
    return [HEADING.sub("# ", line.rstrip()) for line in text.strip().splitlines()
            if not line.startswith(VOLATILE)]


def block_run(block: re.Match[str]) -> str:
    """The make target that writes the block's file (`run` when the marker names none)."""
    return block["run"] or "run"


def _source(root: Path, relative: str, readme: Path, run: str) -> str:
    path = root / relative
    if not path.is_file():
        raise UserError(f"{path}: not found (the README {readme} shows an excerpt of it); run "
                        f"`make {run}` first, or fix the path in the excerpt's marker")
    return path.read_text(encoding="utf-8")


def _blocks(text: str, readme: Path, run: str) -> list[re.Match[str]]:
    """The blocks of one run's files; a README without any is an error (nothing checked)."""
    if run not in RUNS:
        raise UserError(f"--run {run}: unknown; use one of {', '.join(RUNS)}")
    blocks = [block for block in BLOCK.finditer(text) if block_run(block) == run]
    if not blocks:
        raise UserError(f"{readme}: no excerpt blocks of `make {run}`; nothing to check")
    return blocks


def stale_excerpts(readme: Path, root: Path, run: str = "run") -> list[str]:
    """The files of `make {run}` whose README copy differs from the run's file (empty: all
    up to date)."""
    text = readme.read_text(encoding="utf-8")
    return [block["path"] for block in _blocks(text, readme, run)
            if comparable(block["body"])
            != comparable(_source(root, block["path"], readme, run))]


def update_excerpts(readme: Path, root: Path, run: str = "run") -> list[str]:
    """Copy each file of `make {run}` into its README block (the other runs' blocks are
    left as they are); return the paths that changed."""
    text = readme.read_text(encoding="utf-8")
    changed = stale_excerpts(readme, root, run)

    def copy(block: re.Match[str]) -> str:
        if block_run(block) != run:
            return block.group(0)
        marker = block.group(0).split("\n", 1)[0]
        body = HEADING.sub("#### ", _source(root, block["path"], readme, run).strip())
        return f"{marker}\n{body}\n<!-- end excerpt -->"

    with atomic_open(readme) as handle:
        handle.write(BLOCK.sub(copy, text))
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xlm.report.excerpts",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("readme", type=Path, help="the README holding excerpt blocks")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the run's folder (the excerpt paths are relative to it)")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="fail when a copy is stale")
    action.add_argument("--update", action="store_true", help="rewrite the copies")
    parser.add_argument("--run", default="run", choices=RUNS,
                        help="whose blocks: `run` (make run, the default) or `study` (make study)")
    args = parser.parse_args(argv)
    try:
        if args.update:
            changed = update_excerpts(args.readme, args.root, args.run)
            print(f"{args.readme}: updated {', '.join(changed) or 'nothing (up to date)'}")
            return 0
        stale = stale_excerpts(args.readme, args.root, args.run)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if stale:
        make = "make readme-update" + ("" if args.run == "run" else f" RUN={args.run}")
        print(f"error: {args.readme}: the excerpts of {', '.join(stale)} differ from what the "
              f"run wrote; run `{make}` (after `make {args.run}`) and commit the README",
              file=sys.stderr)
        return 1
    print(f"{args.readme}: excerpts match the run (make {args.run})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
