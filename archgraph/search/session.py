"""A search run in a run directory: config, store, strategy, evaluator and what it leaves.

:func:`search` starts (or, with ``resume=True``, continues) a run described by a
:class:`SearchConfig`; the config is recorded in the run's store, so
:func:`resume` needs only the directory. A run directory holds

* ``store.sqlite``: the config, every trial and result, the ask/tell log;
* ``checkpoints/trial-<id>.pt``: the trained weights of each trial;
* ``best_arch.json``: the best architecture so far (by validation accuracy);
* ``progress.png``: the best validation accuracy over time;
* for a FaDE search, ``hyper/trial-<id>.json`` per hyper-architecture (``archgraph ranks``
  reads it), ``trajectory.png``: each row's anchor over the outer steps (FaDE Fig. 6), and
  ``anchors.png``: the validation accuracy of the architectures drawn at each step (Fig. 7).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import spaces
from ..errors import ArchGraphError
from ..evaluate import InProcessEvaluator, ProcessPoolEvaluator, RayEvaluator, TrialEvaluator
from ..features import FADE_FEATURES
from ..plot import accuracy_by_step, best_over_time, draw_trajectories
from ..store import STORE_FILE, SQLiteStore
from ..trial import HYPER, Result, Trial
from .controller import ControllerSearch
from .evolution import RegularizedEvolution
from .fade import FadeSearch
from .feature_search import BayesianFeatureSearch, RandomFeatureSearch
from .nosh import NOSH, PredictorSearch, SuccessiveHalving
from .runner import Budget, Runner

__all__ = ["STRATEGIES", "SearchConfig", "SearchOutcome", "search", "resume"]

#: strategy name → class taking ``(space, *, epochs, seed, **strategy_params)``
STRATEGIES = {"random": RandomFeatureSearch, "bo": BayesianFeatureSearch, "evolution": RegularizedEvolution,
              "fade": FadeSearch, "nosh": NOSH, "sh": SuccessiveHalving, "predictor": PredictorSearch,
              "controller": ControllerSearch}
EVALUATORS = ("inprocess", "process", "ray")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that defines a search run (stored with it, so a resume rebuilds it)."""

    space: str = "fade"
    dataset: str = "digits"
    strategy: str = "random"
    epochs: int = 3
    trials: int | None = 20
    max_epochs: int | None = None
    seconds: float | None = None
    seed: int = 0
    evaluator: str = "inprocess"
    workers: int = 2
    ray_address: str | None = None
    data_root: str | None = None
    device: str | None = None
    space_params: dict[str, Any] = field(default_factory=dict)
    strategy_params: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ArchGraphError(f"unknown strategy {self.strategy!r}; known: {', '.join(STRATEGIES)}")
        if self.evaluator not in EVALUATORS:
            raise ArchGraphError(f"unknown evaluator {self.evaluator!r}; known: {', '.join(EVALUATORS)}")
        if self.epochs < 1:
            raise ArchGraphError(f"epochs per trial must be at least 1, got {self.epochs}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        return cls(**data)


@dataclass(frozen=True)
class SearchOutcome:
    """What a run holds when :func:`search` returns."""

    run_dir: Path
    trials: list[Trial]
    results: list[Result]

    @property
    def best(self) -> tuple[Trial, Result]:
        """The trial with the highest validation accuracy (the earliest among ties)."""
        result = max((r for r in self.results if r.scored), key=lambda r: (r.score, -r.trial_id))
        return next(t for t in self.trials if t.id == result.trial_id), result


def search(config: SearchConfig, run_dir: str | Path, *, resume: bool = False, progress: bool = True) -> SearchOutcome:
    """Run (or continue) the search ``config`` describes in ``run_dir``.

    A directory that already holds a run is only continued with ``resume=True`` and the
    same config; a fresh run refuses such a directory rather than mixing two runs.
    """
    run_dir = Path(run_dir)
    exists = (run_dir / STORE_FILE).exists()
    if exists and not resume:
        raise ArchGraphError(f"{run_dir} already holds a run; continue it with `archgraph search --resume {run_dir}` "
                             "or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    space = spaces.load(config.space)
    strategy = STRATEGIES[config.strategy](space, epochs=config.epochs, seed=config.seed, **config.strategy_params)
    objective = TrialEvaluator(config.space, config.dataset, str(run_dir), data_root=config.data_root,
                               space_params=config.space_params, split_seed=config.seed, device=config.device,
                               **config.training)
    budget = Budget(trials=config.trials, epochs=config.max_epochs, seconds=config.seconds)
    with SQLiteStore(run_dir / STORE_FILE) as store, _evaluator(config) as evaluator:
        if exists:
            _check_same_run(store.config(), config.to_dict(), run_dir)
        else:
            store.set_config(config.to_dict())
        Runner(strategy, objective, store=store, evaluator=evaluator, budget=budget, progress=progress).run()
        outcome = SearchOutcome(run_dir, store.trials(), list(store.results().values()))
        timeline = [(row.told_at, row.score) for row in store.timeline() if row.score is not None]
    _write_outputs(outcome, space.name, config.strategy, timeline)
    return outcome


def resume(run_dir: str | Path, *, progress: bool = True, **budget) -> SearchOutcome:
    """Continue the run in ``run_dir`` with its recorded config; ``trials=``, ``max_epochs=``
    or ``seconds=`` replace its budget for this call (the recorded config keeps the first)."""
    path = Path(run_dir) / STORE_FILE
    if not path.exists():
        raise ArchGraphError(f"{run_dir} holds no search run ({STORE_FILE} is missing)")
    with SQLiteStore(path) as store:
        recorded = store.config()
    unknown = set(budget) - set(_BUDGET_FIELDS)
    if unknown:
        raise ArchGraphError(f"a resumed run takes only a new budget ({', '.join(_BUDGET_FIELDS)}), got {sorted(unknown)}")
    config = dataclasses.replace(SearchConfig.from_dict(recorded), **budget)
    return search(config, run_dir, resume=True, progress=progress)


_BUDGET_FIELDS = ("trials", "max_epochs", "seconds")


def _check_same_run(recorded: dict[str, Any], given: dict[str, Any], run_dir: Path) -> None:
    """A resumed run may get a new budget, nothing else."""
    changed = sorted(k for k in recorded.keys() | given.keys()
                     if k not in _BUDGET_FIELDS and recorded.get(k) != given.get(k))
    if changed:
        raise ArchGraphError(f"{run_dir} was started with other settings ({', '.join(changed)}); "
                             f"resume it with `archgraph search --resume {run_dir}`")


def _evaluator(config: SearchConfig):
    if config.evaluator == "process":
        return ProcessPoolEvaluator(max_workers=config.workers)
    if config.evaluator == "ray":
        return RayEvaluator(address=config.ray_address, num_cpus=None if config.ray_address else config.workers)
    return InProcessEvaluator()


def _write_outputs(outcome: SearchOutcome, space: str, strategy: str, timeline: list[tuple[float, float]]) -> None:
    anchors = [t.info["anchors"] for t in outcome.trials if t.info.get("kind") == HYPER]
    if anchors:
        draw_trajectories(anchors, outcome.run_dir / "trajectory.png", features=FADE_FEATURES)
        steps = {t.id: t.info["point"] for t in outcome.trials if "point" in t.info}
        drawn = [(steps[r.trial_id], r.score) for r in outcome.results if r.trial_id in steps]
        if drawn:
            accuracy_by_step(drawn, outcome.run_dir / "anchors.png")
    if not timeline:
        return
    trial, result = outcome.best
    spaces.save_architecture(trial.arch, outcome.run_dir / "best_arch.json", space=space)
    (outcome.run_dir / "best.json").write_text(json.dumps({"trial": trial.id, **result.metrics}, indent=1) + "\n")
    start = min(t for t, _ in timeline)
    best_over_time({strategy: [(t - start, s) for t, s in timeline]}, outcome.run_dir / "progress.png")
