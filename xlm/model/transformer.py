"""The XLM Transformer (Lample & Conneau 2019), in one file that reads top to bottom.

Token + learned position + language embeddings are summed and layer-normed, then go
through post-LN blocks (multi-head attention, GELU feed-forward of 4x width). The
output projection is tied to the token embeddings and has its own bias. The same
block, with cross-attention switched on, builds the decoder of the MT models; generation
runs it one token at a time with a `DecoderCache` of past keys and values.

Tensors are batch-first: tokens are (batch, length). Boolean masks are True where
a position holds a real token. Targets use -100 for "not predicted", so one
`forward` serves CLM (every next token), MLM/TLM (the masked positions) and MT.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IGNORE_INDEX = -100


@dataclass
class ModelConfig:
    """Sizes of the network. Paper: dim 1024, 8 heads, dropout 0.1, 12 layers (6 for MT)."""

    n_words: int
    n_langs: int = 1
    dim: int = 1024
    n_layers: int = 12
    n_heads: int = 8
    dropout: float = 0.1
    attention_dropout: float = 0.1
    max_positions: int = 512
    pad_index: int = 2
    is_decoder: bool = False  # adds cross-attention to an encoder's output in every block

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not a multiple of n_heads {self.n_heads}")


@dataclass
class ModelOutput:
    """What the objectives need: hidden states, and for predicted positions the loss.

    `loss` is the *sum* of token losses and `n_targets` their number, so that the
    trainer can normalise over the whole (distributed, accumulated) batch. `n_correct` is
    a tensor on the model's device: reading it waits for the GPU, so callers sum it there
    and read it when they log.
    """

    hidden: Tensor
    logits: Tensor | None = None  # (n_targets, n_words), only at predicted positions
    loss: Tensor | None = None
    n_targets: int = 0
    n_correct: Tensor | int = 0


class MultiHeadAttention(nn.Module):
    """Attention through scaled_dot_product_attention (flash/memory-efficient kernels)."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        return x.view(batch, length, self.n_heads, dim // self.n_heads).transpose(1, 2)

    def forward(self, x: Tensor, kv: Tensor | None = None, mask: Tensor | None = None,
                causal: bool = False, cache: AttentionCache | None = None) -> Tensor:
        """`mask` is a boolean (batch, 1, q_len, k_len) of allowed pairs, or None.

        With `cache` (incremental decoding): self-attention (`kv` None) appends the keys and
        values of `x`, the newest positions, to the cached ones and attends to all of them;
        cross-attention projects `kv` (the encoder output) once and reuses it.
        """
        q = self._split(self.q_proj(x))
        if cache is not None and kv is not None and cache.keys is not None:
            k, v = cache.keys, cache.values
        else:
            source = x if kv is None else kv
            k, v = self._split(self.k_proj(source)), self._split(self.v_proj(source))
            if cache is not None:
                if kv is None and cache.keys is not None:
                    k = torch.cat([cache.keys, k], dim=2)
                    v = torch.cat([cache.values, v], dim=2)
                cache.keys, cache.values = k, v
        # One new position after cached ones sees all of them: no causal mask needed.
        incremental = cache is not None and kv is None and k.shape[2] > q.shape[2]
        if incremental and q.shape[2] > 1:
            raise ValueError("incremental decoding feeds one new position at a time")
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal and mask is None and not incremental,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).reshape(x.shape))


@dataclass
class AttentionCache:
    """Keys and values (batch, heads, length, head dim) one attention layer has seen."""

    keys: Tensor | None = None
    values: Tensor | None = None

    def reorder(self, rows: Tensor) -> None:
        if self.keys is not None:
            self.keys, self.values = self.keys[rows], self.values[rows]


class DecoderCache:
    """What incremental decoding keeps between steps: per block, the self-attention keys
    and values of the prefix so far and the cross-attention ones of the encoder output.

    Pass it to `TransformerModel.forward(..., cache=)` with only the new tokens; the
    positions continue from `length`. Beam search reorders the rows with `reorder`.
    """

    def __init__(self, n_layers: int) -> None:
        self.self_attention = [AttentionCache() for _ in range(n_layers)]
        self.cross_attention = [AttentionCache() for _ in range(n_layers)]
        self.length = 0

    def reorder(self, rows: Tensor, memory: bool = True) -> None:
        """Keep row `rows[i]` as row i. `memory=False` leaves the encoder's keys and values
        in place, correct when every row stays with its own source sentence (beam search)."""
        for cache in self.self_attention + (self.cross_attention if memory else []):
            cache.reorder(rows)


class FeedForward(nn.Module):
    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, 4 * dim)
        self.lin2 = nn.Linear(4 * dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.lin2(F.gelu(self.lin1(x))))


class Block(nn.Module):
    """Post-LN block as in XLM: x = LN(x + Attn(x)) [; x = LN(x + CrossAttn(x, enc))]; FFN."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(config.dim, config.n_heads, config.attention_dropout)
        self.norm_attention = nn.LayerNorm(config.dim, eps=1e-12)
        if config.is_decoder:
            self.cross_attention = MultiHeadAttention(
                config.dim, config.n_heads, config.attention_dropout)
            self.norm_cross = nn.LayerNorm(config.dim, eps=1e-12)
        self.ffn = FeedForward(config.dim, config.dropout)
        self.norm_ffn = nn.LayerNorm(config.dim, eps=1e-12)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, mask: Tensor | None, causal: bool,
                memory: Tensor | None = None, memory_mask: Tensor | None = None,
                cache: tuple[AttentionCache, AttentionCache] | None = None) -> Tensor:
        self_cache, cross_cache = cache if cache is not None else (None, None)
        attended = self.attention(x, mask=mask, causal=causal, cache=self_cache)
        x = self.norm_attention(x + self.dropout(attended))
        if memory is not None:
            cross = self.cross_attention(x, kv=memory, mask=memory_mask, cache=cross_cache)
            x = self.norm_cross(x + self.dropout(cross))
        return self.norm_ffn(x + self.ffn(x))


def attention_mask(pad_mask: Tensor | None, causal: bool, q_len: int) -> Tensor | None:
    """Boolean (batch, 1, q_len, k_len) mask of allowed pairs; None when nothing is masked.

    With no padding the kernels' own `is_causal` path is used (fastest). Whether a mask
    hides anything is only asked of a mask on the CPU: on a GPU the answer would wait for
    the device every step, so callers that know their batch is unpadded pass None.
    """
    if pad_mask is None or (not pad_mask.is_cuda and bool(pad_mask.all())):
        return None
    mask = pad_mask[:, None, None, :].expand(-1, 1, q_len, -1)
    if causal:
        k_len = pad_mask.shape[1]
        lower = torch.ones(q_len, k_len, dtype=torch.bool, device=pad_mask.device).tril()
        mask = mask & lower
    return mask


class TransformerModel(nn.Module):
    """The XLM encoder (CLM, MLM, TLM, XNLI) or, with `is_decoder`, the MT decoder."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = nn.Embedding(config.n_words, config.dim, padding_idx=config.pad_index)
        self.position_embeddings = nn.Embedding(config.max_positions, config.dim)
        self.lang_embeddings = nn.Embedding(config.n_langs, config.dim) if (
            config.n_langs > 1) else None
        self.norm_embeddings = nn.LayerNorm(config.dim, eps=1e-12)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        # Output projection: weight tied to the token embeddings, own bias.
        self.pred_bias = nn.Parameter(torch.zeros(config.n_words))
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """XLM's initialisation: embeddings N(0, dim^-1/2) with a zero padding row."""
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.dim ** -0.5)
            if module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embed(self, tokens: Tensor, positions: Tensor | None, langs: Tensor | None) -> Tensor:
        if positions is None:
            positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
        x = self.embeddings(tokens) + self.position_embeddings(positions)
        if self.lang_embeddings is not None and langs is not None:
            x = x + self.lang_embeddings(langs)
        return self.dropout(self.norm_embeddings(x))

    def output_logits(self, hidden: Tensor) -> Tensor:
        """Scores over the vocabulary for hidden states (used for generation, too)."""
        return F.linear(hidden, self.embeddings.weight, self.pred_bias)

    def forward(self, tokens: Tensor, *, positions: Tensor | None = None,
                langs: Tensor | None = None, pad_mask: Tensor | None = None,
                causal: bool = False, memory: Tensor | None = None,
                memory_pad_mask: Tensor | None = None,
                targets: Tensor | None = None,
                cache: DecoderCache | None = None) -> ModelOutput:
        """Encode `tokens`; with `targets` (-100 where nothing is predicted) also the loss.

        positions, langs: (batch, length) ids (positions default to 0..length-1).
        pad_mask: True on real tokens. memory: encoder output for a decoder.
        cache: incremental decoding; `tokens` are the positions after `cache.length` (one
        at a time once the cache holds any; no padding), and the cache is updated.
        """
        start = 0 if cache is None else cache.length
        if start + tokens.shape[1] > self.config.max_positions and positions is None:
            raise ValueError(f"sequence of {start + tokens.shape[1]} tokens is longer than "
                             f"max_positions {self.config.max_positions}")
        if cache is not None and pad_mask is not None:
            raise ValueError("incremental decoding (cache) takes no pad_mask")
        if cache is not None and positions is None:
            positions = torch.arange(start, start + tokens.shape[1],
                                     device=tokens.device).expand_as(tokens)
        x = self.embed(tokens, positions, langs)
        mask = attention_mask(pad_mask, causal, tokens.shape[1])
        memory_mask = None
        if memory is not None and memory_pad_mask is not None and (
                memory_pad_mask.is_cuda or not bool(memory_pad_mask.all())):
            memory_mask = memory_pad_mask[:, None, None, :]
        for i, block in enumerate(self.blocks):
            layer_cache = None if cache is None else (cache.self_attention[i],
                                                      cache.cross_attention[i])
            x = block(x, mask, causal, memory, memory_mask, layer_cache)
        if cache is not None:
            cache.length = start + tokens.shape[1]
        if targets is None:
            return ModelOutput(hidden=x)
        return self._loss(x, targets)

    @torch.compiler.disable
    def _loss(self, x: Tensor, targets: Tensor) -> ModelOutput:
        """Loss over the predicted positions. Outside torch.compile (`compile: true`
        compiles the layers): how many positions are predicted is data, which would make
        a compiled graph break or recompile at every batch."""
        # The predicted positions are found where `targets` live: on the CPU (as the
        # trainers pass them) that costs the GPU nothing, where a boolean index of a GPU
        # tensor waits for the device to learn how many rows it selects.
        index = (targets.flatten() != IGNORE_INDEX).nonzero().squeeze(1)
        gold = targets.flatten().index_select(0, index).to(x.device, non_blocking=True)
        selected = x.flatten(0, 1).index_select(0, index.to(x.device, non_blocking=True))
        logits = self.output_logits(selected).float()
        loss = F.cross_entropy(logits, gold, reduction="sum")
        n_correct = (logits.detach().argmax(-1) == gold).sum()
        return ModelOutput(hidden=x, logits=logits, loss=loss, n_targets=int(index.numel()),
                           n_correct=n_correct)


def flops_per_token(config: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward), as in nanoGPT/PaLM: 6N + 12 L T D."""
    n_params = 12 * config.n_layers * config.dim ** 2 + config.n_words * config.dim
    return 6 * n_params + 12 * config.n_layers * seq_len * config.dim

