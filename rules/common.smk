# Helpers shared by every stage: config validation, the `xlm` command, paths.

import sys

from xlm.config import config_hash, validate_config
from xlm.errors import UserError

try:
    validate_config(config)
except UserError as error:
    sys.exit(f"error: {error}")

# Every rule runs the package through the Python that runs Snakemake (the .venv),
# or the one of the rule's conda environment under --sdm conda.
XLM = "python -m xlm"
LANGUAGES = list(config["languages"])
SPLITS = ["train", "valid", "test"]
CONFIG_HASH = config_hash(config)


wildcard_constraints:
    lang=r"[a-z]{2,3}",
    split=r"train|valid|test",
    shard=r"\d+",


def local_dump(lang):
    """The configured local dump of a language, or None when it is downloaded."""
    return config["wiki"]["local"].get(lang)
