"""Run the real Snakemake workflow in a scratch folder with a config made by the test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def base_config(shared_data: Path) -> dict:
    """The repository's default config with its paths made absolute (usable anywhere: the
    workflow checks every input file at start-up)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config = absolute_demo_paths(config)
    config["tokenize"]["kytea_model"] = str(shared_data / "models" / "kytea-ja-tiny.bin.gz")
    return config


def tokenized_files(langs, splits=("train", "valid", "test")) -> list[str]:
    """Targets for the text stages of some languages only (the config may list more)."""
    return [f"data/tok/{lang}.{split}.txt" for lang in langs for split in splits]


def write_config(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def snakemake(workdir: Path, *args: str, timeout: int = 900,
              check: bool = True) -> subprocess.CompletedProcess:
    """`snakemake` on the repository's Snakefile, run in `workdir` with its config.yaml."""
    command = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2",
               *args]
    env = {**os.environ, "PATH": f"{SNAKEMAKE.parent}:{os.environ['PATH']}"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            cwd=workdir, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result


def mtimes(workdir: Path, pattern: str) -> dict[str, int]:
    return {str(p.relative_to(workdir)): p.stat().st_mtime_ns for p in workdir.glob(pattern)}


def absolute_demo_paths(value):
    """The config with every `demo/...` path made absolute (usable from any folder)."""
    if isinstance(value, dict):
        return {key: absolute_demo_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [absolute_demo_paths(item) for item in value]
    if isinstance(value, str) and value.startswith("demo/"):
        return str(REPO / value)
    return value


def tiny_pipeline_config(shared_data: Path) -> dict:
    """The whole pipeline on English and French with tiny models: every stage and task
    runs, in a few minutes on 2 cores."""
    config = absolute_demo_paths(base_config(shared_data))
    langs = ["en", "fr"]
    config["run_name"] = "tiny"
    config["languages"] = langs
    config["wiki"]["local"] = {lang: config["wiki"]["local"][lang] for lang in langs}
    config["local_text"] = {}
    config["bpe"].update(n_codes=400, max_vocab=1200, sample_sentences=2000)
    config["parallel"]["pairs"] = {"en-fr": config["parallel"]["pairs"]["en-fr"]}
    config["xnli"]["languages"] = langs
    # A training set given as a list of TSVs, read in order (the study's SNLI + SICK).
    config["xnli"]["train"] = [config["xnli"]["train"],
                               str(shared_data / "study" / "nli" / "sick.tsv.gz")]
    # TRANSLATE-TEST with our own MT: the French test set translated by sup_fr_en (below).
    config["xnli"]["translate_test"] = {"fr": {"mt": "sup_fr_en", "beam": 2}}
    config["mt_data"]["pairs"] = {"en-fr": config["mt_data"]["pairs"]["en-fr"]}
    config["pretrain"].update(n_layers=1, dim=32, n_heads=2, bptt=32, batch_size=8,
                              max_steps=12, eval_every=6, eval_batches=2, log_every=3,
                              warmup_steps=4, checkpoint_every=6)
    config["models"] = {"mlm_tlm": {"mlm": langs, "tlm": ["en-fr"]}}
    config["imported_models"] = {}
    config["xnli_finetune"].update(models=["mlm_tlm"], epochs=1, max_train=64, max_eval=32,
                                   log_every=2)
    mt = config["mt"]
    mt["defaults"].update(max_steps=6, eval_every=3, valid_sentences=4, log_every=2,
                          n_layers=1, dim=32, n_heads=2)
    mt["test_sentences"] = 6
    mt["beam"] = 2
    mt["experiments"] = {"sup_fr_en": {"kind": "supervised", "setting": "unidirectional",
                                       "directions": ["fr-en"], "encoder_init": "mlm_tlm",
                                       "decoder_init": "mlm_tlm"}}
    mt["example"] = {"experiment": "sup_fr_en", "direction": "fr-en", "split": "test",
                     "lines": 3}
    config["embeddings"].update(models=["mlm_tlm"],
                                dictionaries={"en-fr": config["embeddings"]["dictionaries"]
                                              ["en-fr"]})
    config["retrieval"].update(models=["mlm_tlm"],
                               pairs={"en-fr": config["retrieval"]["pairs"]["en-fr"]})
    config["lm"].update(target="fr", combinations={"lm_fr": ["fr"], "lm_fr_en": ["fr", "en"]},
                        overrides={"max_steps": 6, "eval_every": 3})
    return config
