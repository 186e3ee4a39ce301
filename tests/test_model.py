"""The Transformer: shapes, causality, padding, tied output, decoder cross-attention."""

from __future__ import annotations

import torch

from xlm.model import IGNORE_INDEX, ModelConfig, TransformerModel


def tiny(**overrides) -> TransformerModel:
    torch.manual_seed(0)
    config = ModelConfig(n_words=50, n_langs=2, dim=32, n_layers=2, n_heads=4, dropout=0.0,
                         attention_dropout=0.0, max_positions=64, **overrides)
    return TransformerModel(config).eval()


def test_forward_returns_hidden_and_loss_on_targets_only():
    model = tiny()
    tokens = torch.randint(14, 50, (3, 10))
    targets = torch.full_like(tokens, IGNORE_INDEX)
    targets[:, 4] = tokens[:, 4]
    out = model(tokens, langs=torch.zeros_like(tokens), targets=targets)
    assert out.hidden.shape == (3, 10, 32)
    assert out.logits.shape == (3, 50) and out.n_targets == 3
    expected = torch.nn.functional.cross_entropy(
        model.output_logits(out.hidden[:, 4]), tokens[:, 4], reduction="sum")
    torch.testing.assert_close(out.loss, expected)


def test_output_projection_is_tied_to_embeddings():
    model = tiny()
    names = [name for name, _ in model.named_parameters()]
    assert not any("pred" in name and "weight" in name for name in names)
    hidden = torch.randn(2, 32)
    torch.testing.assert_close(
        model.output_logits(hidden), hidden @ model.embeddings.weight.T + model.pred_bias)


def test_causal_attention_ignores_the_future():
    model = tiny()
    tokens = torch.randint(14, 50, (2, 12))
    changed = tokens.clone()
    changed[:, 8:] = torch.randint(14, 50, (2, 4))
    a = model(tokens, causal=True).hidden
    b = model(changed, causal=True).hidden
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])
    # Without the causal mask the past does see the future.
    assert not torch.allclose(model(tokens).hidden[:, :8], model(changed).hidden[:, :8])


def test_padding_does_not_change_real_positions():
    model = tiny()
    tokens = torch.randint(14, 50, (1, 7))
    padded = torch.cat([tokens, torch.full((1, 5), 2)], dim=1)
    pad_mask = padded != 2
    for causal in (False, True):
        alone = model(tokens, causal=causal).hidden
        with_pad = model(padded, pad_mask=pad_mask, causal=causal).hidden[:, :7]
        torch.testing.assert_close(alone, with_pad, atol=1e-5, rtol=1e-5)


def test_language_and_position_ids_matter():
    model = tiny()
    tokens = torch.randint(14, 50, (1, 6))
    base = model(tokens, langs=torch.zeros_like(tokens)).hidden
    other_lang = model(tokens, langs=torch.ones_like(tokens)).hidden
    restarted = model(tokens, langs=torch.zeros_like(tokens),
                      positions=torch.tensor([[0, 1, 2, 0, 1, 2]])).hidden
    assert not torch.allclose(base, other_lang)
    assert not torch.allclose(base, restarted)


def test_decoder_attends_to_encoder_memory():
    encoder, decoder = tiny(), tiny(is_decoder=True)
    assert "blocks.0.cross_attention.q_proj.weight" in dict(decoder.named_parameters())
    source = torch.randint(14, 50, (2, 9))
    memory = encoder(source).hidden
    target = torch.randint(14, 50, (2, 5))
    a = decoder(target, causal=True, memory=memory).hidden
    b = decoder(target, causal=True, memory=memory.flip(0)).hidden
    assert a.shape == (2, 5, 32)
    assert not torch.allclose(a, b)


def test_gradients_reach_every_parameter():
    model = tiny()
    model.train()
    tokens = torch.randint(14, 50, (2, 8))
    out = model(tokens, langs=torch.ones_like(tokens), causal=True, targets=tokens)
    out.loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []
