"""Regularised evolution over ArchGraphs (Real, Aggarwal, Huang & Le 2019, "Regularized
Evolution for Image Classifier Architecture Search", §2, Algorithm 1).

A population of ``population_size`` architectures, first drawn uniformly from the space;
then, for each new trial, ``sample_size`` members are drawn at random, the best of them is
the parent, and the child is the parent mutated once. The child joins the population and the
*oldest* member leaves it (aging), whatever its accuracy.

What "uniformly" and "mutated" mean depends on the space (:func:`~archgraph.search.feature_search.search_domain`):
in a topology-only space (``fade``), each cell is drawn among the DAGs the space allows, and
a mutation changes one cell by :func:`archgraph.mutate.random_mutation` (an edge or a vertex
added or removed); in an ``nb201`` or ``darts`` space, an architecture is drawn uniformly from
its categorical encoding, and a mutation changes one op, or (DARTS) one input of one node
(:mod:`archgraph.search.encoding`; Real et al. §2's op and hidden-state mutations).

A failed trial is discarded: it never joins the population, and while the population is not
full (a member of the initial population failed) a fresh random architecture is asked in its
place. A pruned trial joins the population with the validation accuracy it reached: it is a
weak member (it was stopped for being below the median), rarely a parent, and ages out.

With several ``objectives`` (e.g. ``val_accuracy:max`` and ``parameters:min``) the search is a
steady-state NSGA-II (Deb, Pratap, Agarwal & Meyarivan 2002, "A Fast and Elitist Multiobjective
Genetic Algorithm: NSGA-II", §III): members are compared by the crowded comparison, their
non-dominated front in the population first, then their crowding distance on it
(:func:`archgraph.pareto.crowded_order`); the parent is the best of the ``sample_size`` members drawn
(§III-C's tournament), and when a child makes the population too large, the worst member leaves
(§III-C's survival, one at a time) instead of the oldest. A trial lacking one of the objectives'
metrics (failed, or pruned: it has no size) is discarded. The run keeps the completed trials no
other dominates (:attr:`archgraph.search.session.SearchOutcome.front`, ``front.json``). One
objective keeps Real et al.'s aging and the best of the sample.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from ..errors import SettingError
from ..pareto import SEARCH_OBJECTIVE, crowded_order, objective_values, parse_objectives
from ..spaces import Space
from ..trial import Result, Trial, TrialState
from .base import Lagged
from .feature_search import search_domain

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(Lagged):
    """Ask/tell regularised evolution on a topology-only chained space or an ``nb201`` or ``darts`` space.

    Children are asked as soon as the initial population has been told; a child's parent is
    chosen among the members learnt so far: by default those told so far, which depend on the
    number of workers, with a ``lag`` the same whatever it is (:class:`~archgraph.search.base.Lagged`).
    Random members are asked while the population and the trials in flight are fewer than
    ``population_size``.

    Parameters
    ----------
    space:
        The space searched (see the module docstring).
    epochs:
        Training epochs of each trial.
    seed:
        Seeds the population, the samples and the mutations (the run seeds the trials' training).
    population_size:
        Architectures the population holds (Real et al.'s P).
    sample_size:
        Members drawn to choose a parent, the best of them (Real et al.'s S).
    objectives:
        The metrics pursued, ``"NAME:max"`` or ``"NAME:min"``; with several, NSGA-II's selection
        (see the module docstring).
    """

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, population_size: int = 10,
                 sample_size: int = 3, lag: int | None = None, objectives: Sequence[str] = (SEARCH_OBJECTIVE,)):
        if not 1 <= sample_size <= population_size:
            raise SettingError(f"need 1 <= sample_size <= population_size, got {sample_size} and {population_size}")
        super().__init__(lag)
        self.space = space
        self.epochs = epochs
        self.seed = seed
        self.population_size = population_size
        self.sample_size = sample_size
        self.objectives = parse_objectives(objectives)
        self.domain = search_domain(space)
        self.rng = np.random.default_rng(seed)
        self.population: deque[tuple[Trial, tuple[float, ...]]] = deque()  # (trial, objective values)
        self.outstanding = 0  # proposed, not learnt

    def _propose(self) -> Trial | None:
        if len(self.population) + self.outstanding < self.population_size:  # the first ones, or a failure's place
            return self._trial(self.domain.random_architecture(self.rng), parent=None)
        if not self.population:
            return None  # the initial population is still being trained
        members = [self.population[i] for i in self.rng.choice(
            len(self.population), size=min(self.sample_size, len(self.population)), replace=False)]
        parent = self._best(members)
        return self._trial(self.domain.mutate_architecture(parent.arch, self.rng), parent=parent.id)

    def _learn(self, trial: Trial, result: Result) -> None:
        self.outstanding -= 1
        values = None if result.state is TrialState.FAILED else objective_values(result.metrics, self.objectives)
        if values is None:
            return  # discarded
        self.population.append((trial, values))
        if len(self.population) > self.population_size:
            self._leave()

    def _order(self) -> list[int]:
        """The population's members, best first, by NSGA-II's crowded comparison."""
        return crowded_order([values for _, values in self.population], [d for _, d in self.objectives])

    def _best(self, members: list[tuple[Trial, tuple[float, ...]]]) -> Trial:
        """The parent among the sampled ``members``: the best (Real et al.), or the first in crowded order."""
        if len(self.objectives) == 1:
            sign = 1 if self.objectives[0][1] == "max" else -1
            return max(members, key=lambda m: sign * m[1][0])[0]
        place = {self.population[i][0].id: rank for rank, i in enumerate(self._order())}
        return min(members, key=lambda m: place[m[0].id])[0]

    def _leave(self) -> None:
        """One member leaves: the oldest (aging) or, with several objectives, the last in crowded order."""
        if len(self.objectives) == 1:
            self.population.popleft()
        else:
            del self.population[self._order()[-1]]

    def _trial(self, arch, parent: int | None) -> Trial:
        self.outstanding += 1
        return Trial.propose(arch, self.epochs, info={"parent": parent})
