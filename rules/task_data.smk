# Evaluation data: XNLI (premise/hypothesis pairs with labels) and MT test sets, tokenized
# and BPE'd like their languages, then binarized with every line kept.
#
#   data/xnli/raw/{split}.{s1,s2}.{lang}.txt        premises / hypotheses (xnli-extract)
#   data/xnli/{lang}.{split}.{s1,s2}.{bin,idx}      binarized (train: English and the
#                                                   xnli.translate_train languages)
#   data/xnli/{lang}.{split}.label                  label words, line-aligned
#   data/mt/aligned/{pair}.{split}.json             the line count both sides share
#   data/mt/{pair}.{lang}.{split}.{bin,idx}         binarized sides, every line kept
#   data/mt/{pair}.{lang}.{split}.ref               the raw side, for detokenized BLEU
#
# Input files (XNLI TSVs, MT sides) may be plain, .gz or .xz, or URLs and archive members
# (rules/download.smk).

wildcard_constraints:
    part=r"s1|s2",


rule xnli_extract:
    """The language's rows of an XNLI file: premises, hypotheses, labels (train: xnli.train
    for English, xnli.translate_train for the other languages; test-from-{lang}: that
    language's xnli.translate_test, English text whose rows carry the original language)."""
    input:
        xnli_source,
    output:
        premises="data/xnli/raw/{split}.s1.{lang}.txt",
        hypotheses="data/xnli/raw/{split}.s2.{lang}.txt",
        labels="data/xnli/{lang}.{split}.label",
    params:
        rows_of=lambda wildcards: (
            wildcards.split[len(TRANSLATED_TEST):]
            if wildcards.split.startswith(TRANSLATED_TEST)
            else wildcards.lang
        ),
    conda:
        PREPROCESS_ENV
    log:
        "logs/xnli/extract/{lang}.{split}.log",
    shell:
        "xlm xnli-extract --input {input:q} --lang {params.rows_of}"
        " --premises {output.premises:q} --hypotheses {output.hypotheses:q}"
        " --labels {output.labels:q} > {log:q} 2>&1"


rule xnli_translate_test:
    """TRANSLATE-TEST with our own MT: the language's XNLI test set translated into English
    by the experiment named in xnli.translate_test.{lang}.mt (beam search)."""
    input:
        model=lambda wildcards: mt_model(XNLI_TRANSLATE_TEST[wildcards.lang]["mt"]),
        test=lambda wildcards: source_path(XNLI["test"].format(lang=wildcards.lang)),
    output:
        "data/xnli/translated/test.{lang}-en.tsv",
    params:
        beam=lambda wildcards: XNLI_TRANSLATE_TEST[wildcards.lang].get("beam", 4),
    conda:
        TRAIN_ENV
    log:
        "logs/xnli/translate/{lang}-en.log",
    shell:
        "xlm xnli-translate --model {input.model:q} --input {input.test:q}"
        " --lang {wildcards.lang} --beam {params.beam} --output {output:q} > {log:q} 2>&1"


rule tokenize_xnli:
    input:
        unpack(tokenizer_inputs),
        text="data/xnli/raw/{split}.{part}.{lang}.txt",
    output:
        "data/xnli/tok/{split}.{part}.{lang}.txt",
    params:
        options=tokenizer_options,
    conda:
        PREPROCESS_ENV
    log:
        "logs/xnli/tokenize/{split}.{part}.{lang}.log",
    shell:
        "xlm tokenize --lang {wildcards.lang} --input {input.text:q} --output {output:q}"
        " {params.options} > {log:q} 2>&1"


rule binarize_xnli:
    input:
        text="data/xnli/bpe/{split}.{part}.{lang}.txt",
        vocab=BPE_VOCAB,
    output:
        multiext("data/xnli/{lang}.{split}.{part}", ".bin", ".idx"),
    conda:
        PREPROCESS_ENV
    log:
        "logs/xnli/binarize/{lang}.{split}.{part}.log",
    shell:
        "xlm binarize --vocab {input.vocab:q} --input {input.text:q}"
        " --output data/xnli/{wildcards.lang}.{wildcards.split}.{wildcards.part} > {log:q} 2>&1"


rule check_mt:
    """Source and reference have the same number of lines, or the config key is named."""
    input:
        lambda wildcards: [
            mt_source(wildcards.pair, wildcards.split, lang) for lang in wildcards.pair.split("-")
        ],
    output:
        "data/mt/aligned/{pair}.{split}.json",
    params:
        key=lambda wildcards: f"mt_data.pairs.{wildcards.pair}.{wildcards.split}",
    conda:
        PREPROCESS_ENV
    log:
        "logs/mt/check/{pair}.{split}.log",
    shell:
        "xlm check-aligned --inputs {input:q} --key {params.key:q} --output {output:q}"
        " > {log:q} 2>&1"


rule mt_reference:
    """The raw side as plain text (decompressed), kept as the reference for detokenized
    BLEU, once both sides are known to align."""
    input:
        text=lambda wildcards: mt_source(wildcards.pair, wildcards.split, wildcards.lang),
        aligned="data/mt/aligned/{pair}.{split}.json",
    output:
        "data/mt/{pair}.{lang}.{split}.ref",
    conda:
        PREPROCESS_ENV
    log:
        "logs/mt/reference/{pair}.{lang}.{split}.log",
    shell:
        "xlm copy-text --input {input.text:q} --output {output:q} > {log:q} 2>&1"


rule tokenize_mt:
    input:
        unpack(tokenizer_inputs),
        text="data/mt/{pair}.{lang}.{split}.ref",
    output:
        "data/mt/tok/{pair}.{split}.{lang}.txt",
    params:
        options=tokenizer_options,
    conda:
        PREPROCESS_ENV
    log:
        "logs/mt/tokenize/{pair}.{split}.{lang}.log",
    shell:
        "xlm tokenize --lang {wildcards.lang} --input {input.text:q} --output {output:q}"
        " {params.options} > {log:q} 2>&1"


rule binarize_mt:
    """Both sides, every line kept (line i stays line i of the reference); the sides must
    have the same number of lines."""
    input:
        src="data/mt/bpe/{l1}-{l2}.{split}.{l1}.txt",
        tgt="data/mt/bpe/{l1}-{l2}.{split}.{l2}.txt",
        vocab=BPE_VOCAB,
    output:
        multiext("data/mt/{l1}-{l2}.{l1}.{split}", ".bin", ".idx"),
        multiext("data/mt/{l1}-{l2}.{l2}.{split}", ".bin", ".idx"),
    conda:
        PREPROCESS_ENV
    log:
        "logs/mt/binarize/{l1}-{l2}.{split}.log",
    shell:
        "xlm binarize-pair --keep-all --vocab {input.vocab:q} --input {input.src:q}"
        " {input.tgt:q} --output data/mt/{wildcards.l1}-{wildcards.l2}.{wildcards.l1}.{wildcards.split}"
        " data/mt/{wildcards.l1}-{wildcards.l2}.{wildcards.l2}.{wildcards.split} > {log:q} 2>&1"


rule task_data:
    """Target: XNLI and MT evaluation data."""
    input:
        xnli_datasets(),
        mt_datasets(),


rule data:
    """Target: codes, vocabulary and every binarized dataset of the config."""
    input:
        rules.binarize_text.input,
        rules.parallel.input,
        rules.task_data.input,
