"""XNLI fine-tuning on real XNLI pairs with a tiny model: it learns, every configured
language gets its records, resume is exact, a mismatched vocabulary is refused."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter

import pytest
import torch
from task_helpers import build_xnli, tiny_model

from xlm.errors import UserError
from xlm.report.records import load_metrics_file
from xlm.tasks import xnli
from xlm.tasks.xnli import XnliFineTuner, XnliSettings

LANGS = ["en", "fr", "de"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("xnli")
    data, vocab, dictionary = build_xnli(shared_data, root, tuple(LANGS))
    model = tiny_model(root / "model.pt", dictionary, LANGS, seed=1, n_layers=1)
    return root, data, vocab, model


def test_fine_tuning_beats_majority_and_records_every_language(setup):
    root, data, vocab, model = setup
    torch.set_num_threads(1)
    out = root / "run"
    settings = {"lr": [1e-3], "batch_size": [16], "epochs": 4, "max_len": 128, "seed": 0}
    subprocess.run([sys.executable, "-m", "xlm", "xnli", "--model", str(model), "--name", "tiny",
                    "--data", str(data), "--vocab", str(vocab), "--languages", *LANGS,
                    "--settings", json.dumps(settings), "--out", str(out), "--threads", "1",
                    "--config-hash", "abc", "--run-name", "test"], check=True)
    records = load_metrics_file(out / "metrics.json")
    cells = {(r["split"], r["lang"]): r["value"] for r in records}
    assert set(cells) == {(split, lang) for split in ("valid", "test") for lang in LANGS + ["avg"]}
    assert all(r["task"] == "xnli" and r["setting"] == "zero-shot" and r["config_hash"] == "abc"
               and r["metric"] == ("acc_avg" if r["lang"] == "avg" else "acc") for r in records)
    labels = (data / "en.valid.label").read_text().split()
    majority = 100 * Counter(labels).most_common(1)[0][1] / len(labels)
    assert cells[("valid", "en")] > majority + 4, (cells, majority)


def test_resume_after_sigusr1_is_exact(setup, monkeypatch):
    root, data, vocab, model = setup
    settings = XnliSettings(lr=[1e-3, 5e-4], batch_size=[16], epochs=1, max_train=160,
                            max_eval=60, max_len=64)

    def tuner(out):
        return XnliFineTuner(settings, model_path=model, data=data, vocab=vocab,
                             languages=LANGS, out=out, device=torch.device("cpu"))

    straight = tuner(root / "straight").run()
    interrupted = tuner(root / "resumed")
    original_batch = xnli.XnliSplit.batch
    calls = {"n": 0}

    def batch_then_signal(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 13:  # the second grid point, mid-epoch
            interrupted.checkpoint.signal = signal.SIGUSR1
        return original_batch(self, *args, **kwargs)

    monkeypatch.setattr(xnli.XnliSplit, "batch", batch_then_signal)
    with pytest.raises(SystemExit):
        interrupted.run()
    monkeypatch.setattr(xnli.XnliSplit, "batch", original_batch)
    resumed = tuner(root / "resumed").run()
    assert resumed == straight


def test_vocabulary_mismatch_is_refused_in_one_line(setup, tmp_path):
    root, data, vocab, model = setup
    other = tmp_path / "vocab"
    other.write_text("".join(f"w{i} {100 - i}\n" for i in range(50)), encoding="utf-8")
    with pytest.raises(UserError) as error:
        XnliFineTuner(XnliSettings(), model_path=model, data=data, vocab=other,
                      languages=LANGS, out=tmp_path / "out")
    message = str(error.value)
    assert "\n" not in message and str(other) in message and "does not match" in message
    result = subprocess.run([sys.executable, "-m", "xlm", "xnli", "--model", str(model),
                             "--name", "x", "--data", str(data), "--vocab", str(other),
                             "--languages", "en", "--settings", "{}", "--out",
                             str(tmp_path / "cli")], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: {other}: vocabulary does not")
