"""`compile: true` (issue 16): the training steps run a torch.compile'd model and compute
what the eager model computes, on the CPU with tiny models.

Pretraining goes through the real compiler (inductor, gcc here; a minute or two on a
loaded CPU). For the tasks, which only choose what to compile, `torch.compile` is given
the `aot_eager` backend (the same graph capture and autograd, no code generation) to keep
the tests cheap. Dropout is off: compiled code draws other random numbers."""

from __future__ import annotations

import pytest
import torch
from pretrain_helpers import TINY_SETTINGS, build_pretrain_data
from task_helpers import build_xnli, tiny_model, tokenized, write_vocab
from torch._dynamo.eval_frame import OptimizedModule

from xlm.data.indexed import binarize_lines
from xlm.tasks import mt, xnli
from xlm.train.optim import adam_implementation
from xlm.train.settings import PretrainSettings
from xlm.train.trainer import Pretrainer


def test_adam_is_fused_only_on_cuda():
    model = torch.nn.Linear(2, 2)
    assert adam_implementation(model) == {}
    if torch.cuda.is_available():
        assert adam_implementation(model.cuda()) == {"fused": True}


def test_compiled_pretraining_steps_equal_eager_ones(shared_data, tmp_path):
    torch._dynamo.reset()
    data_dir, vocab = build_pretrain_data(shared_data, tmp_path / "data")
    settings = {**TINY_SETTINGS, "clm": ["en", "fr"], "n_layers": 1, "dropout": 0.0}
    losses = {}
    for compiled in (False, True):
        trainer = Pretrainer(PretrainSettings.from_dict({**settings, "compile": compiled}),
                             data_dir=data_dir, vocab=vocab, out_dir=tmp_path / str(compiled),
                             name="c")
        assert isinstance(trainer.ddp, OptimizedModule) == compiled
        losses[compiled] = []
        for _ in range(3):
            trainer.train_step()
            losses[compiled].append(trainer._window["clm"].values()[0])
        losses[compiled].append(float(trainer.model.blocks[0].ffn.lin1.weight.detach().sum()))
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    assert len(set(losses[False])) == 4  # the window grew at every step


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile with the aot_eager backend; the modules it was given."""
    compiled = []
    real = torch.compile

    def compile_(module, **kwargs):
        compiled.append(module)
        return real(module, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", compile_)
    torch._dynamo.reset()
    return compiled


def test_mt_updates_run_compiled(aot_eager, shared_data, tmp_path):
    lines = {lang: (shared_data / "para" / "tatoeba" / f"en-fr.{lang}")
             .read_text(encoding="utf-8").splitlines()[:60] for lang in ("en", "fr")}
    tok = {lang: tokenized(lang, text) for lang, text in lines.items()}
    dictionary = write_vocab(tok["en"] + tok["fr"], tmp_path / "vocab")
    for lang in ("en", "fr"):
        for split in ("train", "valid"):
            binarize_lines(tok[lang], dictionary, tmp_path / f"en-fr.{lang}.{split}")
    losses = {}
    for compiled in (False, True):
        settings = mt.MtSettings(directions=["en-fr"], n_layers=1, dim=32, n_heads=2,
                                 dropout=0.0, attention_dropout=0.0, tokens_per_batch=300,
                                 max_len=20, warmup_steps=0, compile=compiled)
        trainer = mt.MtTrainer(settings, data=tmp_path, vocab=tmp_path / "vocab",
                               out=tmp_path / str(compiled), device=torch.device("cpu"))
        losses[compiled] = []
        for step in range(3):
            trainer.step = step
            losses[compiled].append(float(trainer._update("para", "en-fr", step, 1.0)[0]))
    assert [type(m).__name__ for m in aot_eager] == ["TransformerModel"] * 2
    assert aot_eager[1].config.is_decoder
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_xnli_fine_tuning_runs_compiled(aot_eager, shared_data, tmp_path):
    langs = ["en", "fr"]
    data, vocab, dictionary = build_xnli(shared_data, tmp_path, tuple(langs), n_eval=40)
    model = tiny_model(tmp_path / "model.pt", dictionary, langs, n_layers=1, dim=32,
                       dropout=0.0)
    rows = {}
    for compiled in (False, True):
        settings = xnli.XnliSettings(lr=[1e-3], batch_size=[8], epochs=1, max_train=48,
                                     max_eval=40, max_len=64, compile=compiled)
        rows[compiled] = xnli.XnliFineTuner(
            settings, model_path=model, data=data, vocab=vocab, languages=langs,
            out=tmp_path / str(compiled), device=torch.device("cpu")).run()
    assert [type(m).__name__ for m in aot_eager] == ["XnliClassifier"]
    # Accuracies of 40 pairs: equal unless a rounding difference flips a prediction.
    for eager, compiled in zip(rows[False], rows[True], strict=True):
        assert compiled["value"] == pytest.approx(eager["value"], abs=2.5 + 1e-9)
