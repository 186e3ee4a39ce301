# Binarization: BPE'd text -> memory-mapped datasets (format in xlm/data/indexed.py).
#
#   data/bin/{lang}.{split}.{bin,idx}   monolingual splits
#   (parallel, XNLI and MT datasets: rules/parallel.smk and rules/task_data.smk)


rule binarize:
    """A language's split, every line kept; unknown words counted in the log."""
    input:
        text="data/bpe/{lang}.{split}.txt",
        vocab=BPE_VOCAB,
    output:
        multiext("data/bin/{lang}.{split}", ".bin", ".idx"),
    conda:
        PREPROCESS_ENV
    log:
        "logs/binarize/{lang}.{split}.log",
    shell:
        "xlm binarize --vocab {input.vocab:q} --input {input.text:q}"
        " --output data/bin/{wildcards.lang}.{wildcards.split} > {log:q} 2>&1"


rule binarize_text:
    """Target: codes, vocabulary and the binarized splits of every language."""
    input:
        BPE_CODES,
        BPE_VOCAB,
        expand("data/bin/{lang}.{split}.{ext}", lang=LANGUAGES, split=SPLITS, ext=["bin", "idx"]),
