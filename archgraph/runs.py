"""Run folders at a glance: where a search stands (``status.json``) and a one-line summary per run.

:func:`run_status` wraps a search (:func:`archgraph.search.session.search` uses it) and keeps
``RUN_DIR/status.json`` up to date: ``running`` (with the process id, the host, and the budget and
the execution of this call) while it searches, then ``finished``, ``failed`` (with the error's first line) or
``interrupted`` (Ctrl-C). :func:`summarise` reads a run folder without writing to it (the store is
opened read-only, so a run in progress is never blocked) and :func:`find_runs` finds the run
folders under a folder; ``archgraph runs list DIR`` prints :func:`format_table` of them. A run
whose status says ``running`` but whose process is gone from this host is ``killed``: continue it
with ``archgraph search --resume RUN_DIR``.

:func:`run_lock` lets one process at a time drive a run: a second search or resume of the same
folder is refused at once ("in use by PID …"), not when its first record collides with the other's.
The lock is an advisory ``flock`` on ``RUN_DIR/.lock``, released by the operating system when its
holder ends, however it ends (a SIGKILL leaves no stale lock).

Examples
--------
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as run_dir:
...     with run_status(run_dir, budget={"trials": 3}):
...         during = read_status(run_dir)["state"]
...     during, read_status(run_dir)["state"]
('running', 'finished')
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ArchGraphError
from .pareto import SEARCH_OBJECTIVE, SEARCH_OBJECTIVES, parse_objectives, pareto_records
from .store import STORE_FILE, SQLiteStore, StoreError
from .trial import OBJECTIVE

__all__ = ["LOCK_FILE", "STATUS_FILE", "RunSummary", "find_runs", "format_table", "read_status", "run_lock",
           "run_status", "summarise"]

#: The file of a run folder that says where its search stands.
STATUS_FILE = "status.json"
#: The file of a run folder that the process driving its search holds locked (its PID inside).
LOCK_FILE = ".lock"


@contextmanager
def run_lock(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the ``with`` block.

    Raises
    ------
    ArchGraphError
        When another process holds it; the message names that process.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as run_dir, run_lock(run_dir):
    ...     with run_lock(run_dir):  # doctest: +ELLIPSIS
    ...         pass
    Traceback (most recent call last):
    ...
    archgraph.errors.ArchGraphError: ... is in use by PID ...; wait for that search to end (or stop it), then ...
    """
    with open(Path(run_dir) / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise ArchGraphError(f"{run_dir} is in use by PID {holder}; wait for that search to end (or stop it), "
                                 f"then continue with `archgraph search --resume {run_dir}`") from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def run_status(run_dir: str | os.PathLike, *, budget: Mapping[str, Any],
               execution: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Mark ``run_dir`` as ``running`` for the ``with`` block, then as ``finished``, ``failed`` or
    ``interrupted`` by how the block ends (the exception goes on); the status keeps ``budget`` and,
    when given, ``execution`` (where the search's trials train)."""
    run_dir = Path(run_dir)
    started = time.time()
    base = {"pid": os.getpid(), "host": socket.gethostname(), "started": started, "budget": dict(budget),
            **({} if execution is None else {"execution": dict(execution)})}
    _write_status(run_dir, {"state": "running", **base})
    try:
        yield
    except KeyboardInterrupt:
        _write_status(run_dir, {"state": "interrupted", **base, "ended": time.time()})
        raise
    except BaseException as err:
        lines = str(err).strip().splitlines()
        error = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
        _write_status(run_dir, {"state": "failed", **base, "ended": time.time(), "error": error})
        raise
    _write_status(run_dir, {"state": "finished", **base, "ended": time.time()})


def read_status(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's ``status.json``, or ``None`` when it has none (a run made before it existed)."""
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except FileNotFoundError:
        return None


def _write_status(run_dir: Path, status: dict[str, Any]) -> None:
    tmp = run_dir / f".{STATUS_FILE}.tmp"
    tmp.write_text(json.dumps(status, indent=1) + "\n")
    os.replace(tmp, run_dir / STATUS_FILE)


@dataclass(frozen=True)
class RunSummary:
    """What ``archgraph runs list`` says of a run folder."""

    run_dir: Path
    strategy: str
    space: str
    told: int  #: trials with a result
    running: int  #: trials asked and not told
    budget: int | None  #: the trials budget of the search's last call
    best: tuple[float, int] | None  #: the best validation accuracy and its trial
    state: str  #: finished, in progress, killed, failed: ERROR, interrupted, or unknown
    front: list[int] | None = None  #: a run of other or several objectives (``--objective``): its Pareto front


def summarise(run_dir: str | os.PathLike) -> RunSummary:
    """Summarise the run in ``run_dir``, reading its store read-only.

    Raises
    ------
    StoreError
        When ``run_dir`` holds no readable store.
    """
    run_dir = Path(run_dir)
    with SQLiteStore(run_dir / STORE_FILE, read_only=True) as store:
        config = store.config() or {}
        recs = store.records()
    scored = [(r["metrics"][OBJECTIVE], -r["trial"]) for r in recs
              if r["state"] == "complete" and OBJECTIVE in r["metrics"]]
    best = max(scored, default=None)
    status = read_status(run_dir)
    budget = (status or {}).get("budget", {}).get("trials", config.get("trials"))
    running = sum(r["state"] == "running" for r in recs)
    objectives = parse_objectives(config.get("objectives", [SEARCH_OBJECTIVE]))
    front = None if objectives == SEARCH_OBJECTIVES else [
        r["trial"] for r in pareto_records(recs, objectives)]
    return RunSummary(run_dir, str(config.get("strategy", "-")), str(config.get("space", "-")), len(recs) - running,
                      running, budget, None if best is None else (best[0], -best[1]), _state(status), front)


def _state(status: dict[str, Any] | None) -> str:
    if status is None:
        return "unknown (no status.json: run by an older archgraph)"
    if status["state"] == "failed":
        return f"failed: {status.get('error', '')}"
    if status["state"] != "running":
        return status["state"]
    if status.get("host") != socket.gethostname():
        return f"in progress on {status.get('host')}"
    return "in progress" if _alive(status["pid"]) else "killed (continue it with archgraph search --resume)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def find_runs(folder: str | os.PathLike) -> list[Path]:
    """``folder`` and every folder under it that holds a store, sorted.

    Raises
    ------
    ArchGraphError
        When ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ArchGraphError(f"{folder} is not a folder; give a folder holding run folders (e.g. runs)")
    return sorted(path.parent for path in folder.rglob(STORE_FILE))


def format_table(runs: Sequence[Path], root: str | os.PathLike) -> list[str]:
    """A header and one line per run folder (its path relative to ``root``): strategy, space,
    trials told (of the budget, and how many are running), the best validation accuracy and its
    trial (for a run of other or several objectives, the trials on their front), the state. A folder whose store cannot be read gets a line saying why."""
    rows = [("run", "strategy", "space", "trials", "best", "state")]
    for run_dir in runs:
        name = str(run_dir.relative_to(root)) if run_dir != Path(root) else str(run_dir)
        try:
            s = summarise(run_dir)
        except StoreError as err:
            rows.append((name, "-", "-", "-", "-", f"unreadable: {err}"))
            continue
        trials = f"{s.told}" + (f"/{s.budget}" if s.budget is not None else "") + (
            f" (+{s.running} running)" if s.running else "")
        best = "-" if s.best is None else f"{s.best[0]:.4f} (trial {s.best[1]})"
        if s.front is not None:
            best = f"front: trials {', '.join(map(str, s.front))}" if s.front else "-"
        rows.append((name, s.strategy, s.space, trials, best, s.state))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]) for row in rows]
