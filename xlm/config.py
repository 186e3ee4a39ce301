"""Validate a run's configuration at start-up, each mistake in one readable line.

The workflow calls `validate_config` before any job runs (also for `snakemake -n`), so a
mistake costs seconds rather than the hours of the jobs before the one that trips on it.
Three passes, the first mistake found stops the run: the JSON schema (unknown keys,
types, ranges), rules across keys (sizes, the models and languages a task names), and
every local input file. The package itself never reads config.yaml.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from xlm.errors import UserError
from xlm.text.languages import MOSES_LANGUAGES, SEGMENTED_LANGUAGES

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
RANDOM_INIT = "random"
# What YAML 1.1 (PyYAML, Snakemake) reads as text although people mean a number: an
# exponent without a dot in the mantissa (1e-3), or a quoted number ("0.001").
_NUMBER_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

Layers = list[tuple[str, dict[str, Any]]]


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def _number_fix(text: str, wanted: list[str]) -> str:
    """How to write `text` so that YAML reads it as the number it looks like."""
    mantissa, _, exponent = text.lower().partition("e")
    if "integer" in wanted and "number" not in wanted:
        value = float(text)
        return str(int(value)) if value.is_integer() else text
    if exponent and "." not in mantissa:
        return f"{mantissa}.0e{exponent}"
    return text


def describe(error: jsonschema.ValidationError) -> str:
    """Turn a schema violation into 'key: what is wrong; the fix' naming the offending key."""
    where = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        if allowed:
            problem = (f"unknown key '{'.'.join([*map(str, error.absolute_path), extra[0]])}'"
                       f" (allowed here: {', '.join(allowed)})")
        else:
            problem = f"key '{where}': invalid entry '{extra[0]}'"
    elif error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [
            error.validator_value]
        text = error.instance
        if isinstance(text, str) and {"number", "integer"} & set(wanted) \
                and _NUMBER_TEXT.match(text.strip()):
            return (f"key '{where}' must be a number, but YAML read {text!r} as text (YAML "
                    "needs a dot in an exponent's mantissa, and no quotes): write "
                    f"{_number_fix(text.strip(), wanted)} instead")
        problem = f"key '{where}' must be of type {error.validator_value}, got {text!r}"
    else:
        problem = f"key '{where}': {error.message}"
    return f"{problem}; fix it and run again"


def validate_config(config: dict[str, Any], source: str = "config.yaml",
                    schema_path: Path = SCHEMA_PATH, base: Path | None = None,
                    check_files: bool = True) -> list[str]:
    """Raise UserError naming `source`, the first offending key and the fix; else return
    the warnings (one line each) worth showing.

    Relative paths are read from `base` (default: the working directory, where the
    workflow's jobs run). `check_files=False` skips the input files (presets name files a
    user places).
    """
    schema = yaml.safe_load(schema_path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise UserError(f"{source}: {describe(errors[0])}")
    problem = next(_cross_key_problems(config), None)
    if problem is None and check_files:
        problem = next(_file_problems(config, base or Path.cwd()), None)
    if problem is not None:
        raise UserError(f"{source}: {problem}")
    return _warnings(config, source)


# ---------------------------------------------------------------- rules across keys


def _lookup(layers: Layers, key: str) -> tuple[Any, str, int] | None:
    """A setting resolved over layers (later ones win): value, dotted key, layer index."""
    for index in range(len(layers) - 1, -1, -1):
        prefix, mapping = layers[index]
        if key in mapping:
            return mapping[key], f"{prefix}.{key}", index
    return None


def _later(*found: tuple[Any, str, int]) -> str:
    """The key of the most specific layer among settings (the one a user just changed)."""
    return max(found, key=lambda item: item[2])[1]


def _settings_problems(layers: Layers, positions: bool) -> Iterator[str]:
    """Sizes that cannot work together in one model's resolved settings."""
    dim, heads = _lookup(layers, "dim"), _lookup(layers, "n_heads")
    if dim and heads and dim[0] % heads[0]:
        nearest = min((n for n in range(1, dim[0] + 1) if dim[0] % n == 0),
                      key=lambda n: (abs(n - heads[0]), -n))
        yield (f"key '{_later(heads, dim)}': dim {dim[0]} ({dim[1]}) is not divisible by "
               f"n_heads {heads[0]} ({heads[1]}); choose n_heads dividing dim, e.g. "
               f"{nearest}")
    tokens, max_len = _lookup(layers, "tokens_per_batch"), _lookup(layers, "max_len")
    if tokens and max_len and tokens[0] <= max_len[0]:
        yield (f"key '{_later(tokens, max_len)}': tokens_per_batch {tokens[0]} ({tokens[1]}) "
               f"must be greater than max_len {max_len[0]} ({max_len[1]}), or a batch cannot "
               "hold one sentence; raise tokens_per_batch or lower max_len")
    probs = _lookup(layers, "pred_probs")
    if probs and abs(sum(probs[0]) - 1) > 1e-6:
        yield (f"key '{probs[1]}': {probs[0]} sums to {sum(probs[0]):g}; give the shares of "
               "masked, random and kept targets summing to 1 (paper: [0.8, 0.1, 0.1])")
    limit = _lookup(layers, "max_positions")
    if positions and limit:
        for name, extra in (("bptt", 0), ("max_len", 2)):
            found = _lookup(layers, name)
            if found and found[0] + extra > limit[0]:
                yield (f"key '{_later(found, limit)}': {name} {found[0]} ({found[1]})"
                       f"{' + 2' if extra else ''} exceeds max_positions {limit[0]} "
                       f"({limit[1]}); lower {name} or raise max_positions")


def _pair_sides_problems(section: str, pairs: dict[str, dict]) -> Iterator[str]:
    """Each split of pair l1-l2 must name exactly one file for l1 and one for l2."""
    for pair, splits in pairs.items():
        for split, sides in splits.items():
            if sorted(sides) != sorted(pair.split("-")):
                yield (f"key '{section}.pairs.{pair}.{split}' names sides {sorted(sides)}; "
                       f"give one file for each of {pair.split('-')}")


def pair_splits(entry: dict[str, Any]) -> list[str]:
    """The splits a parallel pair provides: a corpus given whole (`all`) is split by the
    workflow into train, valid and test."""
    return ["train", "valid", "test"] if "all" in entry else list(entry)


def _stored_pair(pairs: dict[str, dict], direction: str) -> str | None:
    """The configured pair ("en-ro") holding a direction ("ro-en"), if any."""
    a, b = direction.split("-")
    return next((pair for pair in (f"{a}-{b}", f"{b}-{a}") if pair in pairs), None)


def _model_problems(config: dict[str, Any]) -> Iterator[str]:
    """Pretrained models: their languages and TLM pairs exist, their sizes fit."""
    languages, pretrain = config["languages"], config["pretrain"]
    pairs = config["parallel"]["pairs"]
    yield from _settings_problems([("pretrain", pretrain)], positions=True)
    for model, own in config["models"].items():
        layers = [("pretrain", pretrain), (f"models.{model}", own)]
        yield from _settings_problems(layers, positions=True)
        for objective in ("clm", "mlm"):
            found = _lookup(layers, objective)
            for lang in found[0] if found else []:
                if lang not in languages:
                    yield (f"key '{found[1]}' names '{lang}', which is not in 'languages'; "
                           "add it there or remove it")
        found = _lookup(layers, "tlm")
        for pair in found[0] if found else []:
            if pair not in pairs:
                yield (f"key '{found[1]}' names '{pair}', which is not under "
                       "'parallel.pairs'; configure its files there")
            elif missing := sorted({"train", "valid", "test"} - set(pair_splits(pairs[pair]))):
                yield (f"key '{found[1]}' names TLM pair '{pair}', which has no "
                       f"{', '.join(missing)} files under 'parallel.pairs.{pair}'; add them")
    for name in config.get("imported_models") or {}:
        if name in config["models"]:
            yield (f"key 'imported_models.{name}': '{name}' is under both 'models' and "
                   "'imported_models'; rename one of them")


def _task_problems(config: dict[str, Any]) -> Iterator[str]:
    """Every model a task names exists; every language or pair it needs is configured."""
    known = [*config["models"], *(config.get("imported_models") or {})]
    known_text = ", ".join(known) or "none"
    for section in ("xnli_finetune", "embeddings", "retrieval"):
        for model in config.get(section, {}).get("models", []):
            if model not in known:
                yield (f"key '{section}.models' names '{model}', which is neither under "
                       f"'models' nor 'imported_models' (known: {known_text}); fix the name "
                       "or configure the model")
    for pair, sides in config.get("retrieval", {}).get("pairs", {}).items():
        if sorted(sides) != sorted(pair.split("-")):
            yield (f"key 'retrieval.pairs.{pair}' names sides {sorted(sides)}; give one file "
                   f"for each of {pair.split('-')}")
    mt = config.get("mt")
    if mt:
        defaults = mt.get("defaults", {})
        yield from _settings_problems([("mt.defaults", defaults)], positions=False)
        yield from _init_problems([("mt.defaults", defaults)], known, known_text)
        for experiment, own in mt["experiments"].items():
            layers = [("mt.defaults", defaults), (f"mt.experiments.{experiment}", own)]
            yield from _settings_problems(layers, positions=False)
            yield from _mt_experiment_problems(config, layers, known, known_text)
        if mt.get("example"):
            yield from _mt_example_problems(config, mt["example"])
    lm = config.get("lm")
    if lm:
        yield from _settings_problems([("pretrain", config["pretrain"]),
                                       ("lm.overrides", lm.get("overrides", {}))],
                                      positions=True)
        if lm["target"] not in config["languages"]:
            yield (f"key 'lm.target': '{lm['target']}' is not in 'languages'; add it there "
                   "(its monolingual test set is the benchmark)")
        for combination, langs in lm["combinations"].items():
            key = f"lm.combinations.{combination}"
            if lm["target"] not in langs:
                yield f"key '{key}' must include the target language '{lm['target']}'"
            for lang in langs:
                if lang not in config["languages"]:
                    yield (f"key '{key}' names '{lang}', which is not in 'languages'; add it "
                           "there or remove it")


def trained_directions(settings: dict[str, Any]) -> list[str]:
    """The directions an MT model learns: its supervised `directions` and, for each
    back-translation `bt` entry src-tgt, tgt-src (the direction BT trains)."""
    learned = list(settings.get("directions", []))
    learned += ["-".join(reversed(direction.split("-"))) for direction in settings.get("bt", [])]
    return sorted(set(learned))


def _unknown_experiment(config: dict[str, Any], key: str, experiment: str) -> str | None:
    """The problem line when `experiment` (named by `key`) is not under mt.experiments."""
    experiments = config.get("mt", {}).get("experiments", {})
    if experiment in experiments:
        return None
    return (f"key '{key}': '{experiment}' is not under 'mt.experiments' (known: "
            f"{', '.join(experiments) or 'none'}); name one of them")


def _learned_directions(config: dict[str, Any], experiment: str) -> list[str]:
    """The directions a configured MT experiment learns (its settings over mt.defaults)."""
    mt = config["mt"]
    return trained_directions({**mt.get("defaults", {}), **mt["experiments"][experiment]})


def _translate_test_mt_problems(config: dict[str, Any]) -> Iterator[str]:
    """xnli.translate_test.{lang}: {mt: experiment}: a configured experiment that learns
    lang-en."""
    for lang, entry in config["xnli"].get("translate_test", {}).items():
        if not isinstance(entry, dict):
            continue
        key, experiment = f"xnli.translate_test.{lang}.mt", entry["mt"]
        unknown = _unknown_experiment(config, key, experiment)
        if unknown:
            yield unknown
            continue
        learned = _learned_directions(config, experiment)
        if f"{lang}-en" not in learned:
            yield (f"key '{key}': experiment '{experiment}' does not learn {lang}-en (its "
                   f"directions: {', '.join(learned) or 'none'}); name one that does")


def _mt_example_problems(config: dict[str, Any], example: dict[str, Any]) -> Iterator[str]:
    """mt.example: a configured experiment, a direction it learns, a held-out split of its
    pair."""
    experiment, direction = example["experiment"], example["direction"]
    unknown = _unknown_experiment(config, "mt.example.experiment", experiment)
    if unknown:
        yield unknown
        return
    learned = _learned_directions(config, experiment)
    if direction not in learned:
        yield (f"key 'mt.example.direction': '{experiment}' does not learn '{direction}' (it "
               f"learns: {', '.join(learned) or 'none'}); pick one of these")
        return
    parallel = config["parallel"]["pairs"]
    pair, split = _stored_pair(parallel, direction), example["split"]
    if pair is None or split not in pair_splits(parallel[pair]):
        yield (f"key 'mt.example.split': '{direction}' has no {split} files under "
               "'parallel.pairs'; configure them there or pick another split")


def _init_problems(layers: Layers, known: list[str], known_text: str) -> Iterator[str]:
    """The models an MT encoder and decoder start from exist (or are 'random')."""
    for side in ("encoder_init", "decoder_init"):
        found = _lookup(layers, side)
        if found and found[0] != RANDOM_INIT and found[0] not in known:
            yield (f"key '{found[1]}': '{found[0]}' is neither under 'models' nor "
                   f"'imported_models' (known: {known_text}); name one of them or "
                   f"'{RANDOM_INIT}'")


def _mt_experiment_problems(config: dict[str, Any], layers: Layers, known: list[str],
                            known_text: str) -> Iterator[str]:
    """An MT experiment's start models, training data and test data exist in the config."""
    yield from _init_problems(layers, known, known_text)
    objectives = {name: _lookup(layers, name) for name in ("directions", "dae", "bt")}
    if not any(found and found[0] for found in objectives.values()):
        yield (f"key '{layers[-1][0]}': no objective; give directions (supervised), dae or "
               "bt (unsupervised)")
        return
    parallel, tests = config["parallel"]["pairs"], config["mt_data"]["pairs"]
    found = objectives["directions"]
    for direction in found[0] if found else []:
        pair = _stored_pair(parallel, direction)
        if pair is None or "train" not in pair_splits(parallel[pair]):
            yield (f"key '{found[1]}' names '{direction}', which has no train files under "
                   "'parallel.pairs'; configure them there")
    for name in ("dae", "bt"):
        found = objectives[name]
        for entry in found[0] if found else []:
            lang = entry.split("-")[0]
            if lang not in config["languages"]:
                yield (f"key '{found[1]}' names '{entry}', whose monolingual data ('{lang}') "
                       "is not in 'languages'; add it there")
    # Scored directions: eval_directions, else the supervised ones, else reversed bt.
    found = next((found for name in ("eval_directions", "directions")
                  if (found := _lookup(layers, name)) and found[0]), None)
    if found:
        key, scored = found[1], found[0]
    else:
        bt = objectives["bt"]
        key = bt[1] if bt else layers[-1][0]
        scored = ["-".join(reversed(direction.split("-"))) for direction in (bt[0] if bt else [])]
    for direction in scored:
        pair = _stored_pair(parallel, direction)
        if pair is None or "valid" not in pair_splits(parallel[pair]):
            yield (f"key '{key}': scored direction '{direction}' has no valid files under "
                   "'parallel.pairs' (model selection); configure them there")
        pair = _stored_pair(tests, direction)
        if pair is None or "test" not in tests[pair]:
            yield (f"key '{key}': scored direction '{direction}' has no test files under "
                   "'mt_data.pairs'; configure them there")


def _cross_key_problems(config: dict[str, Any]) -> Iterator[str]:
    """Mistakes the schema cannot see: keys that must agree with other keys."""
    for section, mapping in (("wiki.local", config["wiki"]["local"]),
                             ("local_text", config["local_text"])):
        for lang in mapping:
            if lang not in config["languages"]:
                yield (f"key '{section}.{lang}' names a language not in 'languages'; add it "
                       "there or remove the entry")
    xnli = config["xnli"]
    for key, english in (("translate_train", "whose training set is 'xnli.train'"),
                         ("translate_test", "whose test set is read as it is")):
        for lang in xnli.get(key, {}):
            if lang == "en" or lang not in xnli["languages"]:
                yield (f"key 'xnli.{key}.{lang}' names a language not in 'xnli.languages' "
                       f"(or en, {english}); add it there or remove it")
    yield from _translate_test_mt_problems(config)
    bpe = config["bpe"]
    if bool(bpe["codes"]) != bool(bpe["vocab"]):
        given = "bpe.codes" if bpe["codes"] else "bpe.vocab"
        yield (f"key '{given}' is set alone; set both bpe.codes and bpe.vocab (released "
               "files), or neither (learn them)")
    yield from _pair_sides_problems("parallel", config["parallel"]["pairs"])
    for pair, entry in config["parallel"]["pairs"].items():
        if "all" in entry and len(entry) > 1:
            yield (f"key 'parallel.pairs.{pair}' has 'all' and {sorted(set(entry) - {'all'})}; "
                   "give the whole corpus ('all', split by the workflow) or the splits, not both")
        if "all" in entry and "heldout" not in config["parallel"]:
            yield (f"key 'parallel.pairs.{pair}.all' needs 'parallel.heldout' (valid, test, "
                   "seed: the lines held out of the corpus); add it")
    yield from _pair_sides_problems("mt_data", config["mt_data"]["pairs"])
    yield from _model_problems(config)
    yield from _task_problems(config)


# ---------------------------------------------------------------- input files


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def as_list(sources: str | list[str]) -> list[str]:
    """A source or a list of sources (joined in order) as a list."""
    return [sources] if isinstance(sources, str) else list(sources)


def data_sources(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(dotted key, source) of every data input that may be a URL (or `URL#member`)."""
    for lang, sources in config["local_text"].items():
        for source in as_list(sources):
            yield f"local_text.{lang}", source
    for section in ("parallel", "mt_data"):
        for pair, splits in config[section]["pairs"].items():
            for split, sides in splits.items():
                for lang, sources in sides.items():
                    for source in as_list(sources):
                        yield f"{section}.pairs.{pair}.{split}.{lang}", source
    xnli = config["xnli"]
    for source in as_list(xnli["train"]):
        yield "xnli.train", source
    for key in ("translate_train", "translate_test"):
        for lang, sources in xnli.get(key, {}).items():
            if isinstance(sources, dict):  # {mt: experiment}: made by the workflow
                continue
            for source in as_list(sources):
                yield f"xnli.{key}.{lang}", source
    for split in ("valid", "test"):
        for path in dict.fromkeys(xnli[split].replace("{lang}", lang)
                                  for lang in xnli["languages"]):
            yield f"xnli.{split}", path


def tokenized_languages(config: dict[str, Any]) -> list[str]:
    """Every language some text of the config is tokenized as."""
    langs = dict.fromkeys(config["languages"])
    for section in ("parallel", "mt_data"):
        for pair in config[section]["pairs"]:
            langs.update(dict.fromkeys(pair.split("-")))
    langs.update(dict.fromkeys(config["xnli"]["languages"]))
    langs.update(dict.fromkeys(config["xnli"].get("translate_train", {})))
    for pair in config.get("retrieval", {}).get("pairs", {}):
        langs.update(dict.fromkeys(pair.split("-")))
    return list(langs)


def workflow_outputs(config: dict[str, Any]) -> set[str]:
    """Files the workflow itself creates that the config may name as inputs (an imported
    model's vocab, given as bpe.vocab): not missing, only not made yet."""
    return {os.path.normpath(f"results/{name}/pretrain/{file}")
            for name in config.get("imported_models") or {} for file in ("model.pt", "vocab")}


def input_files(config: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(dotted key, path) of every local input file the config names."""
    for lang, path in config["wiki"]["local"].items():
        yield f"wiki.local.{lang}", path
    if "ja" in tokenized_languages(config):
        yield "tokenize.kytea_model", config["tokenize"]["kytea_model"]
    for key in ("codes", "vocab"):
        if config["bpe"][key]:
            yield f"bpe.{key}", config["bpe"][key]
    for key, source in data_sources(config):
        if not is_url(source):  # URLs are downloaded by the workflow, not checked here
            yield key, source
    for pair, path in config.get("embeddings", {}).get("dictionaries", {}).items():
        yield f"embeddings.dictionaries.{pair}", path
    for pair, files in config.get("embeddings", {}).get("semeval17", {}).items():
        for part in ("data", "gold"):
            yield f"embeddings.semeval17.{pair}.{part}", files[part]
    for pair, sides in config.get("retrieval", {}).get("pairs", {}).items():
        for lang, path in sides.items():
            yield f"retrieval.pairs.{pair}.{lang}", path
    for name, entry in (config.get("imported_models") or {}).items():
        yield f"imported_models.{name}.checkpoint", entry["checkpoint"]


def _file_problems(config: dict[str, Any], base: Path) -> Iterator[str]:
    """Input files that are missing or unreadable, whatever outputs already exist."""
    created = {(base / path).resolve() for path in workflow_outputs(config)}
    for key, path in input_files(config):
        full = (base / path).resolve()
        if full in created:
            continue
        where = "" if Path(path).is_absolute() else f" (relative to {base})"
        if not full.exists():
            yield (f"key '{key}': {path} does not exist{where}; fix the path or put the file "
                   "there")
        elif not full.is_file():
            yield f"key '{key}': {path} is not a file{where}; name a file"
        elif not os.access(full, os.R_OK):
            yield (f"key '{key}': {path} cannot be read (permissions){where}; make it "
                   "readable")


# ---------------------------------------------------------------- warnings


def _warnings(config: dict[str, Any], source: str) -> list[str]:
    """Languages without tokenizer rules of their own: allowed (the paper falls back to
    English rules too), but a typo in a code looks the same, so say it."""
    known = MOSES_LANGUAGES | SEGMENTED_LANGUAGES
    fallback = [lang for lang in tokenized_languages(config) if lang not in known]
    if not fallback:
        return []
    return [f"{source}: no tokenizer rules for {', '.join(map(repr, fallback))} (Moses has "
            "none): tokenized by Moses with English rules; if a code is a typo, fix it"]


def config_hash(config: dict[str, Any]) -> str:
    """A short, stable hash of the whole config, recorded as provenance in metrics."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
