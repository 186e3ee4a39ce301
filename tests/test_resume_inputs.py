"""A checkpoint is resumed only by the run that wrote it (issue 12), and every file we
write loads without running code from it (issue 17).

For each resumable command an input is changed without changing any size (a permuted
vocabulary with its data rebinarized, another pretrained model with the same config):
the rerun must train from step 0 exactly like a fresh run, name the changed input in its
log and move the stale checkpoint aside. Changing only max_steps continues the run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pretrain_helpers import SPLITS, TINY_SETTINGS
from task_helpers import build_xnli, tiny_model, tokenized

from xlm.data.dictionary import Dictionary
from xlm.data.indexed import binarize_lines
from xlm.errors import UserError
from xlm.tasks.mt import MtSettings, MtTrainer, load_translator
from xlm.tasks.xnli import XnliFineTuner, XnliSettings
from xlm.train.checkpoint import load_checkpoint, load_file, load_pretrained, rng_states
from xlm.train.settings import PretrainSettings
from xlm.train.trainer import Pretrainer

CLM = {**TINY_SETTINGS, "clm": ["en", "fr"], "max_steps": 12, "eval_every": 6}


def write_data(shared_data: Path, root: Path, permuted: bool) -> tuple[Path, Path]:
    """FLORES en/fr binarized with a word-level vocabulary, in `root` (overwritten): with
    `permuted`, the same words in another order, so ids change and no size does."""
    texts = {lang: (shared_data / "para" / "flores200" / f"devtest.{lang}")
             .read_text(encoding="utf-8").splitlines() for lang in ("en", "fr")}
    counts: dict[str, int] = {}
    for lines in texts.values():
        for line in lines:
            for word in line.split():
                counts[word] = counts.get(word, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:1000]
    if permuted:  # the words shuffled, the (decreasing) counts column kept
        order = np.random.default_rng(0).permutation(len(ranked))
        ranked = [(ranked[i][0], count) for i, (_, count) in zip(order, ranked, strict=True)]
    root.mkdir(parents=True, exist_ok=True)
    vocab = root / "vocab"
    vocab.write_text("".join(f"{w} {c}\n" for w, c in ranked), encoding="utf-8")
    dictionary = Dictionary.read_vocab(vocab)
    data = root / "bin"
    data.mkdir(exist_ok=True)
    for lang, lines in texts.items():
        for split, part in SPLITS.items():
            binarize_lines(lines[part], dictionary, data / f"{lang}.{split}")
    return data, vocab


def pretrain(data: Path, vocab: Path, out: Path, **overrides) -> list[dict]:
    settings = PretrainSettings.from_dict({**CLM, **overrides})
    Pretrainer(settings, data_dir=data, vocab=vocab, out_dir=out, name="clm").run()
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def stale_folders(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoints.stale-*"))


def test_pretrain_restarts_when_the_vocabulary_changes(shared_data, tmp_path, caplog):
    inputs, out = tmp_path / "inputs", tmp_path / "run"
    data, vocab = write_data(shared_data, inputs, permuted=False)
    first = pretrain(data, vocab, out)
    assert len(first) == 12

    # Only max_steps changes: the run continues from step 12.
    with caplog.at_level(logging.INFO, logger="xlm"):
        longer = pretrain(data, vocab, out, max_steps=14)
    assert "resumed from" in caplog.text and [r["step"] for r in longer] == list(range(1, 15))
    assert [r["clm_loss"] for r in longer[:12]] == [r["clm_loss"] for r in first]

    # Same sizes, other ids, same paths (as when BPE is relearned): train from step 0.
    write_data(shared_data, inputs, permuted=True)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xlm"):
        rerun = pretrain(data, vocab, out)
    assert "resumed from" not in caplog.text
    assert f"dictionary {vocab} changed" in caplog.text
    assert len(stale_folders(out)) == 1
    assert (stale_folders(out)[0] / "latest.pt").is_file()
    fresh = pretrain(data, vocab, tmp_path / "fresh")
    assert [r["clm_loss"] for r in rerun] == [r["clm_loss"] for r in fresh]
    assert rerun[0]["clm_loss"] != first[0]["clm_loss"]


def test_pretrain_restarts_when_a_setting_changes_and_names_it(shared_data, tmp_path, caplog):
    data, vocab = write_data(shared_data, tmp_path / "inputs", permuted=False)
    pretrain(data, vocab, tmp_path / "run")
    with caplog.at_level(logging.WARNING, logger="xlm"):
        pretrain(data, vocab, tmp_path / "run", lr=0.001)
    assert "setting lr (0.002 -> 0.001)" in caplog.text


@pytest.fixture(scope="module")
def xnli_setup(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("xnli_resume")
    data, vocab, dictionary = build_xnli(shared_data, root, ("en", "fr"), n_eval=60)
    return root, data, vocab, dictionary


def test_xnli_restarts_on_another_pretrained_model(xnli_setup, tmp_path, caplog):
    root, data, vocab, dictionary = xnli_setup
    settings = XnliSettings(lr=[1e-3], batch_size=[16], epochs=1, max_train=96, max_eval=60,
                            max_len=64, checkpoint_every=2)
    model = tmp_path / "model.pt"

    def run(out: Path, seed: int) -> list[dict]:
        tiny_model(model, dictionary, ["en", "fr"], seed=seed, n_layers=1)
        return XnliFineTuner(settings, model_path=model, data=data, vocab=vocab,
                             languages=["en", "fr"], out=out, device=torch.device("cpu")).run()

    run(tmp_path / "run", seed=1)
    with caplog.at_level(logging.INFO, logger="xlm"):
        rerun = run(tmp_path / "run", seed=2)  # same path and config, other weights
    assert f"pretrained model {model} changed" in caplog.text
    assert "resuming from" not in caplog.text
    fresh = run(tmp_path / "fresh", seed=2)
    assert rerun == fresh


def test_mt_restarts_on_another_pretrained_encoder(shared_data, tmp_path, caplog):
    tatoeba = shared_data / "para" / "tatoeba"
    raw = {lang: (tatoeba / f"en-fr.{lang}").read_text(encoding="utf-8").splitlines()[:120]
           for lang in ("en", "fr")}
    tok = {lang: tokenized(lang, lines) for lang, lines in raw.items()}
    counts: dict[str, int] = {}
    for line in tok["en"] + tok["fr"]:
        for word in line.split():
            counts[word] = counts.get(word, 0) + 1
    vocab = tmp_path / "vocab"
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    vocab.write_text("".join(f"{w} {c}\n" for w, c in ranked), "utf-8")
    dictionary = Dictionary.read_vocab(vocab)
    folder = tmp_path / "bin"
    folder.mkdir()
    for lang in ("en", "fr"):
        for split in ("train", "valid"):
            binarize_lines(tok[lang], dictionary, folder / f"en-fr.{lang}.{split}")
    encoder = tmp_path / "encoder.pt"
    settings = MtSettings(directions=["en-fr"], max_steps=6, n_layers=1, dim=32, n_heads=4,
                          tokens_per_batch=400, max_len=20, eval_every=3, valid_sentences=20,
                          log_every=1, checkpoint_every=2, encoder_init="mlm")

    def run(out: Path, seed: int) -> list[str]:
        tiny_model(encoder, dictionary, ["en", "fr"], seed=seed, dim=32, n_layers=1)
        MtTrainer(settings, data=folder, vocab=vocab, out=out, encoder_path=str(encoder)).run()
        return (out / "train.jsonl").read_text().splitlines()

    run(tmp_path / "run", seed=1)
    with caplog.at_level(logging.INFO, logger="xlm"):
        rerun = run(tmp_path / "run", seed=2)
    assert f"pretrained encoder {encoder} changed" in caplog.text
    assert "resuming from" not in caplog.text
    fresh = run(tmp_path / "fresh", seed=2)
    strip = [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
             for line in rerun]
    assert strip == [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
                     for line in fresh]
    state = load_file(tmp_path / "run" / "model.pt", "MT model")
    assert state["settings"]["max_steps"] == 6
    load_translator(tmp_path / "run" / "model.pt")


def test_sigint_checkpoints_without_traceback_and_the_rerun_resumes(shared_data, tmp_path):
    data, vocab = write_data(shared_data, tmp_path / "inputs", permuted=False)
    straight = pretrain(data, vocab, tmp_path / "straight", max_steps=40, eval_every=1000)
    out = tmp_path / "run"
    settings = {**CLM, "max_steps": 40, "eval_every": 1000, "log_every": 1}
    command = [sys.executable, "-m", "xlm", "pretrain", "--name", "clm", "--settings",
               json.dumps(settings), "--data", str(data), "--vocab", str(vocab),
               "--out", str(out), "--threads", "1"]
    log_path = tmp_path / "log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, stderr=log_file, stdout=log_file)
        try:
            while not ((out / "train.jsonl").exists()
                       and len((out / "train.jsonl").read_text().splitlines()) >= 3):
                assert process.poll() is None, log_path.read_text()
            process.send_signal(signal.SIGINT)  # Ctrl-C
            process.wait(timeout=60)
        finally:
            process.kill()
    text = log_path.read_text()
    assert process.returncode == 128 + signal.SIGINT, text
    assert "Traceback" not in text and "stopping on SIGINT" in text
    step = load_checkpoint(out / "checkpoints" / "latest.pt")["step"]
    assert 3 <= step < 40
    resumed = pretrain(data, vocab, out, max_steps=40, eval_every=1000)
    assert [r["clm_loss"] for r in resumed] == pytest.approx(
        [r["clm_loss"] for r in straight], rel=1e-6, abs=1e-6)


# ----------------------------------------------------------------- safe loading (issue 17)
class WritesAFile:
    """What a crafted file would carry: unpickling it calls os.system."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def crafted_model(tmp_path: Path, dictionary: Dictionary, mt: bool = False) -> tuple[Path, Path]:
    """A real model.pt of ours with an object that writes `pwned` when unpickled."""
    model = tiny_model(tmp_path / "real.pt", dictionary, ["en", "fr"], n_layers=1)
    state = torch.load(model, weights_only=True)
    target = tmp_path / "pwned"
    if mt:
        state = {"encoder": state["model"], "decoder": state["model"],
                 "encoder_config": state["config"], "decoder_config": state["config"],
                 "encoder_langs": ["en", "fr"], "decoder_langs": ["en", "fr"],
                 "dictionary": state["dictionary"], "settings": {}, "tokenizer": {},
                 "codes": None}
    state["settings"] = {"note": WritesAFile(target)}
    crafted = tmp_path / "crafted.pt"
    torch.save(state, crafted)
    return crafted, target


def xlm_command(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xlm", *args], input=stdin,
                          capture_output=True, text=True)


def assert_refused_in_one_line(result: subprocess.CompletedProcess, path: Path) -> None:
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_crafted_model_files_are_refused_and_run_nothing(xnli_setup, tmp_path):
    root, data, vocab, dictionary = xnli_setup
    crafted, target = crafted_model(tmp_path, dictionary)
    (tmp_path / "mt").mkdir()
    crafted_mt, target_mt = crafted_model(tmp_path / "mt", dictionary, mt=True)
    translate = xlm_command("translate", "--model", str(crafted_mt), "--src", "en", "--tgt",
                            "fr", stdin="hello\n")
    assert_refused_in_one_line(translate, crafted_mt)
    assert "would run code" in translate.stderr
    xnli = xlm_command("xnli", "--model", str(crafted), "--name", "x", "--data", str(data),
                       "--vocab", str(vocab), "--languages", "en", "--settings",
                       json.dumps({"lr": [1e-3], "batch_size": [8]}),
                       "--out", str(tmp_path / "out"))
    assert_refused_in_one_line(xnli, crafted)
    export = xlm_command("export-hf", "--model", str(crafted), "--codes", str(vocab),
                         "--output", str(tmp_path / "hf"))
    assert_refused_in_one_line(export, crafted)
    assert not target.exists() and not target_mt.exists()
    # The same file is run only when converted explicitly, as the user asked.
    refused = xlm_command("convert-model", "--input", str(crafted), "--output",
                          str(tmp_path / "converted.pt"))
    assert refused.returncode == 2 and "--trust-pickle" in refused.stderr
    assert not target.exists()


def test_a_file_that_is_not_a_model_is_one_line(tmp_path, repo):
    readme = repo / "README.md"
    result = xlm_command("translate", "--model", str(readme), "--src", "en", "--tgt", "fr",
                         stdin="hello\n")
    assert_refused_in_one_line(result, readme)
    assert "not a MT model" in result.stderr


def test_every_saved_kind_loads_weights_only(shared_data, tmp_path):
    data, vocab = write_data(shared_data, tmp_path / "inputs", permuted=False)
    out = tmp_path / "run"
    pretrain(data, vocab, out, max_steps=6)
    for path in (out / "model.pt", out / "checkpoints" / "latest.pt",
                 out / "checkpoints" / "best.pt"):
        assert isinstance(torch.load(path, weights_only=True), dict), path
    load_pretrained(out / "model.pt")


def test_convert_model_rewrites_an_older_checkpoint(shared_data, tmp_path):
    """A checkpoint in the older layout (NumPy and Python RNG states pickled as such) is
    refused, converted with --trust-pickle, and then resumes."""
    data, vocab = write_data(shared_data, tmp_path / "inputs", permuted=False)
    out = tmp_path / "run"
    settings = PretrainSettings.from_dict(CLM)
    Pretrainer(settings, data_dir=data, vocab=vocab, out_dir=out, name="clm").run(stop_at=6)
    latest = out / "checkpoints" / "latest.pt"
    state = torch.load(latest, weights_only=True)
    state["rng"] = {**rng_states(), "numpy": np.random.get_state(),
                    "python": __import__("random").getstate()}
    state["best_ppl"] = np.float64(state["best_ppl"])
    old = tmp_path / "old.pt"
    torch.save(state, old)
    with pytest.raises(UserError, match="would run code"):
        load_file(old, "checkpoint")
    result = xlm_command("convert-model", "--input", str(old), "--output", str(latest),
                         "--trust-pickle")
    assert result.returncode == 0, result.stderr
    converted = load_checkpoint(latest)
    assert converted["step"] == 6 and isinstance(converted["best_ppl"], float)
    records = pretrain(data, vocab, out)
    assert records[-1]["step"] == 12


def test_a_full_disk_is_one_line_naming_the_file(shared_data, tmp_path):
    """A real full file system (a 200 KiB tmpfs): the error names the file being written."""
    data, vocab = write_data(shared_data, tmp_path / "inputs", permuted=False)
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                   check=True)
    try:
        result = xlm_command("pretrain", "--name", "clm", "--settings", json.dumps(CLM),
                             "--data", str(data), "--vocab", str(vocab), "--out",
                             str(mount / "out"), "--threads", "1")
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(mount / "out") in errors[0], result.stderr[-2000:]
    assert "disk is full" in errors[0] and "Traceback" not in result.stderr
