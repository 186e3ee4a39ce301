"""Config mistakes are caught when the workflow starts, through real Snakemake runs: one
line naming the config file given with --configfile, the key and the fix; exit status
non-zero; no job run, no output made (also when old outputs exist)."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml
from workflow import REPO, SNAKEMAKE, tiny_pipeline_config


@pytest.fixture()
def tiny(shared_data) -> dict:
    return tiny_pipeline_config(shared_data)


def start(workdir, config: dict | str, *targets: str, name: str = "my-run.yaml",
          configfile=None, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`snakemake --dry-run` in `workdir` with the config written to `name` (not config.yaml)
    or an existing `configfile`."""
    workdir.mkdir(parents=True, exist_ok=True)
    if configfile is None:
        configfile = workdir / name
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        configfile.write_text(text, encoding="utf-8")
    command = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(workdir), "--configfile", str(configfile), "--cores", "1", "--dry-run",
               *options, *targets]
    env = {**os.environ, "PATH": f"{SNAKEMAKE.parent}:{os.environ['PATH']}"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=workdir,
                          env=env)


def the_error(result: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one error line and no traceback; that line."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def nothing_made(workdir, *kept: str) -> None:
    made = {p.name for p in workdir.iterdir()} - {".snakemake", "my-run.yaml", *kept}
    assert not made, made


def edit(path: str, value):
    def apply(config):
        *parents, last = path.split(".")
        for part in parents:
            config = config[part]
        config[last] = value
    return apply


# (edit of the tiny pipeline's config, the message after "error: <config file>: ")
MISTAKES = {
    "dim_heads": (edit("models.mlm_tlm.n_heads", 5),
                  "key 'models.mlm_tlm.n_heads': dim 32 (pretrain.dim) is not divisible by "
                  "n_heads 5 (models.mlm_tlm.n_heads); choose n_heads dividing dim, e.g. 4"),
    "mt_dim_heads": (edit("mt.defaults.n_heads", 3),
                     "key 'mt.defaults.n_heads': dim 32 (mt.defaults.dim) is not divisible by "
                     "n_heads 3 (mt.defaults.n_heads); choose n_heads dividing dim, e.g. 4"),
    "pred_probs": (edit("pretrain.pred_probs", [0.8, 0.15, 0.1]),
                   "key 'pretrain.pred_probs': [0.8, 0.15, 0.1] sums to 1.05; give the shares "
                   "of masked, random and kept targets summing to 1 (paper: [0.8, 0.1, 0.1])"),
    "word_pred": (edit("pretrain.word_pred", 1.5),
                  "key 'pretrain.word_pred': 1.5 is greater than or equal to the maximum of 1; "
                  "fix it and run again"),
    "tokens_per_batch": (edit("mt.defaults.tokens_per_batch", 60),
                         "key 'mt.defaults.tokens_per_batch': tokens_per_batch 60 "
                         "(mt.defaults.tokens_per_batch) must be greater than max_len 60 "
                         "(mt.defaults.max_len), or a batch cannot hold one sentence; raise "
                         "tokens_per_batch or lower max_len"),
    "encoder_init": (edit("mt.experiments.sup_fr_en.encoder_init", "xlm"),
                     "key 'mt.experiments.sup_fr_en.encoder_init': 'xlm' is neither under "
                     "'models' nor 'imported_models' (known: mlm_tlm); name one of them or "
                     "'random'"),
    "xnli_model": (edit("xnli_finetune.models", ["mlm"]),
                   "key 'xnli_finetune.models' names 'mlm', which is neither under 'models' "
                   "nor 'imported_models' (known: mlm_tlm); fix the name or configure the "
                   "model"),
    "embeddings_model": (edit("embeddings.models", ["mlm_tlm", "clm"]),
                         "key 'embeddings.models' names 'clm', which is neither under "
                         "'models' nor 'imported_models' (known: mlm_tlm); fix the name or "
                         "configure the model"),
    "missing_side": (edit("parallel.pairs.en-fr.valid.fr", "/data/flores/valid.fr"),
                     "key 'parallel.pairs.en-fr.valid.fr': /data/flores/valid.fr does not "
                     "exist; fix the path or put the file there"),
    "missing_dictionary": (edit("embeddings.dictionaries.en-fr", "muse/en-fr.txt"),
                           "key 'embeddings.dictionaries.en-fr': muse/en-fr.txt does not "
                           "exist (relative to {workdir}); fix the path or put the file "
                           "there"),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_mistake_stops_the_run_in_one_line(tiny, tmp_path, mistake):
    change, message = MISTAKES[mistake]
    change(tiny)
    result = start(tmp_path, tiny)
    assert the_error(result) == (f"error: {tmp_path / 'my-run.yaml'}: "
                                 + message.format(workdir=tmp_path))
    nothing_made(tmp_path)


def test_settings_given_with_config_are_named_too(tiny, tmp_path):
    """--config overrides the file: the line says both may hold the mistake."""
    tiny["xnli_finetune"]["models"] = ["mlm"]
    result = start(tmp_path, tiny, options=("--config", "run_name=other"))
    assert the_error(result).startswith(
        f"error: {tmp_path / 'my-run.yaml'} and --config: key 'xnli_finetune.models' names "
        "'mlm', which is neither under 'models' nor 'imported_models'")
    nothing_made(tmp_path)


def test_yaml_exponent_without_dot_is_named(tiny, tmp_path):
    text = yaml.safe_dump(tiny, sort_keys=False).replace("  lr: 0.001\n", "  lr: 1e-3\n", 1)
    assert "  lr: 1e-3\n" in text
    result = start(tmp_path, text)
    assert the_error(result) == (
        f"error: {tmp_path / 'my-run.yaml'}: key 'pretrain.lr' must be a number, but YAML read "
        "'1e-3' as text (YAML needs a dot in an exponent's mantissa, and no quotes): write "
        "1.0e-3 instead")
    nothing_made(tmp_path)


def test_a_missing_dump_is_refused_although_its_outputs_exist(tiny, tmp_path):
    """Old outputs downstream of wiki.local used to hide a wrong path: now it is refused."""
    outputs = [f"data/tok/en.{split}.txt" for split in ("train", "valid", "test")]
    for output in outputs:
        (tmp_path / output).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / output).write_text("hello .\n", encoding="utf-8")
    tiny["wiki"]["local"]["en"] = "dumps/enwiki-20231101.xml.bz2"
    result = start(tmp_path, tiny, *outputs)
    assert the_error(result) == (
        f"error: {tmp_path / 'my-run.yaml'}: key 'wiki.local.en': "
        f"dumps/enwiki-20231101.xml.bz2 does not exist (relative to {tmp_path}); fix the path "
        "or put the file there")
    nothing_made(tmp_path, "data")
    assert sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "data").rglob("*.txt")) \
        == sorted(outputs)


def test_a_preset_starts_in_an_empty_folder_and_plans_its_downloads(tmp_path):
    """configs/ name no file a user places: in an empty folder the run starts, and a dry
    run of `download` lists every archive it fetches (the paper's sources)."""
    preset = REPO / "configs" / "xnli15.yaml"
    result = start(tmp_path, {}, "download", configfile=preset)
    assert result.returncode == 0, result.stderr[-3000:]
    fetched = [line for line in result.stdout.splitlines() if " fetch " in line]
    for url in ("https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip",
                "https://dl.fbaipublicfiles.com/XNLI/XNLI-MT-1.0.zip",
                "http://www.cfilt.iitb.ac.in/iitb_parallel/iitb_corpus_download/parallel.tgz",
                "https://object.pouta.csc.fi/OPUS-MultiUN/v1/moses/en-fr.txt.zip",
                "https://dumps.wikimedia.org/swwiki/20231101/"):
        assert any(f" fetch {url}" in line for line in fetched), (url, fetched)
    assert len(fetched) == 20 + 15  # 20 archives (each once), 15 Wikipedia dumps
    nothing_made(tmp_path)


def test_a_language_without_rules_is_a_warning_and_an_imported_vocab_is_not_missing(
        tiny, tmp_path, shared_data):
    """Nepali falls back to Moses' English rules (a warning, the run goes on); bpe.vocab
    written by import_checkpoint is an output of the workflow, not a missing input."""
    tiny["languages"] = [*tiny["languages"], "ne"]  # not in xnli.languages (no XNLI data)
    tiny["local_text"] = {"ne": str(REPO / "demo" / "text" / "ne.flores1-dev.txt")}
    checkpoint = tmp_path / "released.pth"
    checkpoint.write_bytes(b"not read by a dry run")
    tiny["imported_models"] = {"released": {"checkpoint": str(checkpoint)}}
    tiny["bpe"].update(codes=str(shared_data / "dict" / "muse-full.en-fr.txt.gz"),
                       vocab="results/released/pretrain/vocab")
    tiny["xnli_finetune"]["models"] = ["released"]
    result = start(tmp_path / "run", tiny, "results/released/xnli/metrics.json")
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {tmp_path / 'run' / 'my-run.yaml'}: no tokenizer rules for 'ne' (Moses has "
        "none): tokenized by Moses with English rules; if a code is a typo, fix it"]
    assert "rule import_checkpoint" in result.stdout
    nothing_made(tmp_path / "run")
