"""The README against what the project really writes: excerpts of a run's tables are
checked by `make readme-check` (tested here on small files), its excerpt markers name real
tables, and the log folders it names are those of the rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from xlm.errors import UserError
from xlm.report.excerpts import BLOCK, main, stale_excerpts, update_excerpts
from xlm.report.tables import TABLE_NAMES

REPO = Path(__file__).resolve().parents[1]
TABLE = """#### Table 4: low-resource language modelling, test perplexity

| source | model | training languages | ne |
| --- | --- | --- | ---: |
| demo | lm_ne | ne | {value} |

Provenance:

- run: demo
- git revision: {revision}
- date (newest record): {date}
"""


def write_run(root: Path, value: str, revision: str = "abc", date: str = "2026-11-30") -> None:
    """A run's Table 4 as xlm/report/render.py writes it (a level-2 heading)."""
    path = root / "results" / "tables" / "table4_lm.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = TABLE.format(value=value, revision=revision, date=date)
    path.write_text(text.replace("#### Table", "## Table"), encoding="utf-8")


def test_excerpts_are_checked_and_updated(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("Intro.\n\n<!-- excerpt: results/tables/table4_lm.md -->\n"
                      + TABLE.format(value="355.0", revision="old", date="2026-01-01")
                      + "<!-- end excerpt -->\n\nOutro.\n", encoding="utf-8")
    write_run(tmp_path, "355.0", revision="new", date="2026-11-30")
    # Only the revision, the date and the heading's level (4 in the README) differ.
    assert stale_excerpts(readme, tmp_path) == []
    assert main([str(readme), "--root", str(tmp_path), "--check"]) == 0

    write_run(tmp_path, "361.2")
    assert stale_excerpts(readme, tmp_path) == ["results/tables/table4_lm.md"]
    assert main([str(readme), "--root", str(tmp_path), "--check"]) == 1
    assert "make readme-update" in capsys.readouterr().err
    assert update_excerpts(readme, tmp_path) == ["results/tables/table4_lm.md"]
    text = readme.read_text(encoding="utf-8")
    assert "| demo | lm_ne | ne | 361.2 |" in text and "355.0" not in text
    assert "\n#### Table 4:" in text and "\n## Table" not in text
    assert text.startswith("Intro.\n") and text.endswith("Outro.\n")
    assert stale_excerpts(readme, tmp_path) == []

    (tmp_path / "results" / "tables" / "table4_lm.md").unlink()
    with pytest.raises(UserError, match="table4_lm.md: not found .* run `make run` first"):
        stale_excerpts(readme, tmp_path)


def test_readme_excerpts_name_files_the_demo_writes():
    """Each excerpt is a table of the demo run or its mt.example translations."""
    blocks = list(BLOCK.finditer((REPO / "README.md").read_text(encoding="utf-8")))
    assert blocks
    example = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["mt"]["example"]
    example_path = f"results/{example['experiment']}/mt/example.{example['direction']}.md"
    for block in blocks:
        if block["path"] == example_path:
            assert block["body"].startswith("```text\n")
            continue
        match = re.fullmatch(r"results/tables/(\w+)\.md", block["path"])
        assert match and match.group(1) in TABLE_NAMES, block["path"]
        assert block["body"].startswith("#### Table")


def test_readme_names_the_log_folders_of_the_rules():
    rules = "\n".join(path.read_text(encoding="utf-8") for path in (REPO / "rules").glob("*.smk"))
    folders = set(re.findall(r'"logs/(\w+)/', rules))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`logs/(\w+)/", readme))
    assert named <= folders, named - folders  # no folder that does not exist
    stages = {"download_wiki", "extract_wiki", "split_text", "tokenize", "bpe", "binarize",
              "parallel", "xnli", "mt", "pretrain", "lm", "embeddings", "tables", "plots"}
    assert stages <= folders and stages <= named, stages - named
    assert "tail -f logs/pretrain/mlm.log" in readme and '"logs/pretrain/{model}.log"' in rules
