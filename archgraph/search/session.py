"""A search run in a run directory: config, store, strategy, evaluator and what it leaves.

:func:`search` starts (or, with ``resume=True``, continues) a run described by a
:class:`SearchConfig`; the config is recorded in the run's store, so
:func:`resume` needs only the directory. The config is what the run *is* (space, strategy, budget,
seed, training); an :class:`Execution` says where its trials train (evaluator, workers, Ray
address, device), which a resume may change: the trials train with their own seeds and are told in
the order they were asked, so a run resumed elsewhere ends as it would have where it began, where
the computation is deterministic (the CPU; asks of a strategy that depend on what it was told also
depend on how many trials are in flight, i.e. on ``workers``). A run directory holds

* ``store.sqlite``: the config, every trial and result, the ask/tell log;
* ``checkpoints/trial-<id>.pt``: the trained weights of each trial;
* ``best_arch.json``: the best architecture so far (by validation accuracy), with the space's
  parameters it was compiled with;
* ``front.json``, for a run of other or several objectives (``SearchConfig.objectives``): the
  trials on their Pareto front, with their metrics;
* ``status.json``: whether the search is running, finished, failed or was interrupted
  (:mod:`archgraph.runs`), and the execution of its last call, which :func:`resume` keeps unless told;
* ``progress.png``: the best validation accuracy over time;
* what the trials' tasks and the strategy add: a FaDE search's hyper trials write
  ``hyper/trial-<id>.json`` (``archgraph ranks`` reads it), and a strategy with a ``finish``
  method (:class:`~archgraph.search.base.Strategy`) writes its own figures when the run ends
  (FaDE: ``trajectory.png`` and ``anchors.png``) and gives the lines of :attr:`SearchOutcome.notes`.

A trial that fails is recorded with its error and traceback and the search goes on (see
:mod:`archgraph.search.runner`); ``max_failures`` failures in a row stop it with
:class:`~archgraph.search.runner.TooManyFailures` after its outputs are written. A resumed run
trains its failed trials again only with ``retry_failed``. The config's ``pruner``
(:data:`~archgraph.search.prune.PRUNERS`, none by default) may stop trials early; it is part of
what the run is, the failure settings are not.

Every trial recorded is logged in one line (:class:`~archgraph.tracking.TrialLog`, logger
``archgraph.search``); ``callbacks`` add loggers or your own :class:`~archgraph.tracking.Callback` s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import spaces
from ..bundle import resolved_params
from ..errors import ArchGraphError, DiskFullError, EvaluatorError, disk_full
from ..evaluate import InProcessEvaluator, ProcessPoolEvaluator, RayEvaluator, TrialEvaluator
from ..pareto import SEARCH_OBJECTIVE, SEARCH_OBJECTIVES, objective_values, parse_objectives, pareto_front
from ..plot import best_over_time
from ..results import strict_json
from ..runs import read_status, run_lock, run_status
from ..store import STORE_FILE, SQLiteStore
from ..tracking import Callback, TrialLog
from ..trial import Result, Trial, TrialState
from .controller import ControllerSearch
from .evolution import RegularizedEvolution
from .fade import FadeSearch
from .feature_search import BayesianFeatureSearch, RandomFeatureSearch
from .nosh import NOSH, PredictorSearch, SuccessiveHalving
from .options import make_strategy
from .prune import PRUNERS
from .runner import Budget, Runner, TooManyFailures

__all__ = ["STRATEGIES", "Execution", "SearchConfig", "SearchOutcome", "search", "resume"]

#: strategy name → class taking ``(space, *, epochs, seed, **strategy_params)``
STRATEGIES = {"random": RandomFeatureSearch, "bo": BayesianFeatureSearch, "evolution": RegularizedEvolution,
              "fade": FadeSearch, "nosh": NOSH, "sh": SuccessiveHalving, "predictor": PredictorSearch,
              "controller": ControllerSearch}
EVALUATORS = ("inprocess", "process", "ray")


@dataclass(frozen=True)
class Execution:
    """Where a run's trials train, which is not part of what the run is: each call of :func:`search`
    or :func:`resume` may choose it (``evaluator``: ``"inprocess"``, ``"process"`` (a pool of
    ``workers`` processes) or ``"ray"`` (a local instance of ``workers`` CPUs, or the cluster at
    ``ray_address``); ``device``: the torch device of the trials, ``None``: torch's default)."""

    evaluator: str = "inprocess"
    workers: int = 2
    ray_address: str | None = None
    device: str | None = None

    def __post_init__(self):
        if self.evaluator not in EVALUATORS:
            raise ArchGraphError(f"unknown evaluator {self.evaluator!r}; known: {', '.join(EVALUATORS)}")
        if self.workers < 1:
            raise ArchGraphError(f"workers must be at least 1, got {self.workers}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Execution:
        """The execution ``dataclasses.asdict`` gave; refuses unknown settings in one line."""
        try:
            return cls(**data)
        except TypeError as err:
            raise ArchGraphError(f"an execution takes the settings {', '.join(_EXECUTION_FIELDS)} ({err})") from None


_EXECUTION_FIELDS = tuple(f.name for f in dataclasses.fields(Execution))


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search run (stored with it, so a resume rebuilds it); where it
    runs is its :class:`Execution`.

    ``pruner`` names a pruner of :data:`~archgraph.search.prune.PRUNERS` (``None``: no pruning)
    and ``pruner_params`` its settings, e.g. ``{"warmup_epochs": 1, "min_trials": 5}``.
    ``objectives`` are the metrics the strategy pursues, ``"NAME:max"`` or ``"NAME:min"``
    (:func:`archgraph.pareto.parse_objective`; e.g. ``["val_accuracy:max", "parameters:min"]``);
    other than the validation accuracy alone, they need a strategy that takes them (``random``,
    ``evolution``), and the run's result is its Pareto front (``front.json``).
    """

    space: str = "fade"
    dataset: str = "digits"
    strategy: str = "random"
    epochs: int = 3
    trials: int | None = 20
    max_epochs: int | None = None
    seconds: float | None = None
    seed: int = 0
    data_root: str | None = None
    space_params: dict[str, Any] = field(default_factory=dict)
    strategy_params: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    pruner: str | None = None
    pruner_params: dict[str, Any] = field(default_factory=dict)
    objectives: list[str] = field(default_factory=lambda: [SEARCH_OBJECTIVE])

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ArchGraphError(f"unknown strategy {self.strategy!r}; known: {', '.join(STRATEGIES)}")
        if self.pruner is not None and self.pruner not in PRUNERS:
            raise ArchGraphError(f"unknown pruner {self.pruner!r}; known: {', '.join(PRUNERS)} (or none)")
        if self.pruner is None and self.pruner_params:
            raise ArchGraphError(f"pruner_params {self.pruner_params} are given without a pruner; choose one of "
                                 f"{', '.join(PRUNERS)}")
        if self.epochs < 1:
            raise ArchGraphError(f"epochs per trial must be at least 1, got {self.epochs}")
        parse_objectives(self.objectives)  # refused in one line
        if self.several_objectives and "objectives" not in inspect.signature(STRATEGIES[self.strategy]).parameters:
            takes = [n for n, cls in STRATEGIES.items() if "objectives" in inspect.signature(cls).parameters]
            raise ArchGraphError(f"strategy {self.strategy!r} pursues {SEARCH_OBJECTIVE} alone; other or several "
                                 f"objectives ({', '.join(self.objectives)}) are searched by {' and '.join(takes)}")

    @property
    def several_objectives(self) -> bool:
        """Whether the run pursues other objectives than the validation accuracy alone."""
        return parse_objectives(self.objectives) != SEARCH_OBJECTIVES

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """The config :meth:`to_dict` gave; refuses, in one line, one with unknown settings or values
        of the wrong type (a store edited by hand). A config recorded before executions were kept
        apart holds its execution's settings too: they are left out (:func:`resume` reads them)."""
        try:
            return cls(**{key: value for key, value in data.items() if key not in (_SPACE_KEY, *_EXECUTION_FIELDS)})
        except TypeError as err:
            raise ArchGraphError(f"the run's config cannot be read ({err}); restore the store from a copy, or start "
                                 "a new run") from None


@dataclass(frozen=True)
class SearchOutcome:
    """What a run holds when :func:`search` returns; ``notes``: the lines the strategy's ``finish``
    gave for the run's summary; ``objectives``: the run's, as ``(metric, direction)`` pairs."""

    run_dir: Path
    trials: list[Trial]
    results: list[Result]
    notes: tuple[str, ...] = ()
    objectives: tuple[tuple[str, str], ...] = SEARCH_OBJECTIVES

    @property
    def front(self) -> list[tuple[Trial, Result]]:
        """The completed trials no other dominates in :attr:`objectives`, by trial id."""
        scored = [(r, v) for r in sorted(self.results, key=lambda r: r.trial_id)
                  if r.state is TrialState.COMPLETE and (v := objective_values(r.metrics, self.objectives)) is not None]
        trials = {t.id: t for t in self.trials}
        front = pareto_front([v for _, v in scored], [d for _, d in self.objectives]) if scored else []
        return [(trials[scored[i][0].trial_id], scored[i][0]) for i in front]

    @property
    def best(self) -> tuple[Trial, Result]:
        """The trial with the highest validation accuracy (the earliest among ties)."""
        result = max((r for r in self.results if r.scored), key=lambda r: (r.score, -r.trial_id))
        return next(t for t in self.trials if t.id == result.trial_id), result


def search(config: SearchConfig, run_dir: str | Path, *, execution: Execution = Execution(), resume: bool = False,
           progress: bool = True, max_failures: int | None = 5, retry_failed: bool = False,
           callbacks: Sequence[Callback] = ()) -> SearchOutcome:
    """Run (or continue) the search ``config`` describes in ``run_dir``, its trials trained as
    ``execution`` says.

    A directory that already holds a run is only continued with ``resume=True`` and the
    same config (any execution); a fresh run refuses such a directory rather than mixing two runs.
    ``max_failures`` failures in a row stop the search (``None``: never); ``retry_failed``
    trains a resumed run's failed trials again (:class:`~archgraph.search.runner.Runner`).
    ``callbacks`` follow the run beside the :class:`~archgraph.tracking.TrialLog` (see
    :mod:`archgraph.tracking`).

    Raises
    ------
    TooManyFailures
        After ``max_failures`` failures in a row; the outputs of what finished are written first.
    """
    run_dir = Path(run_dir)
    pruner = _pruner(config)  # a bad setting fails before the run folder is made
    exists = (run_dir / STORE_FILE).exists()
    if exists and not resume:
        raise ArchGraphError(f"{run_dir} already holds a run; continue it with `archgraph search --resume {run_dir}` "
                             "or choose another --out")
    space = spaces.load(config.space)
    strategy = make_strategy(config.strategy, STRATEGIES[config.strategy], space, epochs=config.epochs,
                             seed=config.seed, params=config.strategy_params,
                             objectives=config.objectives if config.several_objectives else None)
    objective = TrialEvaluator(config.space, config.dataset, str(run_dir), data_root=config.data_root,
                               space_params=config.space_params, split_seed=config.seed, device=execution.device,
                               **config.training)
    budget = Budget(trials=config.trials, epochs=config.max_epochs, seconds=config.seconds)
    space_record = _space_record(space, config)  # refuses space parameters the space cannot compile
    run_dir.mkdir(parents=True, exist_ok=True)  # after the strategy, objective, budget and space accepted their settings
    stopped = None
    with run_lock(run_dir), _resumable(run_dir), SQLiteStore(run_dir / STORE_FILE) as store:  # the config
        # first: a run that fails later (an evaluator that cannot start, a killed process, a full disk) can be resumed
        if exists:
            _check_same_run(store.config(), config.to_dict(), run_dir)
            _check_same_space(store.config().get(_SPACE_KEY), space_record, run_dir)
        else:
            store.set_config({**config.to_dict(), _SPACE_KEY: space_record})
        with (run_status(run_dir, budget=dataclasses.asdict(budget), execution=dataclasses.asdict(execution)),
              _evaluator(execution) as evaluator):
            try:
                Runner(strategy, objective, store=store, evaluator=evaluator, budget=budget, seed=config.seed,
                       progress=progress, pruner=pruner, max_failures=max_failures, retry_failed=retry_failed,
                       callbacks=[TrialLog(), *callbacks]).run()
            except TooManyFailures as stop:
                stopped = TooManyFailures(stop.count, stop.last, advice=(
                    f"their errors and tracebacks are in {run_dir / STORE_FILE}; fix the cause, then continue with "
                    f"`archgraph search --resume {run_dir} --retry-failed`, or allow more with --max-failures"))
            trials, results = store.trials(), list(store.results().values())
            finish = getattr(strategy, "finish", None)  # optional (Strategy): the strategy's own outputs
            outcome = SearchOutcome(run_dir, trials, results, tuple(finish(trials, results, run_dir) if finish else ()),
                                    parse_objectives(config.objectives))
            timeline = [(row.told_at, row.score) for row in store.timeline() if row.score is not None]
            _write_outputs(outcome, space, config, timeline)
            if stopped is not None:
                raise stopped
    return outcome


def resume(run_dir: str | Path, *, execution: Execution | Mapping[str, Any] | None = None, progress: bool = True,
           max_failures: int | None = 5, retry_failed: bool = False, callbacks: Sequence[Callback] = (),
           **budget) -> SearchOutcome:
    """Continue the run in ``run_dir`` with its recorded config; ``trials=``, ``max_epochs=``
    or ``seconds=`` replace its budget for this call (the recorded config keeps the first).
    The trials train where the run last ran, or as ``execution`` says: an :class:`Execution`,
    or a mapping of the settings to change (``{"evaluator": "process", "workers": 4}``).
    Failed trials stay failed unless ``retry_failed``; ``callbacks`` as :func:`search`'s."""
    path = Path(run_dir) / STORE_FILE
    if not path.exists():
        raise ArchGraphError(f"{run_dir} holds no search run ({STORE_FILE} is missing)")
    with SQLiteStore(path) as store:
        recorded = store.config()
    if recorded is None:
        raise ArchGraphError(f"{run_dir} holds no config: the run was stopped before it began; delete the folder "
                             "and start the run again")
    unknown = set(budget) - set(_BUDGET_FIELDS)
    if unknown:
        raise ArchGraphError(f"a resumed run takes only a new budget ({', '.join(_BUDGET_FIELDS)}), got {sorted(unknown)}")
    config = dataclasses.replace(SearchConfig.from_dict(recorded), **budget)
    if not isinstance(execution, Execution):
        execution = Execution.from_dict({**_last_execution(run_dir, recorded), **(execution or {})})
    return search(config, run_dir, execution=execution, resume=True, progress=progress, max_failures=max_failures,
                  retry_failed=retry_failed, callbacks=callbacks)


_BUDGET_FIELDS = ("trials", "max_epochs", "seconds")
#: the key of the recorded config that holds the space as the run compiles it (see :func:`_space_record`)
_SPACE_KEY = "resolved_space"


def _last_execution(run_dir: str | Path, recorded: dict[str, Any]) -> dict[str, Any]:
    """The settings of the execution the run last ran on: its status says; a run from before
    executions were kept apart recorded them in its config."""
    status = read_status(run_dir) or {}
    return status.get("execution", {key: recorded[key] for key in _EXECUTION_FIELDS if key in recorded})


def _check_same_run(recorded: dict[str, Any], given: dict[str, Any], run_dir: Path) -> None:
    """A resumed run may get a new budget, nothing else (a setting the recorded config lacks,
    being older than it, has its default)."""
    recorded = SearchConfig.from_dict(recorded).to_dict()
    changed = sorted(k for k in recorded.keys() | given.keys()
                     if k not in _BUDGET_FIELDS and recorded.get(k) != given.get(k))
    if changed:
        raise ArchGraphError(f"{run_dir} was started with other settings ({', '.join(changed)}); "
                             f"resume it with `archgraph search --resume {run_dir}`")


def _space_record(space: spaces.Space, config: SearchConfig) -> dict[str, Any]:
    """The space as the run compiles its trials: what its file said when the run began, its parameters
    resolved with the run's overrides. The store keeps it, since the file may change while a run waits."""
    edge_ops = {cell: {f"{u}->{v}": list(ops) for (u, v), ops in table.items()} for cell, table in space.edge_ops.items()}
    record = {"embodiment": space.embodiment, "cells": space.cells, "min_vertices": space.min_vertices,
              "max_vertices": space.max_vertices, "ops": space.ops, "edge_ops": edge_ops,
              "params": resolved_params(space, config.space_params)}
    return json.loads(json.dumps(record))


def _check_same_space(recorded: dict[str, Any] | None, given: dict[str, Any], run_dir: Path) -> None:
    """A resumed run's space must compile as it did (a run recorded before spaces were kept is not checked)."""
    if recorded is None or recorded == given:
        return
    changed = []
    for key in sorted(recorded.keys() | given.keys()):
        was, now = recorded.get(key), given.get(key)
        if key == "params":
            changed += [f"params.{k}: {was.get(k)!r} → {now.get(k)!r}" for k in sorted(was.keys() | now.keys())
                        if was.get(k) != now.get(k)]
        elif was != now:
            changed.append(f"{key}: {was!r} → {now!r}")
    raise ArchGraphError(f"{run_dir} was run with its space file as it was then, which now differs ({'; '.join(changed)}); "
                         "restore the file as it was to continue the run, or start a new run with --out")


@contextlib.contextmanager
def _resumable(run_dir: Path) -> Iterator[None]:
    """Turn a write that found the disk full (the store, a checkpoint, an output), or an evaluator
    that cannot be reached, into one line that says how to go on: the store's transactions and the
    atomic writes keep the run resumable."""
    try:
        yield
    except EvaluatorError as err:
        raise EvaluatorError(f"{err}; the run is kept: continue it with `archgraph search --resume {run_dir} "
                             "--evaluator process` (or another --ray-address)") from None
    except Exception as err:
        if not disk_full(err):
            raise
        raise DiskFullError(f"the disk of {run_dir} is full ({str(err).splitlines()[0]}); the run is kept as far as "
                            f"it got: free space, then continue it with `archgraph search --resume {run_dir}`") from None


def _pruner(config: SearchConfig):
    """The config's pruner, or ``None``."""
    if config.pruner is None:
        return None
    try:
        return PRUNERS[config.pruner](**config.pruner_params)
    except TypeError as err:
        raise ArchGraphError(f"pruner {config.pruner!r} takes no such setting ({err}); see "
                             f"archgraph.search.prune.{PRUNERS[config.pruner].__name__}") from None
    except ValueError as err:
        raise ArchGraphError(f"pruner {config.pruner!r}: {err}") from None


def _evaluator(execution: Execution):
    if execution.evaluator == "process":
        return ProcessPoolEvaluator(max_workers=execution.workers)
    if execution.evaluator == "ray":
        return RayEvaluator(address=execution.ray_address, num_cpus=None if execution.ray_address else execution.workers)
    return InProcessEvaluator()


def _write_outputs(outcome: SearchOutcome, space: spaces.Space, config: SearchConfig,
                   timeline: list[tuple[float, float]]) -> None:
    if not timeline:
        return
    trial, result = outcome.best
    spaces.save_architecture(trial.arch, outcome.run_dir / "best_arch.json", space=space.name,
                             params=resolved_params(space, config.space_params))
    best = strict_json({"trial": trial.id, **result.metrics})  # NaN as null: strict JSON readers refuse NaN
    (outcome.run_dir / "best.json").write_text(json.dumps(best, indent=1, allow_nan=False) + "\n")
    if config.several_objectives:
        front = strict_json({"objectives": config.objectives,
                             "trials": [{"trial": t.id, **r.metrics} for t, r in outcome.front]})
        (outcome.run_dir / "front.json").write_text(json.dumps(front, indent=1, allow_nan=False) + "\n")
    start = min(t for t, _ in timeline)
    best_over_time({config.strategy: [(t - start, s) for t, s in timeline]}, outcome.run_dir / "progress.png")
