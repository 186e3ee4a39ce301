# Tasks that train on top of the pretrained models (paper section 4):
#
#   results/{model}/xnli/metrics.json        XNLI zero-shot (translate-train, -test) accuracy
#                                            per language (Table 1)
#   results/{experiment}/mt/model.pt         an MT model (scored in rules/evaluate.smk)
#   results/{combination}/lm/metrics.json    low-resource LM perplexity (Table 4)
#
# With `seeds: [...]` in xnli_finetune, mt or lm, each seed's run is in a seed{seed}/ folder
# inside the task's (results/{model}/xnli/seed1/metrics.json, ...); tables average them.
# Each folder also holds an undeclared checkpoints/ (a rerun resumes from it) and, for MT
# and LM, train.jsonl. Each rule passes exactly its config slice through `params`, so
# changing, say, xnli_finetune.lr reruns XNLI fine-tuning and nothing else. GPUs, memory
# and runtime come from the profile (profiles/slurm).


include: "tasks_common.smk"


rule xnli_finetune:
    """Fine-tune on English, select on English valid, evaluate zero-shot on every language;
    then, for each xnli.translate_train language, fine-tune on its translated training set,
    select on its valid set and evaluate on it (setting translate-train); and evaluate the
    English model on each xnli.translate_test language's test set in English (setting
    translate-test)."""
    input:
        model=lambda wildcards: pretrained_model(wildcards.model),
        vocab=BPE_VOCAB,
        data=xnli_datasets(),
    output:
        metrics="results/{model}/xnli/metrics.json",
    params:
        settings=lambda wildcards: json.dumps(xnli_settings(run_seed(wildcards)), sort_keys=True),
        languages=" ".join(XNLI["languages"]),
        translate_train=" ".join(XNLI_TRANSLATE_TRAIN),
        translate_test=" ".join(XNLI_TRANSLATE_TEST),
        out=output_folder,
    threads: 2
    conda:
        TRAIN_ENV
    log:
        "logs/xnli/finetune/{model}.log",
    shell:
        "xlm xnli --model {input.model:q} --name {wildcards.model} --data data/xnli"
        " --vocab {input.vocab:q} --languages {params.languages}"
        " --translate-train {params.translate_train} --translate-test {params.translate_test}"
        " --settings {params.settings:q}"
        " --out {params.out:q} --threads {threads} > {log:q} 2>&1"


use rule xnli_finetune as xnli_finetune_seeded with:
    output:
        metrics="results/{model}/xnli/seed{seed}/metrics.json",
    log:
        "logs/xnli/finetune/{model}.seed{seed}.log",


rule xnli:
    """Target: XNLI records of every model listed under xnli_finetune.models (one run per
    seed of xnli_finetune.seeds)."""
    input:
        task_runs("results/{model}/xnli", "metrics.json", XNLI_FINETUNE,
                  model=XNLI_FINETUNE["models"]),


rule mt_train:
    """Train one MT experiment (supervised, or DAE + online back-translation); keeps the
    best valid BLEU model; resumes from its latest checkpoint."""
    input:
        unpack(mt_train_inputs),
    output:
        model="results/{experiment}/mt/model.pt",
    params:
        settings=lambda wildcards: json.dumps(mt_settings(wildcards.experiment,
                                                          run_seed(wildcards)), sort_keys=True),
        tokenizer=lambda wildcards: json.dumps(mt_tokenizers(wildcards.experiment),
                                               sort_keys=True),
        init=mt_init_flags,
        out=output_folder,
    threads: 2
    resources:
        # Ranks of the run, as pretraining's (the SLURM profile may raise it); several GPUs
        # in one job start one rank each without it.
        tasks=1,
    conda:
        TRAIN_ENV
    log:
        "logs/mt/train/{experiment}.log",
    shell:
        "xlm mt-train --settings {params.settings:q} {params.init} --data data/bin"
        " --vocab {input.vocab:q} --codes {input.codes:q} --tokenizer {params.tokenizer:q}"
        " --out {params.out:q} --threads {threads} --ranks {resources.tasks} > {log:q} 2>&1"


use rule mt_train as mt_train_seeded with:
    output:
        model="results/{experiment}/mt/seed{seed}/model.pt",
    log:
        "logs/mt/train/{experiment}.seed{seed}.log",


rule lm_train:
    """A CLM on a combination of languages; perplexity on the target language's test set."""
    input:
        unpack(lm_inputs),
    output:
        metrics="results/{combination}/lm/metrics.json",
    params:
        settings=lambda wildcards: json.dumps(lm_settings(wildcards.combination,
                                                          run_seed(wildcards)), sort_keys=True),
        target=LM.get("target"),
        out=output_folder,
    threads: 2
    conda:
        TRAIN_ENV
    log:
        "logs/lm/{combination}.log",
    shell:
        "xlm lm --name {wildcards.combination} --target {params.target}"
        " --settings {params.settings:q} --data data/bin --vocab {input.vocab:q}"
        " --out {params.out:q} --threads {threads} > {log:q} 2>&1"


use rule lm_train as lm_train_seeded with:
    output:
        metrics="results/{combination}/lm/seed{seed}/metrics.json",
    log:
        "logs/lm/{combination}.seed{seed}.log",


rule lm:
    """Target: low-resource LM records of every combination under lm.combinations (one run
    per seed of lm.seeds)."""
    input:
        task_runs("results/{combination}/lm", "metrics.json", LM,
                  combination=list(LM["combinations"])),
