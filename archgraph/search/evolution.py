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
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ..spaces import Space
from ..trial import Result, Trial, TrialState
from .feature_search import search_domain, trial_seed

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution:
    """Ask/tell regularised evolution on a topology-only chained space or an ``nb201`` or ``darts`` space.

    Children are asked as soon as the initial population has been told; with several
    workers, a child's parent is chosen among the members told so far. Random members are
    asked while the population and the trials in flight are fewer than ``population_size``.

    Parameters
    ----------
    space:
        The space searched (see the module docstring).
    epochs:
        Training epochs of each trial.
    seed:
        Seeds the population, the samples, the mutations and every trial's training.
    population_size:
        Architectures the population holds (Real et al.'s P).
    sample_size:
        Members drawn to choose a parent, the best of them (Real et al.'s S).
    """

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, population_size: int = 10,
                 sample_size: int = 3):
        if not 1 <= sample_size <= population_size:
            raise ValueError(f"need 1 <= sample_size <= population_size, got {sample_size} and {population_size}")
        self.space = space
        self.epochs = epochs
        self.seed = seed
        self.population_size = population_size
        self.sample_size = sample_size
        self.domain = search_domain(space)
        self.rng = np.random.default_rng(seed)
        self.population: deque[tuple[Trial, float]] = deque()
        self.outstanding: set[int] = set()  # asked, not told
        self.next_id = 0

    def ask(self) -> Trial | None:
        if len(self.population) + len(self.outstanding) < self.population_size:  # the first ones, or a failure's place
            return self._trial(self.domain.random_architecture(self.rng), parent=None)
        if not self.population:
            return None  # the initial population is still being trained
        members = [self.population[i] for i in self.rng.choice(
            len(self.population), size=min(self.sample_size, len(self.population)), replace=False)]
        parent = max(members, key=lambda m: m[1])[0]
        return self._trial(self.domain.mutate_architecture(parent.arch, self.rng), parent=parent.id)

    def tell(self, trial: Trial, result: Result) -> None:
        self.outstanding.discard(trial.id)
        if result.state is TrialState.FAILED:
            return  # discarded
        self.population.append((trial, result.score))
        if len(self.population) > self.population_size:
            self.population.popleft()  # aging: the oldest leaves

    def _trial(self, arch, parent: int | None) -> Trial:
        trial = Trial(id=self.next_id, arch=arch, budget=self.epochs, seed=trial_seed(self.seed, self.next_id),
                      info={"parent": parent})
        self.next_id += 1
        self.outstanding.add(trial.id)
        return trial
