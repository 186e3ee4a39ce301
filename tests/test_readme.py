"""The README against what the project really writes: excerpts of a run's tables are
checked by `make readme-check` (tested here on small files), its excerpt markers name real
tables, and the log folders it names are those of the rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from xlm.errors import UserError
from xlm.report.excerpts import BLOCK, block_run, main, stale_excerpts, update_excerpts
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


FINDINGS = """## Findings: the paper's claims in this run

| claim | verdict |
|---|---|
| 1. TLM aligns languages | {verdict} |

Provenance:

- run: study
- git revision: {revision}
"""


def test_study_blocks_are_checked_only_after_the_study(tmp_path, capsys):
    """A `(make study)` block is the study's file: `--run study` checks and updates it alone,
    and the demo's check leaves it out (a demo clone has no findings table)."""
    readme = tmp_path / "README.md"
    readme.write_text("<!-- excerpt: results/tables/table4_lm.md -->\n"
                      + TABLE.format(value="355.0", revision="a", date="2026-01-01")
                      + "<!-- end excerpt -->\n\n"
                      "<!-- excerpt: results/tables/findings.md (make study) -->\n"
                      + FINDINGS.format(verdict="inconclusive", revision="a").replace("##", "####")
                      + "<!-- end excerpt -->\n", encoding="utf-8")
    write_run(tmp_path, "355.0")
    assert stale_excerpts(readme, tmp_path) == []  # no findings.md on disk: not looked at
    with pytest.raises(UserError, match="findings.md: not found .* run `make study` first"):
        stale_excerpts(readme, tmp_path, "study")

    findings = tmp_path / "results" / "tables" / "findings.md"
    findings.write_text(FINDINGS.format(verdict="holds", revision="b"), encoding="utf-8")
    assert main([str(readme), "--root", str(tmp_path), "--check", "--run", "study"]) == 1
    assert "make readme-update RUN=study" in capsys.readouterr().err
    write_run(tmp_path, "361.2")  # the demo's file changed too: the study's update keeps it
    assert update_excerpts(readme, tmp_path, "study") == ["results/tables/findings.md"]
    text = readme.read_text(encoding="utf-8")
    assert "| 1. TLM aligns languages | holds |" in text and "355.0" in text
    assert "<!-- excerpt: results/tables/findings.md (make study) -->\n#### Findings" in text
    assert stale_excerpts(readme, tmp_path, "study") == []
    assert stale_excerpts(readme, tmp_path) == ["results/tables/table4_lm.md"]
    with pytest.raises(SystemExit):
        main([str(readme), "--check", "--run", "demo"])
    assert "invalid choice: 'demo'" in capsys.readouterr().err


def test_readme_excerpts_name_files_the_runs_write():
    """Each excerpt is a table of the demo run or its mt.example translations, or the
    study's findings table."""
    blocks = list(BLOCK.finditer((REPO / "README.md").read_text(encoding="utf-8")))
    assert {block_run(block) for block in blocks} == {"run", "study"}
    example = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["mt"]["example"]
    example_path = f"results/{example['experiment']}/mt/example.{example['direction']}.md"
    for block in blocks:
        if block_run(block) == "study":
            assert block["path"] == "results/tables/findings.md"
            assert block["body"].startswith("#### Findings")
            continue
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
