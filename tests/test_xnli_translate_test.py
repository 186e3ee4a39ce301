"""XNLI TRANSLATE-TEST (paper 4.1): the model fine-tuned on English is evaluated on each
language's test set machine-translated into English, recorded with setting translate-test.

There are no machine-translated XNLI test sets offline, so English sets stand in for them:
"French translated into English" is the English valid set and "German translated into
English" the English test set. The records must then equal the zero-shot English valid and
test accuracies exactly: the same pairs, read as English with the English language id.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml
from task_helpers import build_xnli, tiny_model
from workflow import REPO, absolute_demo_paths, base_config, snakemake, write_config

from xlm.config import validate_config
from xlm.errors import UserError
from xlm.report.records import load_metrics_file

LANGS = ["en", "fr", "de"]


def test_translate_test_evaluates_the_english_model_on_english_text(tmp_path, shared_data):
    data, vocab, dictionary = build_xnli(shared_data, tmp_path, tuple(LANGS), n_eval=100)
    for stand_in, origin in (("valid", "fr"), ("test", "de")):
        for suffix in ("s1.bin", "s1.idx", "s2.bin", "s2.idx", "label"):
            shutil.copy(data / f"en.{stand_in}.{suffix}", data / f"en.test-from-{origin}.{suffix}")
    model = tiny_model(tmp_path / "model.pt", dictionary, LANGS, seed=1, n_layers=1)
    settings = {"lr": [1e-3], "batch_size": [16], "epochs": 1, "max_len": 64,
                "max_train": 320, "seed": 0}
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "xlm", "xnli", "--model", str(model), "--name", "tiny",
         "--data", str(data), "--vocab", str(vocab), "--languages", *LANGS,
         "--translate-test", "fr", "de", "--settings", json.dumps(settings),
         "--out", str(out), "--threads", "1", "--config-hash", "abc", "--run-name", "test"],
        capture_output=True, text=True, check=True)
    assert "translate-test fr (its test set in English) accuracy" in result.stderr
    records = load_metrics_file(out / "metrics.json")
    value = {(r["setting"], r["split"], r["lang"]): r["value"] for r in records
             if r["metric"] == "acc"}
    assert {key for key in value if key[0] == "translate-test"} == {
        ("translate-test", "test", lang) for lang in LANGS}
    assert value["translate-test", "test", "fr"] == value["zero-shot", "valid", "en"]
    assert value["translate-test", "test", "de"] == value["zero-shot", "test", "en"]
    assert value["translate-test", "test", "en"] == value["zero-shot", "test", "en"]
    # The valid and test sets differ, so the two equalities are not one value seen twice.
    assert value["zero-shot", "valid", "en"] != value["zero-shot", "test", "en"]


@pytest.mark.parametrize("lang", ["ro", "en"])
def test_translate_test_language_outside_xnli_languages_is_refused(lang):
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["xnli"]["translate_test"] = {lang: "xnli.test.translated.tsv"}
    with pytest.raises(UserError) as error:
        validate_config(config, source="my.yaml")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"my.yaml: key 'xnli.translate_test.{lang}' names a language "
                              "not in 'xnli.languages'")


def test_a_missing_translated_test_set_is_named_by_its_key(tmp_path, shared_data):
    config = absolute_demo_paths(base_config(shared_data))
    config["xnli"]["translate_test"] = {"fr": str(tmp_path / "missing.tsv")}
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--dry-run", "results/mlm/xnli/metrics.json", check=False)
    assert result.returncode != 0
    assert "xnli.translate_test.fr" in result.stderr and "missing.tsv" in result.stderr


def test_workflow_prepares_the_translated_test_set_as_english(tmp_path, shared_data):
    config = absolute_demo_paths(base_config(shared_data))
    english = str(shared_data / "xnli" / "test.en.tsv.gz")
    config["xnli"]["translate_test"] = {"fr": english}
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--dry-run", "--printshellcmds",
                       "results/mlm/xnli/metrics.json")
    assert f"xlm xnli-extract --input {english} --lang fr" in result.stdout
    assert ("xlm tokenize --lang en --input data/xnli/raw/test-from-fr.s1.en.txt"
            in result.stdout)
    finetune = [line for line in result.stdout.splitlines() if "xlm xnli --model" in line]
    assert len(finetune) == 1 and "--translate-test fr " in finetune[0]
    for suffix in ("s1.bin", "s2.idx", "label"):
        assert f"data/xnli/en.test-from-fr.{suffix}" in result.stdout


@pytest.mark.parametrize("experiment, problem", [
    ("nope", "'nope' is not under 'mt.experiments'"),
    ("sup_ro_en_mlm", "experiment 'sup_ro_en_mlm' does not learn fr-en (its directions: "
                      "ro-en)"),
])
def test_translation_by_an_mt_experiment_must_learn_that_direction(experiment, problem):
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["xnli"]["translate_test"] = {"fr": {"mt": experiment}}
    with pytest.raises(UserError) as error:
        validate_config(config, source="my.yaml", base=REPO)
    assert str(error.value).startswith(f"my.yaml: key 'xnli.translate_test.fr.mt': {problem}")


def test_workflow_translates_the_test_set_with_our_mt_model(tmp_path, shared_data):
    """{mt: experiment}: the French test set is translated by that model (the tiny
    pipeline runs it for real) and then prepared as English."""
    config = absolute_demo_paths(base_config(shared_data))
    config["mt"]["experiments"]["sup_fr_en"] = {
        "kind": "supervised", "setting": "unidirectional", "directions": ["fr-en"],
        "encoder_init": "mlm", "decoder_init": "mlm"}
    config["xnli"]["translate_test"] = {"fr": {"mt": "sup_fr_en", "beam": 3}}
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--dry-run", "results/mlm/xnli/metrics.json")
    french = config["xnli"]["test"].format(lang="fr")
    assert ("xlm xnli-translate --model results/sup_fr_en/mt/model.pt "
            f"--input {french} --lang fr --beam 3 "
            "--output data/xnli/translated/test.fr-en.tsv") in result.stdout
    assert ("xlm xnli-extract --input data/xnli/translated/test.fr-en.tsv --lang fr"
            in result.stdout)
