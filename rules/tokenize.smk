# Tokenization. With tokenize.shards > 1 each split is cut into shards, tokenized by
# parallel jobs (every core, every node) and merged; with 1 it is tokenized in one job.

SHARDS = range(config["tokenize"]["shards"])


if len(SHARDS) == 1:

    rule tokenize_split:
        """A split through the language's tokenizer (see xlm/text/tokenizers.py)."""
        input:
            unpack(tokenizer_inputs),
            text="data/text/{lang}.{split}.txt",
        output:
            "data/tok/{lang}.{split}.txt",
        params:
            options=tokenizer_options,
        conda:
            PREPROCESS_ENV
        log:
            "logs/tokenize/{lang}.{split}.log",
        shell:
            "xlm tokenize --lang {wildcards.lang} --input {input.text:q} --output {output:q}"
            " {params.options} > {log:q} 2>&1"

else:

    rule shard_text:
        input:
            "data/text/{lang}.{split}.txt",
        output:
            temp(expand("data/tok/shards/{{lang}}.{{split}}.{shard}.raw", shard=SHARDS)),
        conda:
            PREPROCESS_ENV
        log:
            "logs/shard_text/{lang}.{split}.log",
        shell:
            "xlm shard --input {input:q} --outputs {output:q} > {log:q} 2>&1"


    rule tokenize_shard:
        """One shard through the language's tokenizer (see xlm/text/tokenizers.py)."""
        input:
            unpack(tokenizer_inputs),
            text="data/tok/shards/{lang}.{split}.{shard}.raw",
        output:
            temp("data/tok/shards/{lang}.{split}.{shard}.tok"),
        params:
            options=tokenizer_options,
        conda:
            PREPROCESS_ENV
        log:
            "logs/tokenize/{lang}.{split}.{shard}.log",
        shell:
            "xlm tokenize --lang {wildcards.lang} --input {input.text:q} --output {output:q}"
            " {params.options} > {log:q} 2>&1"


    rule merge_tokenized:
        """Shards back in order. Carries the tokenizer settings too, so that changing one
        reruns tokenization even after the temporary shards are gone."""
        input:
            expand("data/tok/shards/{{lang}}.{{split}}.{shard}.tok", shard=SHARDS),
        output:
            "data/tok/{lang}.{split}.txt",
        params:
            options=tokenizer_options,
        conda:
            PREPROCESS_ENV
        log:
            "logs/merge_tokenized/{lang}.{split}.log",
        shell:
            "xlm merge --inputs {input:q} --output {output:q} > {log:q} 2>&1"


rule text:
    """Target: the tokenized train/valid/test splits of every configured language."""
    input:
        expand("data/tok/{lang}.{split}.txt", lang=LANGUAGES, split=SPLITS),
