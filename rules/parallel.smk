# Parallel corpora (TLM and MT): both sides counted first (sides of unequal length are
# refused before any tokenizing), each side tokenized and BPE'd like its language, then
# both sides binarized together, dropping pairs with an empty side (every split) or a side
# longer than parallel.max_len BPE tokens (train split). Sides may be plain, .gz or .xz.
#
#   data/para/split/{pair}.{split}.{lang}.txt      a corpus given whole (`all`), split
#                                                  (sources given as URLs or archive
#                                                  members: rules/download.smk)
#   data/para/aligned/{pair}.{split}.json          the line count both sides share
#   data/para/tok/{pair}.{split}.{lang}.txt        tokenized (then data/para/bpe/...)
#   data/bin/{pair}.{lang}.{split}.{bin,idx}       binarized sides, line-aligned

wildcard_constraints:
    pair=r"[a-z]{2,3}-[a-z]{2,3}",
    l1=r"[a-z]{2,3}",
    l2=r"[a-z]{2,3}",


rule check_parallel:
    """Both sides of a split have the same number of lines, or the config key is named."""
    input:
        lambda wildcards: [
            parallel_source(wildcards.pair, wildcards.split, lang)
            for lang in wildcards.pair.split("-")
        ],
    output:
        "data/para/aligned/{pair}.{split}.json",
    params:
        key=lambda wildcards: f"parallel.pairs.{wildcards.pair}.{wildcards.split}",
    conda:
        PREPROCESS_ENV
    log:
        "logs/parallel/check/{pair}.{split}.log",
    shell:
        "xlm check-aligned --inputs {input:q} --key {params.key:q} --output {output:q}"
        " > {log:q} 2>&1"


rule tokenize_parallel:
    """One side through its language's tokenizer, once both sides are known to align."""
    input:
        unpack(tokenizer_inputs),
        text=lambda wildcards: parallel_source(wildcards.pair, wildcards.split, wildcards.lang),
        aligned="data/para/aligned/{pair}.{split}.json",
    output:
        "data/para/tok/{pair}.{split}.{lang}.txt",
    params:
        options=tokenizer_options,
    conda:
        PREPROCESS_ENV
    log:
        "logs/parallel/tokenize/{pair}.{split}.{lang}.log",
    shell:
        "xlm tokenize --lang {wildcards.lang} --input {input.text:q} --output {output:q}"
        " {params.options} > {log:q} 2>&1"


rule binarize_parallel:
    """Both sides at once, so that dropping a pair keeps them aligned (counts in the log)."""
    input:
        src="data/para/bpe/{l1}-{l2}.{split}.{l1}.txt",
        tgt="data/para/bpe/{l1}-{l2}.{split}.{l2}.txt",
        vocab=BPE_VOCAB,
    output:
        multiext("data/bin/{l1}-{l2}.{l1}.{split}", ".bin", ".idx"),
        multiext("data/bin/{l1}-{l2}.{l2}.{split}", ".bin", ".idx"),
    params:
        max_len=lambda wildcards: (
            f"--max-len {PARALLEL['max_len']}" if wildcards.split == "train" else ""
        ),
    conda:
        PREPROCESS_ENV
    log:
        "logs/parallel/binarize/{l1}-{l2}.{split}.log",
    shell:
        "xlm binarize-pair --vocab {input.vocab:q} --input {input.src:q} {input.tgt:q}"
        " --output data/bin/{wildcards.l1}-{wildcards.l2}.{wildcards.l1}.{wildcards.split}"
        " data/bin/{wildcards.l1}-{wildcards.l2}.{wildcards.l2}.{wildcards.split}"
        " {params.max_len} > {log:q} 2>&1"


rule parallel:
    """Target: every binarized parallel corpus of the config."""
    input:
        parallel_datasets(),
