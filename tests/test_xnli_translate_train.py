"""XNLI TRANSLATE-TRAIN (paper 4.1): a language of `xnli.translate_train` is fine-tuned on its
own training set and recorded with setting translate-train; bad languages are refused.

There is no machine-translated MultiNLI offline: the French XNLI dev set (real French
premises, hypotheses and labels, disjoint from the French valid/test pairs used here) stands
in for it as the French training set.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from task_helpers import build_xnli, tiny_model
from workflow import REPO, absolute_demo_paths, base_config, snakemake, write_config

from xlm.config import validate_config
from xlm.errors import UserError
from xlm.report.records import load_metrics_file

LANGS = ["en", "fr"]


def test_translate_train_records_french_valid_and_test(tmp_path, shared_data):
    data, vocab, dictionary = build_xnli(shared_data, tmp_path, tuple(LANGS), n_eval=100,
                                         train_langs=("en", "fr"))
    model = tiny_model(tmp_path / "model.pt", dictionary, LANGS, seed=1, n_layers=1)
    out = tmp_path / "run"
    settings = {"lr": [1e-3], "batch_size": [16], "epochs": 1, "max_len": 64,
                "max_train": 320, "seed": 0}
    result = subprocess.run(
        [sys.executable, "-m", "xlm", "xnli", "--model", str(model), "--name", "tiny",
         "--data", str(data), "--vocab", str(vocab), "--languages", *LANGS,
         "--translate-train", "fr", "--settings", json.dumps(settings), "--out", str(out),
         "--threads", "1", "--config-hash", "abc", "--run-name", "test"],
        capture_output=True, text=True, check=True)
    assert "fr valid accuracy" in result.stderr  # model selection on the French valid set
    records = load_metrics_file(out / "metrics.json")
    cells = {(r["setting"], r["split"], r["lang"]) for r in records}
    zero_shot = {("zero-shot", split, lang) for split in ("valid", "test")
                 for lang in LANGS + ["avg"]}
    translated = {("translate-train", split, "fr") for split in ("valid", "test")}
    assert cells == zero_shot | translated
    for record in records:
        if record["setting"] == "translate-train":
            assert record["metric"] == "acc" and 0 <= record["value"] <= 100
            assert (record["lr"], record["batch_size"], record["epoch"]) == (1e-3, 16, 1)
    assert (out / "checkpoints" / "translate-train.fr" / "latest.pt").is_file()


@pytest.mark.parametrize("lang", ["ro", "en"])
def test_translate_train_language_outside_xnli_languages_is_refused(lang):
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["xnli"]["translate_train"] = {lang: "multinli.train.tsv"}
    with pytest.raises(UserError) as error:
        validate_config(config, source="my.yaml")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"my.yaml: key 'xnli.translate_train.{lang}' names a language "
                              "not in 'xnli.languages'")


def test_workflow_prepares_and_passes_the_translated_set(tmp_path, shared_data):
    """The translated set goes through the English train set's rules and reaches `xlm xnli`."""
    config = absolute_demo_paths(base_config(shared_data))
    french = str(shared_data / "xnli" / "dev.fr.tsv.gz")
    config["xnli"]["translate_train"] = {"fr": french}
    write_config(tmp_path, config)
    result = snakemake(tmp_path, "--dry-run", "results/mlm/xnli/metrics.json")
    assert f"xlm xnli-extract --input {french} --lang fr" in result.stdout
    finetune = [line for line in result.stdout.splitlines() if "xlm xnli --model" in line]
    assert len(finetune) == 1 and "--translate-train fr " in finetune[0]
    for suffix in ("s1.bin", "s2.idx", "label"):
        assert f"data/xnli/fr.train.{suffix}" in result.stdout
