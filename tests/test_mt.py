"""Machine translation on real Tatoeba pairs with tiny models: a supervised model learns
held-in pairs, beam 1 is greedy, BLEU equals the sacrebleu command, the DAE noise keeps
what it must, unsupervised training (DAE + back-translation) runs, resume is exact,
`xlm translate` works from stdin, a mismatched vocabulary is refused."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from task_helpers import tiny_model, tokenized, write_vocab

from xlm.data.dictionary import EOS
from xlm.data.indexed import binarize_lines
from xlm.errors import UserError
from xlm.model.generate import beam_search, greedy
from xlm.report.records import load_metrics_file
from xlm.tasks import mt as mt_module
from xlm.tasks.common import pad_sequences, with_eos
from xlm.tasks.mt import MtSettings, MtTrainer, build_translator, load_translator
from xlm.tasks.noise import NoiseConfig, add_noise, word_shuffle

BIN = Path(sys.executable).parent
TINY = {"n_layers": 1, "dim": 64, "n_heads": 4, "dropout": 0.0, "attention_dropout": 0.0,
        "tokens_per_batch": 600, "lr": 3e-3, "max_len": 20, "eval_every": 100,
        "valid_sentences": 50, "log_every": 50, "schedule": "constant", "warmup_steps": 0}


@pytest.fixture(scope="module")
def data(tmp_path_factory, shared_data):
    """200 short en-fr Tatoeba pairs as train and valid; the first 50 as a 'test' set with
    raw and tokenized references; monolingual en/fr from the same lines."""
    root = tmp_path_factory.mktemp("mt")
    tatoeba = shared_data / "para" / "tatoeba"
    en = (tatoeba / "en-fr.en").read_text(encoding="utf-8").splitlines()
    fr = (tatoeba / "en-fr.fr").read_text(encoding="utf-8").splitlines()
    pairs = [(e, f) for e, f in zip(en, fr, strict=True)
             if len(e.split()) <= 6 and len(f.split()) <= 6][:200]
    raw = {"en": [p[0] for p in pairs], "fr": [p[1] for p in pairs]}
    tok = {lang: tokenized(lang, lines) for lang, lines in raw.items()}
    dictionary = write_vocab(tok["en"] + tok["fr"], root / "vocab")
    folder, test = root / "bin", root / "mt"
    (test / "tok").mkdir(parents=True)
    folder.mkdir()
    for lang in ("en", "fr"):
        for split in ("train", "valid"):
            binarize_lines(tok[lang], dictionary, folder / f"en-fr.{lang}.{split}")
        binarize_lines(tok[lang], dictionary, folder / f"{lang}.train")
        binarize_lines(tok[lang][:50], dictionary, test / f"en-fr.{lang}.test")
        (test / f"en-fr.{lang}.test.ref").write_text("\n".join(raw[lang][:50]) + "\n")
        (test / "tok" / f"en-fr.test.{lang}.txt").write_text("\n".join(tok[lang][:50]) + "\n")
    return root, folder, test, dictionary, tok


@pytest.fixture(scope="module")
def trained(data):
    root, folder, _, _, _ = data
    torch.set_num_threads(1)
    settings = MtSettings(directions=["en-fr"], max_steps=200, **TINY)
    stored = {"tokenizer": {"en": {"lowercase": True}}, "codes": None}  # for `xlm translate`
    result = MtTrainer(settings, data=folder, vocab=root / "vocab", out=root / "sup",
                       extra=stored).run()
    return root / "sup" / "model.pt", result


def test_supervised_model_translates_held_in_pairs(data, trained):
    root, _, test, _, _ = data
    model, result = trained
    assert result["best_bleu"] > 80
    out = root / "eval" / "metrics.json"
    subprocess.run([sys.executable, "-m", "xlm", "mt-eval", "--model", str(model), "--name",
                    "sup", "--directions", "en-fr", "--data", str(test), "--tok",
                    str(test / "tok"), "--beam", "3", "--out", str(out)], check=True)
    records = {r["metric"]: r for r in load_metrics_file(out)}
    assert set(records) == {"bleu", "bleu_tok"}
    assert records["bleu_tok"]["value"] > 80 and records["bleu"]["value"] > 60
    assert records["bleu"]["sacrebleu_signature"].startswith("nrefs:1|")
    assert all(r["task"] == "mt_sup" and r["lang"] == "fr" and r["direction"] == "en-fr"
               and r["encoder_init"] == "random" for r in records.values())


def test_bleu_equals_the_sacrebleu_command(data, trained):
    root, _, test, _, _ = data
    out = root / "eval" / "metrics.json"
    if not out.exists():
        pytest.skip("needs the evaluation of the previous test")
    bleu = next(r["value"] for r in load_metrics_file(out) if r["metric"] == "bleu")
    command = shutil.which("sacrebleu", path=str(BIN)) or "sacrebleu"
    printed = subprocess.run([command, str(test / "en-fr.fr.test.ref"), "-i",
                              str(root / "eval" / "en-fr.test.hyp"), "-b", "-w", "6"],
                             check=True, capture_output=True, text=True).stdout
    assert abs(float(printed) - bleu) < 1e-4


def test_beam_one_is_greedy(data, trained):
    _, folder, _, dictionary, _ = data
    trained_model, _, _ = load_translator(trained[0])
    random_model, _ = build_translator(MtSettings(directions=["en-fr"], **TINY), None, None,
                                       data[0] / "vocab")
    source = [with_eos(np.array([dictionary.index(w) for w in line.split()]), 20)
              for line in data[4]["en"][:16]]
    tokens, mask = pad_sequences(source)
    for model in (trained_model.eval(), random_model.eval()):
        ids = model.lang_ids("en", "fr")
        plain = greedy(model.encoder, model.decoder, tokens, mask, *ids, max_len=12)
        beam = beam_search(model.encoder, model.decoder, tokens, mask, *ids, beam_size=1,
                           max_len=12)
        assert beam == plain
        wide = beam_search(model.encoder, model.decoder, tokens, mask, *ids, beam_size=4,
                           length_penalty=1.0, early_stopping=False, max_len=12)
        assert len(wide) == len(plain) and all(EOS not in hyp for hyp in wide)


def test_dae_noise_keeps_ends_and_bounds():
    rng = np.random.default_rng(0)
    config = NoiseConfig(shuffle=3, dropout=0.1, blank=0.1, blank_index=5)
    for length in [0, 1, 2, 5, 30]:
        sentence = np.concatenate([[EOS], np.arange(100, 100 + length), [EOS]])
        for _ in range(50):
            noisy = add_noise(sentence, config, rng)
            assert noisy[0] == EOS and noisy[-1] == EOS
            assert min(length, 1) + 2 <= len(noisy) <= length + 2
            kept = noisy[1:-1][noisy[1:-1] != 5]
            assert set(kept.tolist()) <= set(range(100, 100 + length))
    words = np.arange(40)
    for _ in range(50):
        moved = word_shuffle(words, 3, rng)
        assert sorted(moved.tolist()) == list(range(40))
        assert np.abs(np.argsort(moved) - words).max() <= 3


def test_unsupervised_dae_and_back_translation_run(data):
    root, folder, test, _, _ = data
    settings = MtSettings(kind="unsupervised", setting="", dae=["en", "fr"],
                          bt=["en-fr", "fr-en"], eval_directions=["en-fr"], max_steps=8,
                          **{**TINY, "eval_every": 4})
    result = MtTrainer(settings, data=folder, vocab=root / "vocab", out=root / "unsup").run()
    assert result["best_step"] in (4, 8)
    _, _, state = load_translator(root / "unsup" / "model.pt")
    assert state["settings"]["dae"] == ["en", "fr"]


def test_resume_after_sigterm_is_exact(data, monkeypatch):
    root, folder, _, _, _ = data
    settings = MtSettings(directions=["en-fr", "fr-en"], max_steps=12,
                          **{**TINY, "eval_every": 6})

    def trainer(out):
        return MtTrainer(settings, data=folder, vocab=root / "vocab", out=out)

    trainer(root / "straight").run()
    interrupted = trainer(root / "resumed")
    original = MtTrainer._batch

    def batch_then_signal(self, *args, **kwargs):
        if self.step == 7:
            self.checkpoint.signal = signal.SIGTERM
        return original(self, *args, **kwargs)

    monkeypatch.setattr(mt_module.MtTrainer, "_batch", batch_then_signal)
    with pytest.raises(SystemExit):
        interrupted.run()
    monkeypatch.setattr(mt_module.MtTrainer, "_batch", original)
    trainer(root / "resumed").run()
    straight = torch.load(root / "straight" / "model.pt", weights_only=True)
    resumed = torch.load(root / "resumed" / "model.pt", weights_only=True)
    for side in ("encoder", "decoder"):
        for name, tensor in straight[side].items():
            torch.testing.assert_close(resumed[side][name], tensor)


def test_translate_command_reads_stdin(data, trained):
    _, _, _, _, tok = data
    sentences = [line for line in (data[2] / "en-fr.en.test.ref").read_text().splitlines()[:5]]
    result = subprocess.run([sys.executable, "-m", "xlm", "translate", "--model",
                             str(trained[0]), "--src", "en", "--tgt", "fr", "--beam", "2"],
                            input="\n".join(sentences) + "\n", capture_output=True, text=True,
                            check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert sum(tokenized("fr", [line])[0] == ref for line, ref in
               zip(lines, tok["fr"][:5], strict=True)) >= 3, lines


def test_pretrained_model_with_another_vocabulary_is_refused(data, tmp_path):
    root, folder, _, _, _ = data
    other = write_vocab(["un deux trois"], tmp_path / "vocab")
    model = tiny_model(tmp_path / "model.pt", other, ["en", "fr"])
    with pytest.raises(UserError, match="vocabulary does not match the model"):
        build_translator(MtSettings(directions=["en-fr"]), str(model), None, root / "vocab")


def test_a_pretrained_decoder_starts_the_same_in_every_process(data, tmp_path):
    """The fresh cross-attention of a decoder loaded from a pretrained model is seeded: two
    processes build the same translator (before, each process drew other weights, so MT
    runs from pretrained models could not be reproduced)."""
    root, _, _, dictionary, _ = data
    model = tiny_model(tmp_path / "model.pt", dictionary, ["en", "fr"], n_layers=1)
    script = (
        "import sys, torch\n"
        "from xlm.tasks.mt import MtSettings, build_translator\n"
        "torch.seed()\n"  # whatever state the process starts in
        "settings = MtSettings(directions=['en-fr'], encoder_init='m', decoder_init='m')\n"
        "translator, _ = build_translator(settings, sys.argv[1], sys.argv[1], sys.argv[2])\n"
        "print(repr(sum(float(p.double().sum()) for p in translator.parameters())))\n")
    sums = {subprocess.run([sys.executable, "-c", script, str(model), str(root / "vocab")],
                           capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(sums) == 1, sums
