# Helpers shared by every stage: config validation, the `xlm` command, paths.

import shlex
import signal
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

from xlm.config import config_hash, validate_config
from xlm.errors import UserError

CONFIG_FILES = list(dict.fromkeys(str(Path(f).resolve()) for f in workflow.configfiles))
try:
    validate_config(config, source=" + ".join(CONFIG_FILES) or "config")
except UserError as error:
    sys.exit(f"error: {error}")

# Rules call the `xlm` command. Locally it is the one next to the Python that runs
# Snakemake (the .venv); under `--sdm conda` it is the package from this repository run
# by the Python of the rule's environment (envs/).
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
    shell.prefix(
        f"set -euo pipefail; export PYTHONPATH={shlex.quote(workflow.basedir)}"
        '${PYTHONPATH:+:$PYTHONPATH}; xlm() { python -m xlm "$@"; }; '
    )
else:
    shell.prefix(
        f"set -euo pipefail; export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH; "
    )
XLM = "xlm"  # kept for rules that still write {XLM}; prefer writing xlm directly
PREPROCESS_ENV = "../envs/preprocess.yaml"
TRAIN_ENV = "../envs/train.yaml"
# SLURM sends SIGUSR1 to a job's processes before its time limit (profiles/slurm). It is
# meant for the training process, which checkpoints and exits so that the retried job
# resumes; the Snakemake running inside the job must outlive it rather than die of it.
signal.signal(signal.SIGUSR1, lambda signum, frame: None)

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


def dump_path(wildcards):
    """A language's dump: its local file from config, else the downloaded one."""
    return local_dump(wildcards.lang) or f"data/raw/wiki/{wildcards.lang}.xml.bz2"


def clean_text_path(wildcards):
    """A language's clean text: its local_text file from config, else the extracted dump."""
    return config["local_text"].get(wildcards.lang) or f"data/extract/{wildcards.lang}.txt"


def checksum_option(lang):
    url = config["wiki"]["checksum_url"]
    if not url:
        return ""
    return "--checksum-url " + shlex.quote(url.format(lang=lang, date=config["wiki"]["date"]))


def extract_options(wildcards):
    """The extraction settings as flags (also the rule's params: a change reruns it)."""
    settings = config["extract"]
    flags = f"--min-chars {settings['min_chars']}"
    if settings["expand_templates"]:
        flags += " --expand-templates"
    return flags


def tokenizer_settings(lang):
    """Only the tokenize settings that affect `lang`, so changing, say, the Thai engine
    reruns Thai tokenization and nothing else."""
    settings = config["tokenize"]
    chosen = {"lowercase": settings["lowercase"], "remove_accents": settings["remove_accents"]}
    if lang == "ro":
        chosen["romanian_normalize"] = settings["romanian_normalize"]
        chosen["romanian_remove_diacritics"] = settings["romanian_remove_diacritics"]
    elif lang == "ja":
        chosen["kytea_model"] = settings["kytea_model"]
    elif lang == "th":
        chosen["thai_engine"] = settings["thai_engine"]
    elif lang == "zh":
        chosen["chinese_segmenter"] = settings["chinese_segmenter"]
    return chosen


def tokenizer_flags(lang):
    """Command-line flags of `xlm tokenize` for a language."""
    flags = []
    for key, value in sorted(tokenizer_settings(lang).items()):
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif value is False:
            if key.startswith("romanian_"):
                flags.append("--no-" + key.replace("_", "-"))
        else:
            flags.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(flags)


def tokenizer_options(wildcards):
    return tokenizer_flags(wildcards.lang)


def tokenizer_inputs(wildcards):
    """Files a tokenizer reads (the KyTea model), so replacing one reruns tokenization."""
    if wildcards.lang == "ja":
        return {"kytea_model": config["tokenize"]["kytea_model"]}
    return {}
