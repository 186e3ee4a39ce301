"""README excerpts of a run's outputs, kept in step with what the run writes.

A block of the README between

    <!-- excerpt: results/tables/table4_lm.md -->
    ...
    <!-- end excerpt -->

is a copy of that file as `make run` wrote it. After a run, `make readme-check` (this
module with `--check`) fails, naming each file whose copy differs from the file on disk, so
that a change of code or config that changes the demo's results cannot leave the README
showing old ones; `make readme-update` (`--update`) copies the files in. Lines that change
with every run whatever the results (git revision, date) are not compared, and headings
are shown at level 4 in the README (the tables' own `##` would open a README section).

    python -m xlm.report.excerpts README.md --check [--root .]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from xlm.errors import UserError
from xlm.io import atomic_open

BLOCK = re.compile(r"^<!-- excerpt: (?P<path>\S+) -->\n(?P<body>.*?)^<!-- end excerpt -->$",
                   re.M | re.S)
VOLATILE = ("- git revision:", "- date (newest record):")
HEADING = re.compile(r"^#+ ", re.M)


def comparable(text: str) -> list[str]:
    """The lines that must match: all but those that change with every run, headings
    whatever their level."""
    return [HEADING.sub("# ", line.rstrip()) for line in text.strip().splitlines()
            if not line.startswith(VOLATILE)]


def _source(root: Path, relative: str, readme: Path) -> str:
    path = root / relative
    if not path.is_file():
        raise UserError(f"{path}: not found (the README {readme} shows an excerpt of it); run "
                        "`make run` first, or fix the path in the excerpt's marker")
    return path.read_text(encoding="utf-8")


def stale_excerpts(readme: Path, root: Path) -> list[str]:
    """The files whose README copy differs from the run's file (empty: all up to date)."""
    text = readme.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    if not blocks:
        raise UserError(f"{readme}: no '<!-- excerpt: PATH -->' blocks; nothing to check")
    return [block["path"] for block in blocks
            if comparable(block["body"]) != comparable(_source(root, block["path"], readme))]


def update_excerpts(readme: Path, root: Path) -> list[str]:
    """Copy each excerpted file into its README block; return the paths that changed."""
    text = readme.read_text(encoding="utf-8")
    changed = stale_excerpts(readme, root)

    def copy(block: re.Match[str]) -> str:
        body = HEADING.sub("#### ", _source(root, block["path"], readme).strip())
        return f"<!-- excerpt: {block['path']} -->\n{body}\n<!-- end excerpt -->"

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
    args = parser.parse_args(argv)
    try:
        if args.update:
            changed = update_excerpts(args.readme, args.root)
            print(f"{args.readme}: updated {', '.join(changed) or 'nothing (up to date)'}")
            return 0
        stale = stale_excerpts(args.readme, args.root)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if stale:
        print(f"error: {args.readme}: the excerpts of {', '.join(stale)} differ from what the "
              "run wrote; run `make readme-update` (after `make run`) and commit the README",
              file=sys.stderr)
        return 1
    print(f"{args.readme}: excerpts match the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
