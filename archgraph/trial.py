"""The records a search exchanges: a :class:`Trial` to train and the :class:`Result` it gave.

Strategies ask for trials and are told results (:mod:`archgraph.search.base`), evaluators
turn trials into results (:mod:`archgraph.evaluate`), and the store records both
(:mod:`archgraph.store`); this module depends on none of them.

A trial carries a frozen, typed :class:`Task`, what its training does: :class:`TrainArchitecture`
(the default: train its architecture, from scratch, from its ``resume_from`` checkpoint, or with
parameters initialised from earlier trials' weights) or a type another module defines (FaDE's
:class:`~archgraph.oneshot.hyper_trial.TrainHyperArchitecture`). Each task type serialises itself
with a type tag, and the module that owns it registers the function that trains it
(:func:`register_objective`), so the evaluator looks the training up (:func:`objective_of`) and
knows no task type by name.

A strategy proposes a trial without an id or a seed (:meth:`Trial.propose`); the runner numbers
it (:class:`~archgraph.search.base.TrialNumbers`).

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

import dataclasses
import enum
import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ArchGraphError
from .graph import ArchGraph

__all__ = ["Trial", "Result", "TrialState", "OBJECTIVE", "Task", "TaskError", "TrainArchitecture", "objective_of",
           "register_objective"]

#: The metric strategies maximise unless told otherwise.
OBJECTIVE = "val_accuracy"


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


class TaskError(ArchGraphError, ValueError):
    """A task that cannot be read (an unknown type, unknown fields) or trained (no objective registered)."""


_TASK_TYPES: dict[str, type[Task]] = {}
_OBJECTIVES: dict[type[Task], Callable[..., Result]] = {}


@dataclass(frozen=True)
class Task:
    """What a trial's training does; subclass it as a frozen dataclass with a type tag,
    ``class TrainX(Task, tag="x")``, its fields JSON values (a tuple reads back as a list).

    ``to_dict`` holds the fields, the ``type`` tag and the ``module`` that defines the type, which
    :meth:`from_dict` imports (archgraph's own modules only) when the tag is not yet known, so a
    store is read in a process that has not imported every task type.
    """

    tag: ClassVar[str]

    def __init_subclass__(cls, *, tag: str, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if tag in _TASK_TYPES:
            raise ValueError(f"task type {tag!r} is {_TASK_TYPES[tag].__qualname__} already; choose another tag")
        cls.tag = tag
        _TASK_TYPES[tag] = cls

    @property
    def sources(self) -> frozenset[int]:
        """The earlier trials whose weights the task starts from (none by default)."""
        return frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.tag, "module": type(self).__module__, **json.loads(json.dumps(dataclasses.asdict(self)))}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Task:
        """The task :meth:`to_dict` gave."""
        fields = dict(data)
        tag, module = fields.pop("type", None), fields.pop("module", None)
        if tag not in _TASK_TYPES and isinstance(module, str) and module.split(".")[0] == __name__.split(".")[0]:
            importlib.import_module(module)  # defines the type
        if tag not in _TASK_TYPES:
            raise TaskError(f"unknown task type {tag!r} (of module {module}); import the module that defines it first")
        try:
            return _TASK_TYPES[tag](**fields)
        except TypeError as err:
            raise TaskError(f"a task of type {tag!r} cannot be read from {dict(data)} ({err})") from None


def register_objective(task_type: type[Task], train: Callable[..., Result]) -> None:
    """Make ``train(evaluator, trial, report)`` the training of ``task_type``'s trials: the
    :class:`~archgraph.evaluate.TrialEvaluator` calls it with itself (the run's data and training
    settings), the trial and the epoch :class:`~archgraph.report.Reporter` (or ``None``)."""
    _OBJECTIVES[task_type] = train


def objective_of(task: Task) -> Callable[..., Result]:
    """The training :func:`register_objective` registered for ``task``'s type."""
    try:
        return _OBJECTIVES[type(task)]
    except KeyError:
        raise TaskError(f"no objective is registered for {type(task).__qualname__} (task type {task.tag!r}); import "
                        f"{type(task).__module__}, which registers it") from None


@dataclass(frozen=True)
class TrainArchitecture(Task, tag="architecture"):
    """Train the trial's architecture (the default task; :mod:`archgraph.evaluate` registers its
    training): from scratch, or from the checkpoint of the trial's ``resume_from``.

    ``init_from`` maps parameters to ``(source trial id, source parameter)``: those start from the
    source trials' trained tensors instead of fresh ones (weight sharing, as the controller search
    asks it); the other parameters keep their seeded initialisation.

    >>> task = TrainArchitecture(init_from={"head.weight": [3, "head.weight"]})
    >>> task.sources, Task.from_dict(task.to_dict()) == task
    (frozenset({3}), True)
    """

    init_from: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def __post_init__(self):
        try:
            init = {str(name): (int(source), str(source_name)) for name, (source, source_name) in self.init_from.items()}
        except (TypeError, ValueError, AttributeError):
            raise TaskError(f"init_from maps parameter names to [source trial id, source parameter], "
                            f"got {self.init_from!r}") from None
        object.__setattr__(self, "init_from", init)

    @property
    def sources(self) -> frozenset[int]:
        return frozenset(source for source, _ in self.init_from.values())


@dataclass(frozen=True)
class Trial:
    """One architecture to train, or what its :class:`Task` trains instead.

    Attributes
    ----------
    id:
        Sequential id (0, 1, 2, ...) given by the runner; ``None`` in a strategy's proposal.
    arch:
        The architecture: one ArchGraph per cell of the space.
    budget:
        Total training epochs requested for this trial.
    seed:
        Seed of its training (weights and batch order), given by the runner with the id.
    resume_from:
        Id of an earlier trial whose checkpoint this one continues (same architecture,
        trained further, as NOSH does), or ``None`` to train from scratch.
    info:
        Strategy-specific notes stored with the trial (e.g. the feature-space point it
        was generated from); JSON-serialisable. The evaluator never reads them.
    task:
        What training the trial does (:class:`TrainArchitecture` by default).
    """

    id: int | None
    arch: tuple[ArchGraph, ...]
    budget: int
    seed: int | None
    resume_from: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    task: Task = field(default_factory=TrainArchitecture)

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
        if not isinstance(self.task, Task):
            raise TaskError(f"trial {self.id}: its task is a Task (e.g. TrainArchitecture()), got {self.task!r}")

    @classmethod
    def propose(cls, arch, budget: int, *, resume_from: int | None = None, info: Mapping[str, Any] | None = None,
                task: Task | None = None) -> Trial:
        """A strategy's proposal: a trial without id and seed, which the runner gives it."""
        return cls(None, arch, budget, None, resume_from, info or {}, task or TrainArchitecture())

    def numbered(self, trial_id: int, seed: int) -> Trial:
        """This proposal with its id and training seed."""
        return dataclasses.replace(self, id=trial_id, seed=seed)

    @property
    def sources(self) -> frozenset[int]:
        """The earlier trials whose weights this one starts from: the one it resumes and its task's."""
        return self.task.sources | ({self.resume_from} if self.resume_from is not None else set())

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "arch": [c.to_dict() for c in self.arch], "budget": self.budget,
                "seed": self.seed, "resume_from": self.resume_from, "info": dict(self.info),
                "task": self.task.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trial:
        return cls(id=data["id"], arch=tuple(ArchGraph.from_dict(c) for c in data["arch"]),
                   budget=data["budget"], seed=data["seed"], resume_from=data.get("resume_from"),
                   info=data.get("info", {}), task=Task.from_dict(data["task"]))

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
