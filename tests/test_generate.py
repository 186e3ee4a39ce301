"""Incremental decoding (issue 16): the key/value cache gives exactly the tokens of the
uncached decoder (`use_cache=False`, which re-runs the whole prefix every step) for greedy,
beam search and the back-translation batches of MT training, on a tiny MT model trained
here on real Tatoeba pairs: batches of sources of different lengths, sentences and beams
that finish at different steps, and sentences that run out of length."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from task_helpers import tokenized, write_vocab

from xlm.data.dictionary import EOS
from xlm.data.indexed import binarize_lines
from xlm.model.generate import beam_search, greedy
from xlm.model.transformer import DecoderCache, ModelConfig, TransformerModel
from xlm.tasks.common import pad_sequences, with_eos
from xlm.tasks.mt import MtSettings, MtTrainer, build_translator

TINY = {"n_layers": 2, "dim": 64, "n_heads": 4, "dropout": 0.0, "attention_dropout": 0.0,
        "tokens_per_batch": 600, "lr": 2e-3, "warmup_steps": 50, "max_len": 30, "eval_every": 1000,
        "valid_sentences": 20, "log_every": 100, "checkpoint_every": 1000}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    """A trainer (with back-translation en-fr among its objectives) holding a model that
    learned en<->fr for 500 steps on 300 Tatoeba pairs of 1-8 words; the dictionary; the
    tokenized English and French lines."""
    root = tmp_path_factory.mktemp("generate")
    tatoeba = shared_data / "para" / "tatoeba"
    en = (tatoeba / "en-fr.en").read_text(encoding="utf-8").splitlines()
    fr = (tatoeba / "en-fr.fr").read_text(encoding="utf-8").splitlines()
    pairs = [(e, f) for e, f in zip(en, fr, strict=True)
             if len(e.split()) <= 8 and len(f.split()) <= 8][:300]
    tok = {"en": tokenized("en", [p[0] for p in pairs]),
           "fr": tokenized("fr", [p[1] for p in pairs])}
    dictionary = write_vocab(tok["en"] + tok["fr"], root / "vocab")
    folder = root / "bin"
    folder.mkdir()
    for lang in ("en", "fr"):
        for split in ("train", "valid"):
            binarize_lines(tok[lang], dictionary, folder / f"en-fr.{lang}.{split}")
        binarize_lines(tok[lang], dictionary, folder / f"{lang}.train")
    torch.set_num_threads(1)
    settings = MtSettings(directions=["en-fr", "fr-en"], max_steps=500, **TINY)
    supervised = MtTrainer(settings, data=folder, vocab=root / "vocab", out=root / "mt",
                           device=torch.device("cpu"))
    supervised.run()
    # Back-translation from the start would train on noise: add it to a trained model.
    settings = MtSettings(directions=["en-fr", "fr-en"], bt=["en-fr"], **TINY)
    trainer = MtTrainer(settings, data=folder, vocab=root / "vocab", out=root / "bt",
                        device=torch.device("cpu"))
    trainer.model.load_state_dict(supervised.model.state_dict())
    trainer.model.eval()
    return trainer, dictionary, tok


def _batches(trained, lang: str, size: int = 16, n: int = 64):
    """Batches of real sentences in file order: every batch mixes lengths (padding)."""
    _, dictionary, tok = trained
    sentences = [with_eos(np.array([dictionary.index(w) for w in line.split()]), 30)
                 for line in tok[lang][-n:]]
    return [pad_sequences(sentences[i:i + size]) for i in range(0, n, size)]


def test_cached_steps_give_the_full_decoder_outputs():
    """The decoder fed one token at a time with the cache computes the hidden states of the
    whole-prefix forward pass (and refuses what it cannot do)."""
    torch.manual_seed(0)
    config = ModelConfig(n_words=40, n_langs=2, dim=32, n_layers=3, n_heads=4, dropout=0.0,
                         attention_dropout=0.0, is_decoder=True)
    decoder = TransformerModel(config).eval()
    tokens = torch.randint(14, 40, (3, 9))
    langs = torch.ones_like(tokens)
    memory = torch.randn(3, 5, 32)
    memory_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]).bool()
    with torch.no_grad():
        full = decoder(tokens, langs=langs, causal=True, memory=memory,
                       memory_pad_mask=memory_mask).hidden
        cache = DecoderCache(config.n_layers)
        steps = [decoder(tokens[:, :3], langs=langs[:, :3], causal=True, memory=memory,
                         memory_pad_mask=memory_mask, cache=cache).hidden]
        for t in range(3, 9):
            steps.append(decoder(tokens[:, t:t + 1], langs=langs[:, t:t + 1], causal=True,
                                 memory=memory, memory_pad_mask=memory_mask,
                                 cache=cache).hidden)
        assert cache.length == 9 and cache.self_attention[0].keys.shape[2] == 9
        torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
        # Rows moved (encoder side too), then one more step: the permuted full pass.
        rows = torch.tensor([2, 0, 2])
        cache.reorder(rows)
        longer = torch.cat([tokens[rows], torch.randint(14, 40, (3, 1))], dim=1)
        step = decoder(longer[:, -1:], langs=torch.ones_like(longer[:, -1:]), causal=True,
                       memory=memory[rows], memory_pad_mask=memory_mask[rows], cache=cache)
        again = decoder(longer, langs=torch.ones_like(longer), causal=True,
                        memory=memory[rows], memory_pad_mask=memory_mask[rows]).hidden
        torch.testing.assert_close(step.hidden[:, 0], again[:, -1], rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError, match="one new position"):
            decoder(tokens[:, :2], causal=True, memory=memory, cache=cache)
        with pytest.raises(ValueError, match="no pad_mask"):
            decoder(tokens[:, :1], pad_mask=tokens[:, :1] > 0, memory=memory,
                    cache=DecoderCache(config.n_layers))


@pytest.mark.parametrize(("beam", "length_penalty", "early_stopping"),
                         [(4, 1.0, True), (4, 1.0, False), (3, 0.6, False), (1, 1.0, True)])
def test_beam_search_with_cache_equals_without(trained, beam, length_penalty, early_stopping):
    trainer = trained[0]
    model = trainer.model
    ids = model.lang_ids("en", "fr")
    lengths = set()
    for tokens, mask in _batches(trained, "en"):
        assert len(set(mask.sum(1).tolist())) > 2  # rows of different lengths
        kwargs = {"beam_size": beam, "length_penalty": length_penalty,
                  "early_stopping": early_stopping}
        cached = beam_search(model.encoder, model.decoder, tokens, mask, *ids, **kwargs)
        plain = beam_search(model.encoder, model.decoder, tokens, mask, *ids, use_cache=False,
                            **kwargs)
        assert cached == plain
        lengths.update(len(hyp) for hyp in cached)
    assert len(lengths) >= 5  # sentences finished at many different steps


def test_greedy_with_cache_equals_without(trained):
    trainer = trained[0]
    model = trainer.model
    for direction in ("en-fr", "fr-en"):
        src = direction.split("-")[0]
        ids = model.lang_ids(*direction.split("-"))
        for tokens, mask in _batches(trained, src):
            cached = greedy(model.encoder, model.decoder, tokens, mask, *ids)
            assert cached == greedy(model.encoder, model.decoder, tokens, mask, *ids,
                                    use_cache=False)
            assert len({len(hyp) for hyp in cached}) > 2
    # Out of length: a short max_len stops sentences that have not finished.
    tokens, mask = _batches(trained, "en")[0]
    ids = model.lang_ids("en", "fr")
    short = greedy(model.encoder, model.decoder, tokens, mask, *ids, max_len=4)
    assert short == greedy(model.encoder, model.decoder, tokens, mask, *ids, max_len=4,
                           use_cache=False)
    assert max(len(hyp) for hyp in short) == 3
    wide = beam_search(model.encoder, model.decoder, tokens, mask, *ids, beam_size=4,
                       early_stopping=False, max_len=4)
    assert wide == beam_search(model.encoder, model.decoder, tokens, mask, *ids, beam_size=4,
                               early_stopping=False, max_len=4, use_cache=False)


def test_back_translation_batches_equal_uncached_greedy(trained):
    """The sources MT training generates for back-translation (its own `_batch`, cached)
    are the uncached greedy translations of the same monolingual batch."""
    trainer = trained[0]
    model, s = trainer.model, trainer.settings
    datasets, batches = trainer.sources["bt:en-fr"]
    a_id, b_id = model.lang_ids("en", "fr")
    for number in range(4):
        src_t, src_mask, *_ = trainer._batch("bt", "en-fr", number, np.random.default_rng(0))
        rows = batches.get(number)
        tgt = [with_eos(datasets[0][int(i)], s.max_len) for i in rows]
        tokens, mask = pad_sequences(tgt)
        plain = greedy(model.encoder, model.decoder, tokens, mask, a_id, b_id,
                       max_len=min(s.max_len + 2, int(1.3 * tokens.shape[1] + 5)),
                       use_cache=False)
        expected, _ = pad_sequences([with_eos(np.asarray(g, dtype=np.int64), s.max_len)
                                     for g in plain])
        assert torch.equal(src_t, expected)


def test_random_model_runs_out_of_length_alike(trained):
    """An untrained model rarely says `</s>`: every sentence ends at max_len."""
    _, dictionary, _ = trained
    settings = MtSettings(directions=["en-fr"], **TINY)
    model, _ = build_translator(settings, None, None, trained[0].data.parent / "vocab")
    model.eval()
    tokens, mask = _batches(trained, "en")[1]
    ids = model.lang_ids("en", "fr")
    for beam in (1, 3):
        cached = beam_search(model.encoder, model.decoder, tokens, mask, *ids, beam_size=beam,
                             max_len=12)
        assert cached == beam_search(model.encoder, model.decoder, tokens, mask, *ids,
                                     beam_size=beam, max_len=12, use_cache=False)
        assert all(EOS not in hyp for hyp in cached)
