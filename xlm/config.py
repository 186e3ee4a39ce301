"""Validate a run's configuration against the JSON schema, with one readable error line.

The workflow calls `validate_config` at start-up; the package itself never reads
config.yaml (rules pass each stage its settings as arguments).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from xlm.errors import UserError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def describe(error: jsonschema.ValidationError) -> str:
    """Turn a schema violation into 'key: what is wrong' naming the offending key."""
    where = _key_path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        if allowed:
            return (
                f"unknown key '{'.'.join([*map(str, error.absolute_path), extra[0]])}'"
                f" (allowed here: {', '.join(allowed)})"
            )
        return f"key '{where}': invalid entry '{extra[0]}'"
    if error.validator == "required":
        return f"key '{where}': {error.message}"
    if error.validator == "type":
        return f"key '{where}' must be of type {error.validator_value}, got {error.instance!r}"
    return f"key '{where}': {error.message}"


def validate_config(config: dict[str, Any], source: str = "config.yaml",
                    schema_path: Path = SCHEMA_PATH) -> None:
    """Raise UserError naming the first offending key if `config` breaks the schema."""
    schema = yaml.safe_load(schema_path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise UserError(f"{source}: {describe(errors[0])}; fix it and run again")
    for section, mapping in (("wiki.local", config["wiki"]["local"]),
                             ("local_text", config["local_text"])):
        for lang in mapping:
            if lang not in config["languages"]:
                raise UserError(
                    f"{source}: key '{section}.{lang}' names a language not in 'languages'"
                )
    xnli = config["xnli"]
    for lang in xnli.get("translate_train", {}):
        if lang == "en" or lang not in xnli["languages"]:
            raise UserError(
                f"{source}: key 'xnli.translate_train.{lang}' names a language not in "
                "'xnli.languages' (or en, whose training set is 'xnli.train'); add it there "
                "or remove it"
            )


def config_hash(config: dict[str, Any]) -> str:
    """A short, stable hash of the whole config, recorded as provenance in metrics."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
