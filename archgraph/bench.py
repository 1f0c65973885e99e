"""Tabular benchmarks: a table of trained architectures answering a search in microseconds.

A *table* (``benchmarks/ground_truth.py`` builds them) holds architectures of one space, each
trained from scratch with one or more seeds, with the validation accuracy after every epoch of
every training (a learning curve per seed) and the final test accuracy::

    {"format": 2, "space": "fade", "dataset": "digits", "seeds": 2, "settings": {...},
     "architectures": [{"cells": [ArchGraph.to_dict(), ...],
                        "val_accuracy": [[seed 0's curve], [seed 1's curve]],
                        "test_accuracy": [seed 0's, seed 1's], "seconds": [...]}, ...]}

stored as JSON, gzip-compressed when the file name ends in ``.gz``. A table of the first format
(one training per architecture: a flat curve and one test accuracy per row) is read as one seed.

:class:`TabularObjective` answers a :class:`~archgraph.trial.Trial` by looking its architecture
up (cell by cell up to isomorphism, :meth:`~archgraph.graph.ArchGraph.canonical_hash`) and
returning its learning curve up to ``trial.budget`` epochs, as NAS-Bench-101 (Ying et al.,
2019) and NAS-Bench-201 (Dong & Yang, 2020) tabulate theirs: per-epoch curves let
multi-fidelity searches (successive halving, NOSH) pay only for the epochs they use.
:meth:`TabularObjective.strategy` makes strategies draw only the table's architectures: those
of :mod:`archgraph.search.nosh` take it as their finite pool, and random search, BO and
evolution in FaDE's feature coordinates have each proposal moved to the nearest architecture
of the table not proposed before (:class:`OnTable`), or BO chooses among the table's
architectures (:class:`PoolBO`). :func:`bootstrap_interval` gives the
percentile bootstrap intervals the benchmarks report over search seeds.

Examples
--------
>>> from archgraph import ArchGraph
>>> from archgraph.trial import Trial
>>> arch = [ArchGraph([(0, 1)]).to_dict()]
>>> bench = TabularObjective({"space": "fade", "dataset": "digits", "architectures": [
...     {"cells": arch, "val_accuracy": [[0.5, 0.7], [0.6, 0.8]], "test_accuracy": [0.7, 0.9]}]})
>>> bench(Trial(0, (ArchGraph([(1, 0)]),), budget=1, seed=0)).metrics
{'val_accuracy': 0.55, 'epochs': 1}
>>> bench(Trial(1, (ArchGraph([(0, 1)]),), budget=2, seed=0, resume_from=0)).metrics
{'val_accuracy': 0.75, 'epochs': 2, 'test_accuracy': 0.8}
>>> bench.epochs_spent
2
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import spaces
from .errors import ArchGraphError, BudgetError
from .graph import ArchGraph
from .search.evolution import RegularizedEvolution
from .search.feature_search import BayesianFeatureSearch, RandomFeatureSearch, cell_feature_space
from .search.nosh import NOSH, PredictorSearch, SuccessiveHalving, _key
from .trial import Result, Trial, TrialState

__all__ = ["NotInTableError", "OnTable", "PoolBO", "TabularObjective", "bootstrap_interval", "read_table", "write_table"]

Architecture = tuple[ArchGraph, ...]
#: strategies that :meth:`TabularObjective.strategy` restricts to a table
TABLE_STRATEGIES = ("random", "nosh", "sh", "predictor", "random-features", "bo", "evolution", "bo-pool")
#: those of them that move in FaDE's feature coordinates, wrapped in :class:`OnTable`
FEATURE_STRATEGIES = {"random-features": RandomFeatureSearch, "bo": BayesianFeatureSearch,
                      "evolution": RegularizedEvolution}


class NotInTableError(ArchGraphError, LookupError):
    """A trial's architecture is not in the table."""


def read_table(path: str | Path) -> dict[str, Any]:
    """The table in ``path`` (gzip'd JSON if its name ends in ``.gz``)."""
    path = Path(path)
    with (gzip.open(path, "rt") if path.suffix == ".gz" else path.open()) as file:
        return json.load(file)


def write_table(table: dict[str, Any], path: str | Path) -> None:
    """Write ``table`` to ``path`` atomically (a kill never leaves half a file), compact JSON,
    gzip'd if the name ends in ``.gz``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(table, separators=(",", ":"))
    with (gzip.open(tmp, "wt") if path.suffix == ".gz" else tmp.open("w")) as file:
        file.write(text)
    os.replace(tmp, path)


def _seed_curves(row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """A row's validation curves (seeds × epochs) and test accuracies (seeds), either format."""
    val, test = row["val_accuracy"], row["test_accuracy"]
    if val and not isinstance(val[0], list):  # the first format: one training
        val, test = [val], [test]
    return np.asarray(val, dtype=float).reshape(len(val), -1), np.asarray(test, dtype=float)


class TabularObjective:
    """A table as a search objective: ``objective(trial) -> Result``, no training.

    Parameters
    ----------
    table:
        A table (see the module docstring) or the path of one.
    seeds:
        Which training of an architecture answers: ``"mean"`` (default), the mean curve over
        its seeds, the same for every query — the benchmark's ground truth, with the seed noise
        averaged out; or ``"trial"``, the curve of the training numbered ``trial.seed`` modulo
        the architecture's seeds, so that searches see one noisy training as they would when
        training, and a promoted NOSH candidate (which keeps its seed) continues its own curve.

    A trial's result holds ``val_accuracy`` after ``trial.budget`` epochs, ``epochs`` (the
    budget), the curve of epochs 1 to ``budget`` and, at the table's full training only,
    ``test_accuracy``. :attr:`epochs_spent` charges each trial its budget less that of the trial
    it resumes (``resume_from``, which must have been answered by this object: run it in one
    process, e.g. with :class:`~archgraph.evaluate.InProcessEvaluator`).

    Raises
    ------
    NotInTableError
        For a trial whose architecture is not in the table (draw from :attr:`archs`, or make
        the strategy with :meth:`strategy`).
    """

    def __init__(self, table: dict[str, Any] | str | Path, *, seeds: str = "mean"):
        if seeds not in ("mean", "trial"):
            raise ArchGraphError(f"seeds must be 'mean' or 'trial', got {seeds!r}")
        data = table if isinstance(table, dict) else read_table(table)
        self.space, self.dataset, self.seeds = data["space"], data["dataset"], seeds
        self.archs: list[Architecture] = []
        self._curves: list[tuple[np.ndarray, np.ndarray]] = []
        self._index: dict[tuple[str, ...], int] = {}
        for row in data["architectures"]:
            arch = tuple(ArchGraph.from_dict(cell) for cell in row["cells"])
            curves = _seed_curves(row)
            if _key(arch) in self._index or not curves[0].size:  # an isomorphic duplicate keeps its first row
                continue
            self._index[_key(arch)] = len(self.archs)
            self.archs.append(arch)
            self._curves.append(curves)
        if not self.archs:
            raise ArchGraphError("the table holds no trained architecture; build one with benchmarks/ground_truth.py")
        #: epochs every architecture of the table was trained (the shortest curve's length)
        self.epochs = min(val.shape[1] for val, _ in self._curves)
        self.epochs_spent = 0
        self._answered: dict[int, tuple[int, int]] = {}   # trial id → (row, budget)

    def __len__(self) -> int:
        return len(self.archs)

    @functools.cached_property
    def cell_features(self):
        """The feature space of one cell of the table's space (:func:`~archgraph.search.feature_search.cell_feature_space`)."""
        return cell_feature_space(spaces.load(self.space))

    @functools.cached_property
    def feature_points(self) -> np.ndarray:
        """The table's architectures in FaDE's feature coordinates (:func:`feature_point`), row by row."""
        return np.stack([feature_point(self.cell_features, a) for a in self.archs])

    def lookup(self, arch: Sequence[ArchGraph]) -> int:
        """The row of ``arch`` (up to isomorphism of each cell)."""
        try:
            return self._index[_key(arch)]
        except KeyError:
            raise NotInTableError(f"the architecture {[c.to_dict() for c in arch]} is not in the table of "
                                  f"{len(self)} {self.space} architectures; draw from the table (TabularObjective."
                                  "archs, or TabularObjective.strategy)") from None

    def curve(self, arch: Sequence[ArchGraph], seed: int | None = None) -> np.ndarray:
        """The validation curve of ``arch``: the mean over its seeds, or the training ``seed``
        modulo its seeds."""
        val, _ = self._curves[self.lookup(arch)]
        return val.mean(0) if seed is None else val[seed % len(val)]

    def test_accuracy(self, arch: Sequence[ArchGraph], seed: int | None = None) -> float:
        """The final test accuracy of ``arch``: the mean over its seeds, or that of training ``seed``."""
        _, test = self._curves[self.lookup(arch)]
        return float(test.mean() if seed is None else test[seed % len(test)])

    def __call__(self, trial: Trial) -> Result:
        row = self.lookup(trial.arch)
        if not 1 <= trial.budget <= self.epochs:
            raise BudgetError(f"trial {trial.id} asks for {trial.budget} epochs; the table's curves have "
                              f"{self.epochs}: ask for 1 to {self.epochs}")
        done = 0
        if trial.resume_from is not None:
            if trial.resume_from not in self._answered:
                raise ArchGraphError(f"trial {trial.id} resumes trial {trial.resume_from}, which this objective never "
                                     "answered; run the whole search against one TabularObjective in one process")
            before, done = self._answered[trial.resume_from]
            if before != row or done >= trial.budget:
                raise ArchGraphError(f"trial {trial.id} resumes trial {trial.resume_from} of another architecture or "
                                     f"of {done} ≥ {trial.budget} epochs; a resumed trial continues its architecture")
        self._answered[trial.id] = (row, trial.budget)
        self.epochs_spent += trial.budget - done
        seed = None if self.seeds == "mean" else trial.seed
        curve = self.curve(trial.arch, seed)[:trial.budget]
        metrics = {"val_accuracy": float(curve[-1]), "epochs": trial.budget}
        if trial.budget == self.epochs:
            metrics["test_accuracy"] = self.test_accuracy(trial.arch, seed)
        rows = tuple({"epoch": e + 1, "val_accuracy": float(v)} for e, v in enumerate(curve))
        return Result(trial.id, metrics, rows)

    def strategy(self, name: str, *, seed: int = 0, epochs: int | None = None, **params):
        """The strategy ``name`` drawing only the table's architectures, each trial at most
        ``epochs`` (default: the table's) epochs.

        ``"nosh"``, ``"sh"`` and ``"predictor"`` are :mod:`archgraph.search.nosh`'s strategies with
        the table as their finite pool (the predictors rank every architecture not yet
        proposed unless ``pool_size`` says fewer); ``"random"`` draws the table's architectures in
        a random order without replacement, each trained ``epochs`` (a
        :class:`~archgraph.search.nosh.PredictorSearch` without a predictor, one per round).
        ``"random-features"``, ``"bo"`` and ``"evolution"`` are
        :class:`~archgraph.search.feature_search.RandomFeatureSearch`,
        :class:`~archgraph.search.feature_search.BayesianFeatureSearch` (one architecture drawn per
        point unless ``draws`` says more) and :class:`~archgraph.search.evolution.RegularizedEvolution`
        wrapped in :class:`OnTable`; ``"bo-pool"`` is :class:`PoolBO`. ``params`` are the strategy's own.
        """
        epochs = epochs or self.epochs
        if epochs > self.epochs:
            raise BudgetError(f"the table's curves have {self.epochs} epochs; pass epochs <= {self.epochs}")
        space = spaces.load(self.space)
        if name == "random":
            return PredictorSearch(space, epochs=epochs, seed=seed, sampler=self.archs, **{"n_new": 1, **params})
        if name in ("nosh", "predictor"):
            cls = NOSH if name == "nosh" else PredictorSearch
            return cls(space, epochs=epochs, seed=seed, sampler=self.archs, **{"pool_size": len(self), **params})
        if name == "sh":
            return SuccessiveHalving(space, epochs=epochs, seed=seed, sampler=self.archs, **params)
        if name in FEATURE_STRATEGIES:
            defaults = {"draws": 1} if name != "evolution" else {}
            return OnTable(FEATURE_STRATEGIES[name](space, epochs=epochs, seed=seed, **{**defaults, **params}), self)
        if name == "bo-pool":
            return PoolBO(self, epochs=epochs, seed=seed, **params)
        raise ArchGraphError(f"a table runs the strategies {', '.join(TABLE_STRATEGIES)}, not {name!r} (the others "
                             "propose architectures outside the table)")


class OnTable:
    """A strategy of a topology-only space (``fade``) made to propose only a table's architectures.

    Random search, BO and evolution propose architectures anywhere in the space, of which a
    table holds a few hundred: almost every proposal would miss it. Each proposal is therefore
    replaced by the architecture of the table nearest to it (Euclidean distance between the
    cells' FaDE feature points, :meth:`~archgraph.generate.FeatureSpace.embed`, concatenated;
    ties to the earlier row) among those not proposed before, so that a search of ``n`` trials
    trains ``n`` distinct architectures of the table; the wrapped strategy is told the trial
    with the table's architecture (evolution's population holds, and mutates, table members),
    and ``trial.info["proposed"]`` keeps what it proposed (its cells' ``to_dict``). A proposal
    already in the table and not yet proposed is kept as it is. After every architecture of the
    table has been proposed, ``ask`` returns ``None``.

    This is a projection, and it biases a strategy towards the table's architectures that
    stand alone in feature space (they are the nearest to more of the space); random search in
    feature coordinates projected the same way (``"random-features"``) measures that bias
    against uniform draws from the table (``"random"``).
    """

    def __init__(self, strategy, table: TabularObjective):
        self.strategy, self.table = strategy, table
        self.unseen = np.ones(len(table), dtype=bool)

    def ask(self) -> Trial | None:
        if not self.unseen.any() or (proposal := self.strategy.ask()) is None:
            return None
        candidates = np.flatnonzero(self.unseen)
        proposed = feature_point(self.table.cell_features, proposal.arch)
        distance = ((self.table.feature_points[candidates] - proposed) ** 2).sum(axis=1)
        row = int(candidates[np.argmin(distance)])
        self.unseen[row] = False
        return dataclasses.replace(proposal, arch=self.table.archs[row],
                                   info={**proposal.info, "proposed": [c.to_dict() for c in proposal.arch]})

    def tell(self, trial: Trial, result: Result) -> None:
        self.strategy.tell(trial, result)


def feature_point(features, arch: Sequence[ArchGraph]) -> np.ndarray:
    """An architecture's coordinates: its cells' FaDE feature points (``features``, a
    :class:`~archgraph.generate.FeatureSpace`) concatenated."""
    return np.concatenate([features.embed(cell) for cell in arch])


class PoolBO:
    """GP-UCB Bayesian optimisation over a table's architectures (a finite pool).

    FaDE's BO (§3.2) asks scikit-optimize for a point of each cell's feature space and draws an
    architecture from its box; on a table, whose architectures are a few hundred points of that
    space, this one scores the table's architectures not yet proposed directly: a Gaussian
    process (scikit-learn's, a constant times an ARD Matérn-5/2 kernel plus white noise, the
    targets normalised, hyperparameters fitted by marginal likelihood from a fixed start, length
    scales between 0.01 and 1000) over
    the architectures' coordinates (:func:`feature_point`) is fitted to every score told, and the
    next architecture is the unproposed one of highest UCB, mean + κ·sd (κ = 2.5, FaDE §3.2;
    ties to the earlier row). The first ``initial_points`` architectures are drawn uniformly.
    Sequential: ``ask`` returns ``None`` while a trial is untold, and after the table has run out.

    A failed trial is told to the GP as the worst score seen so far (0 before any), as
    :class:`~archgraph.search.feature_search.BayesianFeatureSearch` does; a pruned one with the
    validation accuracy it reached.
    """

    def __init__(self, table: TabularObjective, *, epochs: int, seed: int = 0, kappa: float = 2.5,
                 initial_points: int = 5):
        if initial_points < 1:
            raise ArchGraphError(f"initial_points must be at least 1, got {initial_points}")
        self.table, self.epochs, self.seed, self.kappa, self.initial_points = table, epochs, seed, kappa, initial_points
        self.points = table.feature_points
        self.unseen = np.ones(len(table), dtype=bool)
        self.rng = np.random.default_rng(seed)
        self.rows: list[int] = []       # the architectures told, in order
        self.values: list[float] = []   # their scores
        self.outstanding = False

    def ask(self) -> Trial | None:
        if self.outstanding or not self.unseen.any():
            return None
        candidates = np.flatnonzero(self.unseen)
        if len(self.values) < self.initial_points:
            row = int(self.rng.choice(candidates))
        else:
            ucb = self.acquisition(candidates)
            row = int(candidates[np.argmax(ucb)])
        self.unseen[row] = False
        self.outstanding = True
        return Trial.propose(self.table.archs[row], self.epochs, info={"row": row})

    def acquisition(self, rows: np.ndarray) -> np.ndarray:
        """UCB of the architectures ``rows`` under the GP fitted to the scores told."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        # lengths from 0.01 (a hundredth of the coordinates' [0, 1]) to 1000 (a dimension that does not matter)
        kernel = ConstantKernel() * Matern(np.ones(self.points.shape[1]), (1e-2, 1e3), nu=2.5) + WhiteKernel(1e-2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)   # a length at its bound: expected, see above
            gp = GaussianProcessRegressor(kernel, normalize_y=True).fit(self.points[self.rows], self.values)
        mean, sd = gp.predict(self.points[rows], return_std=True)
        return mean + self.kappa * sd

    def tell(self, trial: Trial, result: Result) -> None:
        self.outstanding = False
        self.rows.append(trial.info["row"])
        self.values.append(min(self.values, default=0.0) if result.state is TrialState.FAILED else result.score)


def bootstrap_interval(statistic, *samples, level: float = 0.95, resamples: int = 10_000, seed: int = 0):
    """The percentile bootstrap interval (Efron & Tibshirani 1993, §13.3) of ``statistic(*samples)``.

    Each sample (an array whose first axis holds independent observations, e.g. search seeds) is
    resampled with replacement, independently of the others, ``resamples`` times; the interval's
    ends are the ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the statistic over the
    resamples, taken without interpolation (``inverted_cdf``), so that infinite values — e.g.
    censored runs counted as never reaching a target — are ends like any other. A statistic
    may return an array (one interval per element: ``low`` and ``high`` have its shape);
    resamples where it is NaN (e.g. ∞/∞) are left out.

    Returns ``(low, high)``.

    >>> bootstrap_interval(np.mean, np.array([0.0, 0.0, 0.0, 1.0]))  # means of Binomial(4, 1/4)/4
    (0.0, 0.75)
    """
    if not 0 < level < 1 or resamples < 1:
        raise ArchGraphError(f"need 0 < level < 1 and resamples >= 1, got level={level}, resamples={resamples}")
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(s, dtype=float) for s in samples]
    if any(len(a) == 0 for a in arrays):
        raise ArchGraphError("bootstrap_interval needs at least one observation in every sample")
    values = np.array([statistic(*(a[rng.integers(len(a), size=len(a))] for a in arrays)) for _ in range(resamples)],
                      dtype=float)
    tails = [(1 - level) / 2, (1 + level) / 2]
    with np.errstate(invalid="ignore"):
        low, high = np.nanquantile(values, tails, axis=0, method="inverted_cdf")
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)
