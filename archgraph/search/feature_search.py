"""Random search and Bayesian optimisation over a space's coordinates.

FaDE §3.2 compares its search with two baselines that work in the same Euclidean feature
space: every cell of a chained space has its own feature space (the DAGs a cell may be,
embedded by :data:`~archgraph.features.FADE_FEATURES` and scaled to [0, 1]); a proposal is a
point per cell, and since a point stands for a box of DAGs, it is scored as the median
accuracy of ``draws`` (5 in the paper) architectures drawn from its boxes by the
:class:`~archgraph.generate.BucketGenerator`. The NAS-Bench-201 and DARTS spaces are searched
the same way in their categorical encodings (:mod:`archgraph.search.encoding`), where a point
is one architecture (one draw by default). :func:`search_domain` gives a space's coordinates.

* :class:`RandomFeatureSearch` draws points uniformly.
* :class:`BayesianFeatureSearch` asks scikit-optimize's GP optimiser with the UCB
  acquisition, κ = 2.5, ξ = 0 (FaDE §3.2); by default one optimiser per cell, each told the
  proposal's score ("BO per cell independent"), or one over the joint space. In an encoding
  its dimensions are scikit-optimize's ``Categorical`` s.

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
from collections.abc import Sequence

import numpy as np

from .. import mutate
from ..errors import SettingError, SpaceError
from ..generate import BucketGenerator, FeatureSpace
from ..pareto import SEARCH_OBJECTIVE, parse_objectives
from ..spaces import Architecture, Space
from ..trial import Result, Trial, TrialState
from .encoding import CategoricalEncoding, encoding_for

__all__ = [
    "BayesianFeatureSearch",
    "FeatureDomain",
    "RandomFeatureSearch",
    "cell_feature_space",
    "search_domain",
]


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


class FeatureDomain:
    """The coordinates of a topology-only chained space: per cell, FaDE's scaled feature
    space; a point's architectures are drawn from its boxes, a random architecture has each
    cell drawn uniformly among the DAGs the space allows, and a mutation changes one cell of two or
    more vertices by :func:`archgraph.mutate.random_mutation` (an edge or a vertex added or removed)."""

    def __init__(self, space: Space):
        self.space = space
        self.features = cell_feature_space(space)
        self.generator = BucketGenerator(self.features)
        width = self.features.points.shape[1]
        self.dimensions = [[(0.0, 1.0)] * width for _ in space.cells]

    def random_point(self, rng: np.random.Generator) -> np.ndarray:
        return rng.random((len(self.dimensions), len(self.dimensions[0])))

    def draw(self, point, rng: np.random.Generator) -> Architecture:
        return tuple(self.generator(np.asarray(row, dtype=float), rng) for row in point)

    def random_architecture(self, rng: np.random.Generator) -> Architecture:
        pool = self.features.graphs
        return tuple(pool[i] for i in rng.integers(len(pool), size=len(self.space.cells)))

    def mutate_architecture(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """``arch`` with one cell mutated, drawn among the cells of two or more vertices (a single
        vertex has no edge to remove, no pair to join and no path to put a vertex on)."""
        mutable = [i for i, cell in enumerate(arch) if cell.num_nodes > 1]
        if not mutable:
            raise SpaceError(f"every cell of {[c.to_dict() for c in arch]} is a single vertex, which no mutation "
                             "changes; evolution needs a cell of two or more vertices to mutate")
        row = mutable[int(rng.integers(len(mutable)))]   # every cell mutable: the draw of every cell
        child = list(arch)
        child[row] = mutate.random_mutation(arch[row], rng, max_nodes=self.space.max_vertices,
                                            kinds=("add_edge", "remove_edge", "add_vertex", "remove_vertex"))
        return tuple(child)


def search_domain(space: Space) -> FeatureDomain | CategoricalEncoding:
    """How random search, BO and evolution move in ``space``: FaDE's feature space for a
    topology-only space, the categorical encoding of an ``nb201`` or ``darts`` space.

    Raises
    ------
    SpaceError
        For a space that is neither.
    """
    if space.embodiment in ("nb201", "darts"):
        return encoding_for(space)
    if space.ops is not None:
        raise SpaceError(f"space {space.name!r} puts ops on its cells, and random search, BO and evolution take "
                         "topology-only spaces such as 'fade' or the 'nb201' and 'darts' spaces")
    return FeatureDomain(space)


class _PointSearch(ABC):
    """Propose points (one row per cell), turn each into ``draws`` trials, score it by their median.

    Parameters
    ----------
    space:
        A topology-only space (``fade``: points in each cell's feature space) or an ``nb201``
        or ``darts`` space (points of its categorical encoding).
    epochs:
        Training epochs of each trial.
    seed:
        Seeds the points and the draws from them (the run seeds the trials' training).
    draws:
        Architectures drawn from each point and trained; the point scores their median accuracy
        (``None``: 5 in a feature space, FaDE §3.2; 1 in an encoding, where a point is one architecture).
    """

    #: whether a new point waits for the previous one's score (BO) or not (random)
    sequential = False

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, draws: int | None = None):
        self.domain = search_domain(space)
        draws = (5 if isinstance(self.domain, FeatureDomain) else 1) if draws is None else draws
        if draws < 1:
            raise SettingError(f"draws must be at least 1, got {draws}")
        self.space = space
        self.epochs = epochs
        self.seed = seed
        self.draws = draws
        self.rng = np.random.default_rng(seed)
        self.queue: deque[Trial] = deque()
        self.scores: dict[int, list[float | None]] = {}   # point index -> scores told so far, None: failed
        self.points: list[np.ndarray] = []

    def ask(self) -> Trial | None:
        if not self.queue:
            if self.sequential and self.points and len(self.scores.get(len(self.points) - 1, ())) < self.draws:
                return None
            self._enqueue(np.asarray(self._propose()).reshape(len(self.space.cells), -1))
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
            self.queue.append(Trial.propose(self.domain.draw(point, self.rng), self.epochs,
                                            info={"point": index, "coordinates": point.round(6).tolist()}))

    @abstractmethod
    def _propose(self):
        """The next point, one row per cell, in the domain's coordinates."""

    def _observe(self, point: np.ndarray, value: float | None) -> None:
        """Learn the median score of a point, ``None`` if every draw failed (nothing to learn
        for random search)."""


class RandomFeatureSearch(_PointSearch):
    """Uniform points in the space's coordinates (FaDE §3.2's random-search baseline; in an
    encoding, every architecture it holds equally likely).

    A failed draw is recorded and forgotten: the next points do not depend on scores.
    The parameters are every point search's (``space``, ``epochs``, ``seed``, ``draws``) and:

    Parameters
    ----------
    objectives:
        The metrics pursued, ``"NAME:max"`` or ``"NAME:min"``: the points do not depend on them;
        the run keeps the completed trials no other dominates in them
        (:attr:`archgraph.search.session.SearchOutcome.front`, ``front.json``).
    """

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, draws: int | None = None,
                 objectives: Sequence[str] = (SEARCH_OBJECTIVE,)):
        super().__init__(space, epochs=epochs, seed=seed, draws=draws)
        self.objectives = parse_objectives(objectives)

    def _propose(self):
        return self.domain.random_point(self.rng)


class BayesianFeatureSearch(_PointSearch):
    """GP-UCB Bayesian optimisation with scikit-optimize (FaDE §3.2: κ = 2.5, ξ = 0).

    UCB for a maximised accuracy is scikit-optimize's LCB on the negated score.

    A point whose every draw failed is told to the optimisers as the worst median seen so far
    (0 before any): past its initial random points, scikit-optimize proposes the same point
    again until it is told a new one, and a
    point that cannot be trained is, for the search, as bad as the worst one that could.

    Its parameters are every point search's (``space``, ``epochs``, ``seed``, ``draws``) and:

    Parameters
    ----------
    per_cell:
        One optimiser per cell over that cell's dimensions (the paper's "per cell
        independent"); ``False``: one optimiser over all cells' dimensions.
    kappa:
        UCB's exploration weight κ (2.5, §3.2).
    xi:
        The acquisition's improvement offset ξ (0, §3.2).
    initial_points:
        Random points each optimiser asks before it fits its GP.
    """

    sequential = True

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, draws: int | None = None, per_cell: bool = True,
                 kappa: float = 2.5, xi: float = 0.0, initial_points: int = 5):
        from skopt import Optimizer

        super().__init__(space, epochs=epochs, seed=seed, draws=draws)
        dims = self.domain.dimensions
        groups = dims if per_cell else [[d for cell in dims for d in cell]]
        self.values: list[float] = []  # the medians told to the optimisers
        self.optimizers = [
            Optimizer(group, base_estimator="GP", acq_func="LCB", n_initial_points=initial_points,
                      acq_func_kwargs={"kappa": kappa, "xi": xi}, random_state=seed + i)
            for i, group in enumerate(groups)
        ]

    def _propose(self):
        return np.concatenate([opt.ask() for opt in self.optimizers])

    def _observe(self, point: np.ndarray, value: float | None) -> None:
        value = min(self.values, default=0.0) if value is None else value
        self.values.append(value)
        for opt, part in zip(self.optimizers, np.split(point.ravel(), len(self.optimizers))):
            opt.tell(part.tolist(), -value)
