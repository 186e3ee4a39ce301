# Tables, plots and the report: pure functions of the run's metrics.json and train.jsonl.
#
#   snakemake tables    results/tables/table{1..5}_*.{md,csv,tex}
#   snakemake plots     results/plots/**/curves.png and results/plots/xnli_accuracy.png
#   snakemake --report report.html    the tables and plots with captions (report/*.rst)
#
# Inputs are every results/**/metrics.json that exists now, plus the metrics.json and
# train.jsonl files the `all` rule asks for (each stage lists its own there, so on a fresh
# `make run` the tables wait for the tasks). After a finished run everything upstream is
# up to date, so `snakemake tables` only re-renders (about a second). Snakemake still
# reruns a stage whose own inputs or params changed since; to redraw from the files as they
# are, whatever their state, run the command directly: `python -m xlm tables`.

import glob
import os

from xlm.report.tables import TABLE_NAMES

TABLE_FORMATS = ["md", "csv", "tex"]
PAPER_RESULTS = "xlm/report/paper_results.yaml"


def all_targets():
    """The plain file targets of the `all` rule (functions and flags left out)."""
    try:
        targets = rules.all.input
    except AttributeError:
        return []
    return [str(target) for target in targets if isinstance(target, str)]


def run_metrics(wildcards=None):
    """Every metrics.json of the run: those on disk and those the `all` rule asks for."""
    existing = glob.glob("results/**/metrics.json", recursive=True)
    declared = [path for path in all_targets() if path.endswith("metrics.json")]
    return sorted(set(existing) | set(declared))


def producible(path):
    """Whether a rule of this workflow can make `path` (so the plot can wait for it)."""
    return any(rule.is_producer(path) for rule in workflow.rules if rule.name != "plot_curves")


def run_train_logs():
    """Every train.jsonl of the run: on disk, asked for by `all`, or made beside a metrics.json."""
    logs = set(glob.glob("results/**/train.jsonl", recursive=True))
    logs.update(path for path in all_targets() if path.endswith("train.jsonl"))
    for metrics in run_metrics():
        sibling = os.path.join(os.path.dirname(metrics), "train.jsonl")
        if sibling not in logs and producible(sibling):
            logs.add(sibling)
    return sorted(log for log in logs if not log.startswith("results/plots/"))


def curve_plots(wildcards=None):
    """One curves.png per training run: results/{run}/train.jsonl -> results/plots/{run}/."""
    return [
        "results/plots/" + log[len("results/"):-len("train.jsonl")] + "curves.png"
        for log in run_train_logs()
    ]


localrules:
    tables,
    plots,
    plot_curves,
    plot_xnli,


rule tables:
    input:
        metrics=run_metrics,
        references=PAPER_RESULTS,
    output:
        md=expand("results/tables/{name}.md", name=TABLE_NAMES),
        tex=expand("results/tables/{name}.tex", name=TABLE_NAMES),
        csv=[
            report(
                f"results/tables/{name}.csv",
                caption="../report/tables.rst",
                category="Tables",
                labels={"table": name},
            )
            for name in TABLE_NAMES
        ],
    log:
        "logs/tables/tables.log",
    shell:
        "{XLM} tables {input.metrics} --references {input.references}"
        " --out-dir results/tables 2> {log}"


rule plot_curves:
    input:
        "results/{run}/train.jsonl",
    output:
        report(
            "results/plots/{run}/curves.png",
            caption="../report/curves.rst",
            category="Training curves",
            labels={"run": "{run}"},
        ),
    log:
        "logs/plots/{run}/curves.log",
    shell:
        "{XLM} plots curves {input} --output {output} --title {wildcards.run:q} 2> {log}"


rule plot_xnli:
    input:
        metrics=run_metrics,
    output:
        report(
            "results/plots/xnli_accuracy.png",
            caption="../report/xnli.rst",
            category="XNLI",
            labels={"figure": "accuracy per language"},
        ),
    log:
        "logs/plots/xnli_accuracy.log",
    shell:
        "{XLM} plots xnli {input.metrics} --output {output} 2> {log}"


rule plots:
    input:
        curve_plots,
        "results/plots/xnli_accuracy.png",
