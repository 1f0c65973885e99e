"""A run's trials as data: plain records, flat rows, a pandas DataFrame, CSV and JSON files.

:func:`records` turns what a :class:`~archgraph.store.Store` holds into one dict per trial
(:meth:`Store.records <archgraph.store.Store.records>` calls it), every value plain JSON:

=============== ==================================================================================
``trial``       the trial id
``state``       ``running``, ``complete``, ``failed`` or ``pruned`` (the latest attempt's)
``attempts``    results recorded (0 while running; more than 1 when a failed trial was retried)
``kind``        its task's type (:class:`~archgraph.trial.Task`): ``architecture``, or e.g. ``hyper`` (FaDE)
``budget``      training epochs asked (counting those of the trial it resumes)
``seed``        the trial's training seed
``resume_from`` the trial whose checkpoint it continues, or ``None``
``cells``       vertices/edges of each cell, e.g. ``"5/7 4/6"``
``hash``        SHA-1 of the cells' canonical hashes: equal for isomorphic architectures
``seconds``     wall-clock seconds of the latest attempt (``None`` while running)
``asked_at``    unix time of the ask
``told_at``     unix time of the latest result (``None`` while running)
``checkpoint``  the weights' path relative to the run folder, or ``None``
``error``       a failed trial's one-line error, or ``None``
``metrics``     the latest result's metrics (``val_accuracy``, ``test_accuracy``, ``parameters``, ...)
``architecture`` the cells as :meth:`ArchGraph.to_dict <archgraph.graph.ArchGraph.to_dict>` gives them
``curve``       the per-epoch rows of the trainer
``task``        the trial's task, as :meth:`Task.to_dict <archgraph.trial.Task.to_dict>` gives it
``info``        what the strategy noted with the trial
=============== ==================================================================================

:func:`flat_rows` makes them a table, one row of scalars per trial: the fields above up to
``error``, then one column per metric (named after it; ``metrics.NAME`` for a metric named like
one of the fields), then ``architecture``, ``task`` and ``info`` as compact JSON text; the curves are left to
the records (and the JSON export). :func:`to_dataframe`, :func:`write_csv` and :func:`write_json`
write the table or the records; :func:`strict_json` makes NaN and infinite numbers ``null``.

Examples
--------
>>> from archgraph import ArchGraph
>>> from archgraph.store import MemoryStore
>>> from archgraph.trial import Result, Trial
>>> store = MemoryStore()
>>> store.record_ask(Trial(id=0, arch=ArchGraph([(0, 1), (1, 2)]), budget=2, seed=7))
>>> store.record_tell(Result(0, {"val_accuracy": 0.75, "seconds": 3}, seconds=1.5))
>>> row = flat_rows(store.records())[0]
>>> row["trial"], row["state"], row["cells"], row["val_accuracy"], row["seconds"], row["metrics.seconds"]
(0, 'complete', '3/2', 0.75, 1.5, 3)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ArchGraphError
from .trial import Result, Trial, TrialState

__all__ = ["FIELDS", "JSON_COLUMNS", "architecture_hash", "flat_rows", "records", "strict_json", "to_dataframe",
           "write_csv", "write_json"]

#: The scalar fields of a record, in the order of a table's first columns.
FIELDS = ("trial", "state", "attempts", "kind", "budget", "seed", "resume_from", "cells", "hash", "seconds",
          "asked_at", "told_at", "checkpoint", "error")
#: The fields a table holds as compact JSON text, after the metrics.
JSON_COLUMNS = ("architecture", "task", "info")
#: ``format`` and ``version`` of the JSON export (:func:`write_json`).
JSON_FORMAT, JSON_VERSION = "archgraph-trials", 1


def records(trials: Sequence[Trial], attempts: Mapping[int, Sequence[Result]],
            events: Sequence[tuple[str, int, int, float]]) -> list[dict[str, Any]]:
    """One record per trial (see the module docstring), by id, from a store's trials, results
    by attempt and event log (kind, trial id, attempt, unix time). Results or events of trials
    not among ``trials`` (asked while a running search was being read) are left out."""
    asked_at, told_at = {}, {}
    for kind, trial_id, _, at in events:
        (asked_at if kind == "ask" else told_at)[trial_id] = at
    rows = []
    for trial in sorted(trials, key=lambda t: t.id):
        tries = attempts.get(trial.id, ())
        last = tries[-1] if tries else None
        rows.append({
            "trial": trial.id,
            "state": (last.state if last else TrialState.RUNNING).value,
            "attempts": len(tries),
            "kind": trial.task.tag,
            "budget": trial.budget,
            "seed": trial.seed,
            "resume_from": trial.resume_from,
            "cells": " ".join(f"{c.num_nodes}/{c.num_edges}" for c in trial.arch),
            "hash": architecture_hash(trial.arch),
            "seconds": last.seconds if last else None,
            "asked_at": asked_at.get(trial.id),
            "told_at": told_at.get(trial.id) if last else None,
            "checkpoint": last.checkpoint if last else None,
            "error": last.error if last else None,
            "metrics": dict(last.metrics) if last else {},
            "architecture": [c.to_dict() for c in trial.arch],
            "curve": [dict(row) for row in last.curve] if last else [],
            "task": trial.task.to_dict(),
            "info": dict(trial.info),
        })
    return rows


def read_run(run_dir: str | os.PathLike) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The config and :func:`records` of the run in ``run_dir``, its store opened read-only (a run
    in progress goes on undisturbed).

    Raises
    ------
    ArchGraphError
        When ``run_dir`` holds no store.
    """
    from .store import STORE_FILE, SQLiteStore

    path = Path(run_dir) / STORE_FILE
    if not path.is_file():
        raise ArchGraphError(f"{run_dir} holds no search run ({STORE_FILE} is missing); give a run folder")
    with SQLiteStore(path, read_only=True) as store:
        return store.config(), store.records()


def architecture_hash(arch: Sequence) -> str:
    """SHA-1 of the cells' canonical hashes in order: equal exactly when each cell is isomorphic
    (ops included) to the other architecture's cell at its place.

    >>> from archgraph import ArchGraph
    >>> architecture_hash([ArchGraph([(0, 1), (0, 2)])]) == architecture_hash([ArchGraph([(2, 0), (2, 1)])])
    True
    """
    return hashlib.sha1(",".join(cell.canonical_hash() for cell in arch).encode()).hexdigest()


def flat_rows(recs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records as table rows of scalars with the same columns (see the module docstring)."""
    metric_names = list(dict.fromkeys(name for r in recs for name in r["metrics"]))
    columns = {name: f"metrics.{name}" if name in FIELDS or name in JSON_COLUMNS else name for name in metric_names}
    rows = []
    for r in recs:
        row = {field: r[field] for field in FIELDS}
        row.update({column: r["metrics"].get(name) for name, column in columns.items()})
        row.update({field: json.dumps(r[field], separators=(",", ":")) for field in JSON_COLUMNS})
        rows.append(row)
    return rows


def to_dataframe(recs: Sequence[Mapping[str, Any]]):
    """The records as a :class:`pandas.DataFrame` of :func:`flat_rows`, indexed by trial id.

    Raises
    ------
    ImportError
        Without pandas, saying how to install it.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError('to_dataframe needs pandas; install it with: pip install "archgraph[data]"') from None
    rows = flat_rows(recs)
    columns = list(rows[0]) if rows else [*FIELDS, *JSON_COLUMNS]
    return pd.DataFrame(rows, columns=columns).set_index("trial", drop=False)


def write_csv(recs: Sequence[Mapping[str, Any]], out: str | os.PathLike | None = None) -> str:
    """Write :func:`flat_rows` as CSV to ``out`` (atomically), or return the text when ``out`` is ``None``
    (empty cells for ``None``)."""
    rows = flat_rows(recs)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [*FIELDS, *JSON_COLUMNS],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return _write(buffer.getvalue(), out)


def write_json(recs: Sequence[Mapping[str, Any]], config: Mapping[str, Any] | None,
               out: str | os.PathLike | None = None) -> str:
    """Write ``{"format", "version", "config", "trials": records}`` as JSON to ``out`` (atomically),
    or return the text when ``out`` is ``None``."""
    data = {"format": JSON_FORMAT, "version": JSON_VERSION, "config": config, "trials": list(recs)}
    return _write(json.dumps(strict_json(data), indent=1, allow_nan=False) + "\n", out)


def strict_json(data: Any) -> Any:
    """``data`` with every NaN or infinite float made ``None``, for files strict JSON readers take
    (Python's :mod:`json` writes them as the bare words ``NaN`` and ``Infinity``, which JSON lacks).

    >>> strict_json({"val_loss": float("nan"), "curve": [1.0, float("inf")]})
    {'val_loss': None, 'curve': [1.0, None]}
    """
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, Mapping):
        return {key: strict_json(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [strict_json(value) for value in data]
    return data


def _write(text: str, out: str | os.PathLike | None) -> str:
    if out is not None:
        out = Path(out)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
    return text
