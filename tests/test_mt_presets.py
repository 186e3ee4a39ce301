"""XLM's MT recipe per language pair (issue 13, item 6): configs/mt-{pair}.yaml each learn
their own 60k BPE codes on the pair's two languages only, pretrain their own models on
exactly that pair, and run from the repository root in their own working directory
(`snakemake --directory runs/{pair}`). The presets cannot drift from configs/mt.yaml,
the shared-vocabulary variant, in anything but the pair."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xlm.text.bpe import write_sample

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
PAIRS = ["en-fr", "en-de", "en-ro"]
# The sections that name languages; every other one is configs/mt.yaml's, unchanged.
PAIR_SECTIONS = {"run_name", "languages", "local_text", "parallel", "mt_data", "models", "mt",
                 "bpe"}


def load(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / name).read_text(encoding="utf-8"))


def model_languages(settings: dict) -> set[str]:
    """Every language a pretrained model's objectives read."""
    langs = set(settings.get("clm", [])) | set(settings.get("mlm", []))
    return langs | {lang for pair in settings.get("tlm", []) for lang in pair.split("-")}


def experiment_languages(settings: dict) -> set[str]:
    pairs = settings.get("directions", []) + settings.get("bt", [])
    return set(settings.get("dae", [])) | {lang for pair in pairs for lang in pair.split("-")}


def dry_run(preset: str, workdir: Path) -> str:
    """`snakemake -n -p all` from the repository root with the per-pair working directory
    given relative to it, as the README's command does."""
    relative = os.path.relpath(workdir, REPO)
    result = subprocess.run(
        [str(SNAKEMAKE), "all", "-n", "-p", "--directory", relative,
         "--configfile", f"configs/{preset}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{SNAKEMAKE.parent}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def shell_commands(listing: str, program: str) -> list[list[str]]:
    """The dry run's `xlm <program> ...` commands, as argument lists (redirections cut)."""
    return [shlex.split(line.split("Shell command: ", 1)[1].split(" > ", 1)[0])
            for line in listing.splitlines()
            if line.startswith(f"Shell command: xlm {program} ")]


def option(command: list[str], flag: str) -> list[str]:
    """The words after `flag` up to the next option."""
    start = command.index(flag) + 1
    end = next((i for i in range(start, len(command)) if command[i].startswith("--")),
               len(command))
    return command[start:end]


@pytest.mark.parametrize("pair", PAIRS)
def test_pair_preset_learns_bpe_and_pretrains_on_its_pair_only(pair, tmp_path):
    """From the repository root with `--directory`, the preset's jobs learn one set of 60k
    codes on every line of the pair's two tokenized corpora (no sampling, no other
    language), count the vocabulary on those two, and pretrain models on exactly the
    pair, all writing inside the working directory."""
    langs = pair.split("-")
    workdir = tmp_path / pair
    listing = dry_run(f"mt-{pair}.yaml", workdir)
    assert (workdir / ".snakemake").is_dir()  # the run's state lives in its own folder

    [sample] = shell_commands(listing, "bpe-sample")
    inputs = option(sample, "--input")
    assert inputs == [f"{lang}=data/tok/{lang}.train.txt" for lang in langs]
    assert "--sentences" not in sample  # whole corpora, as get-data-nmt.sh
    [learn] = shell_commands(listing, "bpe-learn")
    assert option(learn, "--codes") == ["60000"]
    [vocab] = shell_commands(listing, "bpe-vocab")
    assert option(vocab, "--input") == [f"data/bpe/{lang}.train.txt" for lang in langs]

    tokenized = set(re.findall(r"data/tok/([a-z]{2,3})\.(?:train|valid|test)\.txt", listing))
    assert tokenized == set(langs)
    pretrain = shell_commands(listing, "pretrain")
    names = {option(c, "--name")[0]: json.loads(option(c, "--settings")[0]) for c in pretrain}
    pair_name = "".join(langs)
    assert set(names) == {f"clm_{pair_name}", f"mlm_{pair_name}"}
    assert names[f"mlm_{pair_name}"]["mlm"] == langs  # like XLM's mlm_{pair}_1024
    assert all(model_languages(settings) == set(langs) for settings in names.values())
    outputs = [option(c, "--out")[0] for c in pretrain]
    outputs += [option(c, "--output")[0] for c in (sample, learn, vocab)]
    assert all(not Path(path).is_absolute() for path in outputs)  # read in the workdir


def test_shared_vocabulary_preset_still_runs_over_four_languages(tmp_path):
    """configs/mt.yaml keeps working: one BPE sampled over en, fr, de and ro."""
    listing = dry_run("mt.yaml", tmp_path / "mt")
    [sample] = shell_commands(listing, "bpe-sample")
    assert [item.split("=")[0] for item in option(sample, "--input")] == ["en", "fr", "de", "ro"]
    assert option(sample, "--sentences") == ["10000000"]


def test_pair_presets_are_mt_yaml_restricted_to_their_pair():
    """Every setting outside the languages (model sizes, optimiser, schedules, update size,
    tokenization, decoding) is configs/mt.yaml's; the language sections are mt.yaml's
    entries for the pair; and the three presets together run every mt.yaml experiment."""
    full = load("mt.yaml")
    experiments_seen: set[str] = set()
    run_names = set()
    for pair in PAIRS:
        preset = load(f"mt-{pair}.yaml")
        langs = set(pair.split("-"))
        for section in set(full) - PAIR_SECTIONS:
            assert preset[section] == full[section], (pair, section)
        assert set(preset) == set(full), pair
        assert preset["languages"] == pair.split("-")
        run_names.add(preset["run_name"])
        assert preset["local_text"] == {lang: full["local_text"][lang]
                                        for lang in preset["languages"]}
        for section in ("parallel", "mt_data"):
            expected = {name: entry for name, entry in full[section]["pairs"].items()
                        if set(name.split("-")) == langs}
            assert preset[section]["pairs"] == expected, (pair, section)
            assert expected, (pair, section)
        assert preset["parallel"]["max_len"] == full["parallel"]["max_len"]
        assert preset["models"] == {name: settings for name, settings in full["models"].items()
                                    if model_languages(settings) == langs}
        assert {k: v for k, v in preset["mt"].items() if k != "experiments"} == \
            {k: v for k, v in full["mt"].items() if k != "experiments"}
        experiments = preset["mt"]["experiments"]
        assert experiments == {name: settings
                               for name, settings in full["mt"]["experiments"].items()
                               if experiment_languages(settings) == langs}
        experiments_seen |= set(experiments)
        bpe = preset["bpe"]
        assert {k: bpe[k] for k in ("codes", "vocab", "n_codes", "max_vocab", "seed")} == \
            {k: full["bpe"][k] for k in ("codes", "vocab", "n_codes", "max_vocab", "seed")}
        assert bpe["n_codes"] == 60000 and bpe["sample_sentences"] is None
    assert experiments_seen == set(full["mt"]["experiments"])
    assert len(run_names) == len(PAIRS) and "mt" not in run_names


def test_mt_yaml_says_it_is_the_shared_variant():
    header = (REPO / "configs" / "mt.yaml").read_text(encoding="utf-8").split("\nrun_name:")[0]
    assert "shared-vocabulary variant" in header
    assert all(f"configs/mt-{pair}.yaml" in header for pair in PAIRS)


def test_bpe_sample_without_a_size_takes_every_line_once(tmp_path, shared_data):
    """`bpe.sample_sentences: null`: the BPE training text is both corpora whole, each
    line once and in order (a last line without a newline still ends one)."""
    tatoeba = shared_data / "para" / "tatoeba"
    en = (tatoeba / "en-fr.en").read_text(encoding="utf-8").splitlines()[:300]
    fr = (tatoeba / "en-fr.fr").read_text(encoding="utf-8").splitlines()[:120]
    (tmp_path / "en.txt").write_text("\n".join(en) + "\n", encoding="utf-8")
    (tmp_path / "fr.txt").write_text("\n".join(fr), encoding="utf-8")  # no final newline
    out = tmp_path / "sample.txt"
    counts = write_sample({"en": tmp_path / "en.txt", "fr": tmp_path / "fr.txt"}, out,
                          alpha=0.5, total=None, seed=0)
    assert counts == {"en": 300, "fr": 120}
    assert out.read_text(encoding="utf-8") == "\n".join(en + fr) + "\n"
    # The rule's command (no --sentences) writes the same file.
    cli_out = tmp_path / "cli.txt"
    subprocess.run([sys.executable, "-m", "xlm", "bpe-sample", "--input",
                    f"en={tmp_path / 'en.txt'}", f"fr={tmp_path / 'fr.txt'}",
                    "--output", str(cli_out), "--alpha", "0.5", "--seed", "0"],
                   check=True, capture_output=True, timeout=120)
    assert cli_out.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
