"""The records a search exchanges: a :class:`Trial` to train and the :class:`Result` it gave.

Strategies ask for trials and are told results (:mod:`archgraph.search.base`), evaluators
turn trials into results (:mod:`archgraph.evaluate`), and the store records both
(:mod:`archgraph.store`); this module depends on none of them.

Examples
--------
>>> from archgraph import ArchGraph
>>> from archgraph.trial import Trial, Result
>>> t = Trial(id=0, arch=(ArchGraph([(0, 1)]),), budget=3, seed=7)
>>> Trial.from_dict(t.to_dict()) == t
True
>>> Result(trial_id=0, metrics={"val_accuracy": 0.9}).score
0.9
>>> Result.failure(1, "ValueError: boom").state
<TrialState.FAILED: 'failed'>
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .graph import ArchGraph

__all__ = ["Trial", "Result", "TrialState", "OBJECTIVE", "HYPER"]

#: The metric strategies maximise unless told otherwise.
OBJECTIVE = "val_accuracy"
#: ``Trial.info["kind"]`` of a trial that trains a hyper-architecture over pools of cells
#: (its ``arch`` is the pool matrix, row by row) instead of one architecture.
HYPER = "hyper"


class TrialState(enum.Enum):
    """Where a trial stands (as Optuna's ``TrialState``); the store keeps each trial's.

    ``RUNNING``: asked, no result yet (being trained, or interrupted: a resumed run trains
    it again). ``COMPLETE``: trained to its budget. ``FAILED``: it raised, or its loss
    became NaN or infinite; its result holds the error and traceback, no metrics. ``PRUNED``:
    stopped early by the run's pruner; its result holds the epochs it reached.
    """

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    PRUNED = "pruned"


@dataclass(frozen=True)
class Trial:
    """One architecture to train.

    Attributes
    ----------
    id:
        Sequential id given by the strategy (0, 1, 2, ...).
    arch:
        The architecture: one ArchGraph per cell of the space.
    budget:
        Total training epochs requested for this trial.
    seed:
        Seed of its training (weights and batch order).
    resume_from:
        Id of an earlier trial whose checkpoint this one continues (same architecture,
        trained further, as NOSH does), or ``None`` to train from scratch.
    info:
        Strategy-specific notes stored with the trial (e.g. the feature-space point it
        was generated from); JSON-serialisable.
    """

    id: int
    arch: tuple[ArchGraph, ...]
    budget: int
    seed: int
    resume_from: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        arch = (self.arch,) if isinstance(self.arch, ArchGraph) else tuple(self.arch)
        object.__setattr__(self, "arch", arch)
        # stored as JSON: normalise now (tuples become lists) so a replayed trial equals the stored one
        try:
            object.__setattr__(self, "info", json.loads(json.dumps(dict(self.info))))
        except TypeError as e:
            raise ValueError(f"trial {self.id}: info must be JSON-serialisable ({e})") from None
        if self.budget < 1:
            raise ValueError(f"a trial's budget is at least 1 epoch, got {self.budget}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "arch": [c.to_dict() for c in self.arch], "budget": self.budget,
                "seed": self.seed, "resume_from": self.resume_from, "info": dict(self.info)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        return cls(id=data["id"], arch=tuple(ArchGraph.from_dict(c) for c in data["arch"]),
                   budget=data["budget"], seed=data["seed"], resume_from=data.get("resume_from"),
                   info=data.get("info", {}))

    def __eq__(self, other: object) -> bool:  # exact numbering, not isomorphism: replay checks identity
        if not isinstance(other, Trial):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.id, self.budget, self.seed))


@dataclass(frozen=True)
class Result:
    """What training a trial gave.

    Attributes
    ----------
    trial_id:
        The trial it answers.
    metrics:
        Final metrics, at least ``val_accuracy`` (and ``val_loss``, ``test_accuracy`` where
        measured), plus ``parameters`` and ``epochs`` trained in total.
    curve:
        The per-epoch history rows of the trainer (learning curve).
    checkpoint:
        Path of the saved weights (relative to the run directory), or ``None``.
    seconds:
        Wall-clock seconds the evaluation took.
    state:
        :attr:`TrialState.COMPLETE`, :attr:`~TrialState.FAILED` or :attr:`~TrialState.PRUNED`
        (a pruned trial's metrics are the validation metrics of the last epoch it trained).
    error, traceback:
        Of a failed trial: the one-line error (``"ValueError: ..."``) and the Python traceback
        where it raised (``None`` when it returned a non-finite loss instead of raising).
    """

    trial_id: int
    metrics: Mapping[str, float]
    curve: tuple[Mapping[str, Any], ...] = ()
    checkpoint: str | None = None
    seconds: float = 0.0
    state: TrialState = TrialState.COMPLETE
    error: str | None = None
    traceback: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "state", TrialState(self.state))
        if self.state is TrialState.RUNNING:
            raise ValueError(f"trial {self.trial_id}: a result is complete, failed or pruned, not running")
        if (self.state is TrialState.FAILED) != (self.error is not None):
            raise ValueError(f"trial {self.trial_id}: a failed result needs an error, and only a failed one has one "
                             f"(got state {self.state.value} and error {self.error!r}); use Result.failure")

    @classmethod
    def failure(cls, trial_id: int, error: str, traceback: str | None = None, seconds: float = 0.0) -> Result:
        """The result of a trial that failed with ``error`` (no metrics)."""
        return cls(trial_id, {}, seconds=seconds, state=TrialState.FAILED, error=error, traceback=traceback)

    @property
    def score(self) -> float:
        """The objective (:data:`OBJECTIVE`), higher is better."""
        return float(self.metrics[OBJECTIVE])

    @property
    def scored(self) -> bool:
        """Whether the trial completed with the objective and so competes for the run's "best";
        a failed or pruned trial does not, nor one that trains no single architecture (a FaDE
        hyper-architecture reports other metrics)."""
        return self.state is TrialState.COMPLETE and OBJECTIVE in self.metrics

    def to_dict(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "metrics": dict(self.metrics), "curve": [dict(r) for r in self.curve],
                "checkpoint": self.checkpoint, "seconds": self.seconds, "state": self.state.value,
                "error": self.error, "traceback": self.traceback}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """The result ``to_dict`` gave; one stored before trial states (no ``state``) is complete."""
        return cls(trial_id=data["trial_id"], metrics=data["metrics"], curve=tuple(data.get("curve", ())),
                   checkpoint=data.get("checkpoint"), seconds=data.get("seconds", 0.0),
                   state=TrialState(data.get("state", TrialState.COMPLETE.value)), error=data.get("error"),
                   traceback=data.get("traceback"))
