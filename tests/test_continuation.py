"""A run continued from a checkpoint after a run-length setting changed ends exactly where
a fresh run with the new settings ends (xlm/train/continuation.py); where it cannot, the
checkpoint is moved aside with the reason in the log and training starts from step 0.

Each case compares the continued run's train.jsonl and metrics (or MT's valid.json and
weights) with a fresh run's, on real FLORES text with a tiny model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from task_helpers import build_mt_data, mt_weights
from test_resume_inputs import pretrain, write_data

from xlm.tasks.mt import MtSettings, MtTrainer
from xlm.train.checkpoint import load_file
from xlm.train.continuation import continuation_problem


@pytest.fixture(scope="module")
def clm_data(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    return write_data(shared_data, tmp_path_factory.mktemp("continuation"), permuted=False)


def outcome(out: Path, records: list[dict]) -> tuple[list[dict], list[dict]]:
    """The training log without timings, and the metrics without the git revision."""
    log = [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in records]
    metrics = json.loads((out / "metrics.json").read_text())
    return log, [{k: v for k, v in r.items() if k != "git_revision"} for r in metrics]


def continued_and_fresh(data: Path, vocab: Path, tmp_path: Path, before: dict, after: dict,
                        caplog) -> tuple[tuple, tuple, str]:
    """Train with `before`, rerun in the same folder with `after`; train afresh with
    `after`. Returns both outcomes and the rerun's log."""
    pretrain(data, vocab, tmp_path / "run", **before)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xlm"):
        rerun = pretrain(data, vocab, tmp_path / "run", **after)
    text = caplog.text
    fresh = pretrain(data, vocab, tmp_path / "fresh", **after)
    return (outcome(tmp_path / "run", rerun), outcome(tmp_path / "fresh", fresh), text)


def test_a_longer_run_continues_and_evaluates_where_a_fresh_one_does(clm_data, tmp_path,
                                                                    caplog):
    # 14 is off the eval_every grid: its end-of-run evaluation must not be carried on.
    continued, fresh, text = continued_and_fresh(
        *clm_data, tmp_path, {"max_steps": 14, "eval_every": 4},
        {"max_steps": 20, "eval_every": 4}, caplog)
    assert "resumed from" in text and "at step 14" in text
    assert continued == fresh
    assert [r["step"] for r in continued[0] if "valid_ppl" in r] == [4, 8, 12, 16, 20]


def test_the_end_of_run_evaluation_can_still_select_the_last_step(clm_data, tmp_path):
    records = pretrain(*clm_data, tmp_path / "run", max_steps=14, eval_every=4)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [r["step"] for r in records if "valid_ppl" in r] == [4, 8, 12, 14]
    assert records[-1]["best_step"] == 14 and {r["step"] for r in metrics} == {14}
    state = load_file(tmp_path / "run" / "checkpoints" / "latest.pt", "checkpoint")
    assert (state["step"], state["last_eval_step"], state["best_step"]) == (14, 12, 12)


def test_a_shorter_run_does_not_reuse_a_longer_runs_checkpoint(clm_data, tmp_path, caplog):
    continued, fresh, text = continued_and_fresh(
        *clm_data, tmp_path, {"max_steps": 20, "eval_every": 4},
        {"max_steps": 10, "eval_every": 4}, caplog)
    assert "not resuming, since it is at step 20, past max_steps 10" in text
    assert continued == fresh and continued[0][-1]["step"] == 10
    assert len(list((tmp_path / "run").glob("checkpoints.stale-*"))) == 1


# lr 0.05 makes the French valid perplexity rise at step 12 (observed: 86.7 -> 89.9).
UNSTABLE = {"max_steps": 20, "eval_every": 4, "lr": 0.05}


def test_raising_patience_continues_a_run_that_stopped_early(clm_data, tmp_path, caplog):
    continued, fresh, text = continued_and_fresh(
        *clm_data, tmp_path, {**UNSTABLE, "patience": 1}, {**UNSTABLE, "patience": 3}, caplog)
    assert "resumed from" in text and "at step 12" in text
    assert continued == fresh and continued[0][-1]["step"] == 20


def test_lowering_patience_below_a_reached_count_trains_afresh(clm_data, tmp_path, caplog):
    continued, fresh, text = continued_and_fresh(
        *clm_data, tmp_path, {**UNSTABLE, "patience": 3}, {**UNSTABLE, "patience": 1}, caplog)
    assert "patience went down (3 -> 1) and the run already went 1 evaluations" in text
    assert continued == fresh and continued[0][-1]["step"] == 12


def test_a_cosine_schedule_trains_afresh_when_max_steps_changes(clm_data, tmp_path, caplog):
    cosine = {"schedule": "cosine", "eval_every": 4}
    continued, fresh, text = continued_and_fresh(
        *clm_data, tmp_path, {**cosine, "max_steps": 12}, {**cosine, "max_steps": 16}, caplog)
    assert "setting max_steps (12 -> 16)" in text and "resumed from" not in text
    assert continued == fresh


def test_changing_eval_every_trains_afresh_and_says_so(clm_data, tmp_path, caplog):
    continued, fresh, text = continued_and_fresh(
        *clm_data, tmp_path, {"max_steps": 12, "eval_every": 6},
        {"max_steps": 16, "eval_every": 4}, caplog)
    assert "setting eval_every (6 -> 4)" in text
    assert continued == fresh


def test_a_checkpoint_without_the_newer_fingerprint_keys_still_resumes(clm_data, tmp_path,
                                                                       caplog):
    """Checkpoints written before eval_every counted as shaping a run resume when it did
    not change: the key is read from the settings saved beside the fingerprint."""
    pretrain(*clm_data, tmp_path / "run", max_steps=12, eval_every=4)
    path = tmp_path / "run" / "checkpoints" / "latest.pt"
    state = load_file(path, "checkpoint")
    for key in ("eval_every", "eval_batches"):
        del state["fingerprint"]["settings"][key]
    del state["peak_bad_evals"]
    torch.save(state, path)
    with caplog.at_level(logging.INFO, logger="xlm"):
        pretrain(*clm_data, tmp_path / "run", max_steps=16, eval_every=4)
    assert "resumed from" in caplog.text and "at step 12" in caplog.text


def test_continuation_problem_names_each_reason():
    state = {"step": 30, "settings": {"patience": 5}, "peak_bad_evals": 2}
    assert continuation_problem(state, 40, 5) is None
    assert continuation_problem(state, 40, 3) is None  # never 3 evaluations without progress
    assert "already went 2 evaluations" in continuation_problem(state, 40, 2)
    assert "past max_steps 20" in continuation_problem(state, 20, 5)
    older = {"step": 30, "settings": {"patience": 5}}
    assert "older version" in continuation_problem(older, 40, 4)
    assert continuation_problem(older, 40, 8) is None


# ----------------------------------------------------------------- MT
@pytest.fixture(scope="module")
def mt_data(tmp_path_factory, shared_data) -> tuple[Path, Path]:
    return build_mt_data(shared_data, tmp_path_factory.mktemp("mt_continuation"), 120)


def mt_run(data: Path, vocab: Path, out: Path, **overrides) -> tuple[list[dict], dict, dict]:
    """Train; return train.jsonl without timings, valid.json's result, and the weights."""
    settings = MtSettings(**{
        "directions": ["en-fr"], "n_layers": 1, "dim": 32, "n_heads": 4,
        "tokens_per_batch": 400, "max_len": 20, "eval_every": 3, "valid_sentences": 20,
        "log_every": 1, "checkpoint_every": 1000, "lr": 1e-3, "warmup_steps": 2,
        **overrides})
    result = MtTrainer(settings, data=data, vocab=vocab, out=out,
                       device=torch.device("cpu")).run()
    log = [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"}
           for line in (out / "train.jsonl").read_text().splitlines()]
    return log, result, mt_weights(out)


def same_mt(a: tuple, b: tuple) -> bool:
    return a[:2] == b[:2] and all(torch.equal(a[2][k], b[2][k]) for k in a[2])


def test_mt_continues_longer_and_restarts_shorter_like_a_fresh_run(mt_data, tmp_path, caplog):
    mt_run(*mt_data, tmp_path / "run", max_steps=7)  # 7 is off the eval_every grid
    with caplog.at_level(logging.INFO, logger="xlm"):
        longer = mt_run(*mt_data, tmp_path / "run", max_steps=9)
    assert "resuming from" in caplog.text
    assert same_mt(longer, mt_run(*mt_data, tmp_path / "fresh9", max_steps=9))
    assert [r["step"] for r in longer[0] if "valid_bleu" in r] == [3, 6, 9]

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xlm"):
        shorter = mt_run(*mt_data, tmp_path / "run", max_steps=5)
    assert "it is at step 9, past max_steps 5" in caplog.text
    assert same_mt(shorter, mt_run(*mt_data, tmp_path / "fresh5", max_steps=5))


def stop_step(valid: list[tuple[int, float]], patience: int) -> int | None:
    """Where XLM's stopping criterion ends a run with these (step, valid BLEU) pairs."""
    best, bad = -1.0, 0
    for step, bleu in valid:
        best, bad = (bleu, 0) if bleu > best else (best, bad + 1)
        if bad >= patience:
            return step
    return None


def test_mt_stops_after_patience_evaluations_without_a_better_bleu(mt_data, tmp_path,
                                                                   caplog):
    full = mt_run(*mt_data, tmp_path / "full", max_steps=30)
    valid = [(r["step"], r["valid_bleu"]) for r in full[0] if "valid_bleu" in r]
    expected = stop_step(valid, 2)
    assert expected is not None and expected < 30, valid
    with caplog.at_level(logging.INFO, logger="xlm"):
        stopped = mt_run(*mt_data, tmp_path / "run", max_steps=30, patience=2)
    assert "stopping: no better valid BLEU in 2 evaluations" in caplog.text
    assert stopped[0][-1]["step"] == expected
    assert [(r["step"], r["valid_bleu"]) for r in stopped[0] if "valid_bleu" in r] == [
        v for v in valid if v[0] <= expected]
    # More patience continues the stopped run, as a fresh run with it goes.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xlm"):
        patient = mt_run(*mt_data, tmp_path / "run", max_steps=30, patience=4)
    assert "resuming from" in caplog.text
    assert same_mt(patient, mt_run(*mt_data, tmp_path / "fresh", max_steps=30, patience=4))


def test_mt_valid_sentences_null_decodes_the_whole_valid_set(mt_data, tmp_path, monkeypatch):
    import xlm.tasks.mt as mt

    decoded: list[int] = []
    original = mt.translate_dataset

    def counting(model, dictionary, src_data, direction, indices, *args, **kwargs):
        decoded.append(len(list(indices)))
        return original(model, dictionary, src_data, direction, indices, *args, **kwargs)

    monkeypatch.setattr(mt, "translate_dataset", counting)
    mt_run(*mt_data, tmp_path / "all", max_steps=3, valid_sentences=None)
    mt_run(*mt_data, tmp_path / "some", max_steps=3, valid_sentences=7)
    assert decoded == [120, 7]  # the 120 valid pairs of mt_data, then the first 7
