"""`make gpu-check`: the GPU measurements of issue 16 in one command (at most 8 minutes).

`python -m benchmarks.gpu_check` on a machine with a CUDA GPU:
1. the MLM training step of the paper's model (12 layers, 1024 wide, 8 heads, 64 x 256
   tokens, 95k vocabulary, bf16 autocast), ours against `transformers`'
   `XLMWithLMHeadModel` at the same settings (tokens/s, ratio; the code of
   `benchmarks/train_step.py`), with each side's peak GPU memory;
2. MFU: model FLOPs/s over the rate of a bf16 matmul measured in the same run;
3. the same step of ours under `torch.compile`;
4. a real `xlm pretrain` of a small MLM+TLM model on the bundled demo data (bf16), once
   straight through and once stopped (`--stop-at`) and resumed: the losses after the
   resume must equal the straight run's;
5. an XNLI fine-tuning step (`XnliClassifier`, 16 pairs) at the same model size, fp32 as
   `xlm xnli` runs now against bf16 autocast; then a real `xlm xnli` from the model of 4.
6. decoding with and without the key/value cache (`benchmarks/decode.py`, the paper's MT
   model size on a GPU).
It writes `benchmarks/results/gpu.json` (the suite's format, so `benchmarks/README.md`'s
table shows it) and prints a summary. Without a GPU it says so in one line and exits 0.
`--cpu --tiny` runs the same code paths on CPU with tiny sizes (1-2 minutes on 2 busy
cores, mostly process starts; `make test` runs it). Each phase is skipped once the time
budget (`--budget`, 480 s) is spent; a phase that fails is recorded with its error and the
command exits 1 after the others ran.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import REPO, RESULTS_DIR, Options, Result, Row, machine_info, write_result
from benchmarks.train_step import (
    GPU_SIZE,
    QUICK_SIZE,
    Size,
    build_ours,
    build_peer,
    make_step,
    masked_inputs,
    matmul_rate,
    model_flops_per_step,
    time_steps,
)

log = logging.getLogger("gpu_check")
DEMO = REPO / "demo"
LANGS = ("en", "fr")


def pretrain_settings(tiny: bool) -> dict[str, Any]:
    """A small MLM+TLM model: seconds on a GPU (tiny: on a CPU). Every step is logged."""
    common = {"mlm": list(LANGS), "tlm": ["en-fr"], "dropout": 0.1, "attention_dropout": 0.1,
              "log_every": 1, "checkpoint_every": 1000, "patience": 100, "seed": 0,
              "schedule": "inverse_sqrt", "eval_batches": 2}
    if tiny:
        return {**common, "n_layers": 1, "dim": 32, "n_heads": 2, "max_positions": 64,
                "bptt": 32, "batch_size": 8, "tokens_per_batch": 400, "max_len": 40,
                "lr": 2e-3, "warmup_steps": 2, "max_steps": 8, "eval_every": 4,
                "precision": "fp32"}
    return {**common, "n_layers": 4, "dim": 512, "n_heads": 8, "max_positions": 256,
            "bptt": 128, "batch_size": 32, "tokens_per_batch": 2000, "max_len": 100,
            "lr": 5e-4, "warmup_steps": 10, "max_steps": 60, "eval_every": 30,
            "precision": "bf16"}


def build_demo_data(work: Path) -> tuple[Path, Path, Path]:
    """Word-level data from the bundled demo (tokenized with our tokenizers, no BPE):
    Tatoeba en-fr as training text and pairs, FLORES valid/test, XNLI dev (English) for
    fine-tuning and XNLI test en/fr for evaluation. Returns (data, xnli data, vocab)."""
    from collections import Counter

    from xlm.data.dictionary import Dictionary
    from xlm.data.indexed import binarize_lines
    from xlm.data.xnli import read_pairs
    from xlm.text.tokenizers import TokenizerOptions, get_tokenizer

    work.mkdir(parents=True, exist_ok=True)
    tokenize = {lang: get_tokenizer(lang, TokenizerOptions(lowercase=True)) for lang in LANGS}

    def lines(path: Path, lang: str) -> list[str]:
        return [tokenize[lang](line) for line in path.read_text(encoding="utf-8").splitlines()]

    text = {(lang, "train"): lines(DEMO / "para" / "tatoeba" / f"en-fr.{lang}", lang)
            for lang in LANGS}
    for split, name in (("valid", "valid"), ("test", "test")):
        for lang in LANGS:
            text[(lang, split)] = lines(DEMO / "para" / "flores200" / f"{name}.{lang}", lang)
    xnli: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    xnli[("en", "train")] = read_pairs(DEMO / "xnli" / "dev.en.tsv.gz", "en")
    for lang in LANGS:
        rows = read_pairs(DEMO / "xnli" / f"test.{lang}.tsv.gz", lang)
        xnli[(lang, "valid")], xnli[(lang, "test")] = rows[:100], rows[100:]
    xnli_tok = {key: [(tokenize[key[0]](p), tokenize[key[0]](h), label) for p, h, label in rows]
                for key, rows in xnli.items()}
    counts = Counter(word for sentences in text.values() for line in sentences
                     for word in line.split())
    counts.update(word for rows in xnli_tok.values() for p, h, _ in rows
                  for word in f"{p} {h}".split())
    vocab = work / "vocab"
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    vocab.write_text("".join(f"{word} {count}\n" for word, count in ranked), encoding="utf-8")
    dictionary = Dictionary.read_vocab(vocab)
    data, xnli_dir = work / "bin", work / "xnli"
    data.mkdir(parents=True, exist_ok=True)
    xnli_dir.mkdir(parents=True, exist_ok=True)
    for (lang, split), sentences in text.items():
        binarize_lines(sentences, dictionary, data / f"{lang}.{split}")
        binarize_lines(sentences, dictionary, data / f"en-fr.{lang}.{split}")
    for (lang, split), rows in xnli_tok.items():
        binarize_lines([r[0] for r in rows], dictionary, xnli_dir / f"{lang}.{split}.s1")
        binarize_lines([r[1] for r in rows], dictionary, xnli_dir / f"{lang}.{split}.s2")
        (xnli_dir / f"{lang}.{split}.label").write_text("".join(r[2] + "\n" for r in rows),
                                                        encoding="utf-8")
    return data, xnli_dir, vocab


class Check:
    """The phases, their time budget, and what they found."""

    def __init__(self, device: torch.device, tiny: bool, budget: float, work: Path,
                 compile_backend: str = "inductor") -> None:
        self.device, self.tiny, self.budget, self.work = device, tiny, budget, work
        self.compile_backend = compile_backend
        self.start = time.perf_counter()
        self.result = Result("gpu")
        self.details: dict[str, Any] = {"device": str(device), "tiny": tiny, "phases": {}}
        if device.type == "cuda":
            self.details.update(
                gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
                memory_gib=torch.cuda.get_device_properties(device).total_memory / 2 ** 30)
        self.result.details = self.details
        self.failed: list[str] = []
        self.cuda = device.type == "cuda"

    def phase(self, name: str, function: Callable[[], dict[str, Any]]) -> None:
        """Run one phase within the budget; record its figures, or why it did not run."""
        elapsed = time.perf_counter() - self.start
        if elapsed > self.budget:
            self.details["phases"][name] = {"skipped": f"time budget spent ({elapsed:.0f} s)"}
            log.warning("%s: skipped, time budget of %.0f s spent", name, self.budget)
            return
        log.info("%s ...", name)
        begin = time.perf_counter()
        try:
            figures = function()
        except Exception as error:  # noqa: BLE001 - a failed phase must not hide the others
            log.exception("%s failed", name)
            self.failed.append(name)
            figures = {"error": f"{type(error).__name__}: {error}"}
        figures["seconds"] = round(time.perf_counter() - begin, 1)
        self.details["phases"][name] = figures
        if self.cuda:
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ the phases
    @property
    def size(self) -> Size:
        return QUICK_SIZE if self.tiny else GPU_SIZE

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def _peak_bytes(self, build: Callable[[], torch.nn.Module], step_of) -> float | None:
        """Peak GPU memory of one side's model, optimizer and a few steps (None on CPU)."""
        if not self.cuda:
            return None
        self._sync()
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        model = build()
        step = step_of(model)
        for _ in range(3):
            step()
        self._sync()
        peak = torch.cuda.max_memory_allocated(self.device) - base
        del model, step
        torch.cuda.empty_cache()
        return float(peak)

    def training_step(self) -> dict[str, Any]:
        """Ours against XLMWithLMHeadModel, interleaved, best of 3; then MFU and memory."""
        size, device = self.size, self.device
        inputs, targets = masked_inputs(size)
        inputs, targets = inputs.to(device), targets.to(device)
        n_targets = int((targets != -100).sum())
        tokens = size.batch * size.bptt
        peaks = {
            "ours": self._peak_bytes(lambda: build_ours(size, device),
                                     lambda m: make_step(m, True, inputs, targets, device)),
            "XLMWithLMHeadModel": self._peak_bytes(
                lambda: build_peer(size, device),
                lambda m: make_step(m, False, inputs, targets, device)),
        }
        torch.manual_seed(0)
        steps = {"ours": make_step(build_ours(size, device), True, inputs, targets, device),
                 "XLMWithLMHeadModel": make_step(build_peer(size, device), False, inputs,
                                                 targets, device)}
        seconds = time_steps(steps, size.steps, 3, device)
        del steps
        rate = {name: tokens / s for name, s in seconds.items()}
        peak_flops = matmul_rate(device, torch.bfloat16 if self.cuda else torch.float32,
                                 n=256 if self.tiny else 8192, iters=3 if self.tiny else 20)
        flops = model_flops_per_step(size, n_targets)
        mfu = {name: flops / s / peak_flops for name, s in seconds.items()}
        shape = (f"{size.n_layers}x{size.dim}, {size.n_heads} heads, {size.batch}x{size.bptt} "
                 f"tokens, vocab {size.n_words}, {'bf16 autocast' if self.cuda else 'fp32'}")
        ratio = rate["ours"] / rate["XLMWithLMHeadModel"]
        self.result.rows.append(Row(f"MLM training step, {shape}", "tokens/s", rate["ours"],
                                    rate["XLMWithLMHeadModel"], "XLMWithLMHeadModel",
                                    ">= 1.5x", ratio >= 1.5))
        self.result.rows.append(Row(f"MFU, {shape}", "fraction", mfu["ours"],
                                    mfu["XLMWithLMHeadModel"], "XLMWithLMHeadModel", ">= 0.40",
                                    mfu["ours"] >= 0.40,
                                    note=f"matmul {peak_flops / 1e12:.3g} TFLOP/s measured"))
        if self.cuda:
            self.result.rows.append(Row("peak GPU memory of the training step", "GiB",
                                        peaks["ours"] / 2 ** 30,
                                        peaks["XLMWithLMHeadModel"] / 2 ** 30,
                                        "XLMWithLMHeadModel"))
        return {"size": size.__dict__, "n_targets": n_targets, "seconds_per_step": seconds,
                "tokens_per_s": rate, "ratio": ratio, "matmul_flops": peak_flops,
                "model_flops_per_step": flops, "mfu": mfu, "peak_memory_bytes": peaks}

    def compiled_step(self) -> dict[str, Any]:
        """Ours under torch.compile (compile time apart), against ours eager."""
        size, device = self.size, self.device
        inputs, targets = masked_inputs(size)
        inputs, targets = inputs.to(device), targets.to(device)
        torch.manual_seed(0)
        eager = build_ours(size, device)
        compiled_model = build_ours(size, device)
        compiled_model.load_state_dict(eager.state_dict())
        compiled = torch.compile(compiled_model, backend=self.compile_backend)
        steps = {"eager": make_step(eager, True, inputs, targets, device),
                 "compiled": make_step(compiled, True, inputs, targets, device)}
        begin = time.perf_counter()
        first_loss = steps["compiled"]()  # compiles
        compile_seconds = time.perf_counter() - begin
        eager_loss = steps["eager"]()
        seconds = time_steps(steps, size.steps, 3, device)
        tokens = size.batch * size.bptt
        rate = {name: tokens / s for name, s in seconds.items()}
        self.result.rows.append(Row(f"MLM training step under torch.compile, {size.n_layers}x"
                                    f"{size.dim}", "tokens/s", rate["compiled"], rate["eager"],
                                    "ours eager",
                                    note=f"{self.compile_backend}, compiled in "
                                         f"{compile_seconds:.0f} s"))
        return {"tokens_per_s": rate, "compile_seconds": compile_seconds,
                "backend": self.compile_backend,
                "first_loss": {"compiled": first_loss, "eager": eager_loss}}

    def xnli_step(self) -> dict[str, Any]:
        """A fine-tuning step of `XnliClassifier` on the pretraining step's model size (16
        pairs of up to `bptt` tokens, Adam): in fp32, as `xlm xnli` runs it today, and
        under bf16 autocast."""
        from xlm.data.dictionary import N_SPECIAL
        from xlm.tasks.xnli import LABELS, XnliClassifier

        size, device = self.size, self.device
        pairs = 4 if self.tiny else 16
        generator = torch.Generator().manual_seed(0)
        tokens = torch.randint(N_SPECIAL, size.n_words, (pairs, size.bptt), generator=generator)
        lengths = torch.linspace(size.bptt // 4, size.bptt, pairs).long()
        mask = torch.arange(size.bptt)[None, :] < lengths[:, None]
        tokens = tokens.masked_fill(~mask, 2).to(device)
        mask = mask.to(device)
        labels = torch.randint(0, len(LABELS), (pairs,), generator=generator).to(device)

        def step_of(bf16: bool) -> Callable[[], float]:
            torch.manual_seed(0)
            model = XnliClassifier(build_ours(size, device), 0.0).to(device).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=5e-6)
            autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

            def step() -> float:
                optimizer.zero_grad(set_to_none=True)
                with autocast:
                    logits = model(tokens, None, mask)
                loss = torch.nn.functional.cross_entropy(logits.float(), labels)
                loss.backward()
                optimizer.step()
                return float(loss.detach())
            return step

        steps = {"fp32": step_of(False), "bf16 autocast": step_of(True)}
        seconds = time_steps(steps, size.steps, 3, device)
        real_tokens = int(mask.sum())
        rate = {name: real_tokens / s for name, s in seconds.items()}
        self.result.rows.append(Row(
            f"XNLI fine-tuning step, {size.n_layers}x{size.dim}, {pairs} pairs of "
            f"{size.bptt // 4}-{size.bptt} tokens, bf16 autocast", "tokens/s",
            rate["bf16 autocast"], rate["fp32"], "fp32 (as xlm xnli runs now)"))
        return {"pairs": pairs, "real_tokens": real_tokens, "seconds_per_step": seconds,
                "tokens_per_s": rate}

    def _xlm(self, *args: str) -> float:
        """Run an `xlm` command (in this interpreter); its wall seconds."""
        command = [sys.executable, "-m", "xlm", *args]
        if not self.cuda:
            command.append("--cpu")
        log_path = self.work / "logs" / f"{args[0]}-{len(list(self.work.glob('logs/*')))}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.cuda:  # one GPU: `xlm pretrain` would start a rank on every visible one
            env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
        begin = time.perf_counter()
        with open(log_path, "w", encoding="utf-8") as handle:
            done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False,
                                  env=env)
        if done.returncode != 0:
            tail = log_path.read_text(encoding="utf-8").strip().splitlines()[-1:]
            raise RuntimeError(f"{' '.join(command[2:4])} exited {done.returncode} "
                               f"(log {log_path}): {' '.join(tail)}")
        return time.perf_counter() - begin

    def pretrain_and_resume(self) -> dict[str, Any]:
        """`xlm pretrain` straight through, and stopped at half way then resumed."""
        data, _, vocab = self.demo
        settings = pretrain_settings(self.tiny)
        stop = settings["max_steps"] // 2
        args = ["--name", "gpu-check", "--settings", json.dumps(settings), "--data", str(data),
                "--vocab", str(vocab)]
        straight_out, resumed_out = self.work / "straight", self.work / "resumed"
        wall = {"straight": self._xlm("pretrain", *args, "--out", str(straight_out))}
        wall["stopped"] = self._xlm("pretrain", *args, "--out", str(resumed_out),
                                    "--stop-at", str(stop))
        wall["resumed"] = self._xlm("pretrain", *args, "--out", str(resumed_out))

        def losses(out: Path) -> list[float]:
            records = [json.loads(line) for line in
                       (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
            return [value for r in records if "tokens_per_s" in r
                    for key, value in r.items() if key.endswith("_loss")]

        straight, resumed = losses(straight_out), losses(resumed_out)
        if len(straight) != len(resumed) or not straight:
            raise RuntimeError(f"train.jsonl: {len(straight)} straight and {len(resumed)} "
                               "resumed losses")
        difference = max(abs(a - b) / max(abs(a), 1e-9) for a, b in
                         zip(straight, resumed, strict=True))
        # CPU fp32 is deterministic; on a GPU atomics (embedding backward) move bf16 losses
        # a little between any two runs.
        tolerance = 2e-3 if self.cuda else 1e-5
        record = [json.loads(line) for line in
                  (straight_out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
        rates = [r["tokens_per_s"] for r in record if "tokens_per_s" in r][2:]
        self.model_path = straight_out / "model.pt"
        if not self.model_path.is_file():
            raise RuntimeError(f"{self.model_path}: not written by the straight run")
        median = sorted(rates)[len(rates) // 2] if rates else None
        if median:
            self.result.rows.append(Row(
                f"xlm pretrain, {settings['n_layers']}x{settings['dim']} MLM+TLM, "
                f"{settings['precision']}, median of the logged steps after the second",
                "tokens/s", median))
        self.result.rows.append(Row(
            f"xlm pretrain stopped at step {stop} of {settings['max_steps']} and resumed: "
            "largest relative loss difference to the straight run", "fraction", difference,
            target=f"<= {tolerance:g}", met=difference <= tolerance))
        return {"settings": settings, "stop_at": stop, "wall_seconds": wall,
                "losses": {"straight": straight, "resumed": resumed},
                "max_relative_difference": difference,
                "median_tokens_per_s": median}

    def xnli_fine_tuning(self) -> dict[str, Any]:
        """`xlm xnli` from the model `xlm pretrain` just wrote: train, select, evaluate."""
        from xlm.report.records import load_metrics_file

        _, xnli_dir, vocab = self.demo
        model = getattr(self, "model_path", None)
        if model is None:
            raise RuntimeError("no pretrained model: the pretraining phase did not finish")
        settings = {"lr": [1e-4], "batch_size": [16], "epochs": 1, "max_len": 128,
                    "log_every": 5, "eval_batch_size": 32}
        out = self.work / "xnli-run"
        wall = self._xlm("xnli", "--model", str(model), "--name", "gpu-check", "--data",
                         str(xnli_dir), "--vocab", str(vocab), "--languages", *LANGS,
                         "--settings", json.dumps(settings), "--out", str(out))
        records = load_metrics_file(out / "metrics.json")
        accuracy = {f"{r['split']}.{r['lang']}": r["value"] for r in records}
        pairs = len((xnli_dir / "en.train.label").read_text(encoding="utf-8").split())
        self.result.rows.append(Row(f"xlm xnli: 1 epoch of {pairs} pairs, evaluation of "
                                    f"{len(LANGS)} languages (process wall time)",
                                    "s", wall, note=f"valid.en acc {accuracy.get('valid.en')}"))
        return {"settings": settings, "wall_seconds": wall, "accuracy": accuracy}

    def decoding(self) -> dict[str, Any]:
        """`benchmarks/decode.py` on this device: cached against uncached decoding."""
        from benchmarks import decode

        options = Options(quick=self.tiny, repeats=2, device=self.device.type)
        result = decode.run(options)
        self.result.rows.extend(result.rows)
        return result.details

    @property
    def demo(self) -> tuple[Path, Path, Path]:
        if not hasattr(self, "_demo"):
            self._demo = build_demo_data(self.work / "data")
        return self._demo


def summary(result: Result, failed: list[str]) -> str:
    lines = [f"gpu-check on {result.details['device']}:"]
    for row in result.rows:
        ratio = f" ({row.ratio:.2f}x {row.peer_name})" if row.ratio is not None else ""
        target = (f"; target {row.target}: {'met' if row.met else 'NOT met'}"
                  if row.target else "")
        lines.append(f"  {row.case}: {row.ours:.4g} {row.unit}{ratio}{target}")
    for name, figures in result.details["phases"].items():
        if "skipped" in figures or "error" in figures:
            lines.append(f"  {name}: {figures.get('skipped') or figures.get('error')}")
    if failed:
        lines.append(f"  FAILED phases: {', '.join(failed)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="run on CPU (with --tiny: a test)")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: seconds in all")
    parser.add_argument("--budget", type=float, default=480.0,
                        help="seconds after which the remaining phases are skipped (480)")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder for gpu.json (default: benchmarks/results, or with "
                             "--tiny benchmarks/work/quick/gpu_check)")
    parser.add_argument("--compile-backend", default=None,
                        help="torch.compile backend (default inductor; with --cpu --tiny "
                             "aot_eager: the same graph capture without minutes of C++ "
                             "compilation on a small CPU)")
    parser.add_argument("--work", type=Path, default=None,
                        help="scratch folder, emptied first (default: benchmarks/work/...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.cpu and not args.tiny:
        parser.error("--cpu needs --tiny (the paper's model would take hours on a CPU)")
    if not args.cpu and not torch.cuda.is_available():
        why = ("a CPU-only build: install a CUDA build of torch" if torch.version.cuda is None
               else f"built for CUDA {torch.version.cuda}")
        print(f"gpu-check: no CUDA GPU visible to torch {torch.__version__} ({why}); nothing "
              "measured (`--cpu --tiny` runs the same code on CPU)")
        return 0
    device = torch.device("cpu" if args.cpu else "cuda")
    options = Options(quick=args.tiny)
    work = args.work or options.scratch("gpu_check")
    shutil.rmtree(work, ignore_errors=True)  # a previous run's checkpoints would be resumed
    work.mkdir(parents=True)
    results = args.results or (work if args.tiny else RESULTS_DIR)
    threads = torch.get_num_threads()
    if args.cpu:
        torch.set_num_threads(1)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    backend = args.compile_backend or ("aot_eager" if args.cpu and args.tiny else "inductor")
    check = Check(device, args.tiny, args.budget, work, backend)
    try:
        check.phase("training_step", check.training_step)
        check.phase("compiled_step", check.compiled_step)
        check.phase("xnli_step", check.xnli_step)
        check.phase("pretrain_resume", check.pretrain_and_resume)
        check.phase("xnli", check.xnli_fine_tuning)
        check.phase("decode", check.decoding)
    finally:
        torch.set_num_threads(threads)
    check.details["wall_seconds"] = round(time.perf_counter() - check.start, 1)
    check.details["failed"] = check.failed
    options.results = results
    path = write_result(check.result, options, machine_info())
    print(summary(check.result, check.failed))
    print(f"gpu-check: wrote {path} in {check.details['wall_seconds']:.0f} s")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
