# Pretraining: one CLM/MLM/TLM model per entry of `models:` (defaults from `pretrain:`).
#
#   results/{model}/pretrain/model.pt       weights + config + dictionary + language ids
#   results/{model}/pretrain/metrics.json   valid/test perplexity and accuracy records
#   results/{model}/pretrain/train.jsonl, tensorboard/, checkpoints/ (undeclared: a rerun
#   resumes from checkpoints/latest.pt when the settings are unchanged)
#
# metrics.json records the hash of the model's settings (not of the whole config, which
# would make the command, hence the job, change with every unrelated config edit).
# GPUs, memory and runtime come from the profile (profiles/slurm). Several GPUs: run the
# command under `torchrun --nproc-per-node N` or `srun` (see README).

import json
import re

MODELS = config["models"]


def pretrain_settings(model):
    """The model's resolved config slice: `pretrain` defaults with its own keys on top."""
    return {**config["pretrain"], **MODELS[model]}


def check_models():
    """Every model names configured languages and configured parallel pairs."""
    for model in MODELS:
        settings = pretrain_settings(model)
        for objective in ("clm", "mlm"):
            for lang in settings.get(objective, []):
                if lang not in LANGUAGES:
                    sys.exit(f"error: config.yaml: key 'models.{model}.{objective}' names "
                             f"'{lang}', which is not in 'languages'; add it there or remove it")
        for pair in settings.get("tlm", []):
            if pair not in config["parallel"]["pairs"]:
                sys.exit(f"error: config.yaml: key 'models.{model}.tlm' names '{pair}', which "
                         "is not under 'parallel.pairs'; configure its files there")
            if not {"train", "valid", "test"} <= set(config["parallel"]["pairs"][pair]):
                sys.exit(f"error: config.yaml: TLM pair '{pair}' of model '{model}' needs "
                         "train, valid and test files under 'parallel.pairs'")


check_models()


def pretrain_inputs(wildcards):
    """The binarized splits the model reads, and the vocabulary."""
    settings = pretrain_settings(wildcards.model)
    prefixes = [lang for lang in dict.fromkeys(settings.get("clm", []) + settings.get("mlm", []))]
    prefixes += [f"{pair}.{lang}" for pair in settings.get("tlm", []) for lang in pair.split("-")]
    files = [
        f"data/bin/{prefix}.{split}.{ext}"
        for prefix in prefixes
        for split in SPLITS
        for ext in ("bin", "idx")
    ]
    return {"vocab": BPE_VOCAB, "data": files}


wildcard_constraints:
    model=r"[A-Za-z0-9_]+",


rule pretrain_model:
    """Train one model; resumes from its latest checkpoint; keeps the best valid model."""
    wildcard_constraints:
        model="|".join(re.escape(name) for name in MODELS),
    input:
        unpack(pretrain_inputs),
    output:
        model="results/{model}/pretrain/model.pt",
        metrics="results/{model}/pretrain/metrics.json",
    params:
        settings=lambda wildcards: json.dumps(pretrain_settings(wildcards.model), sort_keys=True),
        out="results/{model}/pretrain",
    threads: 2
    resources:
        # Ranks of the run; the SLURM profile may raise it (with `nodes`) for multi-node
        # training. Several GPUs in one job start one rank each without it.
        tasks=1,
    conda:
        TRAIN_ENV
    log:
        "logs/pretrain/{model}.log",
    shell:
        "xlm pretrain --name {wildcards.model} --settings {params.settings:q}"
        " --data data/bin --vocab {input.vocab:q} --out {params.out:q}"
        " --threads {threads} --ranks {resources.tasks} > {log:q} 2>&1"


rule pretrain:
    """Target: every model under `models:`."""
    input:
        expand("results/{model}/pretrain/{file}", model=list(MODELS),
               file=["model.pt", "metrics.json"]),
