# Helpers of the task rules (rules/finetune.smk, rules/evaluate.smk): config slices, inputs,
# flags. A task section left out of the config means that task does not run.
#
# Provenance: the config hash and run name reach the `xlm` commands through the
# environment (XLM_CONFIG_HASH, XLM_RUN_NAME) rather than the shell command, so that a
# change elsewhere in the config does not rerun every task.

import json
import os
import shlex

# Set here, never read: the lint's `envvars` advice is about variables a workflow requires.
os.environ.update({"XLM_CONFIG_HASH": CONFIG_HASH, "XLM_RUN_NAME": config["run_name"]})

XNLI_FINETUNE = config.get("xnli_finetune", {"models": []})
MT = config.get("mt", {"experiments": {}})
MT_EXPERIMENTS = MT["experiments"]
MT_DECODING = {key: MT.get(key) for key in ("beam", "length_penalty", "early_stopping",
                                             "test_sentences")}
EMBEDDINGS = config.get("embeddings", {"models": [], "dictionaries": {}})
RETRIEVAL = config.get("retrieval", {"models": [], "pairs": {}})
LM = config.get("lm", {"combinations": {}})


wildcard_constraints:
    experiment=r"[A-Za-z0-9_]+",
    combination=r"[A-Za-z0-9_]+",
    seed=r"\d+",


# ---------------------------------------------------------------- seeds
# A task section with `seeds: [0, 1, 2]` (xnli_finetune, mt, lm) makes one run per seed,
# each in results/{name}/{task}/seed{seed}/; without it, one run at results/{name}/{task}/
# with the section's `seed` (the default run). Records carry the `seed` either way.


def task_seeds(section):
    """The seeds of a task section, or None (one run, at the plain path)."""
    return [int(seed) for seed in section.get("seeds") or []] or None


def task_runs(folder, file, section, **names):
    """Every declared output `file` of a task: `folder/file`, or one per seed below it."""
    seeds = task_seeds(section)
    if seeds is None:
        return expand(f"{folder}/{file}", **names)
    return expand(f"{folder}/seed{{seed}}/{file}", seed=seeds, **names)


def run_seed(wildcards):
    """The seed of a seeded run's job (its `seed` wildcard), else None."""
    return getattr(wildcards, "seed", None)


def pretrained_model(model):
    """The model.pt a task starts from: pretrained (models:) or imported (imported_models:)."""
    known = list(config["models"]) + list(config.get("imported_models", {}))
    if model not in known:
        sys.exit(f"error: {CONFIG_SOURCE}: task model '{model}' is neither under 'models' nor "
                 f"'imported_models' (known: {', '.join(known)}); fix the task's model list")
    return f"results/{model}/pretrain/model.pt"


def output_folder(wildcards, output):
    """The folder of a rule's first output (where the command writes its other files)."""
    return os.path.dirname(output[0])


# ---------------------------------------------------------------- XNLI


def xnli_settings(seed=None):
    """The fine-tuning settings (the xnli_finetune slice without the model and seed lists),
    with `seed` when a seeded run gives one."""
    settings = {key: value for key, value in XNLI_FINETUNE.items()
                if key not in ("models", "seeds")}
    return settings if seed is None else {**settings, "seed": int(seed)}


# ---------------------------------------------------------------- MT


def mt_settings(experiment, seed=None):
    """The experiment's resolved slice: mt.defaults with the experiment's keys on top (and
    `seed` when a seeded run gives one)."""
    settings = {**MT.get("defaults", {}), **MT_EXPERIMENTS[experiment]}
    return settings if seed is None else {**settings, "seed": int(seed)}


def stored_pair(pairs, a, b, section):
    """The configured pair name ("en-ro") of languages a and b."""
    for pair in (f"{a}-{b}", f"{b}-{a}"):
        if pair in pairs:
            return pair
    sys.exit(f"error: {CONFIG_SOURCE}: MT needs data for {a}-{b}, which is not under "
             f"'{section}.pairs'; configure it there or change the experiment")


def mt_eval_directions(experiment):
    """Scored directions: eval_directions, else the supervised ones, else reversed bt."""
    settings = mt_settings(experiment)
    return settings.get("eval_directions") or settings.get("directions") or [
        "-".join(reversed(d.split("-"))) for d in settings.get("bt", [])]


def mt_train_inputs(wildcards):
    """Pretrained sides, vocabulary, codes and every binarized file the training reads."""
    settings = mt_settings(wildcards.experiment)
    inputs = {"vocab": BPE_VOCAB, "codes": BPE_CODES}
    for side in ("encoder", "decoder"):
        init = settings.get(f"{side}_init", "random")
        if init != "random":
            inputs[side] = pretrained_model(init)
    pairs = config["parallel"]["pairs"]
    prefixes = []
    for direction in settings.get("directions", []):
        pair = stored_pair(pairs, *direction.split("-"), "parallel")
        prefixes += [f"{pair}.{lang}.train" for lang in direction.split("-")]
    for lang in settings.get("dae", []) + [d.split("-")[0] for d in settings.get("bt", [])]:
        prefixes.append(f"{lang}.train")
    for direction in mt_eval_directions(wildcards.experiment):
        pair = stored_pair(pairs, *direction.split("-"), "parallel")
        prefixes += [f"{pair}.{lang}.valid" for lang in direction.split("-")]
    inputs["data"] = [f"data/bin/{p}.{ext}" for p in dict.fromkeys(prefixes)
                      for ext in ("bin", "idx")]
    return inputs


def mt_init_flags(wildcards, input):
    """--encoder/--decoder model.pt for the sides initialised from a pretrained model."""
    return " ".join(f"--{side} {input[side]}" for side in ("encoder", "decoder")
                    if side in input.keys())


def mt_tokenizers(experiment):
    """Tokenizer settings of each language, stored in model.pt for `xlm translate`."""
    settings = mt_settings(experiment)
    langs = set(settings.get("dae", []))
    for direction in settings.get("directions", []) + settings.get("bt", []):
        langs.update(direction.split("-"))
    return {lang: tokenizer_settings(lang) for lang in sorted(langs)}


def mt_test_inputs(wildcards):
    """The binarized source side and the raw and tokenized references of each direction."""
    files = []
    for direction in mt_eval_directions(wildcards.experiment):
        src, tgt = direction.split("-")
        pair = stored_pair(MT_DATA["pairs"], src, tgt, "mt_data")
        if "test" not in MT_DATA["pairs"][pair]:
            sys.exit(f"error: {CONFIG_SOURCE}: MT direction {direction} needs a test split under "
                     f"'mt_data.pairs.{pair}'")
        files += [f"data/mt/{pair}.{src}.test.bin", f"data/mt/{pair}.{src}.test.idx",
                  f"data/mt/{pair}.{tgt}.test.ref", f"data/mt/tok/{pair}.test.{tgt}.txt"]
    return files


def mt_decoding_flags():
    flags = f"--beam {MT_DECODING['beam'] or 1}"
    flags += f" --length-penalty {MT_DECODING['length_penalty'] or 1.0}"
    if MT_DECODING["early_stopping"] is False:
        flags += " --no-early-stopping"
    if MT_DECODING["test_sentences"]:
        flags += f" --max-sentences {MT_DECODING['test_sentences']}"
    return flags


# ---------------------------------------------------------------- embeddings


def embeddings_flags():
    flags = " ".join(f"{pair}={path}" for pair, path in EMBEDDINGS["dictionaries"].items())
    flags = f"--dictionaries {flags} --csls-k {EMBEDDINGS.get('csls_k', 10)}"
    if EMBEDDINGS.get("max_pairs"):
        flags += f" --max-pairs {EMBEDDINGS['max_pairs']}"
    if EMBEDDINGS.get("lowercase"):
        flags += " --lowercase"
    for pair, files in EMBEDDINGS.get("semeval17", {}).items():
        flags += f" --semeval17 {pair} {shlex.quote(files['data'])} {shlex.quote(files['gold'])}"
    return flags


# ---------------------------------------------------------------- sentence retrieval


def retrieval_langs():
    return sorted({lang for pair in RETRIEVAL["pairs"] for lang in pair.split("-")})


def retrieval_inputs(wildcards):
    """The model, the codes, both sides of every pair, and the KyTea model for Japanese."""
    inputs = {"model": pretrained_model(wildcards.model), "codes": BPE_CODES,
              "pairs": [path for sides in RETRIEVAL["pairs"].values() for path in sides.values()]}
    if "ja" in retrieval_langs():
        inputs["kytea_model"] = config["tokenize"]["kytea_model"]
    return inputs


def retrieval_flags():
    """Every setting that shapes the records: the pairs (sides in the pair's order), the
    tokenizer settings of their languages, and the retrieval options."""
    flags = [f"--pair {pair} " + " ".join(shlex.quote(sides[lang]) for lang in pair.split("-"))
             for pair, sides in RETRIEVAL["pairs"].items()]
    tokenizers = {lang: tokenizer_settings(lang) for lang in retrieval_langs()}
    flags.append(f"--tokenizer {shlex.quote(json.dumps(tokenizers, sort_keys=True))}")
    flags.append(f"--csls-k {RETRIEVAL.get('csls_k', 10)} --seed {RETRIEVAL.get('seed', 0)}")
    if RETRIEVAL.get("max_sentences"):
        flags.append(f"--max-sentences {RETRIEVAL['max_sentences']}")
    if RETRIEVAL.get("untrained_baseline", True):
        flags.append("--untrained-baseline")
    return " ".join(flags)


# ---------------------------------------------------------------- low-resource LM


def lm_settings(combination, seed=None):
    """Pretraining settings of the combination's CLM: `pretrain`, lm.overrides, languages
    (and `seed` when a seeded run gives one)."""
    settings = {**config["pretrain"], **LM.get("overrides", {}),
                "clm": LM["combinations"][combination]}
    return settings if seed is None else {**settings, "seed": int(seed)}


def lm_inputs(wildcards):
    langs = LM["combinations"][wildcards.combination]
    if LM["target"] not in langs:
        sys.exit(f"error: {CONFIG_SOURCE}: key 'lm.combinations.{wildcards.combination}' must "
                 f"include the target language '{LM['target']}'")
    return {"vocab": BPE_VOCAB,
            "data": expand("data/bin/{lang}.{split}.{ext}", lang=langs, split=SPLITS,
                           ext=["bin", "idx"])}


def mt_example_side(wildcards, lang):
    """The file of `lang` in mt.example's held-out split (as tokenization reads it: the
    configured file, its download, or the workflow's split of a corpus given whole)."""
    pair = stored_pair(config["parallel"]["pairs"], wildcards.src, wildcards.tgt, "parallel")
    return parallel_source(pair, MT["example"]["split"], lang)


def mt_model(experiment):
    """The experiment's model (its first seed's when mt.seeds is set)."""
    seeds = task_seeds(MT)
    run = f"seed{seeds[0]}/" if seeds else ""
    return f"results/{experiment}/mt/{run}model.pt"


def mt_example_model(wildcards):
    return mt_model(wildcards.experiment)


def mt_example_targets():
    """results/{experiment}/mt/example.{src}-{tgt}.md of mt.example, if configured."""
    example = MT.get("example")
    if not example:
        return []
    return [f"results/{example['experiment']}/mt/example.{example['direction']}.md"]
