"""Config validation: a typo or a wrong type stops the run with one line naming the key."""

from __future__ import annotations

import copy

import pytest
import yaml
from workflow import REPO, snakemake, write_config

from xlm.config import validate_config
from xlm.errors import UserError


@pytest.fixture(scope="module")
def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))


def test_default_config_is_valid(default_config):
    validate_config(default_config)


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


@pytest.mark.parametrize("preset", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_presets_are_valid_and_pin_their_dump_date(preset):
    config = yaml.safe_load(preset.read_text(encoding="utf-8"))
    validate_config(config, source=str(preset))
    assert config["wiki"]["date"] != "latest" and config["wiki"]["local"] == {}


def test_a_preset_replaces_the_default_config(tmp_path):
    """--configfile replaces config.yaml (the demo's local dumps must not leak in)."""
    preset = REPO / "configs" / "xnli15.yaml"
    command_config = yaml.safe_load(preset.read_text(encoding="utf-8"))
    write_config(tmp_path, command_config)
    result = snakemake(tmp_path, "--dry-run", "data/text/sw.train.txt", check=False)
    # Swahili is not in the demo: its dump must be downloaded, not taken from demo/.
    assert "rule download_wiki" in result.stdout, result.stderr[-2000:]
    assert "demo/wiki" not in result.stdout
