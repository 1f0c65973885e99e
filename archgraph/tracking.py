"""Following a search: callbacks the Runner calls, a log line per trial, CSV, TensorBoard and MLflow loggers.

A :class:`Callback` has four hooks, each doing nothing unless overridden; pass your own with the
built-in ones to :class:`~archgraph.search.runner.Runner` (``callbacks=``) or
:func:`~archgraph.search.session.search`:

* ``on_run_start(run)``: once, after a resumed run's record is replayed; ``run`` is a
  :class:`RunStart` (the run's config, the results already recorded, the trials budget);
* ``on_epoch(trial, row)``: for every epoch of a trial told or retried, in order, with the
  trainer's history row (``epoch`` counted over the trial's whole training, ``train_loss``,
  ``val_accuracy``, ...);
* ``on_trial_end(trial, result)``: when the trial's result is recorded (complete, failed or pruned;
  also a retry's result);
* ``on_run_end(results)``: once, when the run stops for whatever reason (even an error or
  Ctrl-C), with every trial's latest result by id.

Trials may train in other processes (a pool, Ray), so a trial's epochs reach the callbacks with
its result, in the order trials are told; a callback runs in the process that drives the search.

The built-in ones: :class:`TrialLog` logs one line per trial through :mod:`logging` (logger
``archgraph.search``, level INFO); the ``archgraph`` command shows these lines when its output is
not a terminal (where tqdm hides its bar), so a job on a cluster shows its progress in its log
file. :class:`CsvLogger`, :class:`TensorBoardLogger` and :class:`MlflowLogger` write per-epoch
and per-trial metrics (``--log csv|tensorboard|mlflow``, :func:`make_loggers`); TensorBoard and
MLflow are optional packages, and their loggers say what to install when they are missing.

Examples
--------
>>> from archgraph import ArchGraph
>>> from archgraph.evaluate import InProcessEvaluator
>>> from archgraph.search.runner import Budget, Runner
>>> from archgraph.store import MemoryStore
>>> class Count:
...     def __init__(self): self.n = 0
...     def ask(self):
...         self.n += 1
...         return Trial.propose(ArchGraph([(0, 1)]), budget=2)
...     def tell(self, trial, result): pass
>>> def objective(trial):
...     curve = [{"epoch": e, "val_accuracy": 0.1 * (trial.id + e)} for e in range(trial.budget)]
...     return Result(trial.id, {"val_accuracy": curve[-1]["val_accuracy"]}, tuple(curve))
>>> class Last(Callback):  # a callback of one's own: the last epoch's accuracy of each trial
...     def __init__(self): self.seen = {}
...     def on_epoch(self, trial, row): self.seen[trial.id] = round(row["val_accuracy"], 2)
>>> last = Last()
>>> _ = Runner(Count(), objective, store=MemoryStore(), evaluator=InProcessEvaluator(), budget=Budget(trials=2),
...            progress=False, callbacks=[last]).run()
>>> last.seen
{0: 0.1, 1: 0.2}
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArchGraphError
from .trial import Result, Trial, TrialState

__all__ = ["LOGGERS", "Callback", "CsvLogger", "MlflowLogger", "RunStart", "TensorBoardLogger", "TrialLog",
           "make_loggers"]

#: The logger :class:`TrialLog` writes to.
LOG = logging.getLogger("archgraph.search")


@dataclass(frozen=True)
class RunStart:
    """What a callback learns when a run starts (or resumes)."""

    config: Mapping[str, Any] | None  #: the run's recorded config (``None``: the store holds none)
    results: Mapping[int, Result] = field(default_factory=dict)  #: results recorded before, by trial id
    trials: int | None = None  #: the trials budget of this run (``None``: not limited by trials)


class Callback:
    """Hooks the Runner calls as a search goes (see the module docstring); override those you need."""

    def on_run_start(self, run: RunStart) -> None:
        """The run starts or resumes."""

    def on_epoch(self, trial: Trial, row: Mapping[str, Any]) -> None:
        """One epoch of a trial whose result is being recorded."""

    def on_trial_end(self, trial: Trial, result: Result) -> None:
        """A trial's result was recorded."""

    def on_run_end(self, results: Mapping[int, Result]) -> None:
        """The run stopped; release files and connections here."""


@contextmanager
def running(callbacks: Sequence[Callback], run: RunStart, results: Mapping[int, Result]) -> Iterator[None]:
    """Call ``on_run_start`` now and ``on_run_end(results)`` when the block ends, however it ends."""
    for callback in callbacks:
        callback.on_run_start(run)
    try:
        yield
    finally:
        for callback in callbacks:
            callback.on_run_end(results)


def trial_told(callbacks: Sequence[Callback], trial: Trial, result: Result) -> None:
    """Call ``on_epoch`` for each row of the result's curve, then ``on_trial_end``."""
    for callback in callbacks:
        for row in result.curve:
            callback.on_epoch(trial, row)
        callback.on_trial_end(trial, result)


def _numbers(row: Mapping[str, Any]) -> dict[str, int | float]:
    """The entries of ``row`` that are numbers (not bools, lists such as a hyper trial's ``alpha``, or ``None``)."""
    return {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class TrialLog(Callback):
    """One INFO line per trial recorded, through ``logger`` (default ``archgraph.search``)::

        trial 7 complete (8/20) in 3.1 s: val_accuracy 0.8125, parameters 1,234, ...; best 0.8400 (trial 3)

    the count being the trials told of the trials budget (a retried trial says ``retried``)."""

    def __init__(self, logger: logging.Logger = LOG):
        self.logger = logger
        self._results: dict[int, Result] = {}
        self._total: int | None = None

    def on_run_start(self, run: RunStart) -> None:
        self._results, self._total = dict(run.results), run.trials

    def on_trial_end(self, trial: Trial, result: Result) -> None:
        retried = trial.id in self._results
        self._results[trial.id] = result
        count = f"{len(self._results)}/{self._total}" if self._total is not None else f"{len(self._results)}"
        state = result.state.value + (f" at epoch {result.metrics['epochs'] - 1}"
                                      if result.state is TrialState.PRUNED and "epochs" in result.metrics else "")
        what = result.error.strip().splitlines()[0] if result.error else ", ".join(
            f"{k} {v:,}" if isinstance(v, int) else f"{k} {v:.4f}" for k, v in result.metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool))
        scored = [r for r in self._results.values() if r.scored]
        best = max(scored, key=lambda r: (r.score, -r.trial_id), default=None)
        self.logger.info("trial %d %s%s (%s) in %.1f s: %s; best %s", trial.id, "retried, " if retried else "", state,
                         count, result.seconds, what or "no metrics",
                         "-" if best is None else f"{best.score:.4f} (trial {best.trial_id})")


class _CsvTable:
    """A CSV file rows are appended to; a row with new columns rewrites it with the wider header."""

    def __init__(self, path: Path):
        self.path = path
        self.header: list[str] | None = None

    def append(self, row: Mapping[str, Any]) -> None:
        if self.header is None:
            self.header = list(self._read()[0])
        new = [key for key in row if key not in self.header]
        if new or not self.path.exists():
            old = self._read()[1]
            self.header += new
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, self.header, lineterminator="\n")
                writer.writeheader()
                writer.writerows([*old, row])
            os.replace(tmp, self.path)
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, self.header, lineterminator="\n").writerow(row)

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        """The file's header and rows (none before it exists: a resumed run's file is read)."""
        if not self.path.exists():
            return [], []
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return list(reader.fieldnames or []), rows


class CsvLogger(Callback):
    """Appends each epoch to ``folder/epochs.csv`` (``trial`` then the row's numbers) and each trial
    to ``folder/trials.csv`` (``trial``, ``state``, ``seconds``, ``error``, then its metrics); a
    resumed run goes on appending. A column appears when a row first has it (earlier rows leave it
    empty): a FaDE run's hyper trials bring their own metrics."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._epochs = _CsvTable(self.folder / "epochs.csv")
        self._trials = _CsvTable(self.folder / "trials.csv")

    def on_run_start(self, run: RunStart) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def on_epoch(self, trial: Trial, row: Mapping[str, Any]) -> None:
        self._epochs.append({"trial": trial.id, **_numbers(row)})

    def on_trial_end(self, trial: Trial, result: Result) -> None:
        self._trials.append({"trial": trial.id, "state": result.state.value, "seconds": result.seconds,
                             "error": result.error or "", **_numbers(result.metrics)})


class TensorBoardLogger(Callback):
    """Writes TensorBoard event files under ``folder``: a run ``trial-<id>`` per trial with its
    per-epoch numbers (step: the epoch), so the trials' curves overlay, and a run ``search`` with
    each trial's metrics and the best validation accuracy so far (step: the trial id).
    ``tensorboard --logdir FOLDER`` shows them.

    Raises
    ------
    ArchGraphError
        When the ``tensorboard`` package is missing, saying what to install.
    """

    def __init__(self, folder: str | os.PathLike):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ArchGraphError('TensorBoard logging needs the tensorboard package; install it with: '
                                 'pip install "archgraph[tensorboard]" (or pip install tensorboard)') from None
        self.folder, self._writer = Path(folder), SummaryWriter
        self._search = None
        self._trials: dict[int, Any] = {}
        self._best: float | None = None

    def on_run_start(self, run: RunStart) -> None:
        scores = [r.score for r in run.results.values() if r.scored]
        self._best = max(scores, default=None)

    def on_epoch(self, trial: Trial, row: Mapping[str, Any]) -> None:
        if trial.id not in self._trials:
            self._trials[trial.id] = self._writer(str(self.folder / f"trial-{trial.id}"))
        step = int(row.get("epoch", 0))
        for name, value in _numbers(row).items():
            if name != "epoch":
                self._trials[trial.id].add_scalar(name, value, step)

    def on_trial_end(self, trial: Trial, result: Result) -> None:
        if (writer := self._trials.pop(trial.id, None)) is not None:
            writer.close()
        if self._search is None:
            self._search = self._writer(str(self.folder / "search"))
        for name, value in _numbers(result.metrics).items():
            self._search.add_scalar(f"trial/{name}", value, trial.id)
        if result.scored and (self._best is None or result.score > self._best):
            self._best = result.score
        if self._best is not None:
            self._search.add_scalar("search/best_val_accuracy", self._best, trial.id)
        self._search.flush()

    def on_run_end(self, results: Mapping[int, Result]) -> None:
        for writer in [*self._trials.values(), self._search]:
            if writer is not None:
                writer.close()
        self._trials, self._search = {}, None


class MlflowLogger(Callback):
    """Logs to MLflow (``pip install mlflow``): a parent run for the search, its config as
    parameters and each trial's metrics (step: the trial id), and a nested run per trial with its
    per-epoch numbers (step: the epoch) and final metrics. ``tracking_uri`` ``None`` uses MLflow's
    own default (``MLFLOW_TRACKING_URI``).

    Raises
    ------
    ArchGraphError
        When MLflow is missing, saying what to install.
    """

    def __init__(self, experiment: str = "archgraph", run_name: str | None = None, tracking_uri: str | None = None):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ArchGraphError("MLflow logging needs MLflow; install it with: pip install mlflow "
                                 "(or the lighter mlflow-skinny)") from None
        self.experiment, self.run_name = experiment, run_name
        self._client = MlflowClient(tracking_uri)
        self._experiment_id: str | None = None
        self._parent: str | None = None
        self._runs: dict[int, str] = {}

    def on_run_start(self, run: RunStart) -> None:
        found = self._client.get_experiment_by_name(self.experiment)
        self._experiment_id = found.experiment_id if found else self._client.create_experiment(self.experiment)
        self._parent = self._client.create_run(self._experiment_id, run_name=self.run_name).info.run_id
        for key, value in _flatten(run.config or {}).items():
            self._client.log_param(self._parent, key, value)

    def _trial_run(self, trial: Trial) -> str:
        if trial.id not in self._runs:
            self._runs[trial.id] = self._client.create_run(
                self._experiment_id, run_name=f"trial-{trial.id}",
                tags={"mlflow.parentRunId": self._parent, "archgraph.trial": str(trial.id)}).info.run_id
        return self._runs[trial.id]

    def on_epoch(self, trial: Trial, row: Mapping[str, Any]) -> None:
        run_id, step = self._trial_run(trial), int(row.get("epoch", 0))
        for name, value in _numbers(row).items():
            if name != "epoch" and math.isfinite(value):
                self._client.log_metric(run_id, name, value, step=step)

    def on_trial_end(self, trial: Trial, result: Result) -> None:
        run_id = self._trial_run(trial)
        last = result.curve[-1] if result.curve else {}
        for name, value in _numbers(result.metrics).items():
            if math.isfinite(value):
                if name not in last:  # the last epoch logged it
                    self._client.log_metric(run_id, name, value, step=int(last.get("epoch", 0)))
                self._client.log_metric(self._parent, f"trial_{name}", value, step=trial.id)
        self._client.set_terminated(run_id, "FAILED" if result.state is TrialState.FAILED else "FINISHED")
        del self._runs[trial.id]

    def on_run_end(self, results: Mapping[int, Result]) -> None:
        for run_id in self._runs.values():
            self._client.set_terminated(run_id, "KILLED")
        if self._parent is not None:
            self._client.set_terminated(self._parent)
        self._runs, self._parent = {}, None


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` → ``{"a.b": "1"}``, values as JSON text (MLflow parameters are strings)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return flat


#: ``--log`` name → what it writes, relative to the run folder (see :func:`make_loggers`)
LOGGERS = {"csv": "logs/epochs.csv and logs/trials.csv", "tensorboard": "tensorboard/",
           "mlflow": "MLflow's tracking store"}


def make_loggers(names: Sequence[str], run_dir: str | os.PathLike) -> list[Callback]:
    """The loggers ``--log`` names for a run in ``run_dir``: ``csv`` (:class:`CsvLogger` in
    ``run_dir/logs``), ``tensorboard`` (:class:`TensorBoardLogger` in ``run_dir/tensorboard``),
    ``mlflow`` (:class:`MlflowLogger`, experiment ``archgraph``, the run named after the folder).

    >>> [type(c).__name__ for c in make_loggers(["csv"], "runs/bo")]
    ['CsvLogger']
    >>> make_loggers(["wandb"], "runs/bo")
    Traceback (most recent call last):
    ...
    archgraph.errors.ArchGraphError: unknown logger 'wandb'; known: csv, tensorboard, mlflow
    """
    run_dir = Path(run_dir)
    made: list[Callback] = []
    for name in dict.fromkeys(names):
        if name == "csv":
            made.append(CsvLogger(run_dir / "logs"))
        elif name == "tensorboard":
            made.append(TensorBoardLogger(run_dir / "tensorboard"))
        elif name == "mlflow":
            made.append(MlflowLogger(run_name=run_dir.name))
        else:
            raise ArchGraphError(f"unknown logger {name!r}; known: {', '.join(LOGGERS)}")
    return made
