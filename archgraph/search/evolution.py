"""Regularised evolution over ArchGraphs (Real, Aggarwal, Huang & Le 2019, "Regularized
Evolution for Image Classifier Architecture Search", §2, Algorithm 1).

A population of ``population_size`` architectures, first drawn uniformly from the cells the
space allows; then, for each new trial, ``sample_size`` members are drawn at random, the best
of them is the parent, and the child is the parent with one cell mutated by
:func:`archgraph.mutate.random_mutation`. The child joins the population and the *oldest*
member leaves it (aging), whatever its accuracy.

A failed trial is discarded: it never joins the population, and while the population is not
full (a member of the initial population failed) a fresh random architecture is asked in its
place. A pruned trial joins the population with the validation accuracy it reached: it is a
weak member (it was stopped for being below the median), rarely a parent, and ages out.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .. import mutate
from ..spaces import Space
from ..trial import Result, Trial, TrialState
from .feature_search import cell_feature_space, trial_seed

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution:
    """Ask/tell regularised evolution on a topology-only chained space.

    Children are asked as soon as the initial population has been told; with several
    workers, a child's parent is chosen among the members told so far. Random members are
    asked while the population and the trials in flight are fewer than ``population_size``.
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
        self.pool = cell_feature_space(space).graphs  # every cell the space allows
        self.rng = np.random.default_rng(seed)
        self.population: deque[tuple[Trial, float]] = deque()
        self.outstanding: set[int] = set()  # asked, not told
        self.next_id = 0

    def ask(self) -> Trial | None:
        if len(self.population) + len(self.outstanding) < self.population_size:  # the first ones, or a failure's place
            arch = tuple(self.pool[i] for i in self.rng.integers(len(self.pool), size=len(self.space.cells)))
            return self._trial(arch, parent=None)
        if not self.population:
            return None  # the initial population is still being trained
        members = [self.population[i] for i in self.rng.choice(
            len(self.population), size=min(self.sample_size, len(self.population)), replace=False)]
        parent = max(members, key=lambda m: m[1])[0]
        row = int(self.rng.integers(len(parent.arch)))
        child = list(parent.arch)
        child[row] = mutate.random_mutation(parent.arch[row], self.rng, max_nodes=self.space.max_vertices,
                                            kinds=("add_edge", "remove_edge", "add_vertex", "remove_vertex"))
        return self._trial(tuple(child), parent=parent.id)

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
