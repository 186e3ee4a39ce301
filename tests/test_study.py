"""The study's smoke version (configs/study.yaml + configs/study-smoke.yaml) through real
Snakemake: every claim's task with 2 seeds, then the findings table, whose verdicts must be
those computed from the run's own records.

The data are the first lines of each file the study names, copied from ../shared/data into
a temporary data root (outside the project), so the run takes minutes."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from workflow import REPO, SNAKEMAKE

from xlm.report.findings import evaluate, parse_claims
from xlm.report.records import load_records

LINES = 300  # per file (Nepali news: one article a line, fewer)
LINES_PER_FILE = {"study/mono/news/ne.txt.gz": 40}


def data_paths(value, languages) -> set[str]:
    """Every `{data_root}/...` path of the config, relative to the data root ({lang}
    filled with the XNLI languages)."""
    if isinstance(value, dict):
        return set().union(*(data_paths(item, languages) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(data_paths(item, languages) for item in value))
    if isinstance(value, str) and value.startswith("{data_root}/"):
        relative = value.removeprefix("{data_root}/")
        return {relative.replace("{lang}", lang) for lang in languages}
    return set()


def copy_head(source: Path, target: Path, lines: int) -> None:
    """The first `lines` lines of a text file, compressed as the source was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as handle:
        head = [line for _, line in zip(range(lines), handle, strict=False)]
    with opener(target, "wt", encoding="utf-8") as handle:
        handle.writelines(head)


def small_data_root(shared_data: Path, root: Path) -> Path:
    config = yaml.safe_load((REPO / "configs" / "study.yaml").read_text(encoding="utf-8"))
    for relative in sorted(data_paths(config, config["xnli"]["languages"])):
        source = shared_data / relative
        if relative.startswith("models/"):  # a binary model, unused unless Japanese
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / relative)
        else:
            copy_head(source, root / relative, LINES_PER_FILE.get(relative, LINES))
    return root


def test_study_smoke_runs_every_claim_and_the_findings_table(tmp_path, shared_data):
    data = small_data_root(shared_data, tmp_path / "data")
    work = tmp_path / "work"
    work.mkdir()
    # as `make study` runs it: the laptop profile (one thread per training job)
    command = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
               "--profile", str(REPO / "profiles" / "laptop"), "--printshellcmds",
               "--configfile", str(REPO / "configs" / "study.yaml"),
               str(REPO / "configs" / "study-smoke.yaml"), "--config", f"data_root={data}",
               "--cores", "2", "tables", "findings"]
    env = {**os.environ, "PATH": f"{SNAKEMAKE.parent}:{os.environ['PATH']}"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=work,
                            env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    output = result.stdout + result.stderr
    trainings = re.findall(r"xlm (?:pretrain|lm|mt-train|xnli) .* --threads (\d+)", output)
    assert len(trainings) == 4 + 3 * 2 + 5 * 2 + 3 * 2  # models, LMs, MT, XNLI (x seeds)
    assert set(trainings) == {"1"}
    # the profile's `prioritize`: pretraining and every job it needs first, the rest after
    priorities = job_priorities(output)
    assert priorities["pretrain_model"] == {"highest"}
    assert priorities["binarize_parallel"] == {"highest"}  # TLM's data, small jobs
    assert priorities["lm_train_seeded"] == priorities["xnli_finetune_seeded"] == {"0"}

    # one run per seed, records carrying their seed
    for path in ("results/mlm/xnli/seed{}/metrics.json", "results/sup_de_en_mlm/mt/seed{}/"
                 "metrics.json", "results/lm_ne_hi/lm/seed{}/metrics.json"):
        for seed in (0, 1):
            records = json.loads((work / path.format(seed)).read_text())
            assert {record.get("seed") for record in records} == {seed}

    # the findings table: one row per claim, each verdict the one the records give
    tables = work / "results" / "tables"
    md = (tables / "findings.md").read_text(encoding="utf-8")
    smoke = yaml.safe_load((REPO / "configs" / "study.yaml").read_text(encoding="utf-8"))
    claims = parse_claims(smoke["findings"]["claims"])
    records = [r for r in load_records([work / "results"]) if r.get("run_name") == "study-smoke"]
    findings = evaluate(records, claims, smoke["findings"]["spread"])
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(claims) == 6
    for row, finding in zip(rows, findings, strict=True):
        assert row.startswith(f"| {finding.claim.claim} |")
        assert row.endswith(f"| {finding.verdict} |")
        assert all(figure.n == 2 for figure in finding.figures
                   if finding.claim.name not in ("tlm_aligns", "word_embeddings")), row
    csv = (tables / "findings.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv) == 1 + sum(len(finding.figures) for finding in findings)
    assert (tables / "findings.tex").is_file()
    # the paper's tables average the seeds: one Table 3 cell per initialisation
    table3 = (tables / "table3_mt_sup.csv").read_text(encoding="utf-8").splitlines()
    assert sum(",no," in line for line in table3) == 2  # bleu and bleu_tok rows of ours


def job_priorities(log: str) -> dict[str, set[str]]:
    """Each rule's job priorities as Snakemake printed them (`priority: highest`; none
    printed is 0)."""
    priorities: dict[str, set[str]] = {}
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n(.*?)(?:\n\n|\Z)", log, re.M | re.S):
        match = re.search(r"^    priority: (\S+)$", body, re.M)
        priorities.setdefault(rule, set()).add(match.group(1) if match else "0")
    return priorities


def merged(*names: str) -> dict:
    """Config files merged as Snakemake merges --configfile a b (nested keys updated)."""
    def update(base: dict, extra: dict) -> dict:
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                update(base[key], value)
            else:
                base[key] = value
        return base
    config: dict = {}
    for name in names:
        update(config, yaml.safe_load((REPO / "configs" / name).read_text(encoding="utf-8")))
    return config


def test_study_configs_are_valid_on_the_shared_data(shared_data):
    """Every file the study names exists under ../shared/data; the smoke overlay keeps the
    config valid; every path is under {data_root} and no language is outside `languages`."""
    from xlm.config import data_sources, validate_config
    from xlm.data_root import expand_data_root

    for names in (("study.yaml",), ("study.yaml", "study-smoke.yaml")):
        config = merged(*names)
        assert all(source.startswith("{data_root}/") for _, source in data_sources(config))
        config["data_root"] = str(shared_data)
        expand_data_root(config, "+".join(names))
        validate_config(config, source="+".join(names), base=REPO)
