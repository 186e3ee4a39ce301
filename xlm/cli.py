"""The `xlm` command: one subcommand per pipeline stage.

Each stage lives in its own module exposing `add_arguments(parser)` and `run(args)`.
Modules are imported only when their subcommand runs, so `xlm --help` stays fast and
text stages never import torch.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import signal
import sys

from xlm.errors import UserError

# name -> (module, one-line help). Add a stage by adding a line here.
COMMANDS: dict[str, tuple[str, str]] = {
    "download": ("xlm.text.download", "download a file over HTTP, resumable, checksum-verified"),
    "extract": ("xlm.text.extract", "extract clean paragraphs from a MediaWiki dump"),
    "split": ("xlm.text.split", "split clean text into train/valid/test, seeded"),
    "shard": ("xlm.text.shard", "cut a text file into N contiguous shards"),
    "tokenize": ("xlm.text.tokenize", "tokenize text with the language's tokenizer"),
    "merge": ("xlm.text.shard", "concatenate shards back into one file"),
    "check-aligned": ("xlm.text.inputs", "refuse line-aligned input files of unequal length"),
    "copy-text": ("xlm.text.inputs", "copy a text input (plain, .gz or .xz) as plain text"),
    "extract-member": ("xlm.text.sources", "take one file out of a zip/tar archive (.sgm: text)"),
    "concat-text": ("xlm.text.sources", "join text inputs (plain, .gz or .xz) into one file"),
    "split-pair": ("xlm.text.sources", "seeded train/valid/test split of a parallel corpus"),
    "tables": ("xlm.report.cli", "regenerate the paper's Tables 1-5 from metrics.json records"),
    "plots": ("xlm.report.cli", "plot training curves and XNLI accuracy as PNG files"),
    "findings": ("xlm.report.findings", "the paper's claims with a verdict from the records"),
    "bpe-sample": ("xlm.text.bpe", "sample BPE training sentences over languages, q ∝ p^alpha"),
    "bpe-learn": ("xlm.text.bpe", "learn BPE codes with fastBPE"),
    "bpe-vocab": ("xlm.text.bpe", "count the BPE vocabulary of BPE'd training text"),
    "bpe-apply": ("xlm.text.bpe", "apply BPE codes to text files, in parallel"),
    "binarize": ("xlm.data.binarize", "binarize BPE'd text into .bin/.idx datasets"),
    "binarize-pair": ("xlm.data.binarize", "binarize a parallel corpus, dropping bad pairs"),
    "pretrain": ("xlm.train.pretrain", "pretrain a CLM/MLM/TLM model (resumable, distributed)"),
    "xnli-extract": ("xlm.data.xnli", "read XNLI TSVs into premise/hypothesis/label files"),
    "xnli": ("xlm.tasks.xnli", "fine-tune a pretrained model on XNLI, evaluate zero-shot"),
    "xnli-translate": ("xlm.tasks.xnli_translate",
                       "translate an XNLI set into English with an MT model (translate-test)"),
    "mt-train": ("xlm.tasks.mt", "train a supervised/unsupervised MT model (resumable)"),
    "mt-eval": ("xlm.tasks.mt_eval", "BLEU of an MT model on test sets (sacreBLEU + tokenized)"),
    "translate": ("xlm.tasks.translate", "translate stdin to stdout with an MT model"),
    "embeddings": ("xlm.tasks.embeddings", "cross-lingual word embedding metrics of a model"),
    "retrieval": ("xlm.tasks.retrieval", "cross-lingual sentence retrieval (P@1) of a model"),
    "lm": ("xlm.tasks.lm", "low-resource CLM perplexity for a combination of languages"),
    "import-checkpoint": ("xlm.interop.import_checkpoint", "released XLM checkpoint -> model.pt"),
    "export-hf": ("xlm.interop.export_hf", "model.pt -> transformers XLMWithLMHeadModel folder"),
    "convert-model": ("xlm.train.convert", "rewrite an older model.pt/checkpoint in the safe "
                      "format (--trust-pickle)"),
}


# File-system errors a user fixes outside the program: one line naming the file and the fix.
FILE_ERRNOS = {
    errno.ENOSPC: "the disk is full: free space or point the output elsewhere",
    errno.EDQUOT: "the disk quota is exceeded: free space or point the output elsewhere",
    errno.EACCES: "permission denied: fix the permissions or choose another path",
    errno.EPERM: "operation not permitted: fix the permissions or choose another path",
    errno.EROFS: "read-only file system: write the outputs elsewhere",
    errno.ENOTDIR: "a part of the path is a file, not a folder: fix the path",
    errno.EISDIR: "the path is a folder, not a file: fix the path",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xlm", description="Cross-lingual language model pretraining pipeline stages."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    top, rest = parser.parse_known_args(argv)
    module_name, help_text = COMMANDS[top.command]
    module = importlib.import_module(module_name)
    stage_parser = argparse.ArgumentParser(prog=f"xlm {top.command}", description=help_text)
    name = top.command.replace("-", "_")  # `bpe-learn` -> add_bpe_learn_arguments
    adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
    runner = getattr(module, f"run_{name}", None) or module.run
    adder(stage_parser)
    args = stage_parser.parse_args(rest)
    args.command_line = [top.command, *rest]  # to start more ranks of the same command
    logging.basicConfig(
        level=logging.DEBUG if top.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        runner(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"error: xlm {top.command} interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except OSError as error:
        if error.errno not in FILE_ERRNOS:
            raise
        where = error.filename or "an output file"
        print(f"error: {where}: {error.strerror} ({FILE_ERRNOS[error.errno]})", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
