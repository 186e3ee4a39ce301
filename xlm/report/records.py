"""Metric records: the one contract between the tasks and the tables/plots.

Every task writes ``metrics.json``: a JSON list of records, one per number. Tables and
plots read nothing else, so a task is reported correctly as soon as its records follow
this vocabulary. Unknown extra fields are kept and ignored; only the six core fields are
required.

Core fields (required)
----------------------
``task``    what produced the number (the table it lands in):
            ``pretrain``    language-model pretraining (CLM, MLM, TLM)         -> curves only
            ``xnli``        cross-lingual classification                       -> Table 1
            ``mt_unsup``    unsupervised MT (DAE + online back-translation)    -> Table 2
            ``mt_sup``      supervised MT (ro-en)                              -> Table 3
            ``lm``          low-resource language modelling (Nepali)           -> Table 4
            ``embeddings``  cross-lingual word embeddings                      -> Table 5
            ``retrieval``   cross-lingual sentence retrieval (paper 3.4)       -> table_retrieval
``model``   name of the model / experiment, e.g. ``"mlm"``, ``"mlm_tlm"``, ``"clm"``.
``split``   ``train``, ``valid`` or ``test``. Tables 1-4 show ``test``; Table 5 any split.
``lang``    ISO 639-1 code of the evaluated language (``"fr"``). For MT the target
            language; for embeddings and retrieval the pair (``"en-fr"``).
``metric``  one of:
            ``acc``       accuracy in percent (0-100, not a fraction)
            ``ppl``       perplexity (per BPE unit, as XLM and the paper)
            ``ppl_word``  perplexity per word of the original text: exp(total NLL /
                          words), BPE ``@@`` pieces not counted (lm; pretraining's
                          ``clm_ppl_word``), comparable across vocabularies
            ``loss``      cross-entropy in nats
            ``bleu``      detokenized sacreBLEU (give ``sacrebleu_signature``)
            ``bleu_tok``  BLEU on tokenized text (multi-bleu.perl style, as in the paper)
            ``cosine``    mean cosine similarity of dictionary translation pairs
            ``l2``        mean L2 distance of dictionary translation pairs
            ``semeval17`` SemEval'17 cross-lingual word similarity (Pearson x 1, 0-1)
            ``p@1``, ``p@5``, ``p@10``  word translation precision at k, in percent
                          (retrieval: sentence retrieval precision@1, cosine neighbour)
            ``p@1_csls``  the same by CSLS nearest neighbour (embeddings, retrieval)
            Other names are allowed; tables simply do not show them. One unit per
            kind everywhere: any accuracy is in percent (pretraining's ``mlm_acc``,
            ``clm_acc``, ``tlm_acc`` too), any perplexity is exp(cross-entropy).
``value``   the number (int or float; never a string, never NaN for "missing": a
            missing result is a missing record).

Provenance (recommended on every record)
----------------------------------------
``run_name``             the config's ``run_name``
``config_hash``          hash of the resolved config (``xlm.config.config_hash``)
``git_revision``         ``git rev-parse --short HEAD`` (``+dirty`` when modified)
``timestamp``            ISO 8601 UTC time the record was written, e.g.
                         ``"2026-11-21T10:42:46Z"``; the tables' "date" is the newest one
``sacrebleu_signature``  on ``bleu`` records

Extra fields the tables use (optional, by task)
-----------------------------------------------
``setting``       xnli: ``zero-shot`` (default), ``translate-train``, ``translate-test``;
                  mt_sup: ``unidirectional`` (default; ro->en), ``bidirectional``
                  (ro<->en), ``bidirectional+bt`` (ro<->en + back-translation)
``direction``     mt_unsup / mt_sup: ``"src-tgt"``, e.g. ``"en-fr"`` (default:
                  ``lang`` when it contains ``-``)
``encoder_init``  mt_unsup / mt_sup: ``random``, ``emb``, ``clm`` or ``mlm``
``decoder_init``  mt_unsup: as ``encoder_init`` (Table 3 uses ``encoder_init`` only)
``languages``     lm: training languages, e.g. ``["ne", "hi"]``
``method``        embeddings: e.g. ``"xlm"``, ``"muse"``, ``"concat"`` (default: model)
``subset``        embeddings: ``all`` (default) or ``different spelling`` (only the pairs
                  whose two words differ; metric ``n_pairs`` counts a subset's pairs)
``direction``     retrieval: ``"query-candidate"`` languages, e.g. ``"fr-en"`` (each
                  French sentence retrieves among the English ones)
``pooling``       retrieval: ``mean`` (last layer over real tokens) or ``first`` (the
                  first position, ``</s>``)
``weights``       retrieval: ``pretrained`` (default) or ``untrained`` (same architecture,
                  random weights: the baseline)
``sentences``     retrieval: sentence pairs searched (chance P@1 is 100 / sentences)

Example::

    [{"task": "xnli", "model": "mlm_tlm", "split": "test", "lang": "fr", "metric": "acc",
      "value": 78.7, "setting": "zero-shot", "run_name": "demo", "config_hash": "3fa2c1",
      "git_revision": "d47be9b", "timestamp": "2026-11-21T10:42:46Z"}]

Tasks can write their file with `write_metrics(path, records)`, which checks each record
and writes atomically; `utc_timestamp()` gives the ``timestamp`` value.

When two records claim the same table cell, the one with the newest ``timestamp`` wins
(ties: the one read last, files being read in sorted path order), so the result does
not depend on the order in which files were found.
"""

from __future__ import annotations

import datetime
import glob
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xlm.errors import UserError
from xlm.io import atomic_open

Record = dict[str, Any]

TASKS = ("pretrain", "xnli", "mt_unsup", "mt_sup", "lm", "embeddings", "retrieval")
CORE_FIELDS = ("task", "model", "split", "lang", "metric", "value")
PROVENANCE_FIELDS = ("run_name", "config_hash", "git_revision", "timestamp")


def find_metrics_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand folders to every ``metrics.json`` below them; keep files; sort for stable output."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            pattern = str(path / "**" / "metrics.json")
            found.update(Path(p) for p in glob.glob(pattern, recursive=True))
        elif path.is_file():
            found.add(path)
        else:
            raise UserError(f"{path}: no such file or folder; give metrics.json files or "
                            "folders that contain them")
    return sorted(found)


def validate_record(record: Any, where: str) -> Record:
    """Check the core fields of one record; return it with ``value`` as a float."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: a record must be a JSON object, got {type(record).__name__}; "
                        "see the vocabulary in xlm/report/records.py")
    missing = [field for field in CORE_FIELDS if field not in record]
    if missing:
        raise UserError(f"{where}: record lacks {', '.join(missing)}; every record needs "
                        f"{', '.join(CORE_FIELDS)} (see xlm/report/records.py)")
    for field in CORE_FIELDS[:-1]:
        if not isinstance(record[field], str):
            raise UserError(f"{where}: field {field!r} must be a string, got "
                            f"{record[field]!r}; write it as a JSON string")
    value = record["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{where}: value must be a finite number, got {value!r}; leave the "
                        "record out when there is no result")
    return {**record, "value": float(value)}


def load_metrics_file(path: str | os.PathLike[str]) -> list[Record]:
    """Read and validate one ``metrics.json``; each record remembers its ``_source`` file."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error}); rerun the task that wrote it") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror}); check the path") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of records, got "
                        f"{type(data).__name__}; wrap the records in [...]")
    return [
        {**validate_record(record, f"{path} record {index}"), "_source": str(path)}
        for index, record in enumerate(data)
    ]


def load_records(paths: Iterable[str | os.PathLike[str]]) -> list[Record]:
    """All records of the given files and folders, in sorted file order."""
    records: list[Record] = []
    for path in find_metrics_files(paths):
        records.extend(load_metrics_file(path))
    return records


def direction(record: Record) -> str:
    """The MT direction of a record: ``direction``, or ``lang`` when it names a pair."""
    value = record.get("direction")
    if isinstance(value, str) and value:
        return value
    return record["lang"]


def newest(records: Iterable[Record]) -> Record:
    """The record written last (newest timestamp; ties: the last one given)."""
    best: Record | None = None
    for record in records:
        if best is None or str(record.get("timestamp", "")) >= str(best.get("timestamp", "")):
            best = record
    if best is None:
        raise ValueError("newest() of no records")
    return best


def utc_timestamp() -> str:
    """Now, as the ``timestamp`` of a record: ISO 8601, UTC, whole seconds."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def write_metrics(path: str | os.PathLike[str], records: Sequence[Record]) -> None:
    """Check every record, then write them as a ``metrics.json`` (atomically)."""
    checked = [validate_record(record, f"{path} record {index}")
               for index, record in enumerate(records)]
    with atomic_open(path) as handle:
        json.dump(checked, handle, indent=1, ensure_ascii=False, sort_keys=True)
        handle.write("\n")
