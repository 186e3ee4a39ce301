"""No host reads of device values inside a training step (issue 16), checked on the CPU
with `tests/device_reads.py` (see its limits): the pretraining step (CLM; MLM + padded
TLM), the MT update (supervised pairs and denoising) and XNLI fine-tuning read losses,
correct counts and padding only when they log. A control shows the tracer does see such
reads: the model given device targets, a loss read with `.item()`, and a blocking copy
to the device.

One read is allowed, and only because the tracer runs on a CPU: the model asks whether a
padding mask hides anything only of a mask on the CPU (`not pad_mask.is_cuda`), which
here is every mask; on a GPU that line reads nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from device_reads import DeviceReads
from pretrain_helpers import TINY_SETTINGS, build_pretrain_data
from task_helpers import build_xnli, tiny_model, tokenized, write_vocab

from xlm.data.indexed import binarize_lines
from xlm.model.transformer import IGNORE_INDEX, ModelConfig, TransformerModel
from xlm.tasks import xnli
from xlm.tasks.mt import MtSettings, MtTrainer
from xlm.train.settings import PretrainSettings
from xlm.train.trainer import Pretrainer

CPU = torch.device("cpu")
CPU_ONLY = ("pad_mask.is_cuda",)  # reads that a GPU run does not make (see above)


def on_gpu(reads: dict[str, int]) -> dict[str, int]:
    """The reads a GPU run would make too."""
    return {site: n for site, n in reads.items() if not any(c in site for c in CPU_ONLY)}


def test_the_tracer_sees_reads_of_device_values():
    torch.manual_seed(0)
    model = TransformerModel(ModelConfig(n_words=40, dim=16, n_layers=1, n_heads=2))
    tokens = torch.randint(5, 40, (2, 6))
    targets = torch.full_like(tokens, IGNORE_INDEX)
    targets[:, 2] = tokens[:, 2]
    with DeviceReads(model.parameters(), CPU) as host_targets:
        out = model(tokens.to(CPU, non_blocking=True), targets=targets)
    assert not host_targets.reads  # targets on the host: positions found there
    with DeviceReads(model.parameters(), CPU) as device_targets:
        out = model(tokens.to(CPU), targets=targets.to(CPU, non_blocking=True))
        out.loss.item()
    sites = list(device_targets.reads)
    assert any(site.startswith("transformer.py") and "nonzero" in site for site in sites)
    assert any("out.loss.item()" in site for site in sites), sites
    assert any("tokens.to(CPU)" in site and "blocking copy" in site for site in sites)


@pytest.fixture(scope="module")
def pretrain_data(tmp_path_factory, shared_data):
    return build_pretrain_data(shared_data, tmp_path_factory.mktemp("sync"))


@pytest.mark.parametrize("objectives", [{"clm": ["en", "fr"]},
                                        {"mlm": ["en", "fr"], "tlm": ["en-fr"]}])
def test_pretraining_steps_read_nothing_until_they_log(pretrain_data, tmp_path, objectives):
    data_dir, vocab = pretrain_data
    settings = PretrainSettings.from_dict({**TINY_SETTINGS, **objectives, "accumulate": 2})
    trainer = Pretrainer(settings, data_dir=data_dir, vocab=vocab, out_dir=tmp_path,
                         name="sync")
    with DeviceReads(trainer.model.parameters(), trainer.device) as tracer:
        for _ in range(4):
            trainer.train_step()
        during_steps = on_gpu(tracer.reads)
        for stats in trainer._window.values():  # what logging the window reads
            stats.values()
    assert during_steps == {}
    assert trainer.step == 4 and len(trainer.optimizer.state) > 0  # the model was updated
    # The window's loss and correct sums are device values, read when logged.
    logged = on_gpu(tracer.reads)
    assert sum(logged.values()) == 2 * len(trainer._window), tracer.reads
    assert all("trainer.py" in site and "float(self.loss)" in site for site in logged)


@pytest.fixture(scope="module")
def mt_data(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("sync_mt")
    tatoeba = shared_data / "para" / "tatoeba"
    lines = {lang: (tatoeba / f"en-fr.{lang}").read_text(encoding="utf-8").splitlines()[:120]
             for lang in ("en", "fr")}
    tok = {lang: tokenized(lang, text) for lang, text in lines.items()}
    dictionary = write_vocab(tok["en"] + tok["fr"], root / "vocab")
    for lang in ("en", "fr"):
        for split in ("train", "valid"):
            binarize_lines(tok[lang], dictionary, root / f"en-fr.{lang}.{split}")
        binarize_lines(tok[lang], dictionary, root / f"{lang}.train")
    return root


def test_mt_updates_read_nothing(mt_data, tmp_path):
    settings = MtSettings(directions=["en-fr"], dae=["en"], n_layers=1, dim=32, n_heads=2,
                          tokens_per_batch=300, max_len=20, warmup_steps=0)
    trainer = MtTrainer(settings, data=mt_data, vocab=mt_data / "vocab", out=tmp_path,
                        device=torch.device("cpu"))
    losses = []
    with DeviceReads(trainer.model.parameters(), trainer.device) as reads:
        for kind, name in trainer.objectives * 2:
            loss, n_targets, n_tokens = trainer._update(kind, name, 0, 1.0)
            trainer.step += 1
            losses.append(loss)
            assert n_targets > 0 and n_tokens > n_targets
    assert on_gpu(reads.reads) == {}
    assert all(reads.on_device(loss) for loss in losses)  # not read, but device values


def test_xnli_fine_tuning_reads_only_when_it_logs_and_evaluates(shared_data, tmp_path,
                                                                monkeypatch):
    langs = ["en", "fr"]
    data, vocab, dictionary = build_xnli(shared_data, tmp_path, tuple(langs), n_eval=40)
    model = tiny_model(tmp_path / "model.pt", dictionary, langs, n_layers=1, dim=32)
    settings = xnli.XnliSettings(lr=[1e-3], batch_size=[8], epochs=1, max_train=96,
                                 max_eval=40, max_len=64, log_every=6)
    tuner = xnli.XnliFineTuner(settings, model_path=model, data=data, vocab=vocab,
                               languages=langs, out=tmp_path / "run",
                               device=torch.device("cpu"))
    tracer = DeviceReads([], tuner.device)
    fresh = tuner._fresh_model

    def watched(combo: int) -> xnli.XnliClassifier:
        classifier = fresh(combo)
        for parameter in classifier.parameters():
            tracer._add(parameter)
        return classifier

    monkeypatch.setattr(tuner, "_fresh_model", watched)
    with tracer:
        tuner.run()
    steps = int(np.ceil(96 / 8))
    assert on_gpu(tracer.per_step(steps)) == {}, tracer.reads
    logged = [site for site in tracer.reads if "float(window_loss)" in site]
    assert logged and tracer.reads[logged[0]] == steps // 6, tracer.reads
