"""Decoding: sentences/s with the key/value cache against the uncached decoder (issue 16).

Two workloads, each at 20, 50 and 100 output tokens:
- `xlm translate`: beam search as the command runs it (beam 4, length penalty 1, early
  stopping) on a batch of sentences;
- back-translation: the greedy batch unsupervised MT generates at each `bt` step.
Ours is `xlm.model.generate` as it runs now (cached); the peer is the same code with
`use_cache=False`, which re-runs the decoder on the whole prefix at every step (the
decoding before the cache). Both decode the same sources with the same model, and their
tokens are compared (same tokens: yes/no in the table).

The model has random weights and `</s>` is barred from the output (its bias is -1e9), so
every sentence decodes exactly the stated number of tokens: the cost per token depends on
the sizes, not on what the weights learned. Sources are as long as the outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from benchmarks.common import Options, Result, Row, best_of

log = logging.getLogger(__name__)


@dataclass
class Size:
    n_layers: int  # encoder and decoder each
    dim: int
    n_heads: int
    n_words: int
    beam: int
    beam_sentences: int  # sentences per beam-search batch
    bt_sentences: int  # sentences per back-translation batch
    lengths: tuple[int, ...]


CPU_SIZE = Size(n_layers=4, dim=256, n_heads=8, n_words=10_000, beam=4, beam_sentences=4,
                bt_sentences=16, lengths=(20, 50, 100))
# The paper's MT model (6 layers, 1024 wide) and `xlm translate`'s batch of 32 sentences.
GPU_SIZE = Size(n_layers=6, dim=1024, n_heads=8, n_words=60_000, beam=4, beam_sentences=32,
                bt_sentences=64, lengths=(20, 50, 100))
QUICK_SIZE = Size(n_layers=1, dim=32, n_heads=4, n_words=200, beam=2, beam_sentences=2,
                  bt_sentences=4, lengths=(5, 10))


def build_models(size: Size, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A random encoder and decoder (two languages) whose decoder never says `</s>`."""
    from xlm.data.dictionary import EOS
    from xlm.model.transformer import ModelConfig, TransformerModel

    torch.manual_seed(0)
    config = ModelConfig(n_words=size.n_words, n_langs=2, dim=size.dim, n_layers=size.n_layers,
                         n_heads=size.n_heads, dropout=0.0, attention_dropout=0.0,
                         max_positions=256)
    encoder = TransformerModel(config).to(device).eval()
    decoder = TransformerModel(ModelConfig(**{**config.to_dict(), "is_decoder": True}))
    decoder = decoder.to(device).eval()
    with torch.no_grad():
        decoder.pred_bias[EOS] = -1e9
    return encoder, decoder


def sources(n: int, length: int, n_words: int, device: torch.device,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`</s> w1 .. wn </s>` rows of random words, lengths from `length` // 2 to `length`."""
    from xlm.data.dictionary import EOS, N_SPECIAL, PAD

    generator = torch.Generator().manual_seed(seed)
    lengths = torch.linspace(max(1, length // 2), length, n).round().long()
    tokens = torch.full((n, length + 2), PAD, dtype=torch.long)
    for i, words in enumerate(lengths.tolist()):
        tokens[i, 0] = tokens[i, words + 1] = EOS
        tokens[i, 1:words + 1] = torch.randint(N_SPECIAL, n_words, (words,), generator=generator)
    return tokens.to(device), (tokens != PAD).to(device)


def run(options: Options) -> Result:
    cuda = torch.cuda.is_available() and options.device in ("auto", "cuda")
    device = torch.device("cuda" if cuda else "cpu")
    size = QUICK_SIZE if options.quick else (GPU_SIZE if cuda else CPU_SIZE)
    threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(1)  # per core, and steady on a loaded, shared machine
    try:
        return _run(options, device, size)
    finally:
        torch.set_num_threads(threads)


def _run(options: Options, device: torch.device, size: Size) -> Result:
    from xlm.model.generate import beam_search, greedy

    encoder, decoder = build_models(size, device)
    result = Result("decode")
    details: dict = {"device": str(device), "size": size.__dict__, "cases": {}}
    workloads = {
        "xlm translate (beam search)": (size.beam_sentences, lambda src, mask, n, cache: (
            beam_search(encoder, decoder, src, mask, 0, 1, size.beam, 1.0, True,
                        max_len=n + 1, use_cache=cache))),
        "back-translation batch (greedy)": (size.bt_sentences, lambda src, mask, n, cache: (
            greedy(encoder, decoder, src, mask, 0, 1, max_len=n + 1, use_cache=cache))),
    }
    for name, (n_sentences, decode) in workloads.items():
        for length in size.lengths:
            src, mask = sources(n_sentences, length, size.n_words, device)
            outputs: dict[str, list[list[int]]] = {}

            def side(cache: bool, src=src, mask=mask, length=length, decode=decode,
                     outputs=outputs):
                def call() -> None:
                    with torch.no_grad():
                        outputs[str(cache)] = decode(src, mask, length, cache)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                return call

            side(True)()  # warm up
            seconds = best_of({"cached": side(True), "uncached": side(False)}, options.repeats)
            same = outputs["True"] == outputs["False"]
            if any(len(hyp) != length for hyp in outputs["True"]):
                raise RuntimeError(f"decode benchmark: outputs are not {length} tokens long")
            rate = {key: n_sentences / s for key, s in seconds.items()}
            beam = f"beam {size.beam}, " if "beam" in name else ""
            case = f"{name}, {beam}{n_sentences} sentences, {length} tokens"
            details["cases"][case] = {"seconds": seconds, "sentences_per_s": rate,
                                      "same_tokens": same}
            log.info("%s: %.1f vs %.1f sentences/s (same tokens: %s)", case, rate["cached"],
                     rate["uncached"], same)
            result.rows.append(Row(case, "sentences/s", rate["cached"], rate["uncached"],
                                   "uncached (use_cache=False)",
                                   note=f"same tokens: {'yes' if same else 'NO'}"))
    details["precision"] = "fp32"
    details["torch_threads"] = torch.get_num_threads()
    details["model"] = (f"encoder and decoder {size.n_layers} layers x {size.dim}, "
                        f"{size.n_heads} heads, vocab {size.n_words}, random weights")
    result.details = details
    return result
