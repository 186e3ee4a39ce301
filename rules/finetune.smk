# Fine-tuning tasks on top of the pretrained models (paper section 4).
#
#   results/{model}/xnli/metrics.json      XNLI zero-shot accuracy per language (Table 1)
#   results/{model}/xnli/checkpoints/      (undeclared) resume point of the fine-tuning
#
# Each rule passes exactly its config slice through `params`, so changing, say,
# xnli_finetune.lr reruns XNLI fine-tuning and nothing else. GPUs, memory and runtime come
# from the profile (profiles/slurm).

import json

XNLI_FINETUNE = config.get("xnli_finetune", {"models": []})


def pretrained_model(model):
    """The model.pt a task starts from: pretrained (models:) or imported (imported_models:)."""
    known = list(config["models"]) + list(config.get("imported_models", {}))
    if model not in known:
        sys.exit(f"error: config.yaml: task model '{model}' is neither under 'models' nor "
                 f"'imported_models' (known: {', '.join(known)}); fix the task's `models` list")
    return f"results/{model}/pretrain/model.pt"


def xnli_settings():
    """The fine-tuning settings (the xnli_finetune slice without the model list)."""
    return {key: value for key, value in XNLI_FINETUNE.items() if key != "models"}


rule xnli_finetune:
    """Fine-tune on English, select on English valid, evaluate zero-shot on every language."""
    input:
        model=lambda wildcards: pretrained_model(wildcards.model),
        vocab=BPE_VOCAB,
        data=xnli_datasets(),
    output:
        metrics="results/{model}/xnli/metrics.json",
    params:
        settings=json.dumps(xnli_settings(), sort_keys=True),
        languages=" ".join(XNLI["languages"]),
        out="results/{model}/xnli",
    threads: 2
    conda:
        TRAIN_ENV
    log:
        "logs/xnli/finetune/{model}.log",
    shell:
        "xlm xnli --model {input.model:q} --name {wildcards.model} --data data/xnli"
        " --vocab {input.vocab:q} --languages {params.languages} --settings {params.settings:q}"
        " --out {params.out:q} --threads {threads} --config-hash " + CONFIG_HASH +
        " --run-name " + config["run_name"] + " > {log:q} 2>&1"


rule xnli:
    """Target: XNLI records of every model listed under xnli_finetune.models."""
    input:
        expand("results/{model}/xnli/metrics.json", model=XNLI_FINETUNE["models"]),
