"""Non-uniform successive halving (NOSH) and its baselines as ask/tell strategies.

RANK-NOSH (Wang, Chen, Cheng, Tang & Hsieh, ICCV 2021; Wang's thesis, ch. 4) keeps a
*pyramid* of candidates: level i holds the candidates trained for ``budgets[i]`` epochs,
e, ηe, η²e, … up to ``epochs``. Each round new candidates enter the bottom level and the top
1/η of every level is promoted to the next one, *resumed from its checkpoint* (a trial with
``resume_from``: Adam's moments and the random state travel too, so the promoted candidate
continues its learning curve exactly; see :class:`~archgraph.evaluate.TrialEvaluator`). Unlike
successive halving, nothing is discarded: a candidate left behind stays in its level and is
promoted in a later round if it is then among the best of the level still waiting. New
candidates are the top ``n_new`` unseen architectures of a pool of ``pool_size`` random ones,
ranked by a predictor fitted to every ``(arch, epochs, accuracy)`` observed so far (the
thesis's pairwise ranking GNN, :class:`archgraph.predict.gnn.RankingPredictor`), or random
ones without a predictor (plain NOSH).

A *round*, in ask/tell terms: when nothing is outstanding, the next ``ask`` plans a round from
everything told so far: the promotions, top level first, then the new candidates; ``ask``
hands out the round's trials one by one and returns ``None`` while any of them is untold; the
ask after the last tell plans the next round. A planned round with no trial means the search
is exhausted, and ``ask`` returns ``None`` from then on.

Promotion rule, level i to i + 1: the candidates that ever reached level i + 1 are kept at
⌊(those that reached level i) / η⌋, filled by the best of the candidates resting at level i,
by their accuracy there (ties: the earlier candidate); so each round of ``n_new`` arrivals
promotes about ``n_new / η^(i+1)`` candidates into level i + 1 (RANK-NOSH, Fig. 2: "move top-rK").

The baselines share this machinery: :class:`SuccessiveHalving` is one pyramid filled once and
never refilled, whose left-behind candidates are discarded; :class:`PredictorSearch` is a
one-level pyramid: every candidate trained to ``epochs`` from scratch, the predictor refitted
after each batch.

A candidate whose trial fails or is pruned is discarded: it stays at the level it had reached
(if any) but is never promoted again, and the predictor is not fitted to the failed or cut-short
trial (a pruned trial left no checkpoint to resume, and its accuracy is not one of a level's
budget). A failed promotion's place in the level above goes to the next best candidate resting
at its level in a later round (successive halving has discarded those, so there its place stays
empty); a failed new candidate is not replaced in its round.

When the space runs out (a finite pool, such as a tabular benchmark's architectures, has been
proposed to the last one, or the sampler finds no unseen architecture in 20 draws per one
wanted), the quotas above stop growing and the pyramid would freeze with candidates left
waiting at its lower levels. So a round that has neither promotions nor new candidates, though
``candidates`` is not reached, *drains* the pyramid instead: from every level below the top,
top level first, it promotes the best ⌈w/η⌉ of the w candidates resting there, and the search
goes on until every candidate not discarded has reached the top level. (Wang's thesis stops
adding candidates at the pool size M, ``candidates``, and then ends: no drain there.)
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..embody import mlp_graph
from ..errors import BudgetError, SettingError, ShapeError, SpaceError
from ..graph import ArchGraph
from ..spaces import Space
from ..trial import Result, Trial, TrialState
from .feature_search import cell_feature_space

__all__ = ["NOSH", "Candidate", "PredictorSearch", "SuccessiveHalving", "pyramid_budgets"]

Architecture = tuple[ArchGraph, ...]
#: ``rng -> architecture``, or a finite pool of architectures (see :class:`NOSH`'s ``sampler``)
Sampler = Callable[[np.random.Generator], Architecture] | Sequence[Architecture]


def pyramid_budgets(epochs: int, eta: int = 2, *, levels: int | None = None, min_epochs: int | None = None) -> list[int]:
    """The epochs of each level, e, ηe, …, ``epochs``: give ``levels`` or ``min_epochs`` = e (default 1).

    Each level trains η times as long as the one below and the top level ``epochs``, so
    ``epochs`` must be e·η^k; a :class:`~archgraph.errors.BudgetError` otherwise says so and
    names the nearest valid ``epochs``.

    >>> pyramid_budgets(8), pyramid_budgets(27, 3, levels=3), pyramid_budgets(12, min_epochs=3)
    ([1, 2, 4, 8], [3, 9, 27], [3, 6, 12])
    >>> pyramid_budgets(3)
    Traceback (most recent call last):
    ...
    archgraph.errors.BudgetError: the pyramid's levels train e, 2e, 4e, … epochs, the top one epochs=3, so epochs \
must be e·2^k with e = 1: 1, 2, 4, 8, …; the nearest are 2 and 4 (choose epochs=2 or epochs=4, or set min_epochs \
/ levels)
    """
    if eta < 2 or epochs < 1:
        raise SettingError(f"need eta >= 2 and epochs >= 1, got eta={eta}, epochs={epochs}")
    if levels is not None and min_epochs is not None:
        raise SettingError(f"give levels or min_epochs, not both (got levels={levels}, min_epochs={min_epochs})")
    if levels is not None and levels < 1:
        raise SettingError(f"levels must be at least 1, got {levels}")
    given = levels
    if levels is None:
        levels = round(math.log(epochs / (min_epochs or 1), eta)) + 1 if epochs >= (min_epochs or 1) else 0
    first = epochs // eta ** (levels - 1) if levels >= 1 else 0
    budgets = [first * eta**i for i in range(levels)]
    if first < 1 or budgets[-1] != epochs or (min_epochs is not None and first != min_epochs):
        raise BudgetError(_pyramid_advice(epochs, eta, given, min_epochs or 1))
    return budgets


def _pyramid_advice(epochs: int, eta: int, levels: int | None, e: int) -> str:
    """Why ``epochs`` makes no pyramid, and the nearest ``epochs`` that would: with ``levels``
    fixed, the multiples of η^(levels - 1); else e·η^k."""
    rule = (f"the pyramid's levels train e, {eta}e, {eta ** 2}e, … epochs, the top one epochs={epochs}, so epochs "
            "must be ")
    if levels is not None:
        step = eta ** (levels - 1)
        valid = [m for m in (epochs // step * step, epochs // step * step + step) if m >= step]
        rule += f"a multiple of {eta}^{levels - 1} = {step} with levels={levels}"
    else:
        powers = [e * eta**k for k in range(max(4, math.ceil(math.log(epochs / e + 1, eta)) + 1))]  # past epochs
        valid = [*[v for v in powers if v <= epochs][-1:], next(v for v in powers if v > epochs)]
        rule += f"e·{eta}^k with e = {e}: " + ", ".join(map(str, powers[:4])) + ", …"
    nearest = [v for v in valid if abs(v - epochs) == min(abs(v - epochs) for v in valid)]
    return (f"{rule}; the nearest {'are' if len(nearest) > 1 else 'is'} {' and '.join(map(str, nearest))} "
            f"(choose {' or '.join(f'epochs={v}' for v in nearest)}, or set min_epochs / levels)")


@dataclass
class Candidate:
    """One architecture in the pyramid: where it rests and what it scored at each level."""

    index: int
    arch: Architecture
    level: int = 0
    trial: int | None = None       # the trial that trained it to its level: the checkpoint to resume
    scores: dict[int, float] = field(default_factory=dict)   # level → validation accuracy there
    discarded: bool = False


class NOSH:
    """Non-uniform successive halving (RANK-NOSH, Wang's thesis, ch. 4) as an ask/tell strategy.

    Parameters
    ----------
    space:
        A topology-only space (``fade``: cells drawn uniformly among the DAGs it allows) or the
        ``mlp`` space (a random depth, a random op per layer), unless ``sampler`` is given.
    epochs:
        The top level's budget, the full training of a candidate.
    seed:
        Seeds the pools, the random proposals and the predictor's torch RNG (the run seeds the trials' training).
    eta, levels, min_epochs:
        The pyramid (:func:`pyramid_budgets`): promote the top 1/η, budgets grow by η.
    n_new:
        Candidates added each round (the thesis's K).
    pool_size:
        Random architectures the predictor ranks each round (a fresh pool each round).
    predictor:
        ``None`` (random proposals), ``"gnn"`` (:class:`archgraph.predict.gnn.RankingPredictor`
        ``(space, seed=seed, **predictor_params)``, imported when asked for), an object with
        ``fit(observations)`` and ``score(archs) -> array`` (higher is better), or a factory
        ``(space, **predictor_params) -> predictor``. ``fit`` is called every round with all
        observations: it must refit from them alone (a replayed run refits the same way); it
        runs under torch's global RNG seeded from ``seed`` and the round. The first round, with
        nothing observed, is random, and so is a round whose ``fit`` raises ``ValueError``
        (e.g. no pair to rank yet), with a warning.
    predictor_params:
        Keyword arguments of the predictor's factory (``"gnn"``: of ``RankingPredictor``).
    candidates:
        Stop adding candidates after this many (the thesis's maximum pool size M); the run
        then finishes its promotions and is exhausted. ``None``: no limit.
    sampler:
        ``rng -> architecture``, a random architecture of ``space`` (for other spaces), or a
        finite pool: a sequence of architectures, each proposal drawn uniformly among those of
        them not proposed before (isomorphic duplicates count once).

    Examples
    --------
    >>> from archgraph import spaces
    >>> nosh = NOSH(spaces.load("mlp"), epochs=4, seed=0, n_new=4)
    >>> nosh.budgets, [t.budget for t in iter(nosh.ask, None)]
    ([1, 2, 4], [1, 1, 1, 1])
    """

    #: whether candidates left behind by a promotion leave the pyramid (successive halving)
    discards = False

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, eta: int = 2, levels: int | None = None,
                 min_epochs: int | None = None, n_new: int = 8, pool_size: int = 1000,
                 predictor: Any = None, predictor_params: dict[str, Any] | None = None,
                 candidates: int | None = None, sampler: Sampler | None = None):
        if n_new < 1 or pool_size < 1 or (candidates is not None and candidates < 1):
            raise SettingError(f"need n_new >= 1, pool_size >= 1 and candidates >= 1 (or None); got n_new={n_new}, "
                             f"pool_size={pool_size}, candidates={candidates}")
        self.space = space
        self.seed = seed
        self.eta = eta
        self.budgets = pyramid_budgets(epochs, eta, levels=levels, min_epochs=min_epochs)
        self.n_new = n_new
        self.pool_size = pool_size
        self.max_candidates = candidates
        self.predictor = _predictor(predictor, space, predictor_params or {}, seed)
        self.finite = None if sampler is None or callable(sampler) else {_key(a): tuple(a) for a in sampler}
        self.sample = _sampler(space) if sampler is None else sampler if self.finite is None else None
        self.rng = np.random.default_rng(seed)
        self.candidates: list[Candidate] = []
        self.observations: list[tuple[Architecture, int, float]] = []   # (arch, epochs, accuracy) told
        self.epochs_trained = 0     # epochs of the trials told complete: budgets less what their resumed checkpoints had
        self.rounds = 0
        self.queue: deque[Trial] = deque()
        self.outstanding = 0   # asked, not told
        self.exhausted = False
        self._seen: set[tuple[str, ...]] = set()

    def ask(self) -> Trial | None:
        if not self.queue and not self.outstanding and not self.exhausted:
            self._plan_round()
        if not self.queue:
            return None
        self.outstanding += 1
        return self.queue.popleft()

    def tell(self, trial: Trial, result: Result) -> None:
        self.outstanding -= 1
        candidate = self.candidates[trial.info["candidate"]]
        if result.state is not TrialState.COMPLETE:
            candidate.discarded = True  # see the module docstring
            return
        level = self.budgets.index(trial.budget)
        candidate.level, candidate.trial = level, trial.id
        candidate.scores[level] = result.score
        self.observations.append((candidate.arch, trial.budget, result.score))
        self.epochs_trained += trial.budget - (self.budgets[level - 1] if trial.resume_from is not None else 0)

    @property
    def pyramid(self) -> list[list[int]]:
        """Candidate indices resting at each level (the discarded left out), best first."""
        rest = [[] for _ in self.budgets]
        for c in self.candidates:
            if not c.discarded and c.level in c.scores:
                rest[c.level].append(c)
        return [[c.index for c in sorted(level, key=_rank)] for level in rest]

    @property
    def best(self) -> tuple[Architecture, float] | None:
        """The best architecture at the top level and its accuracy there; ``None`` before one is told."""
        top = [c for c in self.candidates if len(self.budgets) - 1 in c.scores]
        if not top:
            return None
        c = min(top, key=_rank)
        return c.arch, c.scores[c.level]

    def _plan_round(self) -> None:
        """Queue the next round: promotions, top level first, then the new candidates."""
        for level in reversed(range(len(self.budgets) - 1)):
            for c in self._promotions(level):
                self._enqueue(c, level + 1, resume_from=c.trial)
        room = self.n_new if self.max_candidates is None else min(self.n_new, self.max_candidates - len(self.candidates))
        for arch in self._propose(room) if room > 0 else ():
            c = Candidate(len(self.candidates), arch)
            self.candidates.append(c)
            self._enqueue(c, 0, resume_from=None)
        if not self.queue and room > 0:  # the space ran out: drain the pyramid (module docstring)
            for level in reversed(range(len(self.budgets) - 1)):
                resting = sorted((c for c in self.candidates if c.level == level and level in c.scores
                                  and not c.discarded), key=_rank)
                for c in resting[:math.ceil(len(resting) / self.eta)]:
                    self._enqueue(c, level + 1, resume_from=c.trial)
        self.exhausted = not self.queue
        self.rounds += not self.exhausted

    def _promotions(self, level: int) -> list[Candidate]:
        """The best candidates resting at ``level`` that the level above's quota takes."""
        reached = [c for c in self.candidates if max(c.scores, default=-1) >= level]
        above = sum(max(c.scores) > level for c in reached)
        resting = sorted((c for c in reached if c.level == level and not c.discarded), key=_rank)
        promoted = resting[:max(0, len(reached) // self.eta - above)]
        if self.discards and promoted:
            for c in resting[len(promoted):]:
                c.discarded = True
        return promoted

    def _propose(self, n: int) -> list[Architecture]:
        """``n`` unseen architectures: the predictor's top ones of a fresh random pool, or random ones."""
        if self.predictor is None or not self.observations:
            return self._unseen(n)
        pool = self._unseen(self.pool_size, mark=False)
        with torch.random.fork_rng(devices=[]):  # a predictor drawing from torch's RNG stays replayable
            torch.manual_seed(int(np.random.SeedSequence(self.seed, spawn_key=(self.rounds,)).generate_state(1)[0]))
            try:
                self.predictor.fit(list(self.observations))
            except ValueError as err:  # e.g. no pair to rank yet: all accuracies equal
                warnings.warn(f"round {self.rounds}: the predictor cannot be fitted yet ({err}); "
                              "proposing random architectures", stacklevel=3)
                scores = np.zeros(len(pool))
            else:
                scores = np.asarray(self.predictor.score(pool), dtype=float)
        if scores.shape != (len(pool),):
            raise ShapeError(f"the predictor scored {len(pool)} architectures with an array of shape {scores.shape}; "
                             f"expected ({len(pool)},)")
        top = [pool[i] for i in np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")[:n]]
        self._seen.update(map(_key, top))
        return top

    def _unseen(self, n: int, mark: bool = True) -> list[Architecture]:
        """Up to ``n`` distinct random architectures not proposed before (fewer if the space runs out)."""
        found: dict[tuple[str, ...], Architecture] = {}
        if self.finite is not None:
            unseen = [key for key in self.finite if key not in self._seen]
            found = {unseen[i]: self.finite[unseen[i]] for i in self.rng.permutation(len(unseen))[:n]}
        else:
            for _ in range(20 * n):
                if len(found) == n:
                    break
                arch = tuple(self.sample(self.rng))
                if (key := _key(arch)) not in self._seen:
                    found.setdefault(key, arch)
        if mark:
            self._seen.update(found)
        return list(found.values())

    def _enqueue(self, candidate: Candidate, level: int, resume_from: int | None) -> None:
        self.queue.append(Trial.propose(candidate.arch, self.budgets[level], resume_from=resume_from,
                                        info={"candidate": candidate.index, "level": level, "round": self.rounds}))


class SuccessiveHalving(NOSH):
    """Plain successive halving (Jamieson & Talwalkar 2016; the thesis's baseline): ``candidates``
    random architectures at e epochs, the top 1/η resumed to ηe, …, the rest discarded.

    One round per level; then the search is exhausted. Its parameters are :class:`NOSH`'s but
    for ``n_new``, ``pool_size`` and the predictor, and ``candidates`` says something else:

    Parameters
    ----------
    candidates:
        Random architectures trained at the lowest budget (``None``: η^(levels − 1), so that one
        candidate reaches the top).

    >>> from archgraph import spaces
    >>> sh = SuccessiveHalving(spaces.load("mlp"), epochs=4, seed=0)
    >>> [t.budget for t in iter(sh.ask, None)]
    [1, 1, 1, 1]
    """

    discards = True

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, eta: int = 2, levels: int | None = None,
                 min_epochs: int | None = None, candidates: int | None = None,
                 sampler: Sampler | None = None):
        n = candidates or eta ** (len(pyramid_budgets(epochs, eta, levels=levels, min_epochs=min_epochs)) - 1)
        super().__init__(space, epochs=epochs, seed=seed, eta=eta, levels=levels, min_epochs=min_epochs, n_new=n,
                         candidates=n, sampler=sampler)


class PredictorSearch(NOSH):
    """Predictor-based search with full training (the thesis's baseline to NOSH): every
    candidate trained to ``epochs`` from scratch, ``n_new`` per round, the predictor refitted
    after each round to propose the next (random proposals without a predictor).

    >>> from archgraph import spaces
    >>> search = PredictorSearch(spaces.load("mlp"), epochs=3, seed=0, n_new=2)
    >>> [(t.budget, t.resume_from) for t in iter(search.ask, None)]
    [(3, None), (3, None)]
    """

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, n_new: int = 8, pool_size: int = 1000,
                 predictor: Any = None, predictor_params: dict[str, Any] | None = None, candidates: int | None = None,
                 sampler: Sampler | None = None):
        super().__init__(space, epochs=epochs, seed=seed, levels=1, n_new=n_new, pool_size=pool_size,
                         predictor=predictor, predictor_params=predictor_params, candidates=candidates, sampler=sampler)


def _rank(c: Candidate) -> tuple[float, int]:
    """Sort key within a level: best accuracy there first (NaN last), then the earlier candidate."""
    score = c.scores[c.level]
    return (math.inf if math.isnan(score) else -score, c.index)


def _key(arch: Architecture) -> tuple[str, ...]:
    """An architecture's identity up to isomorphism of its cells."""
    return tuple(cell.canonical_hash() for cell in arch)


def _predictor(predictor: Any, space: Space, params: dict[str, Any], seed: int):
    """The predictor object ``predictor`` names (see :class:`NOSH`); the GNN seeded with the run's seed."""
    if predictor is None or (hasattr(predictor, "fit") and not isinstance(predictor, type)):
        return predictor
    if predictor == "gnn":
        from ..predict.gnn import RankingPredictor

        return RankingPredictor(space, **{"seed": seed, **params})
    if callable(predictor):
        return predictor(space, **params)
    raise SettingError(f"predictor must be None, 'gnn', an object with fit() and score(), or a factory; got {predictor!r}")


def _sampler(space: Space) -> Callable[[np.random.Generator], Architecture]:
    """Random architectures of ``space``: uniform cells of a topology-only space, or random MLP chains."""
    if space.embodiment == "mlp" and space.ops and space.max_vertices:
        ops, low, high = space.ops, space.min_vertices, space.max_vertices

        def mlp(rng: np.random.Generator) -> Architecture:
            return (mlp_graph([ops[i] for i in rng.integers(len(ops), size=int(rng.integers(low, high + 1)))]),)

        return mlp
    if space.ops is not None:
        raise SpaceError(f"space {space.name!r}: NOSH draws architectures of topology-only spaces (fade) and of "
                         "the mlp space (with max_vertices); pass sampler=(rng -> architecture) for this one")
    cells = cell_feature_space(space).graphs

    def uniform(rng: np.random.Generator) -> Architecture:
        return tuple(cells[i] for i in rng.integers(len(cells), size=len(space.cells)))

    return uniform
