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


# ---------------------------------------------------------------- machine translation
#
#   results/{experiment}/mt/model.pt       encoder + decoder, dictionary, BPE codes, tokenizer
#   results/{experiment}/mt/train.jsonl    losses, tokens/s, valid BLEU
#   (BLEU on the test sets: rules/evaluate.smk)

MT = config.get("mt", {"experiments": {}})
MT_EXPERIMENTS = MT["experiments"]


def mt_settings(experiment):
    """The experiment's resolved slice: mt.defaults with the experiment's keys on top."""
    return {**MT.get("defaults", {}), **MT_EXPERIMENTS[experiment]}


def stored_pair(pairs, a, b, section):
    """The configured pair name ("en-ro") of languages a and b."""
    for pair in (f"{a}-{b}", f"{b}-{a}"):
        if pair in pairs:
            return pair
    sys.exit(f"error: config.yaml: MT needs data for {a}-{b}, which is not under "
             f"'{section}.pairs'; configure it there or change the experiment")


def mt_eval_directions(experiment):
    settings = mt_settings(experiment)
    return settings.get("eval_directions") or settings.get("directions") or [
        "-".join(reversed(d.split("-"))) for d in settings.get("bt", [])]


def mt_train_inputs(wildcards):
    """Pretrained sides, vocabulary, codes and every binarized file the training reads."""
    settings = mt_settings(wildcards.experiment)
    inputs = {"vocab": BPE_VOCAB, "codes": BPE_CODES}
    for side in ("encoder", "decoder"):
        init = settings.get(f"{side}_init", "random")
        if init != "random":
            inputs[side] = pretrained_model(init)
    prefixes = []
    for direction in settings.get("directions", []):
        pair = stored_pair(config["parallel"]["pairs"], *direction.split("-"), "parallel")
        prefixes += [f"{pair}.{lang}.train" for lang in direction.split("-")]
    for lang in settings.get("dae", []) + [d.split("-")[0] for d in settings.get("bt", [])]:
        prefixes.append(f"{lang}.train")
    for direction in mt_eval_directions(wildcards.experiment):
        pair = stored_pair(config["parallel"]["pairs"], *direction.split("-"), "parallel")
        prefixes += [f"{pair}.{lang}.valid" for lang in direction.split("-")]
    inputs["data"] = [f"data/bin/{p}.{ext}" for p in dict.fromkeys(prefixes)
                      for ext in ("bin", "idx")]
    return inputs


def mt_init_flags(wildcards, input):
    return " ".join(f"--{side} {input[side]}" for side in ("encoder", "decoder")
                    if side in input.keys())


def mt_tokenizers(experiment):
    """Tokenizer settings of each language, stored in model.pt for `xlm translate`."""
    langs = set()
    settings = mt_settings(experiment)
    for direction in settings.get("directions", []) + settings.get("bt", []):
        langs.update(direction.split("-"))
    langs.update(settings.get("dae", []))
    return {lang: tokenizer_settings(lang) for lang in sorted(langs)}


rule mt_train:
    """Train one MT experiment (supervised or DAE + back-translation); keeps the best valid
    BLEU model; resumes from its latest checkpoint."""
    input:
        unpack(mt_train_inputs),
    output:
        model="results/{experiment}/mt/model.pt",
    params:
        settings=lambda wildcards: json.dumps(mt_settings(wildcards.experiment), sort_keys=True),
        tokenizer=lambda wildcards: json.dumps(mt_tokenizers(wildcards.experiment),
                                               sort_keys=True),
        init=mt_init_flags,
        out="results/{experiment}/mt",
    threads: 2
    conda:
        TRAIN_ENV
    log:
        "logs/mt/train/{experiment}.log",
    shell:
        "xlm mt-train --settings {params.settings:q} {params.init} --data data/bin"
        " --vocab {input.vocab:q} --codes {input.codes:q} --tokenizer {params.tokenizer:q}"
        " --out {params.out:q} --threads {threads} > {log:q} 2>&1"
