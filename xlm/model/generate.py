"""Decoding for the MT models: greedy, and beam search with length penalty and early stopping.

Both read an encoder's output (`memory`) once. By default the decoder runs incrementally:
each step feeds only the newest token and reuses the keys and values of the prefix and of
the encoder output (`DecoderCache`), so a step costs the same at token 100 as at token 1.
`use_cache=False` re-runs the decoder on the whole prefix at every step, the simple
reference the cached path is tested against (same tokens) and benchmarked against.
Sentences are `</s> w1 .. wn </s>` as in XLM: decoding starts from `</s>` and ends when
`</s>` is produced; the returned ids leave both out.

Beam search follows XLM/fairseq: 2 x beam candidates per step so that a finished
hypothesis does not shrink the beam; a finished hypothesis scores
sum(log p) / length ** length_penalty (length: generated tokens, final `</s>` included);
with early stopping a sentence is done as soon as `beam` hypotheses finished, else when
no live beam can still beat the worst finished one. With beam 1 and early stopping this
is exactly greedy decoding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from xlm.data.dictionary import EOS
from xlm.model.transformer import DecoderCache, TransformerModel


def max_output_length(src_mask: Tensor, decoder: TransformerModel, a: float = 1.3,
                      b: int = 5) -> int:
    """Longest output for a batch: a x longest source + b (XLM), within the positions."""
    longest = int(src_mask.sum(1).max())
    return min(int(a * longest + b), decoder.config.max_positions)


def _langs(tokens: Tensor, lang: int | None) -> Tensor | None:
    return None if lang is None else torch.full_like(tokens, lang)


def encode(encoder: TransformerModel, src: Tensor, src_mask: Tensor, lang: int | None) -> Tensor:
    return encoder(src, langs=_langs(src, lang), pad_mask=src_mask).hidden


def next_log_probs(decoder: TransformerModel, prefix: Tensor, lang: int | None, memory: Tensor,
                   memory_mask: Tensor) -> Tensor:
    """Log-probabilities of the next token after each prefix row: (rows, vocabulary)."""
    hidden = decoder(prefix, langs=_langs(prefix, lang), causal=True, memory=memory,
                     memory_pad_mask=memory_mask).hidden
    return torch.log_softmax(decoder.output_logits(hidden[:, -1]).float(), dim=-1)


class _Stepper:
    """Next-token log-probabilities of each prefix row, with or without the cache."""

    def __init__(self, decoder: TransformerModel, lang: int | None, memory: Tensor,
                 memory_mask: Tensor, use_cache: bool) -> None:
        self.decoder, self.lang, self.memory, self.memory_mask = decoder, lang, memory, memory_mask
        self.cache = DecoderCache(decoder.config.n_layers) if use_cache else None

    def __call__(self, prefix: Tensor) -> Tensor:
        if self.cache is None:
            return next_log_probs(self.decoder, prefix, self.lang, self.memory, self.memory_mask)
        new = prefix[:, self.cache.length:]  # the whole prefix at first, then the last token
        hidden = self.decoder(new, langs=_langs(new, self.lang), causal=True,
                              memory=self.memory, memory_pad_mask=self.memory_mask,
                              cache=self.cache).hidden
        return torch.log_softmax(self.decoder.output_logits(hidden[:, -1]).float(), dim=-1)

    def reorder(self, rows: Tensor) -> None:
        """Beam search moved prefix rows: move their keys and values alike (each row stays
        with its own source sentence, so the encoder's are left in place)."""
        if self.cache is not None:
            self.cache.reorder(rows, memory=False)


@torch.no_grad()
def greedy(encoder: TransformerModel, decoder: TransformerModel, src: Tensor, src_mask: Tensor,
           src_lang: int | None, tgt_lang: int | None, max_len: int | None = None,
           use_cache: bool = True) -> list[list[int]]:
    """The most likely next token at every step, until `</s>` or `max_len` tokens."""
    max_len = max_len or max_output_length(src_mask, decoder)
    memory = encode(encoder, src, src_mask, src_lang)
    step = _Stepper(decoder, tgt_lang, memory, src_mask, use_cache)
    prefix = torch.full((src.shape[0], 1), EOS, dtype=torch.long, device=src.device)
    finished = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    while prefix.shape[1] < max_len and not bool(finished.all()):
        word = step(prefix).argmax(-1)
        prefix = torch.cat([prefix, word[:, None]], dim=1)
        finished |= word == EOS
    return [_strip(row) for row in prefix.tolist()]


def _strip(row: list[int]) -> list[int]:
    """Ids after the leading `</s>`, up to (not including) the first `</s>`."""
    out = row[1:]
    return out[:out.index(EOS)] if EOS in out else out


@torch.no_grad()
def beam_search(encoder: TransformerModel, decoder: TransformerModel, src: Tensor,
                src_mask: Tensor, src_lang: int | None, tgt_lang: int | None, beam_size: int,
                length_penalty: float = 1.0, early_stopping: bool = True,
                max_len: int | None = None, use_cache: bool = True) -> list[list[int]]:
    """The best finished hypothesis of each source sentence."""
    max_len = max_len or max_output_length(src_mask, decoder)
    n, k = src.shape[0], beam_size
    memory = encode(encoder, src, src_mask, src_lang)
    memory = memory.repeat_interleave(k, dim=0)
    memory_mask = src_mask.repeat_interleave(k, dim=0)
    step = _Stepper(decoder, tgt_lang, memory, memory_mask, use_cache)
    prefix = torch.full((n * k, 1), EOS, dtype=torch.long, device=src.device)
    beam_scores = torch.zeros(n, k, device=src.device)
    beam_scores[:, 1:] = -1e9  # at first all beams are the same prefix: keep one
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    done = [False] * n

    def normalised(score: float, length: int) -> float:
        return score / length ** length_penalty

    while prefix.shape[1] < max_len and not all(done):
        generated = prefix.shape[1]  # tokens after this step, the leading </s> left out
        log_probs = step(prefix)
        vocab = log_probs.shape[1]
        scores = (log_probs + beam_scores.view(-1, 1)).view(n, k * vocab)
        top_scores, top_ids = scores.topk(2 * k, dim=1)
        next_beams: list[tuple[float, int, int]] = []  # (score, word, source row)
        for i in range(n):
            if done[i]:
                next_beams.extend((0.0, EOS, i * k) for _ in range(k))
                continue
            chosen = []
            for score, index in zip(top_scores[i].tolist(), top_ids[i].tolist(), strict=True):
                beam, word = divmod(index, vocab)
                row = i * k + beam
                if word == EOS:
                    tokens = prefix[row, 1:].tolist()
                    finished[i].append((normalised(score, generated), tokens))
                    finished[i] = sorted(finished[i], key=lambda h: -h[0])[:k]
                else:
                    chosen.append((score, word, row))
                if len(chosen) == k:
                    break
            next_beams.extend(chosen)
            best_live = float(top_scores[i].max())
            if len(finished[i]) >= k:
                done[i] = early_stopping or (
                    finished[i][-1][0] >= normalised(best_live, generated))
        rows = torch.tensor([row for _, _, row in next_beams], device=src.device)
        words = torch.tensor([word for _, word, _ in next_beams], device=src.device)
        beam_scores = torch.tensor([score for score, _, _ in next_beams],
                                   device=src.device).view(n, k)
        prefix = torch.cat([prefix[rows], words[:, None]], dim=1)
        step.reorder(rows)
    results = []
    for i in range(n):
        hypotheses = list(finished[i])
        if not done[i]:  # out of length: the live beams compete too
            for beam in range(k):
                score = float(beam_scores[i, beam])
                if score > -1e8:
                    hypotheses.append((normalised(score, prefix.shape[1] - 1),
                                       prefix[i * k + beam, 1:].tolist()))
        best = max(hypotheses, key=lambda h: h[0])[1] if hypotheses else []
        results.append(best)
    return results


def translate_batch(encoder: TransformerModel, decoder: TransformerModel, src: Tensor,
                    src_mask: Tensor, src_lang: int | None, tgt_lang: int | None,
                    beam_size: int = 1, length_penalty: float = 1.0,
                    early_stopping: bool = True, use_cache: bool = True) -> list[list[int]]:
    """Greedy for beam 1, beam search otherwise."""
    if beam_size <= 1:
        return greedy(encoder, decoder, src, src_mask, src_lang, tgt_lang, use_cache=use_cache)
    return beam_search(encoder, decoder, src, src_mask, src_lang, tgt_lang, beam_size,
                       length_penalty, early_stopping, use_cache=use_cache)
