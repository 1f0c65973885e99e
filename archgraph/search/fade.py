"""FaDE's pseudo-gradient search in the feature spaces of a chained space (FaDE §2.4, eq. 5).

Every row (cell position) i of the chain keeps an *anchor* M_i, a point of the row's feature
space (:func:`~archgraph.search.feature_search.cell_feature_space`, scaled to ``[0, 1]^k``,
k = 3 features). One outer step:

1. the row's pool is ``{M_i} ∪ {M_i + γ e_k, M_i − γ e_k | k = 1..K}``, each point turned into a
   DAG by the :class:`~archgraph.generate.BucketGenerator`, drawn among its bucket's DAGs not yet
   in the row (a row repeats a DAG only where a bucket holds nothing new); so w = 2K + 1 = 7 DAGs per row
   ("feature dimension w/2", §2.4);
2. the d × w hyper-architecture of these pools is trained (a *hyper trial*, its task a
   :class:`~archgraph.oneshot.hyper_trial.TrainHyperArchitecture`: bi-level, hard Gumbel-softmax,
   max-norm schedule), which reports each row's architecture weights β_i;
3. every anchor moves by the finite difference of its row's weights along each feature,
   independently of the other rows (§3.2: "independent rows")::

       M_i ← clip(M_i + λ Σ_k e_k (β_i(M_i + γ e_k) − β_i(M_i − γ e_k)), 0, 1)

   The paper writes eq. 5 as a descent, ``M − λ Σ …``, on β; but β is a preference (higher
   ranks better, §2.3), so moving towards the better-ranked neighbour means *ascending* β.
   We ascend, i.e. descend −β, and say so here.

Validation (§3.2, Fig. 7): at every step the strategy also asks ``draws`` architectures drawn
from the current anchors (one DAG per row, from the anchor's bucket), trained from scratch
for ``epochs`` epochs; these are the run's scored trials, so "best" means the best of them.

The anchors' trajectory (Fig. 6) is in :attr:`FadeSearch.trajectory` and in each trial's
``info["anchors"]``; :meth:`FadeSearch.finish` draws it into the run folder. Replaying the same
asks and tells gives the same run (resume).

A hyper trial that fails (or is pruned) gives no β: the anchors stay where they are, and the
next step trains a hyper-architecture over new pools drawn around them, warm-started from the
last hyper trial that completed (the failed one left no weights). A validation architecture
that fails or is pruned is only recorded: the anchors never depend on them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import SettingError
from ..features import FADE_FEATURES
from ..generate import BucketGenerator
from ..graph import ArchGraph
from ..oneshot.hyper_trial import HYPER_FOLDER, TrainHyperArchitecture
from ..plot import accuracy_by_step, draw_trajectories
from ..relax import Gumbel
from ..spaces import Space
from ..trial import Result, Trial, TrialState
from .feature_search import cell_feature_space

__all__ = ["FadeSearch", "pseudo_gradient_step"]


class FadeSearch:
    """FaDE pseudo-gradient search (§2.4, eq. 5) as an ask/tell strategy.

    Parameters
    ----------
    space:
        A chained, topology-only space (``fade``).
    epochs:
        Training epochs of each validation architecture (§3.2 trained them 30 epochs).
    seed:
        Seeds the initial anchors (uniform in ``[0, 1]^k``) and the generator's draws (the run
        seeds the trials' training).
    hyper_epochs:
        Epochs of each hyper-architecture training (§3.2: 5 per outer epoch).
    gamma:
        The finite-difference offset γ in scaled feature units. The default 0.25 is one
        interval of the default 4-bin grid, so that ``M ± γ e_k`` reach the neighbouring boxes.
    step:
        The step λ on the anchors (the paper gives no value; β differences are at most 1, so
        λ = 1 moves an anchor by at most one unit per feature).
    draws:
        Validation architectures drawn from the anchors at each step (0: none).
    shared:
        Train the weight-shared hyper-cells (FaDE §2.2 "Weight Sharing"; ``False``: separate paths).
    warm_start:
        Start each hyper-architecture from the previous one's weights (shared hyper-cells,
        and cells that reappear in the same row).

        Both default to ``True``, our choice: a hyper-architecture trains far more slowly than
        one architecture (see benchmarks/fade_correlation.py: on digits, 150 epochs bring the
        625-path one to 0.63 training accuracy with separate paths, 0.86 with shared
        hyper-cells), so one trained from scratch for the paper's 5 epochs per step learns
        almost nothing, and its row weights are mostly their random start. Shared hyper-cells
        carry all their weights from step to step, whatever the new pools.
    cell_dependent:
        Cell-dependent max-norm schedule (shallower rows regularised earlier, §2.2, Fig. 2a).
    tau:
        Gumbel-softmax temperature (§3: 10, hard).
    estimator:
        Which cells an α step runs: ``"all"`` of each row (straight-through, the default) or
        the ``"sampled"`` path alone (GDAS); see :mod:`archgraph.hyper`.
    max_norm:
        The max-norm schedule's scale: ``r`` falls linearly from ``+max_norm`` to ``-max_norm``
        (§2.2, Fig. 2a: 1, the default). A departure measured in benchmarks/fade_correlation.py
        (digits, separate paths): at 1 every row is decided in the few epochs where ``r``
        crosses 0 (FaDE-rank Spearman 0.34 / 0.54 / −0.34 for three hyper seeds); at 0.01 the
        data moves α over the whole training (0.64 / 0.60 / 0.13; over 400 hyper epochs
        0.73 / 0.72 / 0.09). 0 turns the regulariser off.
    init_std:
        The standard deviation of α's normal initialisation (§3: 0.5).
    arch_lr:
        α's constant Adam learning rate (§3 keeps it constant and gives no value; 1e-3 here, the
        weights' rate). 6.5e-3 gives α the travel of the paper's 3,900 steps at 1e-3 (on digits:
        Spearman −0.18 / 0.59 / 0.45).
    """

    def __init__(self, space: Space, *, epochs: int, seed: int = 0, hyper_epochs: int = 5, gamma: float = 0.25,
                 step: float = 1.0, draws: int = 1, shared: bool = True, warm_start: bool = True,
                 cell_dependent: bool = False, tau: float = 10.0, estimator: str = "all", max_norm: float = 1.0,
                 init_std: float = 0.5, arch_lr: float = 1e-3):
        if hyper_epochs < 1 or draws < 0 or not gamma > 0 or not step > 0:
            raise SettingError(f"need hyper_epochs >= 1, draws >= 0, gamma > 0 and step > 0; got hyper_epochs="
                             f"{hyper_epochs}, draws={draws}, gamma={gamma}, step={step}")
        if not max_norm >= 0 or not init_std >= 0 or not arch_lr > 0:
            raise SettingError(f"need max_norm >= 0, init_std >= 0 and arch_lr > 0; got max_norm={max_norm}, "
                             f"init_std={init_std}, arch_lr={arch_lr}")
        self.space = space
        self.epochs = epochs
        self.seed = seed
        self.hyper_epochs = hyper_epochs
        self.gamma = float(gamma)
        self.step = float(step)
        self.draws = draws
        Gumbel(tau, hard=True, estimator=estimator)  # refuses a bad tau or estimator now, not in the first hyper trial
        self.hyper = {"shared": bool(shared), "cell_dependent": bool(cell_dependent), "tau": float(tau),
                      "estimator": estimator, "max_norm": float(max_norm), "init_std": float(init_std),
                      "arch_lr": float(arch_lr)}
        self.warm_start = warm_start
        features = cell_feature_space(space)
        self.generator = BucketGenerator(features)
        self.dims = features.points.shape[1]
        self.rng = np.random.default_rng(seed)
        self.anchors = self.rng.random((len(space.cells), self.dims))
        self.trajectory: list[np.ndarray] = [self.anchors.copy()]
        self.queue: deque[Trial] = deque()
        self.waiting = False                # for the hyper trial whose weights the next step needs
        self.last_hyper: int | None = None  # the last hyper trial that completed: the next one's warm start

    @property
    def width(self) -> int:
        """w = 2K + 1 pool members per row: the anchor and the anchor ± γ along each feature."""
        return 2 * self.dims + 1

    def offsets(self) -> np.ndarray:
        """The pool's points relative to its anchor, ``(w, K)``: 0, then +γ e_k, −γ e_k for each k."""
        steps = self.gamma * np.eye(self.dims)
        return np.concatenate([np.zeros((1, self.dims)), np.stack([steps, -steps], axis=1).reshape(-1, self.dims)])

    def ask(self) -> Trial | None:
        if not self.queue:
            if self.waiting:
                return None
            self._enqueue_step()
        return self.queue.popleft()

    def tell(self, trial: Trial, result: Result) -> None:
        if not isinstance(trial.task, TrainHyperArchitecture):
            return
        self.waiting = False
        if result.state is not TrialState.COMPLETE:
            return  # no β: the next step draws new pools around the same anchors
        self.last_hyper = trial.id
        beta = np.asarray(result.curve[-1]["alpha"], dtype=float)
        if beta.shape != (len(self.space.cells), self.width):
            raise ValueError(f"hyper trial {trial.id} reported weights of shape {beta.shape}, "
                             f"expected {(len(self.space.cells), self.width)}")
        self.anchors = pseudo_gradient_step(self.anchors, beta, self.step)
        self.trajectory.append(self.anchors.copy())

    def _enqueue_step(self) -> None:
        """Queue the hyper trial of the current anchors and their validation trials."""
        step = len(self.trajectory) - 1
        anchors = self.anchors.round(6).tolist()
        pool = [self._distinct_row(anchor + self.offsets()) for anchor in self.anchors]
        task = TrainHyperArchitecture(rows=len(pool), width=self.width,
                                      warm_start=self.last_hyper if self.warm_start else None, **self.hyper)
        hyper = Trial.propose(tuple(g for row in pool for g in row), self.hyper_epochs,
                              info={"step": step, "anchors": anchors}, task=task)
        self.waiting = True
        self.queue.append(hyper)
        for _ in range(self.draws):
            arch = tuple(self.generator(anchor, self.rng) for anchor in self.anchors)
            self.queue.append(Trial.propose(arch, self.epochs, info={"point": step, "coordinates": anchors}))

    def _distinct_row(self, points: np.ndarray) -> list[ArchGraph]:
        """A row's pool, one DAG per point, each drawn among its bucket's graphs not yet in the
        row (up to isomorphism), so that the row's w cells are distinct wherever the buckets
        allow; a bucket whose graphs are all taken gives a duplicate."""
        row: list[ArchGraph] = []
        for point in points:
            row.append(self.generator.draw_new(point, self.rng, row))
        return row

    def finish(self, trials: Sequence[Trial], results: Sequence[Result], run_dir: Path) -> list[str]:
        """FaDE's outputs of a run (the search session calls it at the end): ``trajectory.png``, each
        row's anchor over the steps (Fig. 6), and ``anchors.png``, the validation accuracy of the
        architectures drawn at each step (Fig. 7), in ``run_dir``; returns the summary's lines on
        the hyper-architectures trained."""
        hyper = [t for t in trials if isinstance(t.task, TrainHyperArchitecture)]
        if not hyper:
            return []
        draw_trajectories([t.info["anchors"] for t in hyper], run_dir / "trajectory.png", features=FADE_FEATURES)
        steps = {t.id: t.info["point"] for t in trials if "point" in t.info}
        drawn = [(steps[r.trial_id], r.score) for r in results if r.trial_id in steps and r.scored]
        if drawn:
            accuracy_by_step(drawn, run_dir / "anchors.png")
        complete = {r.trial_id: r.metrics for r in results if r.state is TrialState.COMPLETE}
        trained = [t.id for t in hyper if t.id in complete]
        if not trained:
            return []
        last = run_dir / HYPER_FOLDER / f"trial-{trained[-1]}.json"
        lines = [(f"{len(trained)} hyper-architectures trained; the anchors' paths are in trajectory.png; FaDE-ranks "
                  f"of the last: archgraph ranks {last}")]
        travel = [complete[i] for i in trained if "alpha_travel" in complete[i]]
        if travel:
            moved, spread = (sum(m[key] for m in travel) / len(travel) for key in ("alpha_travel", "alpha_init_spread"))
            lines.append(f"training moved α by a mean |Δα| of {moved:.3f} per hyper-architecture against an initial "
                         f"spread of {spread:.3f} (std): the ranks are the data's only where the first is not small "
                         "beside the second")
        return lines


def pseudo_gradient_step(anchors: np.ndarray, beta: np.ndarray, step: float) -> np.ndarray:
    """One FaDE anchor update (§2.4, eq. 5, ascending β; see the module docstring).

    ``beta[i]`` holds row i's weights in pool order: the anchor, then ``+γ e_k``, ``−γ e_k``
    for each feature k. Rows move independently; the result is clipped to ``[0, 1]``.

    >>> anchors = np.array([[0.5, 0.5, 0.5]])
    >>> beta = np.array([[0.1, 0.3, 0.1, 0.1, 0.1, 0.1, 0.2]])   # +γe1 preferred, −γe3 preferred
    >>> pseudo_gradient_step(anchors, beta, step=1.0).round(3).tolist()
    [[0.7, 0.5, 0.4]]
    """
    plus, minus = beta[:, 1::2], beta[:, 2::2]
    return np.clip(anchors + step * (plus - minus), 0.0, 1.0)
