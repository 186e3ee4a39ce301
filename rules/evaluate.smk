# Evaluation of trained task models.
#
#   results/{experiment}/mt/metrics.json   sacreBLEU (detokenized, with signature) and
#                                          tokenized BLEU on the MT test sets (Tables 2, 3)
#   results/{experiment}/mt/{src}-{tgt}.test.hyp   the detokenized translations
#
# Decoding settings (beam, length penalty, early stopping) are params of the evaluation
# only, so changing them re-decodes without retraining.

MT_DECODING = {key: MT.get(key) for key in ("beam", "length_penalty", "early_stopping",
                                             "test_sentences")}


def mt_test_inputs(wildcards):
    """The binarized source side and the raw and tokenized references of each direction."""
    files = []
    for direction in mt_eval_directions(wildcards.experiment):
        src, tgt = direction.split("-")
        pair = stored_pair(MT_DATA["pairs"], src, tgt, "mt_data")
        if "test" not in MT_DATA["pairs"][pair]:
            sys.exit(f"error: config.yaml: MT direction {direction} needs a test split under "
                     f"'mt_data.pairs.{pair}'")
        files += [f"data/mt/{pair}.{src}.test.bin", f"data/mt/{pair}.{src}.test.idx",
                  f"data/mt/{pair}.{tgt}.test.ref", f"data/mt/tok/{pair}.test.{tgt}.txt"]
    return files


def mt_decoding_flags(decoding):
    flags = f"--beam {decoding['beam'] or 1} --length-penalty {decoding['length_penalty'] or 1.0}"
    if decoding["early_stopping"] is False:
        flags += " --no-early-stopping"
    if decoding["test_sentences"]:
        flags += f" --max-sentences {decoding['test_sentences']}"
    return flags


rule mt_evaluate:
    """Beam search on the test sets; BLEU records of the experiment."""
    input:
        model="results/{experiment}/mt/model.pt",
        tests=mt_test_inputs,
    output:
        metrics="results/{experiment}/mt/metrics.json",
    params:
        decoding=MT_DECODING,
        flags=mt_decoding_flags(MT_DECODING),
        directions=lambda wildcards: " ".join(mt_eval_directions(wildcards.experiment)),
    threads: 2
    conda:
        TRAIN_ENV
    log:
        "logs/mt/evaluate/{experiment}.log",
    shell:
        "xlm mt-eval --model {input.model:q} --name {wildcards.experiment}"
        " --directions {params.directions} --data data/mt --tok data/mt/tok {params.flags}"
        " --out {output.metrics:q} --threads {threads} --config-hash " + CONFIG_HASH +
        " --run-name " + config["run_name"] + " > {log:q} 2>&1"


rule mt:
    """Target: BLEU records of every experiment under mt.experiments."""
    input:
        expand("results/{experiment}/mt/metrics.json", experiment=list(MT_EXPERIMENTS)),


# ---------------------------------------------------------------- word embeddings
#
#   results/{model}/embeddings/metrics.json   cosine, L2, P@1/P@5 (NN and CSLS) per pair

EMBEDDINGS = config.get("embeddings", {"models": [], "dictionaries": {}})


rule embeddings_evaluate:
    """Cross-lingual word embedding metrics of a model's lookup table (Table 5)."""
    input:
        model=lambda wildcards: pretrained_model(wildcards.model),
        codes=BPE_CODES,
        dictionaries=list(EMBEDDINGS["dictionaries"].values()),
    output:
        metrics="results/{model}/embeddings/metrics.json",
    params:
        settings={key: value for key, value in EMBEDDINGS.items() if key != "models"},
        dictionaries=" ".join(f"{pair}={path}" for pair, path in EMBEDDINGS["dictionaries"].items()),
        options=(f"--csls-k {EMBEDDINGS.get('csls_k', 10)}"
                 + (f" --max-pairs {EMBEDDINGS['max_pairs']}" if EMBEDDINGS.get("max_pairs") else "")
                 + (" --lowercase" if EMBEDDINGS.get("lowercase") else "")),
    threads: 1
    conda:
        TRAIN_ENV
    log:
        "logs/embeddings/{model}.log",
    shell:
        "xlm embeddings --model {input.model:q} --name {wildcards.model} --codes {input.codes:q}"
        " --dictionaries {params.dictionaries} {params.options} --out {output.metrics:q}"
        " --config-hash " + CONFIG_HASH + " --run-name " + config["run_name"] + " > {log:q} 2>&1"


rule embeddings:
    """Target: embedding records of every model under embeddings.models."""
    input:
        expand("results/{model}/embeddings/metrics.json", model=EMBEDDINGS["models"]),
