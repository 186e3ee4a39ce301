# Sources given as URLs: downloaded once on the login node (local rules: compute nodes
# often have no internet), resumable, retried, sha256-pinned in a lock file beside the
# config; archive members extracted, lists joined, corpora given whole split.
#
#   data/downloads/{name}                         a URL's file ({hash}-{its name})
#   data/downloads/{name}.d/{member}              a member of that archive (.sgm: .sgm.txt)
#   data/raw/text/{lang}.txt                      local_text given as a list, joined
#   data/para/joined/{pair}.{split}.{lang}.txt    a parallel side given as a list, joined
#   data/para/split/{pair}.{split}.{lang}.txt     parallel.pairs.{pair}.all, split

import os

# Settings that do not shape a download (where its sha256 is pinned) reach the command
# through the environment, like wiki.retries (rules/wiki.smk), so changing them fetches
# nothing again.
os.environ.update({"XLM_DOWNLOAD_LOCK": LOCK_FILE})


localrules:
    download_source,
    download,


rule download_source:
    """A URL named in the config: resumable, retried, its sha256 pinned in the lock file
    on the first download and checked on every later one."""
    output:
        "data/downloads/{name}",
    wildcard_constraints:
        name=r"[0-9a-f]{10}-[^/]+",
    params:
        url=lambda wildcards: DOWNLOADS[wildcards.name],
    resources:
        size=lambda wildcards: announced_size(DOWNLOADS[wildcards.name]),
    message:
        "fetch {params.url} ({resources.size}) -> {output}"
    conda:
        PREPROCESS_ENV
    log:
        "logs/download/{name}.log",
    shell:
        "xlm download --url {params.url:q} --output {output:q}"
        ' --lock "$XLM_DOWNLOAD_LOCK"'
        " --key 'the URL in the config'"
        ' --retries "$XLM_DOWNLOAD_RETRIES" > {log:q} 2>&1'


rule extract_member:
    """One file out of a downloaded zip/tar archive (`URL#member` in the config)."""
    input:
        lambda wildcards: f"data/downloads/{wildcards.name}",
    output:
        "data/downloads/{name}.d/{member}",
    wildcard_constraints:
        name=r"[0-9a-f]{10}-[^/]+",
        member=r".+",
    params:
        member=lambda wildcards, output: MEMBERS[output[0]][1],
        url=lambda wildcards: DOWNLOADS[wildcards.name],
    conda:
        PREPROCESS_ENV
    log:
        "logs/download/{name}.d/{member}.log",
    shell:
        "xlm extract-member --archive {input:q} --member {params.member:q}"
        " --output {output:q} --label {params.url:q} > {log:q} 2>&1"


rule concat_text:
    """local_text given as a list of sources (e.g. several years of News Crawl), joined,
    and cut to local_text_max_lines when set."""
    input:
        lambda wildcards: [source_path(s) for s in as_list(config["local_text"][wildcards.lang])],
    output:
        "data/raw/text/{lang}.txt",
    params:
        max_lines=lambda wildcards: (
            f"--max-lines {config['local_text_max_lines']}"
            if config.get("local_text_max_lines")
            else ""
        ),
    conda:
        PREPROCESS_ENV
    log:
        "logs/download/concat/{lang}.log",
    shell:
        "xlm concat-text --inputs {input:q} --output {output:q} {params.max_lines}"
        " > {log:q} 2>&1"


rule concat_parallel:
    """A parallel side given as a list of sources (e.g. Europarl and SETimes), joined."""
    input:
        lambda wildcards: [
            source_path(s)
            for s in as_list(PARALLEL["pairs"][wildcards.pair][wildcards.split][wildcards.lang])
        ],
    output:
        "data/para/joined/{pair}.{split}.{lang}.txt",
    wildcard_constraints:
        pair=r"[a-z]{2,3}-[a-z]{2,3}",
    conda:
        PREPROCESS_ENV
    log:
        "logs/download/concat/{pair}.{split}.{lang}.log",
    shell:
        "xlm concat-text --inputs {input:q} --output {output:q} > {log:q} 2>&1"


rule split_parallel:
    """A corpus given whole (parallel.pairs.{pair}.all): seeded valid/test held out, the
    same lines of both sides in each split (get-data-para.sh's split_data)."""
    input:
        unpack(corpus_sides),
    output:
        multiext("data/para/split/{l1}-{l2}.train.", "{l1}.txt", "{l2}.txt"),
        multiext("data/para/split/{l1}-{l2}.valid.", "{l1}.txt", "{l2}.txt"),
        multiext("data/para/split/{l1}-{l2}.test.", "{l1}.txt", "{l2}.txt"),
    wildcard_constraints:
        l1=r"[a-z]{2,3}",
        l2=r"[a-z]{2,3}",
    params:
        heldout=PARALLEL.get("heldout"),
        max_fraction=config["split"]["max_heldout_fraction"],
        sides=split_side_flags,
    conda:
        PREPROCESS_ENV
    log:
        "logs/parallel/split/{l1}-{l2}.log",
    shell:
        "xlm split-pair --langs {wildcards.l1} {wildcards.l2} {params.sides}"
        " --prefix data/para/split/{wildcards.l1}-{wildcards.l2}"
        " --key parallel.pairs.{wildcards.l1}-{wildcards.l2}.all"
        " --valid-size {params.heldout[valid]} --test-size {params.heldout[test]}"
        " --max-heldout-fraction {params.max_fraction} --seed {params.heldout[seed]}"
        " > {log:q} 2>&1"


rule download:
    """Target: every file the config downloads (URLs, archives, Wikipedia dumps), fetched
    on the login node before any compute job; `-n` lists them with their sizes."""
    input:
        [f"data/downloads/{name}" for name in DOWNLOADS],
        wiki_downloads(),
