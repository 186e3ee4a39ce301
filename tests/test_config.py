"""Config validation: a typo, a wrong type, keys that disagree or a missing input file stop
the run with one line naming the key (unit tests of the validator; the same mistakes
through real Snakemake runs are in test_config_startup.py)."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from workflow import REPO, snakemake, write_config

from xlm.config import data_sources, input_files, is_url, validate_config
from xlm.errors import UserError
from xlm.text.languages import MOSES_LANGUAGES, SEGMENTED_LANGUAGES


@pytest.fixture(scope="module")
def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))


def refused(config: dict, base=REPO) -> str:
    """The one-line error validating `config` raises (relative paths read from `base`)."""
    with pytest.raises(UserError) as error:
        validate_config(config, source="my.yaml", base=base)
    message = str(error.value)
    assert "\n" not in message and message.startswith("my.yaml: ")
    return message


def test_the_start_up_language_sets_match_the_tokenizers():
    """xlm.text.languages spares the start-up from loading sacremoses' tokenizer."""
    from xlm.text import tokenizers

    assert MOSES_LANGUAGES == tokenizers.moses_languages()
    assert SEGMENTED_LANGUAGES == tokenizers.SEGMENTED_LANGUAGES


def test_default_config_is_valid(default_config):
    assert validate_config(default_config, base=REPO) == [
        "config.yaml: no tokenizer rules for 'ne' (Moses has none): tokenized by Moses with "
        "English rules; if a code is a typo, fix it"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["tokenize"].update(shardz=2), "unknown key 'tokenize.shardz'"),
    (lambda c: c.update(langauges=["en"]), "unknown key 'langauges'"),
    (lambda c: c["tokenize"].update(shards="two"),
     "key 'tokenize.shards' must be of type integer, got 'two'"),
    (lambda c: c["wiki"].update(date="latest"), "key 'wiki.date': 'latest' does not match"),
    (lambda c: c["wiki"]["local"].update(xx="a.bz2"), "'wiki.local.xx' names a language not"),
    (lambda c: c["split"].pop("seed"), "key 'split': 'seed' is a required property"),
])
def test_bad_config_names_the_key(default_config, edit, message):
    config = copy.deepcopy(default_config)
    edit(config)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_config(config, source="my.yaml")


def _set(path: str, value):
    """An edit setting the dotted key `path` (created if missing) to `value`."""
    def edit(config):
        *parents, last = path.split(".")
        for part in parents:
            config = config.setdefault(part, {})
        config[last] = value
    return edit


# (edit, start of the message after "my.yaml: ")
CROSS_KEY_MISTAKES = [
    # dim divisible by n_heads, wherever a model's size is set
    (_set("pretrain.n_heads", 3),
     "key 'pretrain.n_heads': dim 64 (pretrain.dim) is not divisible by n_heads 3 "
     "(pretrain.n_heads); choose n_heads dividing dim, e.g. 4"),
    (_set("models.mlm.dim", 66), "key 'models.mlm.dim': dim 66 (models.mlm.dim) is not "
     "divisible by n_heads 4 (pretrain.n_heads)"),
    (_set("lm.overrides.n_heads", 5), "key 'lm.overrides.n_heads': dim 64 (pretrain.dim)"),
    (_set("mt.defaults.n_heads", 6), "key 'mt.defaults.n_heads': dim 64 (mt.defaults.dim)"),
    (_set("mt.experiments.sup_ro_en_random.dim", 70),
     "key 'mt.experiments.sup_ro_en_random.dim': dim 70"),
    # pred_probs sum to 1; word_pred in (0, 1)
    (_set("pretrain.pred_probs", [0.8, 0.1, 0.2]),
     "key 'pretrain.pred_probs': [0.8, 0.1, 0.2] sums to 1.1; give the shares"),
    (_set("models.mlm_tlm.pred_probs", [0.5, 0.1, 0.1]), "key 'models.mlm_tlm.pred_probs'"),
    (_set("pretrain.word_pred", 1.0),
     "key 'pretrain.word_pred': 1.0 is greater than or equal to the maximum of 1"),
    (_set("models.mlm.word_pred", 0), "key 'models.mlm.word_pred': 0 is less than or equal"),
    # tokens_per_batch > max_len
    (_set("pretrain.tokens_per_batch", 100), "key 'pretrain.tokens_per_batch': "
     "tokens_per_batch 100 (pretrain.tokens_per_batch) must be greater than max_len 100"),
    (_set("models.mlm_tlm.max_len", 2000), "key 'models.mlm_tlm.max_len': tokens_per_batch "
     "1000 (pretrain.tokens_per_batch) must be greater than max_len 2000"),
    (_set("mt.experiments.unsup_en_fr_mlm.tokens_per_batch", 30),
     "key 'mt.experiments.unsup_en_fr_mlm.tokens_per_batch': tokens_per_batch 30"),
    (_set("lm.overrides.max_len", 1000), "key 'lm.overrides.max_len': tokens_per_batch 1000"),
    (_set("pretrain.bptt", 300), "key 'pretrain.bptt': bptt 300 (pretrain.bptt) exceeds "
     "max_positions 256"),
    # every model a task names exists
    (_set("mt.experiments.sup_ro_en_mlm.encoder_init", "xlm"),
     "key 'mt.experiments.sup_ro_en_mlm.encoder_init': 'xlm' is neither under 'models' nor "
     "'imported_models' (known: clm, mlm, mlm_tlm); name one of them or 'random'"),
    (_set("mt.defaults.decoder_init", "xlm"), "key 'mt.defaults.decoder_init': 'xlm' is "
     "neither"),
    (_set("xnli_finetune.models", ["mlm", "xlm"]), "key 'xnli_finetune.models' names 'xlm', "
     "which is neither under 'models' nor 'imported_models'"),
    (_set("embeddings.models", ["mlm_tlm", "tlm"]), "key 'embeddings.models' names 'tlm'"),
    (_set("imported_models", {"mlm": {"checkpoint": "README.md"}}),
     "key 'imported_models.mlm': 'mlm' is under both 'models' and 'imported_models'"),
    # languages and pairs a model or task names are configured
    (_set("models.mlm.mlm", ["en", "sw"]), "key 'models.mlm.mlm' names 'sw', which is not in "
     "'languages'"),
    (_set("models.mlm_tlm.tlm", ["en-fr", "en-sw"]), "key 'models.mlm_tlm.tlm' names "
     "'en-sw', which is not under 'parallel.pairs'"),
    (_set("lm.combinations.lm_hi", ["hi"]), "key 'lm.combinations.lm_hi' must include the "
     "target language 'ne'"),
    (_set("lm.target", "sw"), "key 'lm.target': 'sw' is not in 'languages'"),
    (_set("mt.experiments.sup_ro_en_mlm.directions", ["ro-fr"]),
     "key 'mt.experiments.sup_ro_en_mlm.directions' names 'ro-fr', which has no train files"),
    (_set("mt.experiments.unsup_en_fr_mlm.bt", ["en-hi"]), "key "
     "'mt.experiments.unsup_en_fr_mlm.bt': scored direction 'hi-en' has no valid files"),
    (_set("mt.experiments.x", {"kind": "supervised"}), "key 'mt.experiments.x': no objective"),
    (_set("mt.example.experiment", "sup_xx"), "key 'mt.example.experiment': 'sup_xx' is not "
     "under 'mt.experiments'"),
    (_set("mt.example.direction", "en-ro"), "key 'mt.example.direction': 'sup_ro_en_random' "
     "does not learn 'en-ro' (it learns: ro-en)"),
    (_set("bpe.codes", "demo/dict/muse-full-top1500.en-fr.txt"), "key 'bpe.codes' is set "
     "alone; set both bpe.codes and bpe.vocab"),
    (_set("parallel.pairs.en-fr.valid", {"en": "a", "de": "b"}),
     "key 'parallel.pairs.en-fr.valid' names sides ['de', 'en']; give one file for each of"),
]


@pytest.mark.parametrize(("edit", "message"), CROSS_KEY_MISTAKES)
def test_keys_that_disagree_are_refused_naming_the_key(default_config, edit, message):
    config = copy.deepcopy(default_config)
    edit(config)
    assert refused(config).startswith(f"my.yaml: {message}")


@pytest.mark.parametrize(("key", "text", "fix"), [
    ("pretrain.lr", "1e-3", "1.0e-3"),
    ("mt.defaults.lr", "5E-4", "5.0e-4"),
    ("pretrain.max_steps", "1e5", "100000"),
    ("pretrain.eps", "0.000001", "0.000001"),  # quoted in the file
])
def test_a_number_yaml_reads_as_text_says_how_to_write_it(default_config, tmp_path, key,
                                                          text, fix):
    """PyYAML (YAML 1.1, as Snakemake reads configs) takes 1e-3 for a string."""
    config = copy.deepcopy(default_config)
    _set(key, "PLACEHOLDER")(config)
    path = tmp_path / "config.yaml"
    written = yaml.safe_dump(config, sort_keys=False).replace("PLACEHOLDER", text)
    if key == "pretrain.eps":
        written = written.replace("eps: 0.000001", "eps: '0.000001'")
    path.write_text(written, encoding="utf-8")
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    value = loaded
    for part in key.split("."):
        value = value[part]
    assert isinstance(value, str)
    assert refused(loaded) == (f"my.yaml: key '{key}' must be a number, but YAML read {text!r} "
                               "as text (YAML needs a dot in an exponent's mantissa, and no "
                               f"quotes): write {fix} instead")


def test_a_number_in_a_list_is_named_by_its_index(default_config):
    config = copy.deepcopy(default_config)
    config["xnli_finetune"]["lr"] = [1e-5, "5e-6"]
    assert refused(config).startswith("my.yaml: key 'xnli_finetune.lr.1' must be a number, "
                                      "but YAML read '5e-6' as text")


# Every kind of input file the config names, by its key.
MISSING_FILES = [
    "wiki.local.en", "local_text.ne", "tokenize.kytea_model", "parallel.pairs.en-fr.train.fr",
    "mt_data.pairs.en-ro.test.ro", "xnli.train", "embeddings.dictionaries.en-de",
]


@pytest.mark.parametrize("key", MISSING_FILES)
def test_a_missing_input_file_is_named_with_its_key(default_config, key):
    config = copy.deepcopy(default_config)
    _set(key, "demo/nowhere/file.txt")(config)
    assert refused(config) == (f"my.yaml: key '{key}': demo/nowhere/file.txt does not exist "
                               f"(relative to {REPO}); fix the path or put the file there")


def test_a_missing_file_in_a_list_of_training_sets_is_named(default_config):
    config = copy.deepcopy(default_config)
    config["xnli"]["train"] = ["demo/xnli/dev.en.tsv.gz", "demo/nowhere/sick.tsv"]
    assert refused(config) == (f"my.yaml: key 'xnli.train': demo/nowhere/sick.tsv does not "
                               f"exist (relative to {REPO}); fix the path or put the file there")
    config["xnli"]["train"] = ["demo/xnli/dev.en.tsv.gz", "demo/xnli/test.en.tsv.gz"]
    validate_config(config, base=REPO)


def test_missing_per_language_files_and_checkpoints_are_named(default_config, tmp_path):
    config = copy.deepcopy(default_config)
    config["xnli"]["valid"] = "demo/xnli/dev.{lang}.tsv"  # the real files end in .gz
    assert refused(config).startswith("my.yaml: key 'xnli.valid': demo/xnli/dev.en.tsv does "
                                      "not exist")
    config = copy.deepcopy(default_config)
    config["imported_models"] = {"xnli15": {"checkpoint": str(tmp_path / "mlm.pth")}}
    assert refused(config) == (f"my.yaml: key 'imported_models.xnli15.checkpoint': "
                               f"{tmp_path / 'mlm.pth'} does not exist; fix the path or put "
                               "the file there")
    config["bpe"].update(codes=str(tmp_path / "codes"), vocab="results/xnli15/pretrain/vocab")
    (tmp_path / "mlm.pth").write_bytes(b"")
    # bpe.vocab is written by import_checkpoint: not missing, only not made yet.
    assert refused(config).startswith(f"my.yaml: key 'bpe.codes': {tmp_path / 'codes'} does "
                                      "not exist")
    (tmp_path / "codes").write_text("a b 1\n", encoding="utf-8")
    validate_config(config, base=REPO)


def test_a_folder_is_refused(default_config, tmp_path):
    """(The unreadable-file case is not tested: the tests run as root, who reads any file.)"""
    config = copy.deepcopy(default_config)
    config["xnli"]["train"] = str(tmp_path)
    assert refused(config) == (f"my.yaml: key 'xnli.train': {tmp_path} is not a file; name a "
                               "file")


def test_url_sides_and_unused_kytea_model_are_not_files(default_config):
    config = copy.deepcopy(default_config)
    config["parallel"]["pairs"]["en-fr"]["train"]["fr"] = "https://example.org/en-fr.fr"
    config["tokenize"]["kytea_model"] = "nowhere.bin"
    with pytest.raises(UserError, match="tokenize.kytea_model"):
        validate_config(config, base=REPO)  # ja is one of the languages
    for section in ("languages", "models"):
        config[section] = (["en", "fr"] if section == "languages" else
                           {"mlm": {"mlm": ["en", "fr"]}})
    config["local_text"], config["wiki"]["local"] = {}, {"en": config["wiki"]["local"]["en"]}
    config["xnli"]["languages"] = ["en", "fr"]
    config["parallel"]["pairs"] = {"en-fr": config["parallel"]["pairs"]["en-fr"]}
    config["mt_data"]["pairs"] = {"en-fr": config["mt_data"]["pairs"]["en-fr"]}
    for section in ("xnli_finetune", "embeddings", "mt", "lm", "retrieval"):  # the tasks
        config.pop(section, None)
    assert validate_config(config, base=REPO) == []  # no ja: no KyTea model needed
    assert "parallel.pairs.en-fr.train.fr" not in dict(input_files(config))


def test_every_file_of_the_default_config_is_checked(default_config):
    """The keys input_files walks cover every path-like value of the default config."""
    named = {path for _, path in input_files(default_config)}

    def paths(value):
        if isinstance(value, dict):
            return [p for item in value.values() for p in paths(item)]
        if isinstance(value, list):
            return [p for item in value for p in paths(item)]
        return [value] if isinstance(value, str) and value.startswith("demo/") else []

    expected = {re.sub(r"\{lang\}", lang, path) if "{lang}" in path else path
                for path in paths(default_config)
                for lang in default_config["xnli"]["languages"]}
    assert named == expected


def test_snakemake_stops_with_one_line(default_config, tmp_path):
    config = copy.deepcopy(default_config)
    config["tokenize"]["shardz"] = 2
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {tmp_path / 'config.yaml'}: unknown key 'tokenize.shardz'")
    assert "Traceback" not in result.stderr


# The study's configs name local data under `{data_root}` (tests/test_study.py checks them).
@pytest.mark.parametrize("preset", sorted(p for p in (REPO / "configs").glob("*.yaml")
                                          if not p.name.startswith("study")),
                         ids=lambda p: p.name)
def test_presets_are_valid_and_pin_their_dump_date(preset, tmp_path):
    """Valid in an empty folder: every data input is a URL the workflow downloads (none is
    placed by hand), archive members named after '#'."""
    config = yaml.safe_load(preset.read_text(encoding="utf-8"))
    validate_config(config, source=str(preset), base=tmp_path)
    assert config["wiki"]["date"] != "latest" and config["wiki"]["local"] == {}
    sources = [source for _, source in data_sources(config)]
    assert sources and all(is_url(source) for source in sources)
    assert all("#" in source for source in sources if source.endswith(".tsv"))


def test_a_preset_replaces_the_default_config(tmp_path):
    """--configfile replaces config.yaml (the demo's local dumps must not leak in)."""
    preset = REPO / "configs" / "xnli15.yaml"
    command_config = yaml.safe_load(preset.read_text(encoding="utf-8"))
    write_config(tmp_path, command_config)
    for _, path in input_files(command_config):  # the data a user places
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    result = snakemake(tmp_path, "--dry-run", "data/text/sw.train.txt", check=False)
    # Swahili is not in the demo: its dump must be downloaded, not taken from demo/.
    assert "fetch https://dumps.wikimedia.org/swwiki/" in result.stdout, result.stderr[-2000:]
    assert "demo/wiki" not in result.stdout


@pytest.mark.parametrize("section, value, key", [
    ("embeddings", {"semeval17": {"en-de": {"data": "demo/dict/muse-full-top1500.en-de.txt",
                                            "gold": "demo/nowhere/file.txt"}}},
     "embeddings.semeval17.en-de.gold"),
    ("xnli", {"translate_test": {"fr": "demo/nowhere/file.txt"}}, "xnli.translate_test.fr"),
])
def test_a_missing_evaluation_set_is_named_with_its_key(default_config, section, value, key):
    config = copy.deepcopy(default_config)
    config[section].update(value)
    assert refused(config) == (f"my.yaml: key '{key}': demo/nowhere/file.txt does not exist "
                               f"(relative to {REPO}); fix the path or put the file there")
