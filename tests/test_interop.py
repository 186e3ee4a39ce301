"""Released XLM checkpoints in, transformers out (xlm.interop), with no download.

Tiny checkpoints in the original XLM format are built here. The independent reference
is `transformers`' XLM model: a checkpoint converted the way its conversion script
does it and one imported by us must give the same MLM logits; our model exported with
`xlm export-hf` must give our logits; the exported tokenizer must give our pipeline's
ids on real FLoRes sentences.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
from pathlib import Path

import fastBPE
import pytest
import torch
from transformers import XLMTokenizer, XLMWithLMHeadModel

from xlm.cli import main
from xlm.data.dictionary import SPECIAL_WORDS, Dictionary
from xlm.errors import UserError
from xlm.interop.hf_tokenizer import hf_token, write_hf_tokenizer_files
from xlm.interop.import_checkpoint import convert_original, load_original
from xlm.model.transformer import ModelConfig, TransformerModel
from xlm.text.bpe import apply_codes, build_vocab, learn_codes
from xlm.text.tokenizers import get_tokenizer
from xlm.train.checkpoint import load_pretrained, save_pretrained

DIM, LAYERS, HEADS, WORDS, POSITIONS = 16, 2, 2, 60, 512


def sinusoids(n_pos: int, dim: int) -> torch.Tensor:
    table = torch.zeros(n_pos, dim)
    angles = torch.tensor([[pos / math.pow(10000, 2 * (j // 2) / dim) for j in range(dim)]
                           for pos in range(n_pos)])
    table[:, 0::2], table[:, 1::2] = torch.sin(angles[:, 0::2]), torch.cos(angles[:, 1::2])
    return table


def original_state(seed: int, n_langs: int, decoder: bool = False, sinusoidal: bool = False,
                   n_words: int = WORDS) -> dict[str, torch.Tensor]:
    """Random weights named as in the original XLM `TransformerModel`."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int, mean: float = 0.0) -> torch.Tensor:
        return mean + 0.3 * torch.randn(*shape, generator=gen)

    state = {"position_embeddings.weight": sinusoids(POSITIONS, DIM) if sinusoidal
             else rand(POSITIONS, DIM)}
    if n_langs > 1:
        state["lang_embeddings.weight"] = rand(n_langs, DIM)
    state["embeddings.weight"] = rand(n_words, DIM)
    state["layer_norm_emb.weight"], state["layer_norm_emb.bias"] = rand(DIM, mean=1), rand(DIM)
    for i in range(LAYERS):
        modules = [f"attentions.{i}"] + ([f"encoder_attn.{i}"] if decoder else [])
        for module in modules:
            for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
                state[f"{module}.{lin}.weight"] = rand(DIM, DIM)
                state[f"{module}.{lin}.bias"] = rand(DIM)
        norms = ["layer_norm1", "layer_norm2"] + (["layer_norm15"] if decoder else [])
        for norm in norms:
            state[f"{norm}.{i}.weight"], state[f"{norm}.{i}.bias"] = rand(DIM, mean=1), rand(DIM)
        state[f"ffns.{i}.lin1.weight"], state[f"ffns.{i}.lin1.bias"] = rand(4 * DIM, DIM), rand(
            4 * DIM)
        state[f"ffns.{i}.lin2.weight"], state[f"ffns.{i}.lin2.bias"] = rand(DIM, 4 * DIM), rand(
            DIM)
    state["pred_layer.proj.weight"] = state["embeddings.weight"]  # share_inout_emb
    state["pred_layer.proj.bias"] = rand(n_words)
    return state


def original_checkpoint(n_langs: int = 2, use_lang_emb: bool = True, sinusoidal: bool = False,
                        namespace: bool = True, vocab: list[str] | None = None,
                        **flags) -> dict:
    """A checkpoint as the original XLM code saves it (DataParallel `module.` prefixes)."""
    langs = ["en", "fr", "de"][:n_langs]
    words = list(SPECIAL_WORDS) + (vocab or [f"w{i}@@" if i % 3 else f"w{i}" for i in
                                             range(WORDS - len(SPECIAL_WORDS))])
    state = original_state(0, n_langs if use_lang_emb else 1, sinusoidal=sinusoidal,
                           n_words=len(words))
    params = dict(emb_dim=DIM, n_layers=LAYERS, n_heads=HEADS, n_langs=n_langs,
                  n_words=len(words),
                  dropout=0.1, attention_dropout=0.1, gelu_activation=True,
                  sinusoidal_embeddings=sinusoidal, use_lang_emb=use_lang_emb, asm=False,
                  causal=False, share_inout_emb=True, pad_index=2, eos_index=1, bos_index=0,
                  unk_index=3, mask_index=5, is_encoder=True, max_vocab=len(words),
                  lgs="-".join(langs), id2lang=dict(enumerate(langs)),
                  lang2id={lang: i for i, lang in enumerate(langs)}) | flags
    return {"model": {f"module.{k}": v for k, v in state.items()},
            "dico_id2word": dict(enumerate(words)),
            "dico_word2id": {w: i for i, w in enumerate(words)},
            "dico_counts": {w: 1000 - i for i, w in enumerate(words)},
            "params": argparse.Namespace(**params) if namespace else params}


def transformers_conversion(checkpoint: dict, out: Path) -> Path:
    """What transformers' `convert_xlm_original_pytorch_checkpoint_to_pytorch` did.

    The script was dropped from transformers 5 (5.23.0 has no such module), so its three
    steps are restated here: the base model moves under `transformer.` (the output layer
    stays `pred_layer`), the params become config.json, the dictionary vocab.json.
    Like the script, it expects keys without DataParallel's `module.` prefix.
    """
    out.mkdir(parents=True)
    state = {k.removeprefix("module."): v for k, v in checkpoint["model"].items()}
    state = {(k if "pred_layer" in k else f"transformer.{k}"): v for k, v in state.items()}
    params = checkpoint["params"]
    config = {k: v for k, v in (vars(params) if isinstance(params, argparse.Namespace)
                                else params).items() if not isinstance(v, torch.Tensor)}
    vocab = {(s + "</w>" if "@@" not in s and i > 13 else s.replace("@@", "")): i
             for s, i in checkpoint["dico_word2id"].items()}
    torch.save(state, out / "pytorch_model.bin")
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "vocab.json").write_text(json.dumps(vocab, indent=2))
    return out


def batch(n_langs: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token ids, pad mask (True on tokens; two rows padded) and language ids."""
    tokens = torch.randint(14, WORDS, (3, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[1, 6:] = mask[2, 3:] = False
    tokens[~mask] = 2
    langs = torch.tensor([[0], [n_langs - 1], [0]]).expand_as(tokens).contiguous()
    return tokens, mask, langs


def our_logits(model: TransformerModel, tokens, mask, langs) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.output_logits(model(tokens, langs=langs, pad_mask=mask).hidden)


def hf_logits(model: XLMWithLMHeadModel, tokens, mask, langs) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=tokens, attention_mask=mask.long(), langs=langs).logits


VARIANTS = {
    "lang-emb": dict(n_langs=2),
    "no-lang-emb-sinusoidal": dict(n_langs=3, use_lang_emb=False, sinusoidal=True),
    "monolingual-dict-params": dict(n_langs=1, namespace=False),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_import_matches_transformers_conversion(tmp_path, variant):
    checkpoint = original_checkpoint(**VARIANTS[variant])
    torch.save(checkpoint, tmp_path / "mlm.pth")
    reference = XLMWithLMHeadModel.from_pretrained(
        transformers_conversion(checkpoint, tmp_path / "hf"), local_files_only=True)
    main(["import-checkpoint", "--input", str(tmp_path / "mlm.pth"),
          "--output", str(tmp_path / "model.pt")])  # weights_only: params is a Namespace
    model, dictionary, langs = load_pretrained(tmp_path / "model.pt")

    n_langs = VARIANTS[variant]["n_langs"]
    assert langs == ["en", "fr", "de"][:n_langs]
    assert model.config.n_langs == (n_langs if variant == "lang-emb" else 1)
    assert dictionary.id2word == list(checkpoint["dico_id2word"].values())
    tokens, mask, lang_ids = batch(n_langs)
    ours, theirs = our_logits(model, tokens, mask, lang_ids), hf_logits(reference, tokens, mask,
                                                                         lang_ids)
    assert theirs.abs().max() > 1.0  # not a degenerate comparison
    torch.testing.assert_close(ours[mask], theirs[mask], atol=1e-5, rtol=1e-5)


def test_import_writes_the_models_dictionary_for_the_data_stage(tmp_path):
    """The released-vocab trap: the model has fewer words than the released vocab file."""
    torch.save(original_checkpoint(), tmp_path / "mlm.pth")
    main(["import-checkpoint", "--input", str(tmp_path / "mlm.pth"), "--output",
          str(tmp_path / "model.pt"), "--vocab-out", str(tmp_path / "vocab")])
    model, dictionary, _ = load_pretrained(tmp_path / "model.pt")
    assert len((tmp_path / "vocab").read_text().splitlines()) == WORDS - len(SPECIAL_WORDS)
    assert Dictionary.read_vocab(tmp_path / "vocab") == dictionary
    assert model.config.n_words == len(dictionary) == WORDS


def test_import_mt_decoder(tmp_path):
    encoder, decoder = original_state(1, 2), original_state(2, 2, decoder=True)
    checkpoint = original_checkpoint() | {"encoder": encoder, "decoder": decoder}
    del checkpoint["model"]
    model, _, _, note = convert_original(checkpoint, "mt.pth", part="decoder")
    assert model.config.is_decoder and note["part"] == "decoder"
    ours = model.state_dict()
    torch.testing.assert_close(ours["blocks.1.cross_attention.v_proj.weight"],
                               decoder["encoder_attn.1.v_lin.weight"])
    torch.testing.assert_close(ours["blocks.0.norm_cross.bias"], decoder["layer_norm15.0.bias"])
    assert convert_original(checkpoint, "mt.pth")[3]["part"] == "encoder"


@pytest.mark.parametrize(("change", "message"), [
    ({"gelu_activation": False}, "ReLU"),
    ({"asm": True}, "adaptive softmax"),
    ({"untied": True}, "not tied"),
    ({"dictionary": ["<s>", "</s>", "<unk>"]}, "special words"),
    ({"no_langs": True}, "--langs"),
])
def test_import_refuses_what_it_cannot_represent(change, message):
    checkpoint = original_checkpoint(**{k: v for k, v in change.items()
                                        if k in ("gelu_activation", "asm")})
    if "untied" in change:
        state = checkpoint["model"]
        state["module.pred_layer.proj.weight"] = state["module.embeddings.weight"] + 1
    if "dictionary" in change:
        checkpoint["dico_id2word"] = dict(enumerate(change["dictionary"] + ["x"] * WORDS))
    if "no_langs" in change:
        for key in ("id2lang", "lang2id"):
            delattr(checkpoint["params"], key)
    with pytest.raises(UserError, match=message) as error:
        convert_original(checkpoint, "released.pth")
    assert "\n" not in str(error.value)


def test_unsafe_pickle_needs_trust(tmp_path):
    checkpoint = original_checkpoint()
    checkpoint["params"].dump_path = pathlib.PurePosixPath("/checkpoint/xlm")
    torch.save(checkpoint, tmp_path / "mlm.pth")
    with pytest.raises(UserError, match=r"PurePosixPath.*--trust-pickle"):
        load_original(tmp_path / "mlm.pth")
    assert load_original(tmp_path / "mlm.pth", trust_pickle=True)["params"].n_heads == HEADS


# ---------------------------------------------------------------- export and tokenizer


@pytest.fixture(scope="module")
def bpe(tmp_path_factory, shared_data) -> dict:
    """Codes and a capped vocabulary learned on real FLoRes English, as the pipeline does."""
    work = tmp_path_factory.mktemp("bpe")
    lines = (shared_data / "para" / "flores200" / "devtest.en").read_text(
        encoding="utf-8").splitlines()
    tokenize = get_tokenizer("en")
    (work / "tok.txt").write_text("".join(tokenize(line) + "\n" for line in lines),
                                  encoding="utf-8")
    learn_codes(work / "tok.txt", 800, work / "codes")
    apply_codes(work / "codes", None, [work / "tok.txt"], [work / "bpe.txt"])
    build_vocab([work / "bpe.txt"], work / "vocab", 600)
    return {"codes": work / "codes", "vocab": work / "vocab", "lines": lines,
            "tokenize": tokenize, "work": work}


def pipeline_ids(bpe: dict, dictionary: Dictionary, line: str, given_vocab: bool) -> list[int]:
    """Our pipeline's ids for a raw line, framed as XLM does: </s> ... </s>."""
    applier = fastBPE.fastBPE(str(bpe["codes"]), str(bpe["vocab"]) if given_vocab else "")
    return [1, *dictionary.encode(applier.apply([bpe["tokenize"](line)])[0]).tolist(), 1]


def test_tokenizer_files_encode_like_the_pipeline(bpe, tmp_path):
    write_hf_tokenizer_files(bpe["codes"], bpe["vocab"], tmp_path)
    tokenizer = XLMTokenizer.from_pretrained(tmp_path)
    dictionary = Dictionary.read_vocab(bpe["vocab"])
    learned = [tokenizer(line)["input_ids"] == pipeline_ids(bpe, dictionary, line, False)
               for line in bpe["lines"]]
    assert len(learned) == 1012 and all(learned)
    # Given codes and vocab: our BPE is restricted to the vocab, XLMTokenizer's is not, so
    # some units the pipeline splits further become <unk> there (a known difference).
    for line in bpe["lines"][:100]:
        ours = pipeline_ids(bpe, dictionary, line, True)
        theirs = tokenizer(line)["input_ids"]
        assert ours == theirs or dictionary.unk_index in theirs
    assert hf_token("hel@@") == "hel" and hf_token("lo") == "lo</w>"


def test_export_round_trip(bpe, tmp_path):
    dictionary = Dictionary.read_vocab(bpe["vocab"])
    torch.manual_seed(0)
    model = TransformerModel(ModelConfig(n_words=len(dictionary), n_langs=2, dim=DIM,
                                         n_layers=LAYERS, n_heads=HEADS, max_positions=128))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    save_pretrained(tmp_path / "model.pt", model, dictionary, ["en", "fr"], {})
    main(["export-hf", "--model", str(tmp_path / "model.pt"), "--codes", str(bpe["codes"]),
          "--output", str(tmp_path / "hf")])
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    exported = XLMWithLMHeadModel.from_pretrained(tmp_path / "hf", local_files_only=True)
    tokenizer = XLMTokenizer.from_pretrained(tmp_path / "hf")
    encoded = tokenizer(bpe["lines"][:3], padding=True, return_tensors="pt")
    tokens, mask = encoded["input_ids"], encoded["attention_mask"].bool()
    assert tokens[0].tolist()[: mask[0].sum()] == pipeline_ids(bpe, dictionary,
                                                               bpe["lines"][0], False)
    langs = torch.ones_like(tokens)
    ours, theirs = our_logits(model, tokens, mask, langs), hf_logits(exported, tokens, mask, langs)
    torch.testing.assert_close(ours[mask], theirs[mask], atol=1e-5, rtol=1e-5)
    assert exported.config.lang2id == {"en": 0, "fr": 1}
    # Without `langs` transformers adds no language embedding (why the README passes it).
    with torch.no_grad():
        no_langs = exported(input_ids=tokens, attention_mask=mask.long()).logits
    assert (no_langs[mask] - ours[mask]).abs().max() > 1e-2


def test_export_refuses_codes_of_another_run(bpe, tmp_path, shared_data, capsys):
    """Codes learned on French text did not make the English model's dictionary."""
    lines = (shared_data / "para" / "flores200" / "devtest.fr").read_text(
        encoding="utf-8").splitlines()
    tokenize = get_tokenizer("fr")
    (tmp_path / "tok.fr").write_text("".join(tokenize(line) + "\n" for line in lines),
                                     encoding="utf-8")
    learn_codes(tmp_path / "tok.fr", 800, tmp_path / "codes.fr")
    dictionary = Dictionary.read_vocab(bpe["vocab"])
    model = TransformerModel(ModelConfig(n_words=len(dictionary), n_langs=1, dim=DIM,
                                         n_layers=LAYERS, n_heads=HEADS, max_positions=128))
    save_pretrained(tmp_path / "model.pt", model, dictionary, ["en"], {})
    with pytest.raises(SystemExit) as stopped:
        main(["export-hf", "--model", str(tmp_path / "model.pt"), "--codes",
              str(tmp_path / "codes.fr"), "--output", str(tmp_path / "hf")])
    assert stopped.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "did not make the dictionary" in error[0], error
    assert str(tmp_path / "codes.fr") in error[0]
    assert not (tmp_path / "hf").exists()


def test_xnli_from_an_imported_checkpoint_through_snakemake(bpe, tmp_path, shared_data):
    """A released-style checkpoint fine-tuned on XNLI by the workflow, with its own codes.

    Like the released models, its dictionary is shorter than the vocab file (400 of 600
    words): the data stage uses the dictionary the import writes, so ids line up.
    """
    from workflow import REPO, base_config, snakemake, write_config

    words = [line.split()[0] for line in bpe["vocab"].read_text(encoding="utf-8").splitlines()]
    torch.save(original_checkpoint(n_langs=2, vocab=words[:400]), tmp_path / "mlm_enfr.pth")
    config = base_config(shared_data)
    config["imported_models"] = {"released": {"checkpoint": str(tmp_path / "mlm_enfr.pth")}}
    config["bpe"] |= {"codes": str(bpe["codes"]), "vocab": "results/released/pretrain/vocab"}
    config["xnli"] |= {"languages": ["en", "fr"]} | {
        key: str(REPO / config["xnli"][key]) for key in ("train", "valid", "test")}
    config["xnli_finetune"] |= {"models": ["released"], "max_train": 64, "max_eval": 32,
                                "epochs": 1, "log_every": 1}
    write_config(tmp_path / "run", config)
    snakemake(tmp_path / "run", "results/released/xnli/metrics.json", timeout=600)
    run = tmp_path / "run"
    model, dictionary, langs = load_pretrained(run / "results/released/pretrain/model.pt")
    assert langs == ["en", "fr"] and len(dictionary) == 400 + len(SPECIAL_WORDS)
    assert Dictionary.read_vocab(run / "results/released/pretrain/vocab") == dictionary
    records = json.loads((run / "results/released/xnli/metrics.json").read_text())
    assert {r["lang"] for r in records if r["split"] == "test"} >= {"en", "fr"}
