# XLM pipeline: from Wikipedia dumps and parallel corpora to pretrained models and tables.
# This file only validates the config, includes the stages and names the targets.
# Run: `snakemake --cores N all` (local) or `snakemake --profile slurm all` (cluster).

from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default run. A preset or your own file given with --configfile
# replaces it (rather than being merged into the demo's settings).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"

report: "report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    lang=r"[a-z]{2,3}",
    # test-from-{lang}: an XNLI test set translated into English (xnli.translate_test).
    split=r"train|valid|test|test-from-[a-z]{2,3}",
    shard=r"\d+",
    model=r"[A-Za-z0-9_]+",


include: "rules/wiki.smk"
include: "rules/download.smk"
include: "rules/tokenize.smk"
include: "rules/bpe.smk"
include: "rules/binarize.smk"
include: "rules/parallel.smk"
include: "rules/task_data.smk"
include: "rules/pretrain.smk"
include: "rules/interop.smk"
include: "rules/finetune.smk"
include: "rules/evaluate.smk"
include: "rules/tables.smk"  # last: it reads the stages' target rules


# The tables and plots, and so every model and task they read and the data those need.
# Only these few files are listed, since Snakemake prints a job's whole input list (and
# the updated ones as its reason) each time it runs.
rule all:
    default_target: True
    input:
        rules.tables.output,
        rules.plots.input,
        mt_example_targets(),
