# Wikipedia: download (or take a local dump), extract clean paragraphs, split.

import os

# How often to retry does not shape the dump, so it is not a param (a change would fetch
# the dump again and rerun everything after it): it reaches the command through the
# environment, like the provenance of the tasks (rules/tasks_common.smk). Set here, never
# required from the user, so the lint's `envvars` advice does not apply.
os.environ.update({"XLM_DOWNLOAD_RETRIES": str(config["wiki"]["retries"])})


localrules:
    download_wiki,
    download_wiki_index,


rule download_wiki:
    """Fetch a dump, resumable and checked against Wikimedia's published checksums."""
    output:
        "data/raw/wiki/{lang}.xml.bz2",
    params:
        url=lambda wc: config["wiki"]["url"].format(lang=wc.lang, date=config["wiki"]["date"]),
        checksum=lambda wc: checksum_option(wc.lang),
    resources:
        size=lambda wc: announced_size(
            config["wiki"]["url"].format(lang=wc.lang, date=config["wiki"]["date"])
        ),
    message:
        "fetch {params.url} ({resources.size}) -> {output}"
    conda:
        PREPROCESS_ENV
    log:
        "logs/download_wiki/{lang}.log",
    shell:
        "xlm download --url {params.url:q} --output {output:q} {params.checksum}"
        ' --retries "$XLM_DOWNLOAD_RETRIES" > {log:q} 2>&1'


# Sharded extraction (extract.shards > 1): a multistream dump with its index is cut into
# that many byte ranges on bz2 stream boundaries, each extracted by its own job
# (extract_wiki_shard), and the shards are joined in dump order (merge_extracted); the
# result equals extract_wiki's. A language without an index (wiki.local_index for a local
# dump, wiki.index_url for a downloaded one) is extracted in one job as before.
rule download_wiki_index:
    """Fetch a multistream dump's index, checked like the dump."""
    output:
        "data/raw/wiki/{lang}.index.txt.bz2",
    params:
        url=lambda wc: index_source(wc.lang),
        checksum=lambda wc: checksum_option(wc.lang),
    conda:
        PREPROCESS_ENV
    log:
        "logs/download_wiki/{lang}.index.log",
    shell:
        "xlm download --url {params.url:q} --output {output:q} {params.checksum}"
        ' --retries "$XLM_DOWNLOAD_RETRIES" > {log:q} 2>&1'


rule extract_wiki_shard:
    """One shard of a multistream dump: WikiExtractor on its pages, then cleaning."""
    input:
        dump=dump_path,
        index=index_path,
    output:
        temp("data/extract/shards/{lang}.{shard}.txt"),
    params:
        options=extract_options,
        shards=EXTRACT_SHARDS,
    wildcard_constraints:
        lang=language_pattern(SHARDED),
        shard=r"\d+",
    threads: 2
    conda:
        PREPROCESS_ENV
    log:
        "logs/extract_wiki/{lang}.{shard}.log",
    benchmark:
        "results/benchmarks/extract_wiki/{lang}.{shard}.tsv"
    shell:
        "xlm extract --dump {input.dump:q} --index {input.index:q} --shard {wildcards.shard}"
        " --shards {params.shards} --output {output:q} --processes {threads}"
        " {params.options} > {log:q} 2>&1"


rule merge_extracted:
    """The shards of a dump joined in dump order. Carries the extraction settings too, so
    that a change reruns extraction even after the temporary shards are gone."""
    input:
        expand("data/extract/shards/{{lang}}.{shard}.txt", shard=range(EXTRACT_SHARDS)),
    output:
        "data/extract/{lang}.txt",
    params:
        options=extract_options,
    wildcard_constraints:
        lang=language_pattern(SHARDED),
    conda:
        PREPROCESS_ENV
    log:
        "logs/merge_extracted/{lang}.log",
    shell:
        "xlm merge --inputs {input:q} --output {output:q} > {log:q} 2>&1"


ruleorder: merge_extracted > extract_wiki  # a sharded language's text comes from its shards


rule extract_wiki:
    """WikiExtractor on the dump, then one clean paragraph per line."""
    input:
        dump_path,
    output:
        "data/extract/{lang}.txt",
    params:
        options=extract_options,
    threads: 2
    conda:
        PREPROCESS_ENV
    log:
        "logs/extract_wiki/{lang}.log",
    benchmark:
        "results/benchmarks/extract_wiki/{lang}.tsv"
    shell:
        "xlm extract --dump {input:q} --output {output:q} --processes {threads}"
        " {params.options} > {log:q} 2>&1"


rule split_text:
    """Seeded shuffle, then train/valid/test (sizes from config.split)."""
    input:
        clean_text_path,
    output:
        train="data/text/{lang}.train.txt",
        valid="data/text/{lang}.valid.txt",
        test="data/text/{lang}.test.txt",
    params:
        split=config["split"],
    conda:
        PREPROCESS_ENV
    log:
        "logs/split_text/{lang}.log",
    shell:
        "xlm split --input {input:q} --train {output.train:q} --valid {output.valid:q}"
        " --test {output.test:q} --valid-size {params.split[valid]}"
        " --test-size {params.split[test]}"
        " --max-heldout-fraction {params.split[max_heldout_fraction]}"
        " --seed {params.split[seed]} > {log:q} 2>&1"
