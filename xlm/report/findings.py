"""The findings table: does each claim of the paper hold in this run's records?

Each claim of the config's `findings.claims` names the records it reads (`select`, and
optionally `exclude`), the groups it compares (each a filter on record fields, e.g.
`{model: mlm_tlm}`) and the expected order (`"mlm_tlm > mlm > untrained"`; `<` when lower
is better; `>=`/`<=` when "at least as good" is the claim). Nothing here names a language
or a model: the config does.

The figures: a group's records are split into replicates by (model, seed); a replicate's
value is the mean of its records (e.g. over the languages or directions selected; per
cell the newest record); a group's figure is the mean and sample standard deviation of
its replicate values, over n replicates.

The verdict of one comparison `A > B` (the rule printed under the table): d = mean(A) -
mean(B) (for `<`, mean(B) - mean(A): positive is the expected direction); its standard
error se = sqrt(sd(A)^2/n(A) + sd(B)^2/n(B)); threshold t = max(spread x se, tolerance)
(spread 2 by default; tolerance, the claim's own, 0 by default). Strict `>`/`<`: *holds*
when d > t, *does not hold* when d < -t, else *inconclusive*. `>=`/`<=`: *holds* when
d >= -t, else *does not hold*. With n < 2 in a group there is no spread: se is unknown,
t = tolerance, and the row says so; without a tolerance either, nothing tells a difference
from noise, and the step is *inconclusive* whatever d is. A claim holds when every
comparison holds, does not hold when one does not, is *not measured* when a group has no
record, else inconclusive.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlm.errors import UserError
from xlm.io import atomic_open
from xlm.report.records import Record, direction, load_records, newest
from xlm.report.render import latex_escape

log = logging.getLogger(__name__)

HOLDS, FAILS, INCONCLUSIVE, UNMEASURED = ("holds", "does not hold", "inconclusive",
                                          "not measured")
RELATIONS = (">=", "<=", ">", "<")
DEFAULT_SPREAD = 2.0


@dataclass(frozen=True)
class Claim:
    """One row of the findings table, as the config gives it."""

    name: str
    claim: str
    paper: str
    measure: str
    select: dict[str, Any]
    groups: dict[str, dict[str, Any]]
    expected: str
    exclude: dict[str, Any] | None = None
    tolerance: float = 0.0


@dataclass(frozen=True)
class Figure:
    """A group's replicate values, their mean and sample standard deviation."""

    group: str
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.n >= 2 else None

    def text(self) -> str:
        if not self.values:
            return f"{self.group}: no record"
        spread = f" ± {self.std:.2f}" if self.std is not None else ""
        return f"{self.group} {self.mean:.2f}{spread} (n={self.n})"


@dataclass(frozen=True)
class Comparison:
    """One step `left relation right` of a claim's expected order, and its verdict."""

    left: str
    relation: str
    right: str
    difference: float | None  # positive: the expected direction
    threshold: float | None
    spread_known: bool
    verdict: str

    def text(self) -> str:
        head = f"{self.left} {self.relation} {self.right}"
        if self.difference is None:
            return f"{head}: {self.verdict}"
        against = (f"{self.threshold:.2f}" if self.spread_known
                   else f"{self.threshold:.2f}, n<2: no spread")
        return f"{head}: d={self.difference:+.2f} vs {against}: {self.verdict}"


@dataclass(frozen=True)
class Finding:
    claim: Claim
    figures: tuple[Figure, ...]
    comparisons: tuple[Comparison, ...]
    verdict: str


def parse_claims(raw: Any, key: str = "findings.claims") -> list[Claim]:
    """Claims from the config's list; a malformed one stops with its key and the fix."""
    if not isinstance(raw, list) or not raw:
        raise UserError(f"key '{key}': give a list of claims (see configs/study.yaml)")
    claims = []
    for index, entry in enumerate(raw):
        where = f"{key}[{index}]"
        if not isinstance(entry, dict):
            raise UserError(f"key '{where}': a claim is a mapping (see configs/study.yaml)")
        missing = [field for field in ("name", "claim", "paper", "measure", "select", "groups",
                                       "expected") if field not in entry]
        if missing:
            raise UserError(f"key '{where}': missing {', '.join(missing)}; add it")
        claim = Claim(name=str(entry["name"]), claim=str(entry["claim"]),
                      paper=str(entry["paper"]), measure=str(entry["measure"]),
                      select=dict(entry["select"]), groups=dict(entry["groups"]),
                      expected=str(entry["expected"]), exclude=entry.get("exclude"),
                      tolerance=float(entry.get("tolerance", 0.0)))
        parse_order(claim.expected, claim.groups, f"{where}.expected")
        claims.append(claim)
    return claims


def parse_order(expected: str, groups: dict[str, Any], key: str) -> list[tuple[str, str, str]]:
    """`"a > b >= c"` -> [(a, >, b), (b, >=, c)], every name a group of the claim."""
    tokens = re.split(r"\s*(>=|<=|>|<)\s*", expected.strip())
    names, relations = tokens[0::2], tokens[1::2]
    if len(names) < 2 or any(name not in groups for name in names):
        raise UserError(f"key '{key}': {expected!r} must order groups of the claim with "
                        f">, <, >= or <= (groups: {', '.join(groups)}), e.g. 'a > b'")
    return [(names[i], relations[i], names[i + 1]) for i in range(len(relations))]


def _field(record: Record, name: str) -> str | None:
    if name == "direction":
        return direction(record)
    value = record.get(name)
    if isinstance(value, list | tuple):
        return "+".join(str(v) for v in value)
    return None if value is None else str(value)


def _matches(record: Record, conditions: dict[str, Any] | None) -> bool:
    """Every field's value among those allowed (a value or a list; null: field absent)."""
    for name, allowed in (conditions or {}).items():
        options = allowed if isinstance(allowed, list) else [allowed]
        wanted = {None if option is None else str(option) for option in options}
        if _field(record, name) not in wanted:
            return False
    return True


def _excluded(record: Record, exclude: dict[str, Any] | None) -> bool:
    """A record any of whose `exclude` fields takes a listed value (e.g. lang: en)."""
    return any(_matches(record, {name: value}) for name, value in (exclude or {}).items())


def group_values(records: Sequence[Record], claim: Claim, group: str) -> tuple[float, ...]:
    """The group's replicate values: per (model, seed), the mean of its selected records,
    each cell (lang, direction, metric, split) by its newest record."""
    replicates: dict[tuple[str, str], dict[tuple[str | None, ...], list[Record]]] = {}
    for record in records:
        if (_matches(record, claim.select) and _matches(record, claim.groups[group])
                and not _excluded(record, claim.exclude)):
            replicate = (str(record["model"]), str(record.get("seed")))
            cell = (record["lang"], direction(record), record["metric"], record["split"])
            replicates.setdefault(replicate, {}).setdefault(cell, []).append(record)
    return tuple(statistics.fmean(newest(found)["value"] for found in cells.values())
                 for _, cells in sorted(replicates.items()))


def compare(left: Figure, relation: str, right: Figure, spread: float,
            tolerance: float) -> Comparison:
    """The verdict of `left relation right` (the rule in the module docstring)."""
    if left.mean is None or right.mean is None:
        return Comparison(left.group, relation, right.group, None, None, False, UNMEASURED)
    difference = left.mean - right.mean
    if relation.startswith("<"):
        difference = -difference
    known = left.std is not None and right.std is not None
    se = math.sqrt(left.std ** 2 / left.n + right.std ** 2 / right.n) if known else 0.0
    threshold = max(spread * se, tolerance)
    if not known and tolerance <= 0:
        verdict = INCONCLUSIVE  # one replicate and no tolerance: no basis for a verdict
    elif relation in (">=", "<="):
        verdict = HOLDS if difference >= -threshold else FAILS
    elif difference > threshold:
        verdict = HOLDS
    elif difference < -threshold:
        verdict = FAILS
    else:
        verdict = INCONCLUSIVE
    return Comparison(left.group, relation, right.group, difference, threshold, known, verdict)


def overall(comparisons: Sequence[Comparison]) -> str:
    verdicts = {comparison.verdict for comparison in comparisons}
    if UNMEASURED in verdicts:
        return UNMEASURED
    if FAILS in verdicts:
        return FAILS
    return HOLDS if verdicts == {HOLDS} else INCONCLUSIVE


def evaluate(records: Sequence[Record], claims: Sequence[Claim],
             spread: float = DEFAULT_SPREAD) -> list[Finding]:
    """Every claim's figures, comparisons and verdict, from the records alone."""
    findings = []
    for claim in claims:
        order = parse_order(claim.expected, claim.groups, f"findings.claims.{claim.name}")
        names = list(dict.fromkeys(name for step in order for name in (step[0], step[2])))
        figures = {name: Figure(name, group_values(records, claim, name)) for name in names}
        comparisons = tuple(compare(figures[a], relation, figures[b], spread, claim.tolerance)
                            for a, relation, b in order)
        findings.append(Finding(claim, tuple(figures[name] for name in names), comparisons,
                                overall(comparisons)))
    return findings


# ---------------------------------------------------------------- rendering

COLUMNS = ("claim", "paper found", "measure", "expected", "our figures (mean ± sd, n)",
           "comparisons", "verdict")


def rule_text(spread: float) -> str:
    return (f"Verdict rule: for each step A > B of the expected order, d = mean(A) - mean(B) "
            f"(for <, mean(B) - mean(A)), se = sqrt(sd(A)^2/n(A) + sd(B)^2/n(B)), threshold "
            f"t = max({spread:g} x se, the claim's tolerance). > and <: holds if d > t, does "
            f"not hold if d < -t, else inconclusive (within the seeds' spread); >= and <=: "
            f"holds if d >= -t, else does not hold. n is the number of replicates (model, "
            f"seed); a replicate's value is the mean over the languages or directions "
            f"selected. With n < 2 there is no spread (se unknown, t = tolerance; with no "
            f"tolerance either, the step is inconclusive whatever d is). A claim "
            f"holds if every step holds, does not hold if one does not, is not measured if "
            f"a group has no record, else inconclusive.")


def _row(finding: Finding) -> list[str]:
    claim = finding.claim
    return [claim.claim, claim.paper, claim.measure, claim.expected,
            "; ".join(figure.text() for figure in finding.figures),
            "; ".join(comparison.text() for comparison in finding.comparisons),
            finding.verdict]


def _provenance(records: Sequence[Record]) -> list[str]:
    def distinct(key: str) -> str:
        return ", ".join(sorted({str(r[key]) for r in records if r.get(key)})) or "–"
    stamps = sorted(str(r["timestamp"]) for r in records if r.get("timestamp"))
    return [f"run: {distinct('run_name')}", f"git revision: {distinct('git_revision')}",
            f"date (newest record): {stamps[-1] if stamps else '–'}"]


def to_markdown(findings: Sequence[Finding], spread: float, records: Sequence[Record]) -> str:
    lines = ["## Findings: the paper's claims in this run", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for finding in findings:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in _row(finding))
                     + " |")
    lines += ["", rule_text(spread), "", "Provenance:", ""]
    lines += [f"- {line}" for line in _provenance(records)]
    return "\n".join(lines) + "\n"


def to_csv(findings: Sequence[Finding]) -> str:
    """One row per claim and group: figures in columns, for analysis."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["claim", "expected", "verdict", "group", "mean", "sd", "n", "values"])
    for finding in findings:
        for figure in finding.figures:
            writer.writerow([
                finding.claim.name, finding.claim.expected, finding.verdict, figure.group,
                "" if figure.mean is None else f"{figure.mean:.4f}",
                "" if figure.std is None else f"{figure.std:.4f}", figure.n,
                " ".join(f"{value:.4f}" for value in figure.values)])
    return buffer.getvalue()


def to_latex(findings: Sequence[Finding], spread: float) -> str:
    lines = ["% Findings table. Generated by `xlm findings`; do not edit by hand.",
             r"\begin{table}[t]", r"\centering", r"\small",
             r"\begin{tabular}{p{3cm}p{2.5cm}p{5cm}p{4cm}l}", r"\toprule",
             r"claim & expected & our figures & comparisons & verdict \\", r"\midrule"]
    for finding in findings:
        row = _row(finding)
        cells = [row[0], row[3], row[4], row[5], row[6]]
        lines.append(" & ".join(latex_escape(cell) for cell in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              rf"\caption{{{latex_escape(rule_text(spread))}}}", r"\label{tab:findings}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", help="metrics.json files or folders of them")
    parser.add_argument("--claims", required=True,
                        help="the config's `findings` section as JSON, or a JSON/YAML file")
    parser.add_argument("-o", "--out-dir", default="results/tables",
                        help="where findings.{md,csv,tex} go (default: results/tables)")
    parser.add_argument("--run-name", default=None,
                        help="only records of this run_name (the workflow passes the "
                             "config's, so other runs' files under results/ stay out)")


def _load_section(text: str) -> dict[str, Any]:
    path = Path(text)
    if not text.lstrip().startswith("{") and path.is_file():
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return data.get("findings", data) if isinstance(data, dict) else {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"--claims: neither a file nor JSON ({error}); give the `findings` "
                        "section") from None


def run(args: argparse.Namespace) -> None:
    section = _load_section(args.claims)
    claims = parse_claims(section.get("claims"))
    spread = float(section.get("spread", DEFAULT_SPREAD))
    records = load_records(args.inputs)
    if args.run_name is not None:
        records = [record for record in records if record.get("run_name") == args.run_name]
    findings = evaluate(records, claims, spread)
    out = Path(args.out_dir)
    texts = {"md": to_markdown(findings, spread, records), "csv": to_csv(findings),
             "tex": to_latex(findings, spread)}
    for suffix, text in texts.items():
        with atomic_open(out / f"findings.{suffix}") as handle:
            handle.write(text)
    for finding in findings:
        log.info("%s: %s", finding.claim.name, finding.verdict)
