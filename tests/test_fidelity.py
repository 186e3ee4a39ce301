"""The reference recipe (facebookresearch/XLM and the paper), pinned: each test here fails
if a behaviour listed in docs/fidelity.md drifts from it. Real Tatoeba pairs and the
real presets are used; models are tiny."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pretrain_helpers import SPLITS, TINY_SETTINGS, build_pretrain_data
from pretrain_helpers import write_vocab as write_pretrain_vocab
from task_helpers import build_xnli, tiny_model, tokenized, write_vocab

from xlm.data.batching import ParallelDataset, stream_batch, tlm_flipped
from xlm.data.dictionary import EOS, N_SPECIAL, Dictionary
from xlm.data.indexed import IndexedDataset, binarize_lines
from xlm.data.streams import StreamDataset
from xlm.errors import UserError
from xlm.report.records import load_metrics_file
from xlm.report.tables import embeddings_table, load_references, low_resource_lm_table
from xlm.tasks.embeddings import read_dictionary
from xlm.tasks.mt import Batches, MtSettings, MtTrainer, build_translator, translate_dataset
from xlm.tasks.noise import word_shuffle
from xlm.tasks.xnli import XnliFineTuner, XnliSettings, XnliSplit
from xlm.train.masking import MaskingConfig, mask_batch, target_weights
from xlm.train.optim import parse_weight_schedule, weight_at
from xlm.train.settings import PretrainSettings
from xlm.train.trainer import Pretrainer

REPO = Path(__file__).resolve().parent.parent
TINY_MT = {"n_layers": 1, "dim": 32, "n_heads": 4, "dropout": 0.0, "attention_dropout": 0.0,
           "tokens_per_batch": 400, "max_len": 20, "eval_every": 1000, "valid_sentences": 5,
           "log_every": 1000}


@pytest.fixture(scope="module")
def mt_data(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    """60 short real en-fr Tatoeba pairs as parallel train/valid and monolingual text."""
    root = tmp_path_factory.mktemp("fidelity_mt")
    tatoeba = shared_data / "para" / "tatoeba"
    en = (tatoeba / "en-fr.en").read_text(encoding="utf-8").splitlines()
    fr = (tatoeba / "en-fr.fr").read_text(encoding="utf-8").splitlines()
    pairs = [(e, f) for e, f in zip(en, fr, strict=True)
             if len(e.split()) <= 6 and len(f.split()) <= 6][:60]
    tok = {"en": tokenized("en", [p[0] for p in pairs]),
           "fr": tokenized("fr", [p[1] for p in pairs])}
    dictionary = write_vocab(tok["en"] + tok["fr"], root / "vocab")
    folder = root / "bin"
    folder.mkdir()
    for lang, lines in tok.items():
        for split in ("train", "valid"):
            binarize_lines(lines, dictionary, folder / f"en-fr.{lang}.{split}")
        binarize_lines(lines, dictionary, folder / f"{lang}.train")
    return folder, root / "vocab"


@pytest.fixture(scope="module")
def pretrain_data(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    """Real FLORES en/fr lines: monolingual streams and the en-fr pairs."""
    return build_pretrain_data(shared_data, tmp_path_factory.mktemp("fidelity_pretrain"))


def pretrainer(data: tuple[Path, Path], out: Path, **overrides) -> Pretrainer:
    settings = PretrainSettings.from_dict({**TINY_SETTINGS, **overrides})
    return Pretrainer(settings, data_dir=data[0], vocab=data[1], out_dir=out, name="t")


# ----------------------------------------------------------------------- TLM
def test_tlm_trains_both_orders_half_the_time(pretrain_data, tmp_path, monkeypatch):
    """XLM's MLM+TLM command lists `en-fr` and `fr-en` alike: over 1,000 draws each order
    is drawn 50% +- 5%, and training really lays flipped pairs out as `fr en`."""
    flips = [tlm_flipped(0, draw) for draw in range(1000)]
    assert 450 <= sum(flips) <= 550
    trainer = pretrainer(pretrain_data, tmp_path / "tlm", tlm=["en-fr"], max_steps=12)
    seen: list[tuple[bool, int, int]] = []
    real = ParallelDataset.tlm_batch

    def spy(self, pairs, lang_ids, rank=0, world_size=1, flip=False):
        batch = real(self, pairs, lang_ids, rank, world_size, flip)
        row = int(pairs[0])
        side = self.target if flip else self.source
        first = batch.tokens[0, 1:1 + min(len(side[row]), self.max_len)].tolist()
        assert first == [int(t) for t in side[row][:self.max_len]]
        assert int(batch.langs[0, 0]) == trainer.lang_id["fr" if flip else "en"]
        assert int(batch.tokens[0, 0]) == EOS
        seen.append((flip, int(batch.langs[0, 0]), row))
        return batch

    monkeypatch.setattr(ParallelDataset, "tlm_batch", spy)
    for _ in range(12):
        trainer.train_step()
    assert [flip for flip, _, _ in seen] == flips[:12]
    assert {flip for flip, _, _ in seen} == {True, False}


def test_each_update_is_one_objective_and_accumulation_keeps_it(pretrain_data, tmp_path,
                                                               monkeypatch):
    """Each of XLM's MLM/TLM steps is its own optimizer update (MLM and TLM updates
    alternate); `accumulate` makes an update bigger, as more GPUs would, not mixed."""
    trainer = pretrainer(pretrain_data, tmp_path / "acc", mlm=["en", "fr"], tlm=["en-fr"],
                         accumulate=3)
    drawn: list[tuple[int, str]] = []
    real = trainer._train_rows
    monkeypatch.setattr(trainer, "_train_rows", lambda objective, source, number: (
        drawn.append((trainer.step, objective)) or real(objective, source, number)))
    for _ in range(4):
        trainer.train_step()
    assert drawn == [(step, ["mlm", "tlm"][step % 2]) for step in range(4) for _ in range(3)]


# ----------------------------------------------------------------------- validation
def test_validation_masks_every_target_and_stops_on_monolingual_ppl(pretrain_data, tmp_path):
    """XLM's Evaluator.mask_out replaces every target by the mask token (no 80/10/10), and
    its stopping criterion `_valid_mlm_ppl` averages the monolingual MLM perplexities only."""
    trainer = pretrainer(pretrain_data, tmp_path / "ev", mlm=["en", "fr"], tlm=["en-fr"],
                         pred_probs=[0.8, 0.1, 0.1])
    calls = []
    trainer.model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs), with_kwargs=True)
    results = trainer.evaluate("valid")
    assert len(calls) >= 4
    mask = trainer.dictionary.mask_index
    for kwargs in calls:
        chosen = kwargs["targets"] != -100
        assert int(chosen.sum()) > 0
        assert bool((kwargs["tokens"][chosen] == mask).all())
        assert not bool((kwargs["tokens"][~chosen] == mask).any())
    again = trainer.evaluate("valid")
    assert again == results  # the same draws at every evaluation
    mlm = [ppl for ppl, _ in results["mlm"].values()]
    assert Pretrainer.average_ppl(results) == pytest.approx(sum(mlm) / len(mlm))
    assert Pretrainer.average_ppl({"clm": {"en": (10.0, 0.1), "fr": (30.0, 0.1)}}) == 20.0
    assert Pretrainer.average_ppl({"tlm": {"en-fr": (7.0, 0.1)}}) == 7.0
    # select_on: the low-resource LM is selected on its target language alone.
    both = {"clm": {"ne": (300.0, 0.1), "hi": (100.0, 0.1)}}
    assert Pretrainer.average_ppl(both, ["ne"]) == 300.0
    assert Pretrainer.average_ppl(both) == 200.0


def test_select_on_must_name_a_monolingual_language():
    with pytest.raises(UserError, match="select_on"):
        PretrainSettings.from_dict({"clm": ["ne", "hi"], "select_on": ["en"]})
    assert PretrainSettings.from_dict({"clm": ["ne"], "select_on": ["ne"]}).select_on == ["ne"]


# ----------------------------------------------------------------------- MT optimisation
def test_mt_lr_is_xlm_inverse_sqrt_with_4000_warmup(mt_data, tmp_path):
    """XLM's MT command: adam_inverse_sqrt, beta1 0.9, beta2 0.98, warm-up 4000 updates;
    after the warm-up the lr falls as 1/sqrt(step): at 4x the warm-up it is half the peak."""
    folder, vocab = mt_data
    settings = MtSettings(directions=["en-fr"], **TINY_MT)
    trainer = MtTrainer(settings, data=folder, vocab=vocab, out=tmp_path / "mt",
                        device=torch.device("cpu"))
    group = trainer.optimizer.param_groups[0]
    assert group["betas"] == (0.9, 0.98)
    assert settings.warmup_steps == 4000 and settings.schedule == "inverse_sqrt"
    lrs = []
    for _ in range(4 * 4000 + 1):
        lrs.append(group["lr"])
        trainer.optimizer.step()  # no gradients: only the schedule moves
        trainer.scheduler.step()
    peak = max(lrs)
    assert peak == pytest.approx(settings.lr, rel=1e-3)
    assert lrs.index(peak) == 3999  # linear warm-up to the peak over 4000 updates
    assert lrs[2000] == pytest.approx(settings.lr / 2, rel=1e-3)
    assert lrs[4 * 4000] == pytest.approx(settings.lr / 2, rel=1e-3)


# ----------------------------------------------------------------------- loss weights
def test_weight_schedule_follows_xlm_lambda_syntax():
    """XLM's `--lambda_ae '0:1,100000:0.1,300000:0'`: piecewise linear, then constant."""
    points = parse_weight_schedule("0:1,100000:0.1,300000:0", "lambda_ae")
    assert weight_at(points, 0) == 1.0
    assert weight_at(points, 50_000) == pytest.approx(0.55)
    assert weight_at(points, 100_000) == pytest.approx(0.1)
    assert weight_at(points, 200_000) == pytest.approx(0.05)
    assert weight_at(points, 300_000) == 0.0
    assert weight_at(points, 10**7) == 0.0
    assert weight_at(parse_weight_schedule(3, "lambda_bt"), 12345) == 3.0
    for bad in ("1:1,2:0", "0:1,0:2", "0:1,x:2", "0:-1"):
        with pytest.raises(UserError, match="lambda_ae"):
            parse_weight_schedule(bad, "lambda_ae")


def test_zero_weight_skips_the_objectives_updates(mt_data, tmp_path):
    """A weight of 0 skips that objective (XLM's mt_step returns when lambda == 0): with
    lambda_ae '0:1,2:0' only the first two rounds of DAE update the model."""
    folder, vocab = mt_data
    settings = MtSettings(kind="unsupervised", dae=["en"], eval_directions=["en-fr"],
                          max_steps=5, lambda_ae="0:1,2:0", schedule="constant",
                          warmup_steps=0, **TINY_MT)
    trainer = MtTrainer(settings, data=folder, vocab=vocab, out=tmp_path / "mt",
                        device=torch.device("cpu"))
    trainer.run()
    assert trainer.step == 5
    assert trainer.scheduler.last_epoch == 2  # two updates, then none
    with pytest.raises(UserError, match="lambda_bt"):
        MtSettings(bt=["en-fr"], lambda_bt="0:1,5")


# ----------------------------------------------------------------------- decoding length
@pytest.mark.parametrize("beam", [1, 2])
def test_evaluation_decodes_up_to_one_and_a_half_the_source_plus_ten(mt_data, beam):
    """XLM's evaluate_mt: max_len = 1.5 x the longest source (with its two </s>) + 10; a
    decoder that never ends a sentence shows the limit."""
    folder, vocab = mt_data
    settings = MtSettings(directions=["en-fr"], **TINY_MT)
    model, dictionary = build_translator(settings, None, None, vocab)
    with torch.no_grad():  # never </s> nor another special token: decoding runs to the limit
        model.decoder.pred_bias[:N_SPECIAL] = -1e9
    source = IndexedDataset(folder / "en-fr.en.train", dictionary)
    longest = max(range(len(source)), key=lambda i: len(source[i]))
    hyps, _ = translate_dataset(model, dictionary, source, "en-fr", [longest], 100,
                                beam_size=beam)
    n_source = len(source[longest]) + 2
    assert len(hyps[0].split()) == int(1.5 * n_source + 10) - 1  # less the leading </s>


# ----------------------------------------------------------------------- XNLI protocol
def test_xnli_epochs_of_epoch_size_pairs_no_clipping_and_per_sentence_truncation(
        shared_data, tmp_path, monkeypatch):
    """XLM's glue-xnli.py: an epoch is `--epoch_size` pairs of a fresh shuffle, each
    followed by an evaluation; Adam without clipping; classifier dropout 0; each sentence
    clipped to max_len at training (`truncate`), whole pairs at evaluation."""
    data, vocab, dictionary = build_xnli(shared_data, tmp_path, langs=("en",), n_eval=40)
    model = tiny_model(tmp_path / "model.pt", dictionary, ["en"], dim=32, n_layers=1)
    defaults = XnliSettings()
    assert (defaults.clip_norm, defaults.dropout) == (0.0, 0.0)
    settings = XnliSettings(lr=[1e-4], batch_size=[8], epochs=3, epoch_size=16, max_len=6)
    tuner = XnliFineTuner(settings, model_path=model, data=data, vocab=vocab,
                          languages=["en"], out=tmp_path / "xnli", device=torch.device("cpu"))
    assert max(len(x) for x in tuner.train.inputs) == 2 * 4 + 3  # 4 words a sentence, 3 </s>
    assert max(len(x) for x in tuner.valid.inputs) > 11  # evaluation reads whole pairs
    batches = []
    real_batch = tuner.train.batch
    monkeypatch.setattr(tuner.train, "batch", lambda rows, *a: batches.append(len(rows))
                        or real_batch(rows, *a))
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda *a, **k: pytest.fail("XNLI fine-tuning must not clip"))
    rows = tuner.run()
    assert batches == [8, 8] * 3  # 16 pairs per epoch, three epochs
    assert {row["epoch"] for row in rows} <= {1, 2, 3}
    whole = XnliSplit.load(data, "en", "train", dictionary, 6, None, 512, training=True)
    assert all(list(x).count(EOS) == 3 for x in whole.inputs)


# ----------------------------------------------------------------------- presets
# XLM's updates: per-GPU sizes of its README commands times the GPUs of paper 5.1.
REFERENCE_STREAM_TOKENS = 64 * 32 * 256  # 64 GPUs x --batch_size 32 x --bptt 256
REFERENCE_TLM_TOKENS = 64 * 4000  # 64 GPUs x 4000 tokens (paper 5.1)
REFERENCE_MT_TOKENS = 8 * 2000  # 8 GPUs x --tokens_per_batch 2000


def within_2x(ours: float, reference: float) -> bool:
    return reference / 2 <= ours <= reference * 2


@pytest.mark.parametrize("preset", ["xnli15.yaml", "mt.yaml"])
def test_presets_update_size_matches_reference_and_says_how(preset):
    """The presets carry the reference's effective update (within 2x), say how many GPUs x
    per-GPU batch x accumulation that is, and weight MLM targets as the paper (0.5)."""
    path = REPO / "configs" / preset
    text = path.read_text(encoding="utf-8")
    pretrain = yaml.safe_load(text)["pretrain"]
    accumulate = pretrain["accumulate"]
    assert within_2x(pretrain["batch_size"] * pretrain["bptt"] * accumulate,
                     REFERENCE_STREAM_TOKENS)
    assert within_2x(pretrain["tokens_per_batch"] * accumulate, REFERENCE_TLM_TOKENS)
    assert f"8 GPUs x 32 streams per GPU x accumulate {accumulate}" in " ".join(text.split())
    assert pretrain["sample_alpha"] == 0.5
    assert "1/sqrt(frequency)" in text
    if preset == "mt.yaml":
        defaults = yaml.safe_load(text)["mt"]["defaults"]
        assert within_2x(defaults["tokens_per_batch"], REFERENCE_MT_TOKENS)
        assert "shared by the ranks: 16,000 padded tokens per update" in " ".join(text.split())
        assert defaults["lambda_ae"] == "0:1,100000:0.1,300000:0"


# ----------------------------------------------------------------------- smaller points
def test_dae_shuffle_moves_words_fewer_than_k_places():
    """XLM's word_shuffle sorts by index + uniform(0, k): with k = 3 a word moves at most
    2 places (never 3), and 2 does happen."""
    rng = np.random.default_rng(0)
    words = np.arange(40)
    moves = [int(np.abs(np.argsort(word_shuffle(words, 3, rng)) - words).max())
             for _ in range(300)]
    assert max(moves) == 2


def test_length_batches_are_regrouped_every_epoch(pretrain_data):
    """XLM shuffles sentences before its stable sort by length at every epoch: pairs of
    equal length share other batches each epoch; sizes and coverage stay (TLM and MT)."""
    data_dir, vocab = pretrain_data
    dictionary = Dictionary.read_vocab(vocab)
    sides = [IndexedDataset(data_dir / f"en-fr.{lang}.train", dictionary) for lang in ("en", "fr")]
    pairs = ParallelDataset(*sides, max_len=40, seed=0, key=1)
    n_batches = len(pairs.length_batches(600))
    epochs = [[pairs.train_pairs(epoch * n_batches + i, 600) for i in range(n_batches)]
              for epoch in range(2)]
    for batches in epochs:
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(pairs)))
        assert all(len(b) * pairs.pair_lengths[b].max() <= 600 for b in batches if len(b) > 1)
    groups = [{frozenset(b.tolist()) for b in batches} for batches in epochs]
    assert groups[0] != groups[1]
    assert sorted(map(len, epochs[0])) == sorted(map(len, epochs[1]))
    mt = Batches(pairs.pair_lengths, 600, seed=0, key=1)
    mt_groups = [{frozenset(mt.get(e * len(mt.batches) + i).tolist())
                  for i in range(len(mt.batches))} for e in range(2)]
    assert mt_groups[0] != mt_groups[1]


@pytest.mark.parametrize("sample_alpha", [0.0, 0.5])
def test_mlm_never_predicts_position_zero(pretrain_data, sample_alpha):
    """XLM's mask_out sets `pred_mask[0] = 0`: the first token of a stream row (or the
    `</s>` opening a TLM pair) is never a target; about 15% of the others are."""
    data_dir, vocab = pretrain_data
    dictionary = Dictionary.read_vocab(vocab)
    stream = StreamDataset(IndexedDataset(data_dir / "en.train", dictionary), bptt=32)
    batch = stream_batch(stream.read_rows(np.arange(16)), 0, 16, 0)
    weights = target_weights(dictionary.counts, sample_alpha, dictionary.pad_index)
    chosen = torch.zeros(16, 32)
    for seed in range(100):
        _, targets = mask_batch(batch, MaskingConfig(sample_alpha=sample_alpha), weights,
                                dictionary.mask_index, len(dictionary),
                                torch.Generator().manual_seed(seed))
        chosen += (targets != -100).float()
    assert chosen[:, 0].sum() == 0
    eligible = weights[batch.tokens][:, 1:] > 0  # not <unk> etc. when sample_alpha > 0
    assert 0.12 < float(chosen[:, 1:].sum()) / 100 / int(eligible.sum()) < 0.18


# ----------------------------------------------------------------------- evaluation protocol
def test_clm_perplexity_per_word_divides_the_nll_by_original_words(shared_data, tmp_path):
    """Perplexity per word: the total NLL over the words of the original text, not over
    BPE units (`@@` pieces), so vocabularies compare; real FLORES text cut into pieces."""
    lines = (shared_data / "para" / "flores200" / "devtest.en").read_text(
        encoding="utf-8").splitlines()

    def pieces(line: str) -> str:
        return " ".join(f"{w[:3]}@@ {w[3:]}" if len(w) > 5 else w for w in line.split())

    text = tmp_path / "en.txt"
    text.write_text("".join(pieces(line) + "\n" for line in lines), encoding="utf-8")
    dictionary = write_pretrain_vocab([text], tmp_path / "vocab", 2000)
    data = tmp_path / "bin"
    data.mkdir()
    segmented = text.read_text(encoding="utf-8").splitlines()
    for split, part in SPLITS.items():
        binarize_lines(segmented[part], dictionary, data / f"en.{split}")
    trainer = pretrainer((data, tmp_path / "vocab"), tmp_path / "clm", clm=["en"])
    ppl, _ = trainer.evaluate("valid")["clm"]["en"]
    per_word = trainer.word_ppl[("valid", "en")]
    stream = StreamDataset(IndexedDataset(data / "en.valid", dictionary), TINY_SETTINGS["bptt"])
    rows = np.concatenate(stream.eval_rows(TINY_SETTINGS["batch_size"],
                                           TINY_SETTINGS["eval_batches"]))
    targets = stream.read_rows(rows)[:, 1:].ravel()
    words = sum(not dictionary.id2word[int(t)].endswith("@@") for t in targets)
    assert words < len(targets)
    assert math.log(per_word) == pytest.approx(math.log(ppl) * len(targets) / words, rel=1e-6)


def test_table5_scores_all_pairs_and_differently_spelled_pairs_with_counts(shared_data,
                                                                            tmp_path):
    """Identically spelled pairs (names, numbers) are retrieved trivially by a shared
    vocabulary: the embeddings task scores all pairs and the differently spelled ones, with
    counts, and Table 5 shows both rows."""
    source = shared_data / "dict" / "muse-test-5000-6500.en-de.txt"
    pairs = read_dictionary(source, max_pairs=400)
    same = [(s, t) for s, t in pairs if s == t]
    assert same  # real dictionaries have them
    dictionary = write_vocab([" ".join(w for pair in pairs for w in pair)], tmp_path / "vocab")
    model = tiny_model(tmp_path / "model.pt", dictionary, ["de", "en"])
    out = tmp_path / "metrics.json"
    subprocess.run([sys.executable, "-m", "xlm", "embeddings", "--model", str(model), "--name",
                    "tiny", "--dictionaries", f"en-de={source}", "--max-pairs", "400",
                    "--out", str(out)], check=True)
    records = load_metrics_file(out)
    value = {(r["subset"], r["metric"]): r["value"] for r in records}
    assert value[("all", "n_pairs")] == len(pairs)
    assert value[("different spelling", "n_pairs")] == len(pairs) - len(same)
    assert value[("all", "cosine")] > value[("different spelling", "cosine")]  # same row: 1.0
    table = embeddings_table(records, load_references())
    ours = {row.descriptors[1]: row for row in table.rows if not row.reference}
    assert set(ours) == {"en-de", "en-de (different spelling)"}
    n_pairs = table.columns.index("n_pairs")
    assert ours["en-de (different spelling)"].cells[n_pairs] == len(pairs) - len(same)
    assert any("spelled differently" in note for note in table.notes)


def test_table4_shows_perplexity_per_bpe_unit_and_per_word():
    """Table 4 shows both perplexities and says which one is the paper's."""
    common = {"task": "lm", "model": "lm_ne", "split": "test", "lang": "ne",
              "languages": ["ne"], "run_name": "r"}
    records = [{**common, "metric": "ppl", "value": 120.0},
               {**common, "metric": "ppl_word", "value": 480.0}]
    table = low_resource_lm_table(records, load_references())
    assert table.columns == ("ne", "ne per word")
    (ours,) = [row for row in table.rows if not row.reference]
    assert ours.cells == (120.0, 480.0)
    paper = [row for row in table.rows if row.reference]
    assert paper and all(row.cells[1] is None for row in paper)  # the paper: per BPE unit
    assert "the paper's unit" in table.notes[0]
