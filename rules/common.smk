# Helpers shared by every stage: config validation, the `xlm` command, paths.

import hashlib
import json
import os
import re
import shlex
import signal
import sys
import urllib.parse
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

from xlm.config import as_list, config_hash, data_sources, validate_config
from xlm.data_root import expand_data_root
from xlm.errors import UserError
from xlm.text.download import remote_size

# Before any job (also for `snakemake -n`): schema, rules across keys, input files. Errors
# name the config file(s) actually given (--configfile replaces config.yaml).
CONFIG_FILES = list(dict.fromkeys(str(Path(f).resolve()) for f in workflow.configfiles))
CONFIG_SOURCE = " and ".join(
    CONFIG_FILES + (["--config"] if workflow.config_settings.config else [])
) or "config"
# Error messages of jobs name it too; through the environment, not the command, so that
# giving the same settings under another file name reruns nothing.
os.environ.update({"XLM_CONFIG_SOURCE": CONFIG_SOURCE})
try:
    expand_data_root(config, source=CONFIG_SOURCE)  # `{data_root}/...` paths (configs/study.yaml)
    for _warning in validate_config(config, source=CONFIG_SOURCE):
        print(f"warning: {_warning}", file=sys.stderr)
except UserError as error:
    sys.exit(f"error: {error}")

# Rules call the `xlm` command. Locally it is the one next to the Python that runs
# Snakemake (the .venv); under `--sdm conda` it is the package from this repository run
# by the Python of the rule's environment (envs/).
if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
    shell.prefix(
        f"set -euo pipefail; trap true USR1; export PYTHONPATH={shlex.quote(workflow.basedir)}"
        '${PYTHONPATH:+:$PYTHONPATH}; xlm() { python -m xlm "$@"; }; '
    )
else:
    shell.prefix(
        f"set -euo pipefail; trap true USR1; "
        f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH; "
    )
PREPROCESS_ENV = "../envs/preprocess.yaml"
TRAIN_ENV = "../envs/train.yaml"
# SLURM sends SIGUSR1 to a job's processes before its time limit (profiles/slurm). It is
# meant for the training process, which checkpoints and exits so that the retried job
# resumes; the Snakemake running inside the job, and the rule's shell (`trap true USR1`
# above, not inherited by the command), must outlive it rather than die of it.
signal.signal(signal.SIGUSR1, lambda signum, frame: None)

LANGUAGES = list(config["languages"])
SPLITS = ["train", "valid", "test"]
CONFIG_HASH = config_hash(config)



def local_dump(lang):
    """The configured local dump of a language, or None when it is downloaded."""
    return config["wiki"]["local"].get(lang)


def dump_path(wildcards):
    """A language's dump: its local file from config, else the downloaded one."""
    return local_dump(wildcards.lang) or f"data/raw/wiki/{wildcards.lang}.xml.bz2"


# Sharded extraction of multistream dumps (rules/wiki.smk).
EXTRACT_SHARDS = int(config["extract"].get("shards", 1))


def index_source(lang):
    """The multistream index of a language's dump: local file, URL, or None."""
    local = config["wiki"].get("local_index", {}).get(lang)
    if local_dump(lang):
        return local
    url = config["wiki"].get("index_url")
    return url.format(lang=lang, date=config["wiki"]["date"]) if url else None


SHARDED = [lang for lang in LANGUAGES if EXTRACT_SHARDS > 1 and index_source(lang)]


def language_pattern(langs):
    """A wildcard constraint matching exactly these languages (nothing when empty)."""
    return "|".join(langs) if langs else "(?!x)x"


def index_path(wildcards):
    """The index file of a sharded language: its local file, else the downloaded one."""
    local = config["wiki"].get("local_index", {}).get(wildcards.lang)
    if local_dump(wildcards.lang):
        return local
    return f"data/raw/wiki/{wildcards.lang}.index.txt.bz2"


def clean_text_path(wildcards):
    """A language's clean text: its local_text source(s) from config, else the extracted
    dump."""
    sources = config["local_text"].get(wildcards.lang)
    if not sources:
        return f"data/extract/{wildcards.lang}.txt"
    if config.get("local_text_max_lines"):  # cut to length by concat_text
        return f"data/raw/text/{wildcards.lang}.txt"
    return joined_source(sources, f"data/raw/text/{wildcards.lang}.txt")


def checksum_option(lang):
    url = config["wiki"]["checksum_url"]
    if not url:
        return ""
    return f"--checksum-url {shlex.quote(url.format(lang=lang, date=config['wiki']['date']))}"


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
        flag = f"--{key.replace('_', '-')}"
        if value is True:
            flags.append(flag)
        elif value is False:
            if key.startswith("romanian_"):
                flags.append(f"--no-{key.replace('_', '-')}")
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


# ---------------------------------------------------------------- BPE (rules/bpe.smk)

BPE_SETTINGS = config["bpe"]  # both codes and vocab, or neither (checked in xlm/config.py)
LEARN_BPE = not BPE_SETTINGS["codes"]
BPE_CODES = "data/bpe/codes" if LEARN_BPE else BPE_SETTINGS["codes"]
BPE_VOCAB = "data/bpe/vocab" if LEARN_BPE else BPE_SETTINGS["vocab"]


def bpe_apply_inputs(wildcards):
    """Codes, and the vocabulary only when it is given (a learned one is counted on BPE'd
    text, so applying cannot wait for it)."""
    return {"codes": BPE_CODES} if LEARN_BPE else {"codes": BPE_CODES, "vocab": BPE_VOCAB}


def bpe_vocab_flag(wildcards, input):
    return f"--vocab {shlex.quote(str(input.vocab))}" if "vocab" in input.keys() else ""


# ---------------------------------------------------------------- Downloads (rules/download.smk)

# Every URL the config names, by the file name it is downloaded to, and every archive
# member by where it is extracted to (filled as the sources below are resolved).
DOWNLOADS = {}
MEMBERS = {}
# sha256 of downloads without a published checksum, pinned beside the config file given.
LOCK_FILE = config.get("download", {}).get("lock") or (
    str(Path(CONFIG_FILES[0]).with_suffix(".lock")) if CONFIG_FILES else "config.lock"
)


def is_url(source):
    return source.startswith(("http://", "https://"))


def download_name(url):
    """A unique, readable file name for a URL: a hash of it and its last name part."""
    parts = [part for part in re.split(r"[/=?&]", urllib.parse.unquote(url)) if part]
    last = re.sub(r"[^A-Za-z0-9._-]+", "_", parts[-1])
    return f"{hashlib.sha1(url.encode()).hexdigest()[:10]}-{last[-60:] or 'download'}"


def source_path(source):
    """The local file of a source: a path as given, a URL's download, or an archive
    member's extracted file (`URL#member`; an SGML member as text, `.sgm.txt`)."""
    if not is_url(source):
        return source
    url, _, member = source.partition("#")
    name = download_name(url)
    DOWNLOADS[name] = url
    if not member:
        return f"data/downloads/{name}"
    path = f"data/downloads/{name}.d/{member}" + (".txt" if member.endswith(".sgm") else "")
    MEMBERS[path] = (name, member)
    return path


def joined_source(sources, target):
    """One file for a source or a list of them: a single source's own file, else
    `target` (rule concat_text joins the list)."""
    if isinstance(sources, str):
        return source_path(sources)
    return target


# ---------------------------------------------------------------- Parallel corpora (rules/parallel.smk)

PARALLEL = config["parallel"]


def corpus_sides(wildcards):
    """Both sides' sources of a corpus given whole, each a list joined in order."""
    sides = PARALLEL["pairs"][f"{wildcards.l1}-{wildcards.l2}"]["all"]
    return {lang: [source_path(s) for s in as_list(sides[lang])]
            for lang in (wildcards.l1, wildcards.l2)}


def split_side_flags(wildcards, input):
    return " ".join(
        "--side " + " ".join(shlex.quote(str(path)) for path in getattr(input, lang))
        for lang in (wildcards.l1, wildcards.l2)
    )


def pair_splits(entry):
    """A corpus given whole (`all`) is split by the workflow into train, valid and test."""
    return SPLITS if "all" in entry else list(entry)


def parallel_source(pair, split, lang):
    """A side's file: the configured path, its download, or its share of a corpus split
    by the workflow (split_parallel)."""
    entry = PARALLEL["pairs"][pair]
    if "all" in entry:
        return f"data/para/split/{pair}.{split}.{lang}.txt"
    return joined_source(entry[split][lang], f"data/para/joined/{pair}.{split}.{lang}.txt")


def parallel_datasets():
    """Every binarized side of every configured pair and split."""
    return [
        f"data/bin/{pair}.{lang}.{split}.{ext}"
        for pair, entry in PARALLEL["pairs"].items()
        for split in pair_splits(entry)
        for lang in pair.split("-")
        for ext in ("bin", "idx")
    ]


# ---------------------------------------------------------------- XNLI and MT test data (rules/task_data.smk)

XNLI = config["xnli"]
MT_DATA = config["mt_data"]
# TRANSLATE-TRAIN: languages with a translated training set (checked in xlm/config.py).
XNLI_TRANSLATE_TRAIN = XNLI.get("translate_train", {})
# TRANSLATE-TEST: a language's test set in English is the English split "test-from-{lang}".
XNLI_TRANSLATE_TEST = XNLI.get("translate_test", {})
TRANSLATED_TEST = "test-from-"
XNLI_SPLITS = {"train": ["en", *XNLI_TRANSLATE_TRAIN], "valid": XNLI["languages"],
               "test": XNLI["languages"],
               **{f"{TRANSLATED_TEST}{lang}": ["en"] for lang in XNLI_TRANSLATE_TEST}}


def xnli_source(wildcards):
    """English train is `xnli.train`, another language's its `xnli.translate_train`, split
    test-from-{lang} its `xnli.translate_test`; each one TSV or a list (xlm xnli-extract
    reads them in order)."""
    if wildcards.split.startswith(TRANSLATED_TEST):
        origin = wildcards.split[len(TRANSLATED_TEST):]
        if wildcards.lang != "en" or origin not in XNLI_TRANSLATE_TEST:
            sys.exit(f"error: {CONFIG_SOURCE}: no translated XNLI test set for '{origin}' "
                     f"into '{wildcards.lang}'; name it under 'xnli.translate_test'")
        entry = XNLI_TRANSLATE_TEST[origin]
        if isinstance(entry, dict):  # translated by one of our MT models (xnli_translate_test)
            return [f"data/xnli/translated/test.{origin}-en.tsv"]
        return [source_path(source) for source in as_list(entry)]
    if wildcards.split == "train":
        if wildcards.lang == "en":
            sources = XNLI["train"]
        elif wildcards.lang in XNLI_TRANSLATE_TRAIN:
            sources = XNLI_TRANSLATE_TRAIN[wildcards.lang]
        else:
            sys.exit(f"error: {CONFIG_SOURCE}: XNLI training data for '{wildcards.lang}' needs "
                     f"a file under 'xnli.translate_train'")
        return [source_path(source) for source in as_list(sources)]
    return source_path(XNLI[wildcards.split].format(lang=wildcards.lang))


def mt_source(pair, split, lang):
    """An MT test set side: its path, or its download / archive member."""
    return source_path(MT_DATA["pairs"][pair][split][lang])


# Resolve every source now, so that DOWNLOADS and MEMBERS are complete for the rules below.
for _key, _source in data_sources(config):
    source_path(_source)


def wiki_downloads():
    """Dumps of languages with neither a local dump nor local text."""
    return [
        f"data/raw/wiki/{lang}.xml.bz2"
        for lang in LANGUAGES
        if not local_dump(lang) and not config["local_text"].get(lang)
    ]


def announced_size(url):
    """A dry run's listing shows the size each server announces (a HEAD request), as a
    job resource, not a param: it must not make a finished download run again."""
    size = remote_size(url, timeout=5)
    return f"{size:,} bytes" if size is not None else "size not announced"


def xnli_datasets():
    return [
        path
        for split, langs in XNLI_SPLITS.items()
        for lang in langs
        for path in [f"data/xnli/{lang}.{split}.label"]
        + [f"data/xnli/{lang}.{split}.{part}.{ext}" for part in ("s1", "s2") for ext in ("bin", "idx")]
    ]


def mt_datasets():
    return [
        f"data/mt/{pair}.{lang}.{split}.{ext}"
        for pair, splits in MT_DATA["pairs"].items()
        for split in splits
        for lang in pair.split("-")
        for ext in ("bin", "idx", "ref")
    ]


# ---------------------------------------------------------------- Pretraining (rules/pretrain.smk)


MODELS = config["models"]


def pretrain_settings(model):
    """The model's resolved config slice: `pretrain` defaults with its own keys on top."""
    return {**config["pretrain"], **MODELS[model]}


def pretrain_inputs(wildcards):
    """The binarized splits the model reads, and the vocabulary."""
    settings = pretrain_settings(wildcards.model)
    prefixes = [lang for lang in dict.fromkeys(settings.get("clm", []) + settings.get("mlm", []))]
    prefixes += [f"{pair}.{lang}" for pair in settings.get("tlm", []) for lang in pair.split("-")]
    files = [
        f"data/bin/{prefix}.{split}.{ext}"
        for prefix in prefixes
        for split in SPLITS
        for ext in ("bin", "idx")
    ]
    return {"vocab": BPE_VOCAB, "data": files}
