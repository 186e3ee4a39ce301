# Wikipedia: download (or take a local dump), extract clean paragraphs, split.

import os

# How often to retry does not shape the dump, so it is not a param (a change would fetch
# the dump again and rerun everything after it): it reaches the command through the
# environment, like the provenance of the tasks (rules/tasks_common.smk). Set here, never
# required from the user, so the lint's `envvars` advice does not apply.
os.environ.update({"XLM_DOWNLOAD_RETRIES": str(config["wiki"]["retries"])})


localrules:
    download_wiki,


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
