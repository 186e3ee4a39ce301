# Tables, plots and the report: pure functions of the run's metrics.json and train.jsonl.
#
#   snakemake tables    results/tables/table{1..5}_*.{md,csv,tex}, table_retrieval.*
#   snakemake plots     results/plots/{run}/curves.png and results/plots/xnli_accuracy.png
#   snakemake --report report.html    the tables and plots with captions (report/*.rst)
#
# The tables read every results/**/metrics.json. Those the stages' target rules ask for
# (pretrain, xnli, mt, lm, embeddings, retrieval) are inputs, so on a fresh `make run` the
# tables wait for the tasks; files no rule can make are inputs too; files a rule could make
# but no stage asks for (stale ones) are read without being inputs, so never rebuilt (see
# xlm/report/run_files.py). After a finished run everything upstream is up to date, so
# `snakemake tables` only re-renders (a second or two), and not even that when no
# metrics.json changed. Snakemake still reruns a stage whose own inputs or params changed
# since; to redraw from the files as they are, whatever their state, run the command
# itself: `xlm tables results --out-dir results/tables`.

import os

from xlm.report.run_files import (
    curve_plots,
    fingerprint,
    metrics_inputs,
    stale_metrics,
    training_marker,
)
from xlm.report.tables import TABLE_NAMES


localrules:
    tables,
    plots,
    plot_curves,
    plot_xnli,


rule tables:
    """Tables 1-5 as Markdown, CSV and LaTeX, with the paper's numbers as reference rows."""
    input:
        metrics=lambda wildcards: metrics_inputs(workflow),
        references=os.path.join(workflow.basedir, "xlm", "report", "paper_results.yaml"),
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
    params:
        stale=lambda wildcards: stale_metrics(workflow),
        stale_content=lambda wildcards: fingerprint(stale_metrics(workflow)),
        out_dir=lambda wildcards, output: os.path.dirname(output.md[0]),
    conda:
        PREPROCESS_ENV
    log:
        "logs/tables/tables.log",
    shell:
        "xlm tables {input.metrics:q} {params.stale:q} --references {input.references:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule plot_curves:
    """Training loss, valid perplexity, lr and tokens/s against step; the kept step marked."""
    input:
        lambda wildcards: training_marker(wildcards.run),
    params:
        train_log="results/{run}/train.jsonl",
    output:
        report(
            "results/plots/{run}/curves.png",
            caption="../report/curves.rst",
            category="Training curves",
            labels={"run": "{run}"},
        ),
    conda:
        PREPROCESS_ENV
    log:
        "logs/plots/{run}/curves.log",
    shell:
        "xlm plots curves {params.train_log:q} --output {output:q} --title {wildcards.run:q}"
        " > {log:q} 2>&1"


rule plot_xnli:
    """XNLI test accuracy per language, ours beside the paper's (XNLI records only, so that
    MT, LM or embedding results do not redraw it)."""
    input:
        metrics=lambda wildcards: metrics_inputs(workflow, "xnli"),
    params:
        stale=lambda wildcards: stale_metrics(workflow, "xnli"),
        stale_content=lambda wildcards: fingerprint(stale_metrics(workflow, "xnli")),
    output:
        report(
            "results/plots/xnli_accuracy.png",
            caption="../report/xnli.rst",
            category="XNLI",
            labels={"figure": "accuracy per language"},
        ),
    conda:
        PREPROCESS_ENV
    log:
        "logs/plots/xnli_accuracy.log",
    shell:
        "xlm plots xnli {input.metrics:q} {params.stale:q} --output {output:q} > {log:q} 2>&1"


rule plots:
    """Every plot of the run."""
    input:
        lambda wildcards: curve_plots(workflow),
        rules.plot_xnli.output,


# The findings table (configs/study.yaml): each claim of the config's `findings` section,
# our figures (mean ± sd over seeds) and the verdict computed from them
# (xlm/report/findings.py). Only a config with a `findings` section has it.
if "findings" in config:

    localrules:
        findings,

    rule findings:
        """The paper's claims, our figures and a verdict each: results/tables/findings.*."""
        input:
            metrics=lambda wildcards: metrics_inputs(workflow),
        output:
            md="results/tables/findings.md",
            tex="results/tables/findings.tex",
            csv=report(
                "results/tables/findings.csv",
                caption="../report/findings.rst",
                category="Tables",
                labels={"table": "findings"},
            ),
        params:
            claims=json.dumps(config["findings"], sort_keys=True),
            run_name=config["run_name"],
            stale=lambda wildcards: stale_metrics(workflow),
            stale_content=lambda wildcards: fingerprint(stale_metrics(workflow)),
            out_dir=lambda wildcards, output: os.path.dirname(output.md),
        conda:
            PREPROCESS_ENV
        log:
            "logs/tables/findings.log",
        shell:
            "xlm findings {input.metrics:q} {params.stale:q} --claims {params.claims:q}"
            " --run-name {params.run_name:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
