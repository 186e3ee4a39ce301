"""`xlm export-hf`: our `model.pt` -> a `transformers` `XLMWithLMHeadModel` directory.

`transformers`' XLM keeps the original XLM parameter names under `transformer.`, so
the export is the import's renaming run backwards. The directory holds `config.json`,
`model.safetensors` and the tokenizer files built from the BPE codes and the model's
own dictionary (see xlm.interop.hf_tokenizer), and `from_pretrained` loads it offline.
It is written to a temporary folder and renamed, so a failed export leaves nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from torch import Tensor

from xlm.data.dictionary import N_SPECIAL, Dictionary
from xlm.errors import UserError
from xlm.interop.hf_tokenizer import END_OF_WORD, hf_token, read_merges, write_hf_tokenizer_files
from xlm.interop.import_checkpoint import GLOBAL_NAMES, LAYER_NAMES
from xlm.model.transformer import ModelConfig, TransformerModel
from xlm.train.checkpoint import load_file, load_pretrained

log = logging.getLogger(__name__)


def original_state_dict(model: TransformerModel) -> dict[str, Tensor]:
    """Our weights under the original XLM names (`transformer.`-less, with `pred_layer`)."""
    names = {ours: theirs for theirs, ours in GLOBAL_NAMES.items()}
    for layer in range(model.config.n_layers):
        for theirs, ours in LAYER_NAMES.items():
            names[ours.format(i=layer)] = theirs.format(i=layer)
    state = {}
    for name, tensor in model.state_dict().items():
        if name == "pred_bias":
            state["pred_layer.proj.bias"] = tensor
            continue
        stem, _, leaf = name.rpartition(".")
        state[f"{names[stem]}.{leaf}"] = tensor
    state["pred_layer.proj.weight"] = state["embeddings.weight"]
    return state


def hf_config(config: ModelConfig, langs: list[str]) -> dict[str, Any]:
    """XLMConfig arguments for our config (GELU, learned positions, tied output)."""
    return {
        "vocab_size": config.n_words, "emb_dim": config.dim, "n_layers": config.n_layers,
        "n_heads": config.n_heads, "dropout": config.dropout,
        "attention_dropout": config.attention_dropout, "gelu_activation": True,
        "sinusoidal_embeddings": False, "causal": False, "asm": False,
        "n_langs": max(len(langs), 1), "use_lang_emb": config.n_langs > 1,
        "max_position_embeddings": config.max_positions, "embed_init_std": config.dim ** -0.5,
        "layer_norm_eps": 1e-12, "pad_token_id": config.pad_index, "bos_token_id": 0,
        "eos_token_id": 1, "unk_index": 3, "mask_index": 5, "mask_token_id": 5,
        "lang_id": 0, "is_encoder": True, "tie_word_embeddings": True,
        "lang2id": {lang: i for i, lang in enumerate(langs)},
        "id2lang": {i: lang for i, lang in enumerate(langs)},
    }


# Share of the dictionary's words the codes may fail to produce before the pair is refused:
# codes and vocabulary of one run give 0, codes of another run about half.
MAX_FOREIGN_WORDS = 0.01


def check_codes_match(codes: str | os.PathLike[str], dictionary: Dictionary,
                      model_path: str | os.PathLike[str]) -> None:
    """Refuse codes that cannot have made the model's dictionary.

    Every BPE unit is a single character or the result of a merge, so a word of the
    dictionary that is neither was made by other codes; exported with them, the tokenizer
    would give ids the model never saw in training.
    """
    merged = {merge.replace(" ", "") for merge in read_merges(codes)}
    words = dictionary.id2word[N_SPECIAL:]
    foreign = [word for word in words
               if (unit := hf_token(word)) not in merged
               and len(unit.removesuffix(END_OF_WORD)) > 1]
    if len(foreign) > MAX_FOREIGN_WORDS * max(len(words), 1):
        raise UserError(f"{codes}: these BPE codes did not make the dictionary of {model_path} "
                        f"({len(foreign)} of its {len(words)} words cannot come from them, "
                        f"e.g. {', '.join(map(repr, foreign[:3]))}); give the codes its data "
                        "was BPE'd with (data/bpe/codes of the same run, or bpe.codes)")
    if foreign:
        log.warning("%d of %d dictionary words cannot come from %s (e.g. %s)", len(foreign),
                    len(words), codes, ", ".join(map(repr, foreign[:3])))


def export_hf(model_path: str | os.PathLike[str], codes: str | os.PathLike[str],
              out_dir: str | os.PathLike[str], *,
              lowercase_and_remove_accent: bool = False) -> Path:
    """Write the transformers directory for `model_path` at `out_dir` (replaced if present)."""
    from transformers import XLMConfig, XLMWithLMHeadModel

    if Path(model_path).is_file() and load_file(model_path, "model file").get(
            "config", {}).get("is_decoder"):
        raise UserError(f"{model_path}: an MT decoder (cross-attention), which transformers' "
                        "XLMWithLMHeadModel cannot hold; export an encoder or LM model")
    model, dictionary, langs = load_pretrained(model_path)
    check_codes_match(codes, dictionary, model_path)
    if model.config.n_langs > 1 and model.config.n_langs != len(langs):
        raise UserError(f"{model_path}: {model.config.n_langs} language embeddings but "
                        f"{len(langs)} languages; the model file is inconsistent")
    hf_model = XLMWithLMHeadModel(XLMConfig(**hf_config(model.config, langs),
                                            architectures=["XLMWithLMHeadModel"]))
    state = {(k if k.startswith("pred_layer.") else f"transformer.{k}"): v
             for k, v in original_state_dict(model).items()}
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise UserError(f"{model_path}: transformers' XLM does not fit these weights (missing "
                        f"{missing[:3]}, unexpected {unexpected[:3]}); check the transformers "
                        "version (pinned in pyproject.toml)")
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        hf_model.save_pretrained(tmp)
        write_hf_tokenizer_files(codes, dictionary, tmp, langs=langs,
                                 lowercase_and_remove_accent=lowercase_and_remove_accent,
                                 model_max_length=model.config.max_positions)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("exported %s to %s (XLMWithLMHeadModel, %d words, languages %s)", model_path,
             out, model.config.n_words, langs)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="our model file (model.pt)")
    parser.add_argument("--codes", required=True, help="the fastBPE codes the model's data used")
    parser.add_argument("--output", required=True, help="output directory (replaced)")
    parser.add_argument("--lowercase-and-remove-accent", action="store_true",
                        help="the data was lowercased and accent-stripped (XNLI-15 models)")


def run(args: argparse.Namespace) -> None:
    export_hf(args.model, args.codes, args.output,
              lowercase_and_remove_accent=args.lowercase_and_remove_accent)
