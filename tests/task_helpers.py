"""Small real data and tiny models for the task tests (XNLI, MT, LM, embeddings).

Text is tokenized with the project's tokenizers and kept word-level (no BPE), which is
enough for the tasks: they read binarized ids and a `model.pt`.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import torch

from xlm.data.dictionary import Dictionary
from xlm.data.indexed import binarize_lines
from xlm.data.xnli import read_pairs
from xlm.model.transformer import ModelConfig, TransformerModel
from xlm.text.tokenizers import TokenizerOptions, get_tokenizer
from xlm.train.checkpoint import load_file, save_pretrained


def tokenized(lang: str, lines: list[str]) -> list[str]:
    tokenize = get_tokenizer(lang, TokenizerOptions(lowercase=True))
    return [tokenize(line) for line in lines]


def write_vocab(lines: list[str], out: Path, max_vocab: int | None = None) -> Dictionary:
    counts = Counter(word for line in lines for word in line.split())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]
    out.write_text("".join(f"{word} {count}\n" for word, count in ranked), encoding="utf-8")
    return Dictionary.read_vocab(out)


def tiny_model(path: Path, dictionary: Dictionary, langs: list[str], seed: int = 0,
               dim: int = 64, n_layers: int = 2, dropout: float = 0.1) -> Path:
    """A randomly initialised 'pretrained' model.pt (what the tasks start from)."""
    torch.manual_seed(seed)
    config = ModelConfig(n_words=len(dictionary), n_langs=len(langs), dim=dim,
                         n_layers=n_layers, n_heads=4, dropout=dropout, attention_dropout=0.0,
                         max_positions=256, pad_index=dictionary.pad_index)
    save_pretrained(path, TransformerModel(config), dictionary, sorted(langs), {})
    return path


def build_xnli(shared_data: Path, out: Path, langs=("en", "fr", "de"), n_eval: int = 300,
               train_langs=("en",)) -> tuple[Path, Path, Dictionary]:
    """XNLI dev of each of `train_langs` as its training set (English; others stand in for
    translated training sets), the first `n_eval` test pairs of each language as 'valid'
    and the next ones as 'test'. Returns (data folder, vocab, dictionary)."""
    rows = {lang: read_pairs(shared_data / "xnli" / f"{split}.{lang}.tsv.gz", lang)
            for lang in langs for split in ["test"]}
    splits = {"train": {lang: read_pairs(shared_data / "xnli" / f"dev.{lang}.tsv.gz", lang)
                        for lang in train_langs}}
    splits["valid"] = {lang: rows[lang][:n_eval] for lang in langs}
    splits["test"] = {lang: rows[lang][n_eval:2 * n_eval] for lang in langs}
    texts = {(split, lang, part): tokenized(lang, [row[part] for row in data])
             for split, per_lang in splits.items() for lang, data in per_lang.items()
             for part in (0, 1)}
    vocab = out / "vocab"
    dictionary = write_vocab([line for lines in texts.values() for line in lines], vocab)
    data = out / "xnli"
    data.mkdir(parents=True, exist_ok=True)
    for (split, lang, part), lines in texts.items():
        binarize_lines(lines, dictionary, data / f"{lang}.{split}.s{part + 1}")
    for split, per_lang in splits.items():
        for lang, rows_ in per_lang.items():
            (data / f"{lang}.{split}.label").write_text(
                "".join(row[2] + "\n" for row in rows_), encoding="utf-8")
    return data, vocab, dictionary


def read_gz_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


def build_mt_data(shared_data: Path, root: Path, n_lines: int) -> tuple[Path, Path]:
    """The first `n_lines` Tatoeba en-fr pairs, tokenized, word-level: root/bin holds them
    as the train and valid pairs (en-fr.{lang}.{split}) and each side as monolingual
    training text ({lang}.train, for denoising and back-translation). Returns (bin, vocab)."""
    tatoeba = shared_data / "para" / "tatoeba"
    tok = {lang: tokenized(lang, (tatoeba / f"en-fr.{lang}").read_text(encoding="utf-8")
                           .splitlines()[:n_lines]) for lang in ("en", "fr")}
    dictionary = write_vocab(tok["en"] + tok["fr"], root / "vocab")
    data = root / "bin"
    data.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "fr"):
        for split in ("train", "valid"):
            binarize_lines(tok[lang], dictionary, data / f"en-fr.{lang}.{split}")
        binarize_lines(tok[lang], dictionary, data / f"{lang}.train")
    return data, root / "vocab"


def mt_weights(out: Path) -> dict[str, torch.Tensor]:
    """Encoder and decoder weights of an MT model.pt, by prefixed name."""
    saved = load_file(out / "model.pt", "MT model")
    return {f"{side}.{k}": v for side in ("encoder", "decoder") for k, v in saved[side].items()}
