# Shared BPE (paper 3.1): codes learned with fastBPE on sentences sampled from every
# language with q_i ∝ p_i^alpha, the vocabulary counted on the BPE'd training text of all
# languages; or released codes and vocabulary given in config (then nothing is learned).
#
#   data/bpe/sample.txt          the sampled sentences (per-language counts in the log)
#   data/bpe/codes  data/bpe/vocab
#   data/bpe/{lang}.{split}.txt  monolingual text after BPE
#   data/{kind}/bpe/{name}.txt   parallel, XNLI and MT text after BPE (kind: para|xnli|mt)

wildcard_constraints:
    kind=r"para|xnli|mt",


if LEARN_BPE:

    rule bpe_sample:
        """The BPE training sentences: q_i ∝ p_i^alpha over the languages' train splits
        (sample_sentences null: every line of each, as XLM's get-data-nmt.sh)."""
        input:
            expand("data/tok/{lang}.train.txt", lang=LANGUAGES),
        output:
            temp("data/bpe/sample.txt"),
        params:
            alpha=BPE_SETTINGS["alpha"],
            sample_sentences=BPE_SETTINGS["sample_sentences"],
            seed=BPE_SETTINGS["seed"],
            inputs=lambda wildcards, input: " ".join(
                f"{lang}={shlex.quote(path)}" for lang, path in zip(LANGUAGES, input)
            ),
        conda:
            PREPROCESS_ENV
        log:
            "logs/bpe/sample.log",
        shell:
            "xlm bpe-sample --input {params.inputs} --output {output:q}"
            " --alpha {params.alpha}"
            + (" --sentences {params.sample_sentences}" if BPE_SETTINGS["sample_sentences"] else "")
            + " --seed {params.seed} > {log:q} 2>&1"

    rule bpe_learn:
        """fastBPE learnbpe on the sample."""
        input:
            "data/bpe/sample.txt",
        output:
            "data/bpe/codes",
        params:
            n_codes=BPE_SETTINGS["n_codes"],
        conda:
            PREPROCESS_ENV
        log:
            "logs/bpe/learn.log",
        benchmark:
            "results/benchmarks/bpe/learn.tsv"
        shell:
            "xlm bpe-learn --input {input:q} --codes {params.n_codes} --output {output:q}"
            " > {log:q} 2>&1"

    rule bpe_vocab:
        """fastBPE getvocab on the BPE'd training text of all languages, capped."""
        input:
            expand("data/bpe/{lang}.train.txt", lang=LANGUAGES),
        output:
            "data/bpe/vocab",
        params:
            max_vocab=BPE_SETTINGS["max_vocab"],
        conda:
            PREPROCESS_ENV
        log:
            "logs/bpe/vocab.log",
        shell:
            "xlm bpe-vocab --input {input:q} --output {output:q}"
            " --max-vocab {params.max_vocab} > {log:q} 2>&1"


rule bpe_apply:
    """Codes applied to a language's tokenized split (fastBPE binding, worker processes)."""
    input:
        unpack(bpe_apply_inputs),
        text="data/tok/{lang}.{split}.txt",
    output:
        "data/bpe/{lang}.{split}.txt",
    params:
        vocab=bpe_vocab_flag,
    threads: 2
    conda:
        PREPROCESS_ENV
    log:
        "logs/bpe/apply/{lang}.{split}.log",
    benchmark:
        "results/benchmarks/bpe/apply/{lang}.{split}.tsv"
    shell:
        "xlm bpe-apply --codes {input.codes:q} {params.vocab} --input {input.text:q}"
        " --output {output:q} --processes {threads} > {log:q} 2>&1"


rule bpe_apply_task:
    """The same for parallel, XNLI and MT text."""
    input:
        unpack(bpe_apply_inputs),
        text="data/{kind}/tok/{name}.txt",
    output:
        "data/{kind}/bpe/{name}.txt",
    params:
        vocab=bpe_vocab_flag,
    conda:
        PREPROCESS_ENV
    log:
        "logs/bpe/apply_{kind}/{name}.log",
    shell:
        "xlm bpe-apply --codes {input.codes:q} {params.vocab} --input {input.text:q}"
        " --output {output:q} > {log:q} 2>&1"
