"""Random search and Bayesian optimisation in the feature space of a chained space.

FaDE §3.2 compares its search with two baselines that work in the same Euclidean feature
space: every cell of a chained space has its own feature space (the DAGs a cell may be,
embedded by :data:`~archgraph.features.FADE_FEATURES` and scaled to [0, 1]); a proposal is a
point per cell, and since a point stands for a box of DAGs, it is scored as the median
accuracy of ``draws`` (5 in the paper) architectures drawn from its boxes by the
:class:`~archgraph.generate.BucketGenerator`.

* :class:`RandomFeatureSearch` draws points uniformly.
* :class:`BayesianFeatureSearch` asks scikit-optimize's GP optimiser with the UCB
  acquisition, κ = 2.5, ξ = 0 (FaDE §3.2); by default one optimiser per cell, each told the
  proposal's score ("BO per cell independent"), or one over the joint space.

Failed and pruned draws: a point's score is the median over its draws that did not fail; a
pruned draw counts with the validation accuracy it had reached when it was stopped (a draw
is pruned for being below the median of the completed ones, so this keeps it low without
guessing its end). Random search learns nothing from scores, so a failure only costs its
draw: the search moves on. What BO does with a point whose every draw failed is told at
:class:`BayesianFeatureSearch`.
"""

from __future__ import annotations

import statistics
from abc import ABC, abstractmethod
from collections import deque

import numpy as np

from ..errors import SpaceError
from ..generate import BucketGenerator, FeatureSpace
from ..spaces import Space
from ..trial import Result, Trial, TrialState

__all__ = ["RandomFeatureSearch", "BayesianFeatureSearch", "cell_feature_space", "trial_seed"]


def trial_seed(seed: int, trial_id: int) -> int:
    """The training seed of trial ``trial_id`` in a run seeded ``seed`` (independent streams).

    >>> trial_seed(0, 1) == trial_seed(0, 1) != trial_seed(0, 2)
    True
    """
    return int(np.random.SeedSequence([seed, trial_id]).generate_state(1)[0])


def cell_feature_space(space: Space) -> FeatureSpace:
    """The feature space of one cell of ``space``: every DAG with ``min_vertices`` to
    ``max_vertices`` vertices, enumerated up to isomorphism."""
    if space.ops is not None:
        raise SpaceError(f"space {space.name!r} puts ops on its cells; the feature-space searches take "
                         "topology-only spaces such as 'fade'")
    if space.max_vertices is None or space.max_vertices > 6:
        raise SpaceError(f"space {space.name!r}: the feature space enumerates cells, so max_vertices must be "
                         f"at most 6, got {space.max_vertices}")
    return FeatureSpace.enumerate(max_vertices=space.max_vertices, min_vertices=space.min_vertices)


class _PointSearch(ABC):
    """Propose points (one per cell), turn each into ``draws`` trials, score it by their median."""

    #: whether a new point waits for the previous one's score (BO) or not (random)
    sequential = False

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, draws: int = 5):
        if draws < 1:
            raise ValueError(f"draws must be at least 1, got {draws}")
        self.space = space
        self.epochs = epochs
        self.seed = seed
        self.draws = draws
        self.features = cell_feature_space(space)
        self.generator = BucketGenerator(self.features)
        self.dims = self.features.points.shape[1]
        self.rng = np.random.default_rng(seed)
        self.queue: deque[Trial] = deque()
        self.scores: dict[int, list[float | None]] = {}   # point index -> scores told so far, None: failed
        self.points: list[np.ndarray] = []
        self.next_id = 0

    def ask(self) -> Trial | None:
        if not self.queue:
            if self.sequential and self.points and len(self.scores.get(len(self.points) - 1, ())) < self.draws:
                return None
            self._enqueue(np.asarray(self._propose(), dtype=float).reshape(len(self.space.cells), self.dims))
        return self.queue.popleft()

    def tell(self, trial: Trial, result: Result) -> None:
        index = trial.info["point"]
        self.scores.setdefault(index, []).append(None if result.state is TrialState.FAILED else result.score)
        if len(self.scores[index]) == self.draws:
            usable = [score for score in self.scores[index] if score is not None]
            self._observe(self.points[index], statistics.median(usable) if usable else None)

    def _enqueue(self, point: np.ndarray) -> None:
        index = len(self.points)
        self.points.append(point)
        for _ in range(self.draws):
            arch = tuple(self.generator(cell_point, self.rng) for cell_point in point)
            self.queue.append(Trial(id=self.next_id, arch=arch, budget=self.epochs,
                                    seed=trial_seed(self.seed, self.next_id),
                                    info={"point": index, "coordinates": point.round(6).tolist()}))
            self.next_id += 1

    @abstractmethod
    def _propose(self) -> np.ndarray:
        """The next point, one row per cell, in scaled feature coordinates."""

    def _observe(self, point: np.ndarray, value: float | None) -> None:
        """Learn the median score of a point, ``None`` if every draw failed (nothing to learn
        for random search)."""


class RandomFeatureSearch(_PointSearch):
    """Uniform points in each cell's feature space (FaDE §3.2's random-search baseline).

    A failed draw is recorded and forgotten: the next points do not depend on scores.
    """

    def _propose(self) -> np.ndarray:
        return self.rng.random((len(self.space.cells), self.dims))


class BayesianFeatureSearch(_PointSearch):
    """GP-UCB Bayesian optimisation with scikit-optimize (FaDE §3.2: κ = 2.5, ξ = 0).

    ``per_cell=True`` (the paper's "per cell independent") keeps one optimiser per cell over
    that cell's feature dimensions; ``False`` one optimiser over all cells' dimensions. UCB
    for a maximised accuracy is scikit-optimize's LCB on the negated score.

    A point whose every draw failed is told to the optimisers as the worst median seen so far
    (0 before any): past its initial random points, scikit-optimize proposes the same point
    again until it is told a new one, and a
    point that cannot be trained is, for the search, as bad as the worst one that could.
    """

    sequential = True

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, draws: int = 5, per_cell: bool = True,
                 kappa: float = 2.5, xi: float = 0.0, initial_points: int = 5):
        from skopt import Optimizer

        super().__init__(space, epochs=epochs, seed=seed, draws=draws)
        groups = len(space.cells) if per_cell else 1
        width = self.dims * len(space.cells) // groups
        self.values: list[float] = []  # the medians told to the optimisers
        self.optimizers = [
            Optimizer([(0.0, 1.0)] * width, base_estimator="GP", acq_func="LCB", n_initial_points=initial_points,
                      acq_func_kwargs={"kappa": kappa, "xi": xi}, random_state=seed + i)
            for i in range(groups)
        ]

    def _propose(self) -> np.ndarray:
        return np.concatenate([opt.ask() for opt in self.optimizers])

    def _observe(self, point: np.ndarray, value: float | None) -> None:
        value = min(self.values, default=0.0) if value is None else value
        self.values.append(value)
        for opt, part in zip(self.optimizers, np.split(point.ravel(), len(self.optimizers))):
            opt.tell(part.tolist(), -value)
