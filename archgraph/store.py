"""The record of a search run: every ask and tell, in order, safe against a killed process.

A :class:`Store` keeps the run's JSON config, the :class:`~archgraph.trial.Trial` s a
strategy asked for, the :class:`~archgraph.trial.Result` s told back, and an ordered
event log of ``("ask", trial_id)`` and ``("tell", trial_id)`` from which a killed run is
resumed by replaying it into a fresh strategy. :class:`SQLiteStore` (the default, one file
``run_dir/store.sqlite``) writes each ask or tell in one transaction, so a SIGKILL leaves
every record whole or absent; :class:`MemoryStore` keeps the same records in memory. Both
backends share the validation of :class:`Store` and one conformance suite
(``tests/test_store.py``, as Optuna's ``testing/pytest_storages.py``).

Every trial has a :class:`~archgraph.trial.TrialState`: ``running`` until its result is told,
then the result's (``complete``, ``failed`` or ``pruned``). A failed trial may be trained
again (a resumed run's ``retry_failed``): :meth:`Store.record_retry` keeps the new result as
the trial's next *attempt*, logged ``("retry", trial_id)``; the failure told to the strategy
stays in the record, so a replay tells the strategy what it was told.

A trial stored before trials carried typed tasks (:class:`~archgraph.trial.Task`) kept its task in
its ``info``; such a record is read as the typed trial it was, so a run stored
by an older archgraph resumes, and read-only access needs no migration of the file.

Only the process that drives the search (the runner) writes; evaluators never touch the
store. Records are stored as JSON, so what is read back is what a JSON round trip of
``Trial.to_dict()`` / ``Result.to_dict()`` gives (tuples come back as lists).

Checkpoints live beside the store: :func:`save_checkpoint` writes
``run_dir/checkpoints/trial-<id>.pt`` atomically and :func:`load_checkpoint` reads it.

Examples
--------
>>> from archgraph import ArchGraph
>>> from archgraph.trial import Trial, Result
>>> store = MemoryStore()
>>> store.record_ask(Trial(id=0, arch=ArchGraph([(0, 1)]), budget=1, seed=0))
>>> store.record_tell(Result(trial_id=0, metrics={"val_accuracy": 0.5}))
>>> store.events()
[('ask', 0), ('tell', 0)]
>>> store
MemoryStore(trials=1, told=1)
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .errors import ArchGraphError
from .trial import Result, Trial, TrialState

__all__ = [
    "SCHEMA_VERSION",
    "STORE_FILE",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "StoreError",
    "Told",
    "checkpoint_path",
    "load_checkpoint",
    "save_checkpoint",
]

#: Version of the SQLite schema (``PRAGMA user_version``); an older file is migrated when
#: opened, a file with a newer one is refused. 1: no trial states; 2: results by attempt
#: with their state, error and traceback, the ``retry`` event and the ``trial_states`` view.
SCHEMA_VERSION = 2
#: Name of the store file in a run directory.
STORE_FILE = "store.sqlite"
_ASK, _TELL, _RETRY = "ask", "tell", "retry"
_STATES = "'complete', 'failed', 'pruned'"
_RESULTS = f"""
CREATE TABLE results (
    trial_id INTEGER NOT NULL REFERENCES trials (id),
    attempt INTEGER NOT NULL CHECK (attempt >= 0),
    state TEXT NOT NULL CHECK (state IN ({_STATES})),
    error TEXT,
    traceback TEXT,
    json TEXT NOT NULL,
    PRIMARY KEY (trial_id, attempt)
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('ask', 'tell', 'retry')),
    trial_id INTEGER NOT NULL REFERENCES trials (id),
    attempt INTEGER NOT NULL DEFAULT 0,
    at REAL NOT NULL,
    UNIQUE (kind, trial_id, attempt)
);
CREATE VIEW trial_states AS
SELECT id AS trial_id,
       coalesce((SELECT state FROM results WHERE trial_id = trials.id ORDER BY attempt DESC LIMIT 1), 'running')
       AS state
FROM trials;
"""
_SCHEMA = f"""
CREATE TABLE config (id INTEGER PRIMARY KEY CHECK (id = 0), json TEXT NOT NULL);
CREATE TABLE trials (id INTEGER PRIMARY KEY, json TEXT NOT NULL);
{_RESULTS}
"""
# schema 1 → 2: results and events move to new tables (SQLite cannot change a key or a check in place);
# every result stored by schema 1 is a complete first attempt
_MIGRATE_FROM_1 = f"""
ALTER TABLE results RENAME TO results_1;
ALTER TABLE events RENAME TO events_1;
{_RESULTS}
INSERT INTO results (trial_id, attempt, state, json) SELECT trial_id, 0, 'complete', json FROM results_1;
INSERT INTO events (seq, kind, trial_id, attempt, at) SELECT seq, kind, trial_id, 0, at FROM events_1 ORDER BY seq;
DROP TABLE results_1;
DROP TABLE events_1;
"""


class StoreError(ArchGraphError, ValueError):
    """A write the run's record refuses (a second tell, a changed config) or a file it cannot read."""


class Told(NamedTuple):
    """One told trial (or retried one) on the run's clock (unix seconds), for "best score over time" figures."""

    trial_id: int
    asked_at: float
    told_at: float
    score: float | None  #: the result's :data:`~archgraph.trial.OBJECTIVE` if the trial completed with one, else ``None``


class Store(ABC):
    """The run's record: config, trials, results and the ordered ask/tell event log.

    The public methods validate and encode; a backend implements the few storage
    primitives (the ``_`` methods) over JSON text. Writes are serialised by a lock, so a
    runner may record from future callbacks in other threads.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def set_config(self, config: dict[str, Any]) -> None:
        """Record the run's config once; setting the same config again is a no-op.

        Raises
        ------
        StoreError
            When a different config is already recorded (the run directory belongs to
            another search), or the config is not JSON-serialisable.

        Examples
        --------
        >>> store = MemoryStore()
        >>> store.set_config({"space": "fade", "budgets": (1, 3)})
        >>> store.config()
        {'space': 'fade', 'budgets': [1, 3]}
        >>> store.set_config({"space": "darts"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        archgraph.store.StoreError: this store already holds a different config ...
        """
        text = _encode(config, "the config")
        with self._lock:
            old = self._config()
            if old is None:
                self._set_config(text)
            elif json.loads(old) != json.loads(text):
                raise StoreError(
                    f"this store already holds a different config {old}, not {text}; "
                    "resume with the recorded config or start a new run directory"
                )

    def config(self) -> dict[str, Any] | None:
        """The recorded config, or ``None`` before :meth:`set_config`."""
        text = self._config()
        return None if text is None else self._decode(text, "the config", dict)

    def record_ask(self, trial: Trial) -> None:
        """Store a trial the strategy asked for and log ``("ask", trial.id)``; it is ``running``.

        Raises
        ------
        StoreError
            When a trial with this id was asked before.
        """
        text = _encode(trial.to_dict(), f"trial {trial.id}")
        with self._lock:
            if self._state(trial.id) is not None:
                raise StoreError(f"trial {trial.id} was asked before; trial ids are unique within a run")
            self._add_trial(trial.id, text, time.time())

    def record_tell(self, result: Result) -> None:
        """Store the result of a running trial (its first attempt) and log ``("tell", result.trial_id)``.

        Raises
        ------
        StoreError
            When the trial was never asked or was told before (nothing is written).
        """
        text = _encode(result.to_dict(), f"the result of trial {result.trial_id}")
        with self._lock:
            state = self._state(result.trial_id)
            if state is None:
                raise StoreError(f"trial {result.trial_id} was never asked; record_ask(trial) before record_tell")
            if state != TrialState.RUNNING.value:
                raise StoreError(f"trial {result.trial_id} was told before ({state}); a trial is told once, "
                                 "a failed one may be retried with record_retry")
            self._add_result(_TELL, result, text, time.time())

    def record_retry(self, result: Result) -> None:
        """Store the result of a failed trial trained again, as its next attempt, and log
        ``("retry", result.trial_id)``; the trial's state becomes the new result's.

        Raises
        ------
        StoreError
            When the trial's last result is not a failure (nothing is written).

        Examples
        --------
        >>> from archgraph import ArchGraph
        >>> store = MemoryStore()
        >>> store.record_ask(Trial(id=0, arch=ArchGraph([(0, 1)]), budget=1, seed=0))
        >>> store.record_tell(Result.failure(0, "RuntimeError: CUDA out of memory"))
        >>> store.record_retry(Result(0, {"val_accuracy": 0.5}))
        >>> store.events(), store.states(), [r.state.value for r in store.attempts()[0]]
        ([('ask', 0), ('tell', 0), ('retry', 0)], {0: <TrialState.COMPLETE: 'complete'>}, ['failed', 'complete'])
        """
        text = _encode(result.to_dict(), f"the result of trial {result.trial_id}")
        with self._lock:
            state = self._state(result.trial_id)
            if state != TrialState.FAILED.value:
                raise StoreError(f"trial {result.trial_id} is {state or 'not asked'}, not failed; "
                                 "only a failed trial is retried")
            self._add_result(_RETRY, result, text, time.time())

    def events(self) -> list[tuple[str, int]]:
        """The event log in order: ``("ask", id)``, ``("tell", id)`` and ``("retry", id)`` pairs, as recorded."""
        return [(kind, trial_id) for kind, trial_id, _, _ in self._events()]

    def trials(self) -> list[Trial]:
        """Every asked trial, by id."""
        return [self._decode(text, f"trial {i}", lambda data: Trial.from_dict(_with_task(data)))
                for i, text in self._trials().items()]

    def results(self) -> dict[int, Result]:
        """Every told trial's latest result (its last attempt), keyed and ordered by trial id."""
        return {i: attempts[-1] for i, attempts in self.attempts().items()}

    def attempts(self) -> dict[int, list[Result]]:
        """Every told trial's results, first attempt (the one told to the strategy) first, by trial id."""
        return {i: [self._decode(text, f"the result of trial {i}", Result.from_dict) for text in texts]
                for i, texts in self._results().items()}

    def states(self) -> dict[int, TrialState]:
        """Every asked trial's state, by id: ``running`` until told, then its latest result's."""
        results = self._results()
        return {i: self._decode(results[i][-1], f"the result of trial {i}", Result.from_dict).state if i in results
                else TrialState.RUNNING for i in self._trials()}

    def pending(self) -> list[Trial]:
        """Running trials (asked, not told), by id: the ones a resumed run evaluates again."""
        told = set(self._results())
        return [trial for trial in self.trials() if trial.id not in told]

    def records(self) -> list[dict[str, Any]]:
        """Every asked trial as a plain record (a dict of JSON values), by id: its state, metrics,
        architecture, hash, seconds, times, curve; see :func:`archgraph.results.records`.

        >>> from archgraph import ArchGraph
        >>> store = MemoryStore()
        >>> store.record_ask(Trial(id=0, arch=ArchGraph([(0, 1)]), budget=1, seed=0))
        >>> store.record_tell(Result(trial_id=0, metrics={"val_accuracy": 0.5}))
        >>> [(r["trial"], r["state"], r["metrics"]) for r in store.records()]
        [(0, 'complete', {'val_accuracy': 0.5})]
        """
        from .results import records

        return records(self.trials(), self.attempts(), self._events())

    def to_dataframe(self):
        """The records as a :class:`pandas.DataFrame`, one row per trial (pandas is imported
        here, ``pip install "archgraph[data]"``); see :func:`archgraph.results.to_dataframe`."""
        from .results import to_dataframe

        return to_dataframe(self.records())

    def timeline(self) -> list[Told]:
        """Told and retried trials in the order they were told, with their ask and tell times and score."""
        attempts, asked_at = self.attempts(), {}
        rows = []
        for kind, trial_id, attempt, at in self._events():
            if kind == _ASK:
                asked_at[trial_id] = at
            else:
                result = attempts[trial_id][attempt]
                rows.append(Told(trial_id, asked_at[trial_id], at, result.score if result.scored else None))
        return rows

    def close(self) -> None:
        """Release the backend's resources; the records stay where the backend keeps them."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        asked, told = len(self._trials()), len(self._results())
        return f"{type(self).__name__}({self._where()}trials={asked}, told={told})"

    def _where(self) -> str:
        return ""

    def _decode(self, text: str, what: str, build):
        """``build(json.loads(text))``, or a :class:`StoreError` saying which record is damaged."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError(f"a {type(data).__name__}, not a JSON object")
            return build(data)
        except (ValueError, TypeError, KeyError, ArchGraphError) as err:
            raise StoreError(f"{self._name()}: {what} cannot be read ({type(err).__name__}: {err}); the store was "
                             "damaged or edited by hand: restore it from a copy, or start a new run") from None

    def _name(self) -> str:
        """The store as messages name it."""
        return "the store"

    def _add_result(self, kind: str, result: Result, text: str, at: float) -> None:
        attempt = 0 if kind == _TELL else len(self._results()[result.trial_id])
        self._append_result(kind, result.trial_id, attempt, result.state.value, result.error, result.traceback,
                            text, at)

    @abstractmethod
    def _config(self) -> str | None:
        """The config's JSON text."""

    @abstractmethod
    def _set_config(self, text: str) -> None:
        """Write the config's JSON text."""

    @abstractmethod
    def _state(self, trial_id: int) -> str | None:
        """The trial's state (``"running"`` or its latest result's), ``None`` if never asked."""

    @abstractmethod
    def _add_trial(self, trial_id: int, text: str, at: float) -> None:
        """Atomically store a trial and log its ``ask``."""

    @abstractmethod
    def _append_result(self, kind: str, trial_id: int, attempt: int, state: str, error: str | None,
                       traceback: str | None, text: str, at: float) -> None:
        """Atomically store a result as the trial's ``attempt`` and log its event (``tell`` or ``retry``)."""

    @abstractmethod
    def _events(self) -> list[tuple[str, int, int, float]]:
        """The event log in order: kind, trial id, attempt (0 for asks and tells) and unix time."""

    @abstractmethod
    def _trials(self) -> dict[int, str]:
        """Trial JSON texts keyed and ordered by trial id."""

    @abstractmethod
    def _results(self) -> dict[int, list[str]]:
        """Result JSON texts of each told trial in attempt order, keyed and ordered by trial id."""


class MemoryStore(Store):
    """A store in memory, for tests and throw-away searches; gone with the process.

    Examples
    --------
    >>> MemoryStore().events()
    []
    """

    def __init__(self) -> None:
        super().__init__()
        self._config_text: str | None = None
        self._log: list[tuple[str, int, int, float]] = []
        self._trial_texts: dict[int, str] = {}
        self._result_texts: dict[int, list[tuple[str, str]]] = {}  # trial id -> [(state, json)] by attempt

    def _config(self) -> str | None:
        return self._config_text

    def _set_config(self, text: str) -> None:
        self._config_text = text

    def _state(self, trial_id: int) -> str | None:
        if trial_id in self._result_texts:
            return self._result_texts[trial_id][-1][0]
        return TrialState.RUNNING.value if trial_id in self._trial_texts else None

    def _add_trial(self, trial_id: int, text: str, at: float) -> None:
        self._trial_texts[trial_id] = text
        self._log.append((_ASK, trial_id, 0, at))

    def _append_result(self, kind, trial_id, attempt, state, error, traceback, text, at) -> None:
        self._result_texts.setdefault(trial_id, []).append((state, text))
        self._log.append((kind, trial_id, attempt, at))

    def _events(self) -> list[tuple[str, int, int, float]]:
        return list(self._log)

    def _trials(self) -> dict[int, str]:
        return dict(sorted(self._trial_texts.items()))

    def _results(self) -> dict[int, list[str]]:
        return {i: [text for _, text in rows] for i, rows in sorted(self._result_texts.items())}


class SQLiteStore(Store):
    """A store in one SQLite file (by convention ``run_dir/store.sqlite``, see :data:`STORE_FILE`).

    The schema is created when the file is new; a file of an older schema is migrated to
    :data:`SCHEMA_VERSION` in one transaction when opened (a run stored by an older archgraph
    resumes); a file written by a newer schema, or a SQLite file that is not a store, is
    refused. Every ask and tell is one transaction (the record and its event together), with
    SQLite's default rollback journal and full sync: a killed process leaves the file at the
    last completed write.

    Tables: ``config``, ``trials`` (the asked trials' JSON), ``results`` (one row per attempt,
    with ``state``, ``error`` and ``traceback`` beside the JSON), ``events`` (the ordered log);
    the view ``trial_states`` gives every trial's state, for a look with the ``sqlite3`` shell::

        SELECT trial_id, state, error FROM results WHERE state = 'failed';

    Parameters
    ----------
    path:
        The store file; its folder is created. ``":memory:"`` keeps it in memory.
    read_only:
        Open an existing store to read it only (reports, exports of a run still in progress):
        nothing is created, migrated or written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as run_dir:
    ...     with SQLiteStore(pathlib.Path(run_dir) / STORE_FILE) as store:
    ...         store.set_config({"space": "fade"})
    ...     with SQLiteStore(pathlib.Path(run_dir) / STORE_FILE) as store:
    ...         store.config()
    {'space': 'fade'}
    """

    def __init__(self, path: str | os.PathLike, *, read_only: bool = False) -> None:
        super().__init__()
        self.path = path if path == ":memory:" else Path(path)
        self.read_only = read_only
        if read_only:
            if not self.path.is_file():
                raise StoreError(f"{self.path} does not exist; give the store file of a run folder")
            target = f"{self.path.resolve().as_uri()}?mode=ro"
        else:
            target = self.path
            if isinstance(self.path, Path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path != ":memory:" and self.path.is_file() and self.path.stat().st_size == 0:  # before connect makes one
            raise StoreError(f"{self.path} is empty (0 bytes): the run was stopped before it recorded anything; "
                             "delete the file (or its run folder) and start the run again")
        self._db = sqlite3.connect(target, timeout=30.0, check_same_thread=False, uri=read_only)
        try:
            self._open_schema()
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def _where(self) -> str:
        return f"{str(self.path)!r}, "

    def _name(self) -> str:
        return str(self.path)

    @contextmanager
    def _sqlite(self) -> Iterator[None]:
        """SQLite's errors of a damaged file (a malformed page, a dropped table) as a :class:`StoreError`
        naming the file; those of its use (a write to a read-only store, a lock) go on as they are."""
        try:
            yield
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError) and not str(err).startswith("no such"):
                raise
            raise StoreError(f"{self.path} cannot be read or written (sqlite: {err}); the file is damaged or was "
                             "edited by hand: restore it from a copy, or start a new run") from None

    def _open_schema(self) -> None:
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a SQLite file ({err}); give the path of a store file") from None
        if tables:
            with self._sqlite():
                check = self._db.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise StoreError(f"{self.path} is damaged (sqlite: {check[0][0]}); restore it from a copy, or start "
                                 "a new run")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written with store schema {version}, this archgraph reads schema "
                f"{SCHEMA_VERSION}; upgrade archgraph to open it"
            )
        if version == 0 and tables:
            raise StoreError(f"{self.path} is a SQLite file but not an archgraph store; choose another path")
        if self.read_only and version < SCHEMA_VERSION:
            raise StoreError(f"{self.path} is not an archgraph store; choose another path" if version == 0 else
                             f"{self.path} has store schema {version}, read-only access needs schema "
                             f"{SCHEMA_VERSION}; migrate it by continuing its run once (archgraph search --resume)")
        if version == 0:  # a new file: the schema and its version in one transaction
            self._db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        elif version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Bring a schema-1 file to schema 2 in one transaction (see :data:`SCHEMA_VERSION`)."""
        self._db.execute("BEGIN IMMEDIATE")  # the write lock first: another process may be migrating it too
        try:
            if self._db.execute("PRAGMA user_version").fetchone()[0] == 1:
                for statement in filter(str.strip, _MIGRATE_FROM_1.split(";")):
                    self._db.execute(statement)
                self._db.execute("PRAGMA user_version = 2")
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise

    def _query(self, sql: str, *args) -> list[tuple]:
        with self._lock, self._sqlite():  # the connection is shared by the runner's threads
            return self._db.execute(sql, args).fetchall()

    def _config(self) -> str | None:
        rows = self._query("SELECT json FROM config WHERE id = 0")
        return rows[0][0] if rows else None

    def _set_config(self, text: str) -> None:
        with self._lock, self._sqlite(), self._db:
            self._db.execute("INSERT INTO config (id, json) VALUES (0, ?)", (text,))

    def _state(self, trial_id: int) -> str | None:
        rows = self._query("SELECT state FROM trial_states WHERE trial_id = ?", trial_id)
        return rows[0][0] if rows else None

    def _add_trial(self, trial_id: int, text: str, at: float) -> None:
        with self._lock, self._sqlite(), self._db:  # one transaction: the record and its event, or neither
            self._db.execute("INSERT INTO trials (id, json) VALUES (?, ?)", (trial_id, text))
            self._db.execute("INSERT INTO events (kind, trial_id, at) VALUES (?, ?, ?)", (_ASK, trial_id, at))

    def _append_result(self, kind, trial_id, attempt, state, error, traceback, text, at) -> None:
        with self._lock, self._sqlite(), self._db:
            self._db.execute("INSERT INTO results (trial_id, attempt, state, error, traceback, json) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (trial_id, attempt, state, error, traceback, text))
            self._db.execute("INSERT INTO events (kind, trial_id, attempt, at) VALUES (?, ?, ?, ?)",
                             (kind, trial_id, attempt, at))

    def _events(self) -> list[tuple[str, int, int, float]]:
        return self._query("SELECT kind, trial_id, attempt, at FROM events ORDER BY seq")

    def _trials(self) -> dict[int, str]:
        return dict(self._query("SELECT id, json FROM trials ORDER BY id"))

    def _results(self) -> dict[int, list[str]]:
        results: dict[int, list[str]] = {}
        for trial_id, text in self._query("SELECT trial_id, json FROM results ORDER BY trial_id, attempt"):
            results.setdefault(trial_id, []).append(text)
        return results


def checkpoint_path(trial_id: int) -> str:
    """Where a trial's checkpoint lives, relative to the run directory.

    >>> checkpoint_path(3)
    'checkpoints/trial-3.pt'
    """
    return f"checkpoints/trial-{trial_id}.pt"


def save_checkpoint(run_dir: str | os.PathLike, trial_id: int, state: dict[str, Any]) -> str:
    """Write ``state`` to ``run_dir/checkpoints/trial-<id>.pt`` atomically; returns the relative path.

    The state is saved to a temporary file in the same folder, synced, and moved over the
    target with :func:`os.replace`, so a reader sees the old file or the new one, never a part.

    Examples
    --------
    >>> import tempfile, torch
    >>> with tempfile.TemporaryDirectory() as run_dir:
    ...     path = save_checkpoint(run_dir, 3, {"epochs": 2, "w": torch.ones(2)})
    ...     path, load_checkpoint(run_dir, path)["epochs"]
    ('checkpoints/trial-3.pt', 2)
    """
    relpath = checkpoint_path(trial_id)
    target = Path(run_dir) / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as tmp:
        try:
            torch.save(state, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, target)
    return relpath


def load_checkpoint(run_dir: str | os.PathLike, relpath: str) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, its tensors on the CPU.

    Raises
    ------
    StoreError
        When the file is missing (the message names the path).
    """
    path = Path(run_dir) / relpath
    if not path.is_file():
        raise StoreError(f"checkpoint {path} does not exist; was the run directory moved or the trial never trained?")
    return torch.load(path, map_location="cpu", weights_only=True)


#: the info keys of a hyper trial stored before typed tasks that are its task's fields
_HYPER_TASK_KEYS = ("rows", "width", "tau", "shared", "cell_dependent", "estimator", "warm_start")


def _with_task(data: dict[str, Any]) -> dict[str, Any]:
    """A trial's record with its task. One stored before typed tasks has none: its info held it, a
    FaDE hyper trial's as ``"kind": "hyper"`` and the hyper-architecture's settings (without
    ``estimator`` before that existed: such runs trained the ``"sampled"`` path), a trial sharing
    weights as ``"init_from"``; those keys move to the task, the other notes stay in the info."""
    if "task" in data:
        return data
    info = dict(data.get("info", {}))
    if info.pop("kind", None) == "hyper":
        task = {"type": "hyper", "module": "archgraph.oneshot.hyper_trial", "estimator": "sampled",
                **{key: info.pop(key) for key in _HYPER_TASK_KEYS if key in info}}
    else:
        task = {"type": "architecture", "module": "archgraph.trial", "init_from": info.pop("init_from", {})}
    return {**data, "info": info, "task": task}


def _encode(data: Any, what: str) -> str:
    try:
        return json.dumps(data)
    except (TypeError, ValueError) as err:
        raise StoreError(
            f"{what} is not JSON-serialisable ({err}); store plain numbers, strings, lists and dicts"
        ) from None
