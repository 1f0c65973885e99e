"""Training a hyper trial: the d × w hyper-architecture of a FaDE search step (FaDE §2.2–2.4).

A trial whose task is a :class:`TrainHyperArchitecture` carries its pools row by row in ``arch``
(``task.rows`` × ``task.width`` cells); this module registers its training
(:func:`archgraph.trial.register_objective`), which the run's
:class:`~archgraph.evaluate.TrialEvaluator` calls. :func:`train_hyper_trial` builds the
hyper-architecture (:func:`archgraph.hyper.build_hyper`, hard Gumbel-softmax at ``task.tau``
with ``task.estimator``, separate paths or shared hyper-cells after ``task.shared``), trains it
bi-level (:func:`archgraph.oneshot.train_bilevel`: weights on the run's training split,
architecture weights on its validation split, FaDE §3's Adam settings) for ``trial.budget``
epochs under the max-norm schedule (:class:`archgraph.oneshot.MaxNorm`, cell-dependent after
``task.cell_dependent``), and reports

* ``curve``: the trainer's history, each row with every row's architecture weights (``alpha``);
* ``metrics``: ``hyper_train_accuracy``, ``hyper_arch_accuracy`` (the last epoch's, on the
  batches seen; each forward samples a path), ``parameters``, ``epochs``, and how far training
  moved α against where its initialisation put it: ``alpha_travel`` (mean |α_end − α_start|
  over every architecture parameter) beside ``alpha_init_spread`` (the standard deviation of
  α_start; FaDE §3 draws α from N(0, 0.5)) — ranks read where the first is much smaller than the
  second are mostly the initialisation's. No ``val_accuracy``: a hyper trial competes for no
  "best" (:attr:`Result.scored`);
* the checkpoint ``checkpoints/trial-<id>.pt`` (weights and pools, for a warm start) and
  ``hyper/trial-<id>.json`` (:func:`save_hyper`: the space, pools and weights that
  ``archgraph ranks`` reads).

With ``task.warm_start`` set to an earlier hyper trial's id, the weights start from that
trial's (:meth:`archgraph.hyper.HyperArchitecture.warm_start`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..graph import ArchGraph
from ..hyper import HyperArchitecture, build_hyper
from ..relax import Gumbel, arch_parameters
from ..store import load_checkpoint, save_checkpoint, checkpoint_path
from ..trial import Result, Task, Trial, register_objective
from .bilevel import train_bilevel
from .regularize import MaxNorm

__all__ = ["HYPER_FOLDER", "HyperSummary", "TrainHyperArchitecture", "hyper_pool", "load_hyper", "save_hyper",
           "train_hyper_trial"]

#: the folder of a run directory that holds the hyper trials' JSON summaries
HYPER_FOLDER = "hyper"


@dataclass(frozen=True)
class TrainHyperArchitecture(Task, tag="hyper"):
    """Train the ``rows`` × ``width`` hyper-architecture over the trial's cells (its pools, row by
    row) instead of one architecture; FaDE's search asks it (:class:`archgraph.search.FadeSearch`
    documents the settings: ``tau`` and ``estimator`` of the hard Gumbel-softmax, ``shared``
    hyper-cells, the ``cell_dependent`` max-norm schedule and its scale ``max_norm``, α's
    ``init_std`` and learning rate ``arch_lr``), its weights starting from those of the hyper trial
    ``warm_start`` where given. Tasks stored before the last three existed read back with the
    paper's values, their defaults.

    >>> task = TrainHyperArchitecture(rows=4, width=7, tau=10.0, shared=True, cell_dependent=False,
    ...                               estimator="all", warm_start=3)
    >>> task.sources, Task.from_dict(task.to_dict()) == task
    (frozenset({3}), True)
    """

    rows: int
    width: int
    tau: float
    shared: bool
    cell_dependent: bool
    estimator: str
    warm_start: int | None = None
    max_norm: float = 1.0
    init_std: float = 0.5
    arch_lr: float = 1e-3

    @property
    def sources(self) -> frozenset[int]:
        return frozenset(() if self.warm_start is None else (self.warm_start,))


def hyper_pool(trial: Trial) -> list[list[ArchGraph]]:
    """The pool matrix of a hyper trial, row by row."""
    task = trial.task
    if not isinstance(task, TrainHyperArchitecture):
        raise ValueError(f"trial {trial.id} is not a hyper trial (its task is {task.tag!r})")
    if task.rows * task.width != len(trial.arch):
        raise ValueError(f"hyper trial {trial.id}: {len(trial.arch)} cells do not fill {task.rows} rows of "
                         f"{task.width}")
    return [list(trial.arch[i * task.width:(i + 1) * task.width]) for i in range(task.rows)]


def train_hyper_trial(trial: Trial, *, space: str, weight_data: Dataset, arch_data: Dataset,
                      input_shape: Sequence[int], num_classes: int, run_dir: str,
                      space_params: Mapping[str, Any], batch_size: int, lr: float, weight_decay: float,
                      grad_clip: float | None, device: str | None,
                      report: Callable[[dict], None] | None = None) -> Result:
    """Train a hyper trial (see the module docstring) and return its :class:`Result`; ``report``
    (a :class:`~archgraph.report.Reporter`) takes every epoch's history row as it ends."""
    start = time.perf_counter()
    pool, task = hyper_pool(trial), trial.task
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(trial.seed)
        hyper = _build(space, pool, task, input_shape, num_classes, space_params)
        if task.warm_start is not None:
            hyper.warm_start(_previous(space, task, input_shape, num_classes, space_params, run_dir))
        alpha_start = torch.cat([a.detach().flatten() for a in arch_parameters(hyper)])
        fit = train_bilevel(
            hyper, weight_data, arch_data, epochs=trial.budget, batch_size=batch_size, lr=lr,
            weight_decay=weight_decay, grad_clip=grad_clip, seed=trial.seed, device=device, progress=False,
            arch_lr=task.arch_lr,
            regularizer=MaxNorm(trial.budget, start=task.max_norm, end=-task.max_norm,
                                cell_dependent=task.cell_dependent),
            on_epoch=None if report is None else lambda row, _: report(row),
        )
    last = fit.history[-1]
    alpha_end = torch.cat([a.detach().flatten().cpu() for a in arch_parameters(hyper)])
    travel = {"alpha_travel": (alpha_end - alpha_start).abs().mean().item(),
              "alpha_init_spread": alpha_start.std().item()}
    metrics = {"hyper_train_accuracy": last["train_accuracy"], "hyper_arch_accuracy": last["arch_accuracy"],
               "parameters": sum(p.numel() for p in hyper.parameters()), "epochs": trial.budget, **travel}
    state = {"model": hyper.state_dict(), "pool": [[g.to_dict() for g in row] for row in pool],
             "epochs": trial.budget, "curve": fit.history}
    checkpoint = save_checkpoint(run_dir, trial.id, state)
    summary = HyperSummary(space, pool, torch.tensor(last["alpha"], dtype=torch.float64),
                           [row["alpha"] for row in fit.history],
                           {"trial": trial.id, "anchors": trial.info.get("anchors"), **travel})
    save_hyper(Path(run_dir) / HYPER_FOLDER / f"trial-{trial.id}.json", summary)
    return Result(trial.id, metrics, tuple(fit.history), checkpoint, time.perf_counter() - start)


def _train(evaluator, trial: Trial, report: Callable[[dict], None] | None) -> Result:
    """The objective of a :class:`TrainHyperArchitecture` trial with a run's
    :class:`~archgraph.evaluate.TrialEvaluator`: its weights on the training part, its
    architecture weights on the validation part."""
    train_part, val_part, task = evaluator.data()
    return train_hyper_trial(
        trial, space=evaluator.space, weight_data=train_part, arch_data=val_part, input_shape=task.input_shape,
        num_classes=task.num_classes, run_dir=evaluator.run_dir, space_params=evaluator.space_params,
        batch_size=evaluator.batch_size, lr=evaluator.lr, weight_decay=evaluator.weight_decay,
        grad_clip=evaluator.grad_clip, device=evaluator.device, report=report)


register_objective(TrainHyperArchitecture, _train)


@dataclass(frozen=True)
class HyperSummary:
    """A trained hyper-architecture as :func:`save_hyper` writes it."""

    space: str
    pool: list[list[ArchGraph]]
    #: ``(d, w)``: each row's architecture weights after training
    probabilities: torch.Tensor
    #: the row weights after each epoch, ``(epochs, d, w)`` as nested lists
    history: list[list[list[float]]]
    notes: dict[str, Any]


def save_hyper(path: str | Path, summary: HyperSummary) -> Path:
    """Write a hyper-architecture's summary as JSON, atomically (a temporary file moved over ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"space": summary.space, "pool": [[g.to_dict() for g in row] for row in summary.pool],
            "probabilities": summary.probabilities.tolist(), "history": summary.history, **summary.notes}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data) + "\n")
    os.replace(tmp, path)
    return path


def load_hyper(path: str | Path) -> HyperSummary:
    """Read a file :func:`save_hyper` wrote."""
    data = json.loads(Path(path).read_text())
    pool = [[ArchGraph.from_dict(g) for g in row] for row in data.pop("pool")]
    return HyperSummary(data.pop("space"), pool, torch.tensor(data.pop("probabilities"), dtype=torch.float64),
                        data.pop("history"), data)


def _build(space, pool, task: TrainHyperArchitecture, input_shape, num_classes, space_params) -> HyperArchitecture:
    return build_hyper(space, pool, input_shape=input_shape, num_classes=num_classes,
                       relaxation=Gumbel(tau=task.tau, hard=True, estimator=task.estimator),
                       shared=task.shared, init_std=task.init_std, **space_params)


def _previous(space, task: TrainHyperArchitecture, input_shape, num_classes, space_params, run_dir) -> HyperArchitecture:
    """The hyper-architecture of the trial ``task.warm_start``, its weights loaded."""
    state = load_checkpoint(run_dir, checkpoint_path(task.warm_start))
    pool = [[ArchGraph.from_dict(g) for g in row] for row in state["pool"]]
    previous = _build(space, pool, task, input_shape, num_classes, space_params)
    previous.load_state_dict(state["model"])
    return previous
