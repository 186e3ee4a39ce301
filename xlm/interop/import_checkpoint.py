"""`xlm import-checkpoint`: a checkpoint of the original XLM code -> our `model.pt`.

The released XLM models (`mlm_en_2048`, `mlm_xnli15_1024`, `mlm_tlm_xnli15_1024`,
`mlm_17_1280`, `mlm_100_1280`, the MT models, ...) are `torch.save` dicts: `model` (or
`encoder`/`decoder`) state dicts whose keys may carry DataParallel's `module.` prefix,
`dico_id2word`/`dico_word2id`/`dico_counts`, and `params` (a dict, or an argparse
Namespace in training checkpoints). The weights are renamed to ours, the architecture
flags are mapped to our ModelConfig, and what our model cannot represent is refused.

Loading is `weights_only` (tensors and plain containers; argparse.Namespace allowed):
a file that needs any other class to unpickle is refused unless `--trust-pickle`,
because unpickling runs arbitrary code from the file.

The released vocab files are longer than the models' dictionaries (`vocab_xnli_15`:
121k lines, the model 95k ids): the dictionary comes from the checkpoint, and
`--vocab-out` writes it as a vocab file for the data stage (`bpe.vocab`).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from xlm.data.dictionary import N_SPECIAL, SPECIAL_WORDS, Dictionary
from xlm.errors import UserError
from xlm.model.transformer import ModelConfig, TransformerModel
from xlm.train.checkpoint import save_pretrained

log = logging.getLogger(__name__)

SAFE_GLOBALS = [argparse.Namespace]
PARTS = ("model", "encoder", "decoder")

# original per-layer module -> ours (weight/bias suffixes follow)
LAYER_NAMES = {
    "attentions.{i}.q_lin": "blocks.{i}.attention.q_proj",
    "attentions.{i}.k_lin": "blocks.{i}.attention.k_proj",
    "attentions.{i}.v_lin": "blocks.{i}.attention.v_proj",
    "attentions.{i}.out_lin": "blocks.{i}.attention.out_proj",
    "layer_norm1.{i}": "blocks.{i}.norm_attention",
    "encoder_attn.{i}.q_lin": "blocks.{i}.cross_attention.q_proj",
    "encoder_attn.{i}.k_lin": "blocks.{i}.cross_attention.k_proj",
    "encoder_attn.{i}.v_lin": "blocks.{i}.cross_attention.v_proj",
    "encoder_attn.{i}.out_lin": "blocks.{i}.cross_attention.out_proj",
    "layer_norm15.{i}": "blocks.{i}.norm_cross",
    "ffns.{i}.lin1": "blocks.{i}.ffn.lin1",
    "ffns.{i}.lin2": "blocks.{i}.ffn.lin2",
    "layer_norm2.{i}": "blocks.{i}.norm_ffn",
}
GLOBAL_NAMES = {
    "embeddings": "embeddings",
    "position_embeddings": "position_embeddings",
    "lang_embeddings": "lang_embeddings",
    "layer_norm_emb": "norm_embeddings",
}


def load_original(path: str | os.PathLike[str], trust_pickle: bool = False) -> dict[str, Any]:
    """The checkpoint dict, unpickled with `weights_only` unless `trust_pickle`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found; download it (e.g. "
                        "https://dl.fbaipublicfiles.com/XLM/mlm_xnli15_1024.pth) or fix the path")
    if trust_pickle:
        log.warning("%s: loading with full unpickling (--trust-pickle): only do this for a "
                    "file from a source you trust", path)
        return torch.load(path, map_location="cpu", weights_only=False)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors come in several types
        names = sorted(set(re.findall(r"GLOBAL (\S+)", str(error))))
        if not names and "Weights only load failed" not in str(error):
            raise UserError(f"{path}: not a readable torch checkpoint ({error}); "
                            "check the download") from error
        raise UserError(f"{path}: needs classes outside tensors and plain containers to load "
                        f"({', '.join(names) or 'see torch.load'}), and unpickling them can run "
                        "code from the file; if you trust its source, add --trust-pickle"
                        ) from error


def _params(checkpoint: Mapping[str, Any], source: Path) -> dict[str, Any]:
    params = checkpoint.get("params")
    if isinstance(params, argparse.Namespace):
        return vars(params)
    if isinstance(params, Mapping):
        return dict(params)
    raise UserError(f"{source}: no `params` in the checkpoint; not a checkpoint of the "
                    "original XLM code (facebookresearch/XLM)")


def _state(checkpoint: Mapping[str, Any], part: str, source: Path,
           ) -> tuple[str, dict[str, Tensor]]:
    if part == "auto":
        part = next((p for p in PARTS if p in checkpoint), "")
    if part not in checkpoint:
        raise UserError(f"{source}: no `{part or 'model'}` weights (has: "
                        f"{', '.join(k for k in checkpoint if k in PARTS) or 'none'}); "
                        "choose --part model|encoder|decoder")
    return part, {(k[len("module."):] if k.startswith("module.") else k): v
                  for k, v in checkpoint[part].items()}


def _languages(params: Mapping[str, Any], n_langs: int, source: Path) -> list[str]:
    id2lang = params.get("id2lang")
    if isinstance(id2lang, Mapping) and len(id2lang) == n_langs:
        return [id2lang[i] if i in id2lang else id2lang[str(i)] for i in range(n_langs)]
    lang2id = params.get("lang2id")
    if isinstance(lang2id, Mapping) and len(lang2id) == n_langs:
        return sorted(lang2id, key=lang2id.__getitem__)
    langs = params.get("langs")
    if isinstance(langs, list | tuple) and len(langs) == n_langs:
        return list(langs)
    raise UserError(f"{source}: cannot tell the model's {n_langs} language(s) from `params` "
                    "(no id2lang/lang2id/langs); give them in id order with --langs en,fr,...")


def _dictionary(checkpoint: Mapping[str, Any], n_words: int, source: Path) -> Dictionary:
    id2word = checkpoint.get("dico_id2word")
    if not isinstance(id2word, Mapping):
        raise UserError(f"{source}: no `dico_id2word` in the checkpoint; not an XLM model file")
    words = [id2word[i] for i in range(len(id2word))]
    if tuple(words[:N_SPECIAL]) != SPECIAL_WORDS:
        raise UserError(f"{source}: the dictionary does not start with XLM's 14 special words "
                        f"(found {words[:N_SPECIAL]}); it cannot line up with our ids")
    if len(words) != n_words:
        raise UserError(f"{source}: dictionary has {len(words)} words but the embeddings "
                        f"{n_words} rows; the checkpoint is inconsistent")
    counts = checkpoint.get("dico_counts") or {}
    return Dictionary(words[N_SPECIAL:], [int(counts.get(w, 0)) for w in words[N_SPECIAL:]])


def convert_original(checkpoint: Mapping[str, Any], source: str | os.PathLike[str] = "checkpoint",
                     part: str = "auto", langs: list[str] | None = None,
                     ) -> tuple[TransformerModel, Dictionary, list[str], dict[str, Any]]:
    """Our model, dictionary, languages and an import note from an original checkpoint."""
    source = Path(source)
    params = _params(checkpoint, source)
    part, state = _state(checkpoint, part, source)
    refuse = []
    if params.get("asm"):
        refuse.append("an adaptive softmax output (asm)")
    if params.get("gelu_activation") is False:
        refuse.append("a ReLU feed-forward (gelu_activation false; ours is GELU)")
    if any(".memories." in k or k.startswith("memories.") for k in state):
        refuse.append("product-key memory layers (use_memory)")
    if "embeddings.weight" not in state:
        refuse.append("no `embeddings.weight` (not a TransformerModel)")
    if refuse:
        raise UserError(f"{source}: the model has {'; '.join(refuse)}, which our Transformer "
                        "cannot represent; use a standard XLM MLM/CLM/TLM or MT checkpoint")
    n_words, dim = state["embeddings.weight"].shape
    n_layers = len({k.split(".")[1] for k in state if k.startswith("attentions.")})
    is_decoder = any(k.startswith("encoder_attn.") for k in state)
    n_langs = state["lang_embeddings.weight"].shape[0] if "lang_embeddings.weight" in state else 1
    if "n_heads" not in params:
        raise UserError(f"{source}: `params` has no n_heads; not an XLM model file")
    lin1 = state.get("ffns.0.lin1.weight")
    if lin1 is not None and lin1.shape[0] != 4 * dim:
        raise UserError(f"{source}: feed-forward width {lin1.shape[0]} is not 4 x {dim}; our "
                        "Transformer cannot represent it")
    config = ModelConfig(
        n_words=n_words, n_langs=n_langs, dim=dim, n_layers=n_layers,
        n_heads=int(params["n_heads"]), dropout=float(params.get("dropout", 0.1)),
        attention_dropout=float(params.get("attention_dropout", 0.1)),
        max_positions=state["position_embeddings.weight"].shape[0],
        pad_index=int(params.get("pad_index", 2)), is_decoder=is_decoder,
    )
    all_langs = int(params.get("n_langs", n_langs))
    languages = list(langs) if langs else _languages(params, all_langs, source)
    if len(languages) != all_langs:
        raise UserError(f"--langs: {len(languages)} languages given, the model has {all_langs}")
    notes = []
    if all_langs > 1 and n_langs == 1:
        notes.append("no language embeddings (use_lang_emb false): language ids are ignored")
    if params.get("sinusoidal_embeddings"):
        notes.append("sinusoidal positions imported as learned positions with the same values "
                     "(same outputs; fine-tuning will train them)")
    if "gelu_activation" not in params:
        notes.append("params has no gelu_activation: GELU assumed")

    ours: dict[str, Tensor] = {}
    for name, tensor in state.items():
        stem, _, leaf = name.rpartition(".")
        if name.startswith("pred_layer."):
            continue
        if stem in GLOBAL_NAMES:
            ours[f"{GLOBAL_NAMES[stem]}.{leaf}"] = tensor
            continue
        match = re.fullmatch(r"([a-z_0-9]+)\.(\d+)(\.[a-z_0-9]+)?", stem)
        key = match and f"{match[1]}.{{i}}{match[3] or ''}"
        if not key or key not in LAYER_NAMES:
            raise UserError(f"{source}: unknown parameter {name!r}; not a standard XLM "
                            "TransformerModel, which this import cannot represent")
        ours[f"{LAYER_NAMES[key].format(i=match[2])}.{leaf}"] = tensor
    proj = state.get("pred_layer.proj.weight")
    if proj is None:
        raise UserError(f"{source}: no `pred_layer.proj` output layer; not an XLM LM checkpoint")
    if not torch.equal(proj, state["embeddings.weight"]):
        raise UserError(f"{source}: the output projection is not tied to the embeddings "
                        "(share_inout_emb false), which our Transformer cannot represent")
    ours["pred_bias"] = state["pred_layer.proj.bias"]
    model = TransformerModel(config)
    missing, unexpected = model.load_state_dict(ours, strict=False)
    if missing or unexpected:
        raise UserError(f"{source}: weights do not fit the implied config (missing "
                        f"{missing[:3]}, unexpected {unexpected[:3]}); the checkpoint is "
                        "inconsistent")
    dictionary = _dictionary(checkpoint, n_words, source)
    note = {"imported_from": str(source), "part": part, "notes": notes,
            "original_params": {k: v for k, v in params.items()
                                if isinstance(v, str | int | float | bool | type(None))}}
    return model, dictionary, languages, note


def import_checkpoint(source: str | os.PathLike[str], out: str | os.PathLike[str], *,
                      part: str = "auto", langs: list[str] | None = None,
                      vocab_out: str | os.PathLike[str] | None = None,
                      trust_pickle: bool = False) -> ModelConfig:
    """Convert `source` to our `model.pt` at `out` (and its vocab file at `vocab_out`)."""
    checkpoint = load_original(source, trust_pickle)
    model, dictionary, languages, note = convert_original(checkpoint, source, part, langs)
    for line in note["notes"]:
        log.warning("%s: %s", source, line)
    save_pretrained(out, model, dictionary, languages, {"import": note})
    if vocab_out is not None:
        dictionary.save(vocab_out)
    c = model.config
    log.info("imported %s -> %s: %d layers, dim %d, %d heads, %d words (%d vocab words + %d "
             "specials), languages %s%s", source, out, c.n_layers, c.dim, c.n_heads, c.n_words,
             c.n_words - N_SPECIAL, N_SPECIAL, languages, ", decoder" if c.is_decoder else "")
    log.info("data stage: use the model's dictionary as bpe.vocab (%s) or cap the released "
             "vocab file to its first %d lines", vocab_out or "--vocab-out", c.n_words - N_SPECIAL)
    return c


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="original XLM checkpoint (.pth)")
    parser.add_argument("--output", required=True, help="our model file (model.pt)")
    parser.add_argument("--vocab-out", default=None,
                        help="also write the model's dictionary as a fastBPE vocab file")
    parser.add_argument("--part", choices=("auto", *PARTS), default="auto",
                        help="which weights: model (LM), encoder or decoder (MT); auto: "
                             "model, else encoder")
    parser.add_argument("--langs", default=None,
                        help="languages in id order, comma-separated (when params lacks them)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow full unpickling (runs code from the file): trusted files only")


def run(args: argparse.Namespace) -> None:
    import_checkpoint(args.input, args.output, part=args.part, vocab_out=args.vocab_out,
                      langs=args.langs.split(",") if args.langs else None,
                      trust_pickle=args.trust_pickle)
