"""The record of a search run: every ask and tell, in order, safe against a killed process.

A :class:`Store` keeps the run's JSON config, the :class:`~archgraph.trial.Trial` s a
strategy asked for, the :class:`~archgraph.trial.Result` s told back, and an ordered
event log of ``("ask", trial_id)`` and ``("tell", trial_id)`` from which a killed run is
resumed by replaying it into a fresh strategy. :class:`SQLiteStore` (the default, one file
``run_dir/store.sqlite``) writes each ask or tell in one transaction, so a SIGKILL leaves
every record whole or absent; :class:`MemoryStore` keeps the same records in memory. Both
backends share the validation of :class:`Store` and one conformance suite
(``tests/test_store.py``, as Optuna's ``testing/pytest_storages.py``).

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
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .errors import ArchGraphError
from .trial import OBJECTIVE, Result, Trial

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

#: Version of the SQLite schema (``PRAGMA user_version``); a file with a higher one is refused.
SCHEMA_VERSION = 1
#: Name of the store file in a run directory.
STORE_FILE = "store.sqlite"
_ASK, _TELL = "ask", "tell"
_TABLES = {_ASK: ("trials", "id"), _TELL: ("results", "trial_id")}  # where each event's record goes
_SCHEMA = """
CREATE TABLE config (id INTEGER PRIMARY KEY CHECK (id = 0), json TEXT NOT NULL);
CREATE TABLE trials (id INTEGER PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE results (trial_id INTEGER PRIMARY KEY REFERENCES trials (id), json TEXT NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('ask', 'tell')),
    trial_id INTEGER NOT NULL REFERENCES trials (id),
    at REAL NOT NULL,
    UNIQUE (kind, trial_id)
);
"""


class StoreError(ArchGraphError, ValueError):
    """A write the run's record refuses (a second tell, a changed config) or a file it cannot read."""


class Told(NamedTuple):
    """One told trial on the run's clock (unix seconds), for "best score over time" figures."""

    trial_id: int
    asked_at: float
    told_at: float
    score: float | None  #: the result's :data:`~archgraph.trial.OBJECTIVE`, ``None`` if it lacks it


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
        return None if text is None else json.loads(text)

    def record_ask(self, trial: Trial) -> None:
        """Store a trial the strategy asked for and log ``("ask", trial.id)``.

        Raises
        ------
        StoreError
            When a trial with this id was asked before.
        """
        text = _encode(trial.to_dict(), f"trial {trial.id}")
        with self._lock:
            if self._state(trial.id) is not None:
                raise StoreError(f"trial {trial.id} was asked before; trial ids are unique within a run")
            self._append(_ASK, trial.id, text, time.time())

    def record_tell(self, result: Result) -> None:
        """Store the result of an asked trial and log ``("tell", result.trial_id)``.

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
            if state == _TELL:
                raise StoreError(f"trial {result.trial_id} was told before; a trial is told once")
            self._append(_TELL, result.trial_id, text, time.time())

    def events(self) -> list[tuple[str, int]]:
        """The event log in order: ``("ask", id)`` and ``("tell", id)`` pairs, as recorded."""
        return [(kind, trial_id) for kind, trial_id, _ in self._events()]

    def trials(self) -> list[Trial]:
        """Every asked trial, by id."""
        return [Trial.from_dict(json.loads(text)) for text in self._records(_ASK).values()]

    def results(self) -> dict[int, Result]:
        """Every told result, keyed and ordered by trial id."""
        return {i: Result.from_dict(json.loads(text)) for i, text in self._records(_TELL).items()}

    def pending(self) -> list[Trial]:
        """Trials asked but not told, by id: the ones a resumed run evaluates again."""
        told = set(self._records(_TELL))
        return [trial for trial in self.trials() if trial.id not in told]

    def timeline(self) -> list[Told]:
        """Told trials in the order they were told, with their ask and tell times and score."""
        results, asked_at = self.results(), {}
        rows = []
        for kind, trial_id, at in self._events():
            if kind == _ASK:
                asked_at[trial_id] = at
            else:
                score = results[trial_id].metrics.get(OBJECTIVE)
                rows.append(Told(trial_id, asked_at[trial_id], at, None if score is None else float(score)))
        return rows

    def close(self) -> None:
        """Release the backend's resources; the records stay where the backend keeps them."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        asked, told = len(self._records(_ASK)), len(self._records(_TELL))
        return f"{type(self).__name__}({self._where()}trials={asked}, told={told})"

    def _where(self) -> str:
        return ""

    @abstractmethod
    def _config(self) -> str | None:
        """The config's JSON text."""

    @abstractmethod
    def _set_config(self, text: str) -> None:
        """Write the config's JSON text."""

    @abstractmethod
    def _state(self, trial_id: int) -> str | None:
        """The trial's last event kind, ``None`` if never asked."""

    @abstractmethod
    def _append(self, kind: str, trial_id: int, text: str, at: float) -> None:
        """Atomically store a trial (``kind="ask"``) or result (``"tell"``) and log the event."""

    @abstractmethod
    def _events(self) -> list[tuple[str, int, float]]:
        """The event log in order, with unix times."""

    @abstractmethod
    def _records(self, kind: str) -> dict[int, str]:
        """Trial (``"ask"``) or result (``"tell"``) JSON texts keyed and ordered by trial id."""


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
        self._log: list[tuple[str, int, float]] = []
        self._texts: dict[str, dict[int, str]] = {_ASK: {}, _TELL: {}}

    def _config(self) -> str | None:
        return self._config_text

    def _set_config(self, text: str) -> None:
        self._config_text = text

    def _state(self, trial_id: int) -> str | None:
        return _TELL if trial_id in self._texts[_TELL] else _ASK if trial_id in self._texts[_ASK] else None

    def _append(self, kind: str, trial_id: int, text: str, at: float) -> None:
        self._texts[kind][trial_id] = text
        self._log.append((kind, trial_id, at))

    def _events(self) -> list[tuple[str, int, float]]:
        return list(self._log)

    def _records(self, kind: str) -> dict[int, str]:
        return dict(sorted(self._texts[kind].items()))


class SQLiteStore(Store):
    """A store in one SQLite file (by convention ``run_dir/store.sqlite``, see :data:`STORE_FILE`).

    The schema is created when the file is new; a file written by a newer schema
    (``PRAGMA user_version`` above :data:`SCHEMA_VERSION`), or a SQLite file that is not a
    store, is refused. Every ask and tell is one transaction (the record and its event
    together), with SQLite's default rollback journal and full sync: a killed process
    leaves the file at the last completed write.

    Parameters
    ----------
    path:
        The store file; its folder is created. ``":memory:"`` keeps it in memory.

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

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        self.path = path if path == ":memory:" else Path(path)
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        try:
            self._open_schema()
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def _where(self) -> str:
        return f"{str(self.path)!r}, "

    def _open_schema(self) -> None:
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a SQLite file ({err}); give the path of a store file") from None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written with store schema {version}, this archgraph reads schema "
                f"{SCHEMA_VERSION}; upgrade archgraph to open it"
            )
        if version == 0 and tables:
            raise StoreError(f"{self.path} is a SQLite file but not an archgraph store; choose another path")
        if version == 0:  # a new file: the schema and its version in one transaction
            self._db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def _query(self, sql: str, *args) -> list[tuple]:
        with self._lock:  # the connection is shared by the runner's threads
            return self._db.execute(sql, args).fetchall()

    def _config(self) -> str | None:
        rows = self._query("SELECT json FROM config WHERE id = 0")
        return rows[0][0] if rows else None

    def _set_config(self, text: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT INTO config (id, json) VALUES (0, ?)", (text,))

    def _state(self, trial_id: int) -> str | None:
        rows = self._query("SELECT kind FROM events WHERE trial_id = ? ORDER BY seq DESC LIMIT 1", trial_id)
        return rows[0][0] if rows else None

    def _append(self, kind: str, trial_id: int, text: str, at: float) -> None:
        table, key = _TABLES[kind]
        with self._lock, self._db:  # one transaction: the record and its event, or neither
            self._db.execute(f"INSERT INTO {table} ({key}, json) VALUES (?, ?)", (trial_id, text))
            self._db.execute("INSERT INTO events (kind, trial_id, at) VALUES (?, ?, ?)", (kind, trial_id, at))

    def _events(self) -> list[tuple[str, int, float]]:
        return self._query("SELECT kind, trial_id, at FROM events ORDER BY seq")

    def _records(self, kind: str) -> dict[int, str]:
        table, key = _TABLES[kind]
        return dict(self._query(f"SELECT {key}, json FROM {table} ORDER BY {key}"))


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


def _encode(data: Any, what: str) -> str:
    try:
        return json.dumps(data)
    except (TypeError, ValueError) as err:
        raise StoreError(
            f"{what} is not JSON-serialisable ({err}); store plain numbers, strings, lists and dicts"
        ) from None
