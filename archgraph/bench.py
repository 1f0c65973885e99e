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
:meth:`TabularObjective.strategy` makes the strategies that can be restricted to the table's
architectures draw from it (:class:`~archgraph.search.nosh.NOSH`'s finite pool).

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

import gzip
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import spaces
from .errors import ArchGraphError, BudgetError
from .graph import ArchGraph
from .search.nosh import NOSH, PredictorSearch, SuccessiveHalving, _key
from .trial import Result, Trial

__all__ = ["NotInTableError", "TabularObjective", "read_table", "write_table"]

Architecture = tuple[ArchGraph, ...]
#: strategies that :meth:`TabularObjective.strategy` restricts to a table
TABLE_STRATEGIES = ("random", "nosh", "sh", "predictor")


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
        ``params`` are the strategy's own.
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
        raise ArchGraphError(f"a table runs the strategies {', '.join(TABLE_STRATEGIES)}, not {name!r} (the others "
                             "propose architectures outside the table)")
