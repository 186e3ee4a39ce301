# Evaluation of task models:
#
#   results/{experiment}/mt/metrics.json          sacreBLEU (detokenized, with signature)
#                                                 and tokenized BLEU (Tables 2 and 3)
#   results/{experiment}/mt/{src}-{tgt}.test.hyp  the detokenized translations
#   results/{model}/embeddings/metrics.json       cosine, L2, P@1/P@5 (NN, CSLS) (Table 5)
#   results/{model}/retrieval/metrics.json        sentence retrieval P@1 (NN, CSLS), both
#                                                 directions of each retrieval.pairs entry
#
# Decoding settings (beam, length penalty, early stopping) are params of the evaluation
# only: changing them re-decodes without retraining. Helpers: rules/tasks_common.smk.


rule mt_evaluate:
    """Beam search on the test sets; BLEU records of the experiment."""
    input:
        model="results/{experiment}/mt/model.pt",
        tests=mt_test_inputs,
    output:
        metrics="results/{experiment}/mt/metrics.json",
    params:
        decoding=MT_DECODING,
        flags=mt_decoding_flags(),
        directions=lambda wildcards: " ".join(mt_eval_directions(wildcards.experiment)),
    threads: 2
    conda:
        TRAIN_ENV
    log:
        "logs/mt/evaluate/{experiment}.log",
    shell:
        "xlm mt-eval --model {input.model:q} --name {wildcards.experiment}"
        " --directions {params.directions} --data data/mt --tok data/mt/tok {params.flags}"
        " --out {output.metrics:q} --threads {threads} > {log:q} 2>&1"


use rule mt_evaluate as mt_evaluate_seeded with:
    input:
        model="results/{experiment}/mt/seed{seed}/model.pt",
        tests=mt_test_inputs,
    output:
        metrics="results/{experiment}/mt/seed{seed}/metrics.json",
    log:
        "logs/mt/evaluate/{experiment}.seed{seed}.log",


rule mt_example:
    """A few held-out sentences translated by `xlm translate` (as a user runs it), each
    beside its source and reference, in a Markdown block to read (the README shows the
    demo's)."""
    input:
        model=mt_example_model,
        source=lambda wildcards: mt_example_side(wildcards, wildcards.src),
        reference=lambda wildcards: mt_example_side(wildcards, wildcards.tgt),
    output:
        "results/{experiment}/mt/example.{src}-{tgt}.md",
    wildcard_constraints:
        src=r"[a-z]{2,3}",
        tgt=r"[a-z]{2,3}",
    params:
        lines=lambda wildcards: MT["example"]["lines"],
        beam=MT_DECODING["beam"] or 1,
    conda:
        TRAIN_ENV
    log:
        "logs/mt/example/{experiment}.{src}-{tgt}.log",
    shell:
        "xlm concat-text --inputs {input.source:q} --output {output:q}.src.all 2> {log:q}"
        " && xlm concat-text --inputs {input.reference:q} --output {output:q}.ref.all 2>> {log:q}"
        " && head -n {params.lines} {output:q}.src.all > {output:q}.src"
        " && head -n {params.lines} {output:q}.ref.all > {output:q}.ref"
        " && xlm translate --model {input.model:q} --src {wildcards.src} --tgt {wildcards.tgt}"
        " --beam {params.beam} < {output:q}.src > {output:q}.hyp 2>> {log:q}"
        " && {{ echo '```text'; paste -d '\\n' <(sed 's/^/{wildcards.src}:  /' {output:q}.src)"
        " <(sed 's/^/xlm: /' {output:q}.hyp) <(sed 's/^/{wildcards.tgt}:  /' {output:q}.ref);"
        " echo '```'; }} > {output:q}.tmp"
        " && rm {output:q}.src.all {output:q}.ref.all {output:q}.src {output:q}.ref {output:q}.hyp"
        " && mv {output:q}.tmp {output:q}"


rule mt:
    """Target: BLEU records of every experiment under mt.experiments (one run per seed of
    mt.seeds)."""
    input:
        task_runs("results/{experiment}/mt", "metrics.json", MT,
                  experiment=list(MT_EXPERIMENTS)),


rule embeddings_evaluate:
    """Cross-lingual word embedding metrics of a model's lookup table."""
    input:
        model=lambda wildcards: pretrained_model(wildcards.model),
        codes=BPE_CODES,
        dictionaries=list(EMBEDDINGS["dictionaries"].values()),
        similarity=[files[part] for files in EMBEDDINGS.get("semeval17", {}).values()
                    for part in ("data", "gold")],
    output:
        metrics="results/{model}/embeddings/metrics.json",
    params:
        settings={key: value for key, value in EMBEDDINGS.items() if key != "models"},
        flags=embeddings_flags(),
    threads: 1
    conda:
        TRAIN_ENV
    log:
        "logs/embeddings/{model}.log",
    shell:
        "xlm embeddings --model {input.model:q} --name {wildcards.model} --codes {input.codes:q}"
        " {params.flags} --out {output.metrics:q} > {log:q} 2>&1"


rule embeddings:
    """Target: embedding records of every model under embeddings.models."""
    input:
        expand("results/{model}/embeddings/metrics.json", model=EMBEDDINGS["models"]),


rule retrieval_evaluate:
    """Cross-lingual sentence retrieval with a pretrained encoder, without fine-tuning:
    raw sides tokenized like their languages and BPE'd with the run's codes."""
    input:
        unpack(retrieval_inputs),
    output:
        metrics="results/{model}/retrieval/metrics.json",
    params:
        flags=retrieval_flags(),
    threads: 1
    conda:
        TRAIN_ENV
    log:
        "logs/retrieval/{model}.log",
    shell:
        "xlm retrieval --model {input.model:q} --name {wildcards.model} --codes {input.codes:q}"
        " {params.flags} --key retrieval.pairs --out {output.metrics:q} > {log:q} 2>&1"


rule retrieval:
    """Target: sentence retrieval records of every model under retrieval.models."""
    input:
        expand("results/{model}/retrieval/metrics.json", model=RETRIEVAL["models"]),
