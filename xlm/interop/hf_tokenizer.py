"""fastBPE codes + vocabulary -> the files `transformers`' `XLMTokenizer` reads.

Both sides write BPE differently. fastBPE marks a word-internal unit with a trailing
`@@` (`hel@@ lo`), its codes mark the end of a word with `</w>` (`l o</w> 812`).
`XLMTokenizer` marks the end of a word instead (`hel lo</w>`) and reads merges as
`a b` lines. So `vocab.json` holds `x` for a fastBPE `x@@` and `x</w>` for a
word-final `x`, with our Dictionary's ids (XLM's layout: 14 specials first), and
`merges.txt` holds the codes without their counts, in order (the order is the rank).

Known differences with our pipeline, for the same codes and vocabulary:
- With a given vocabulary, our pipeline applies BPE restricted to it (fastBPE's
  `applybpe codes vocab` undoes merges that make unknown units); `XLMTokenizer` always
  applies every merge, and a unit outside the vocabulary becomes `<unk>`.
- `XLMTokenizer` lowercases and strips accents in one switch
  (`do_lowercase_and_remove_accent`); our pipeline has two (`tokenize.lowercase`,
  `tokenize.remove_accents`), so only both-on or both-off can be mirrored.
- XLM frames a sentence as `</s> ... </s>`; `XLMTokenizer` starts with `<s>` by default.
  We write `bos_token: "</s>"` so `tokenizer(text)` gives XLM's framing (`xlm_framing`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from xlm.data.dictionary import N_SPECIAL, SPECIAL_WORDS, Dictionary
from xlm.errors import UserError
from xlm.io import atomic_open

BPE_MARK = "@@"
END_OF_WORD = "</w>"


def hf_token(word: str) -> str:
    """fastBPE unit -> XLMTokenizer unit: `hel@@` -> `hel`, `lo` -> `lo</w>`."""
    return word[: -len(BPE_MARK)] if word.endswith(BPE_MARK) else word + END_OF_WORD


def hf_vocab(dictionary: Dictionary) -> dict[str, int]:
    """Token -> id, ids as in our Dictionary (specials keep their names)."""
    vocab = {word: i for i, word in enumerate(SPECIAL_WORDS)}
    for i in range(N_SPECIAL, len(dictionary)):
        token = hf_token(dictionary.id2word[i])
        if token in vocab:
            raise UserError(f"vocabulary: {dictionary.id2word[i]!r} and "
                            f"{dictionary.id2word[vocab[token]]!r} map to the same "
                            f"transformers token {token!r}; remove one of them")
        vocab[token] = i
    return vocab


def read_merges(codes: str | os.PathLike[str]) -> list[str]:
    """The `a b` merge lines of a fastBPE codes file (`a b count`), in rank order."""
    path = Path(codes)
    if not path.is_file():
        raise UserError(f"{path}: BPE codes not found; give the codes the model was trained with")
    merges = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if len(parts) != 3 or not parts[2].isdigit():
                raise UserError(f"{path}:{number}: expected 'left right count', got "
                                f"{line.rstrip()!r}; use fastBPE codes (`fast learnbpe`)")
            merges.append(f"{parts[0]} {parts[1]}")
    return merges


def write_hf_tokenizer_files(
    codes: str | os.PathLike[str],
    vocab: str | os.PathLike[str] | Dictionary,
    out_dir: str | os.PathLike[str],
    *,
    langs: Sequence[str] = (),
    lowercase_and_remove_accent: bool = False,
    xlm_framing: bool = True,
    model_max_length: int = 512,
) -> list[Path]:
    """Write `vocab.json`, `merges.txt` and `tokenizer_config.json` into `out_dir`.

    `vocab` is a fastBPE vocab file (read whole: cap it as the model was capped) or a
    Dictionary. Then `XLMTokenizer.from_pretrained(out_dir)` tokenizes like our pipeline
    (see the module docstring for the differences). Returns the written paths.
    """
    dictionary = vocab if isinstance(vocab, Dictionary) else Dictionary.read_vocab(vocab)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merges = read_merges(codes)
    config: dict = {
        "tokenizer_class": "XLMTokenizer",
        "do_lowercase_and_remove_accent": lowercase_and_remove_accent,
        "model_max_length": model_max_length,
        "unk_token": "<unk>", "sep_token": "</s>", "pad_token": "<pad>", "cls_token": "</s>",
        "mask_token": "<special1>",
        "bos_token": "</s>" if xlm_framing else "<s>",
    }
    if langs:
        config["lang2id"] = {lang: i for i, lang in enumerate(langs)}
        config["id2lang"] = {str(i): lang for i, lang in enumerate(langs)}
    written = [out / "vocab.json", out / "merges.txt", out / "tokenizer_config.json"]
    with atomic_open(written[0]) as handle:
        json.dump(hf_vocab(dictionary), handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    with atomic_open(written[1]) as handle:
        handle.writelines(merge + "\n" for merge in merges)
    with atomic_open(written[2]) as handle:
        json.dump(config, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    return written
