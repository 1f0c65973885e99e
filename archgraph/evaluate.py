"""Evaluators: train trials in this process, in a process pool, or on a Ray cluster.

:class:`TrialEvaluator` is the picklable callable that trains one
:class:`~archgraph.trial.Trial` and returns its
:class:`~archgraph.trial.Result`; an :class:`Evaluator` runs such a callable
somewhere and hands back a :class:`concurrent.futures.Future`. All evaluators give the
same result, to the bit, for the same trial on the CPU with the same number of torch
threads (the pool and Ray workers use ``threads_per_worker`` / ``cpus_per_trial``, one by
default): the trial's seed fixes the initial weights and the batch order, and the
train/validation split is fixed by the run (``split_seed``), not by the trial.

A trial that fails comes back as a :class:`TrialError` in its future, naming the trial and
carrying the error and the traceback where it was raised (in the worker), so that the runner
can record the trial as failed and go on.

The datasets are loaded once per process and kept in a small per-process cache
(:func:`functools.lru_cache` on the dataset name, root, validation fraction and split
seed), so a pool or Ray worker loads them at its first trial only.

Examples
--------
>>> from archgraph import ArchGraph
>>> from archgraph.trial import Result, Trial
>>> trial = Trial(id=0, arch=ArchGraph([(0, 1)]), budget=1, seed=0)
>>> with InProcessEvaluator() as evaluator:
...     future = evaluator.submit(lambda t: Result(t.id, {"val_accuracy": 0.5}), trial)
>>> future.result().score
0.5
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
from torch.utils.data import Dataset

from . import spaces
from .bundle import describe
from .cost import count_flops, measure_latency
from .data import TaskData, load, train_val_split
from .errors import ArchGraphError, DiskFullError, EvaluatorError, SettingError, disk_full
from .report import Reporter
from .trial import Result, TrainArchitecture, Trial, objective_of, register_objective
from .store import checkpoint_path, load_checkpoint, save_checkpoint
from .train import check_settings, evaluate, train

__all__ = ["Evaluator", "InProcessEvaluator", "ProcessPoolEvaluator", "RayEvaluator", "TrialError", "TrialEvaluator"]


class TrialError(ArchGraphError, RuntimeError):
    """Training a trial failed: ``trial_id`` names it, ``error`` is the original error in one
    line (``"ValueError: ..."``), ``traceback`` the Python traceback where it was raised."""

    def __init__(self, trial_id: int, error: str, traceback: str | None = None):
        super().__init__(trial_id, error, traceback)  # all in args: the error pickles back from workers
        # attributes, not properties: Ray's wrapper of a task's error reads them from the original
        self.trial_id, self.error, self.traceback = trial_id, error, traceback

    def __str__(self) -> str:
        return f"trial {self.args[0]} failed: {self.args[1]}"


@dataclass(frozen=True)
class TrialEvaluator:
    """Train a trial as its task says and report its metrics; picklable, so workers can run it.

    It holds the run's data and training settings, and calls the training registered for the
    trial's task type (:func:`archgraph.trial.objective_of`) with itself, the trial and the
    reporter; :meth:`data` gives the run's split. The default task,
    :class:`~archgraph.trial.TrainArchitecture`, is trained as described below; other modules
    register theirs (a FaDE hyper trial: :mod:`archgraph.oneshot.hyper_trial`).

    With ``report`` (a :class:`~archgraph.report.Reporter`, which the runner gives), every
    epoch's history row is reported as it ends: a NaN or infinite loss fails the trial then, and
    the run's pruner may stop it.

    Training an architecture compiles ``trial.arch`` in ``space`` (weights drawn after
    ``torch.manual_seed(trial.seed)``; the caller's RNG is restored afterwards), trains ``trial.budget``
    epochs with :func:`archgraph.train.train` (``seed=trial.seed``) on the training part of
    :func:`archgraph.data.train_val_split` of the task's train set, measures validation and
    test accuracy and loss, the parameters, the FLOPs of one forward pass
    (:func:`archgraph.cost.count_flops`) and the latency, seconds of a forward pass of a batch of
    ``batch_size`` on the run's device (:func:`archgraph.cost.measure_latency`), and saves the
    checkpoint ``run_dir/checkpoints/trial-<id>.pt``
    (``model`` and ``optimizer`` state, ``rng`` state, ``epochs`` trained in total, ``curve``, and
    the ``bundle`` that rebuilds the model, :mod:`archgraph.bundle`).

    A trial with ``resume_from`` loads that trial's checkpoint and trains only the
    remaining ``trial.budget - epochs`` epochs; its curve continues the earlier one.
    The optimizer's state (Adam's moments) and the random state (batch order, dropout) are
    restored too, so the resumed trial ends with the weights and curve that training from
    scratch to its budget with the checkpoint's seed gives (NOSH's paused candidates
    continue their learning curves; Wang's thesis, ch. 4).

    A task with ``init_from = {parameter: (source trial id, source parameter)}``
    starts from those tensors of earlier trials' checkpoints instead of fresh ones (weight
    sharing, as the controller search asks it); the other parameters keep their seeded
    initialisation.

    Parameters
    ----------
    space:
        Name or TOML path of the search space (:func:`archgraph.spaces.load`).
    dataset, data_root:
        Task name and folder for :func:`archgraph.data.load`.
    run_dir:
        The run directory; checkpoints go to its ``checkpoints/`` folder.
    space_params:
        Overrides of the space's compile parameters (e.g. ``{"channels": 2}``).
    batch_size, optimizer, lr, weight_decay, grad_clip:
        Training settings, defaults as FaDE §3 (batch 128, Adam lr 1e-3, weight decay
        1e-4, gradient clipping 10).
    val_fraction, split_seed:
        The validation share of the task's train set and the seed of that split, the
        same for every trial of a run.
    device:
        Where to train (``"cpu"``, ``"cuda"``, ...); ``None``: the CPU.

    Examples
    --------
    >>> import tempfile
    >>> from archgraph import ArchGraph
    >>> from archgraph.trial import Trial
    >>> trial = Trial(id=0, arch=[ArchGraph([(0, 1)])] * 4, budget=1, seed=0)
    >>> with tempfile.TemporaryDirectory() as run_dir:
    ...     fn = TrialEvaluator("fade", "digits", run_dir, space_params={"channels": 2, "kernel_size": 3})
    ...     result = fn(trial)
    >>> sorted(result.metrics)
    ['epochs', 'flops', 'latency', 'parameters', 'test_accuracy', 'test_loss', 'val_accuracy', 'val_loss']
    >>> result.checkpoint, len(result.curve)
    ('checkpoints/trial-0.pt', 1)
    """

    space: str
    dataset: str
    run_dir: str
    data_root: str | None = None
    space_params: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float | None = 10.0
    val_fraction: float = 0.2
    split_seed: int = 0
    device: str | None = None

    def __post_init__(self):
        for name in ("space", "run_dir", "data_root"):  # plain strings pickle and hash everywhere
            if (value := getattr(self, name)) is not None:
                object.__setattr__(self, name, str(value))
        object.__setattr__(self, "space_params", dict(self.space_params))
        spaces.load(self.space)  # an unknown space or a training setting out of range fails here, not in every trial
        check_settings(batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
                       weight_decay=self.weight_decay, grad_clip=self.grad_clip)

    def __call__(self, trial: Trial, report: Reporter | None = None) -> Result:
        return objective_of(trial.task)(self, trial, report)

    def data(self) -> tuple[Dataset, Dataset, TaskData]:
        """The run's training part, validation part and task (cached per process)."""
        return _split_task(self.dataset, self.data_root, self.val_fraction, self.split_seed)


def _train_architecture(evaluator: TrialEvaluator, trial: Trial, report: Reporter | None) -> Result:
    """Train a :class:`~archgraph.trial.TrainArchitecture` trial (see :class:`TrialEvaluator`)."""
    start = time.perf_counter()
    train_part, val_part, task = evaluator.data()
    with torch.random.fork_rng(devices=[]):  # the caller's RNG is left as it was
        torch.manual_seed(trial.seed)  # the initial weights
        space = spaces.load(evaluator.space)
        model = space.compile(trial.arch, input_shape=task.input_shape, num_classes=task.num_classes,
                              **evaluator.space_params)
        _initialise(model, trial, evaluator.run_dir)
        resumed = _restore(model, trial, evaluator.run_dir) if trial.resume_from is not None else _FRESH
        done, curve = resumed["epochs"], list(resumed["curve"])
        on_epoch = None if report is None else lambda row, _: report({**row, "epoch": done + row["epoch"]})
        fit = train(
            model, train_part, val_data=val_part, epochs=trial.budget - done, batch_size=evaluator.batch_size,
            optimizer=evaluator.optimizer, lr=evaluator.lr, weight_decay=evaluator.weight_decay,
            grad_clip=evaluator.grad_clip, seed=trial.seed, device=evaluator.device, progress=False, optimizer_state=resumed["optimizer"],
            rng_state=resumed.get("rng"), on_epoch=on_epoch,
        )
        test = evaluate(model, task.test, batch_size=evaluator.batch_size, device=evaluator.device)
    curve += [{**row, "epoch": done + row["epoch"]} for row in fit.history]
    metrics = {
        "val_accuracy": curve[-1]["val_accuracy"],
        "val_loss": curve[-1]["val_loss"],
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops": count_flops(model, task.input_shape),
        "latency": measure_latency(model, task.input_shape, batch_size=evaluator.batch_size),
        "epochs": trial.budget,
    }
    state = {"model": model.state_dict(), "optimizer": fit.optimizer_state, "rng": fit.rng_state,
             "epochs": trial.budget, "curve": curve,
             "bundle": describe(space, trial.arch, params=evaluator.space_params, input_shape=task.input_shape,
                                num_classes=task.num_classes, dataset=evaluator.dataset)}
    checkpoint = save_checkpoint(evaluator.run_dir, trial.id, state)
    return Result(trial.id, metrics, tuple(curve), checkpoint, time.perf_counter() - start)


register_objective(TrainArchitecture, _train_architecture)


def _restore(model: torch.nn.Module, trial: Trial, run_dir: str) -> dict[str, Any]:
    """Load the checkpoint ``trial`` resumes into ``model``; returns the checkpoint."""
    state = load_checkpoint(run_dir, checkpoint_path(trial.resume_from))
    done = state["epochs"]
    if trial.budget <= done:
        raise ValueError(
            f"trial {trial.id} resumes trial {trial.resume_from}, trained {done} epochs, with a budget of "
            f"{trial.budget}; a resumed trial's budget counts all epochs and must exceed {done}"
        )
    model.load_state_dict(state["model"])
    return state


_FRESH = {"epochs": 0, "curve": [], "optimizer": None}  # what a trial trained from scratch starts from


def _initialise(model: torch.nn.Module, trial: Trial, run_dir: str) -> None:
    """Copy the parameters the trial's ``task.init_from`` names from the source trials' checkpoints."""
    by_source: dict[int, list[tuple[str, str]]] = {}
    for name, (source, source_name) in trial.task.init_from.items():
        by_source.setdefault(int(source), []).append((name, source_name))
    own = model.state_dict()
    for source, pairs in by_source.items():
        state = load_checkpoint(run_dir, checkpoint_path(source))["model"]
        for name, source_name in pairs:
            if name not in own or source_name not in state:
                raise ValueError(f"trial {trial.id}: init_from maps {name!r} to {source_name!r} of trial {source}, "
                                 f"but {'the model' if name not in own else f'trial {source}'} has no such parameter")
            if own[name].shape != state[source_name].shape:
                raise ValueError(f"trial {trial.id}: {name!r} has shape {tuple(own[name].shape)}, {source_name!r} of "
                                 f"trial {source} {tuple(state[source_name].shape)}; init_from needs equal shapes")
            own[name].copy_(state[source_name])


@lru_cache(maxsize=4)
def _split_task(
    dataset: str, root: str | None, val_fraction: float, split_seed: int
) -> tuple[Dataset, Dataset, TaskData]:
    """The task and its fixed train/validation split; cached per process (see the module docstring)."""
    task = load(dataset, root=root)
    train_part, val_part = train_val_split(task.train, val_fraction, seed=split_seed)
    return train_part, val_part, task


def _evaluate(fn: Callable[[Trial], Result], trial: Trial, threads: int | None = None) -> Result:
    """``fn(trial)``, with any error turned into a :class:`TrialError` naming the trial, with its traceback
    (a full disk into a :class:`~archgraph.errors.DiskFullError`, which stops the search)."""
    if threads is not None:  # one worker's share of the machine: no oversubscription
        torch.set_num_threads(threads)
    try:
        return fn(trial)
    except Exception as err:
        if disk_full(err):  # not the trial's fault: the search stops, to be resumed when there is space
            raise DiskFullError(f"trial {trial.id}: {type(err).__name__}: {err}") from err
        raise TrialError(trial.id, f"{type(err).__name__}: {err}", traceback.format_exc()) from err


def _die_with(parent: int) -> None:
    """A pool worker's initializer: end the worker as soon as ``parent`` (the search) ends, killed or
    terminated, so that no worker outlives it writing checkpoints into its run folder. On Linux the
    kernel sends the parent-death signal; elsewhere a thread polls the parent."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)
        return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.1)
    os._exit(1)


class Evaluator(ABC):
    """Runs ``fn(trial)`` somewhere and returns a future of its :class:`Result`.

    Use it as a context manager, or call :meth:`close` when done.
    """

    @property
    @abstractmethod
    def max_workers(self) -> int:
        """How many trials it runs at once: how many to keep submitted."""

    @abstractmethod
    def submit(self, fn: Callable[[Trial], Result], trial: Trial) -> Future[Result]:
        """Start ``fn(trial)``; a failure comes back as a :class:`TrialError` in the future."""

    def close(self) -> None:
        """Release the workers; trials not yet started are cancelled."""

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InProcessEvaluator(Evaluator):
    """Runs each trial at once, in this process; ``submit`` returns a finished future.

    >>> InProcessEvaluator()
    InProcessEvaluator()
    """

    @property
    def max_workers(self) -> int:
        return 1

    def submit(self, fn: Callable[[Trial], Result], trial: Trial) -> Future[Result]:
        future: Future[Result] = Future()
        try:
            future.set_result(_evaluate(fn, trial))
        except TrialError as err:
            future.set_exception(err)
        return future

    def __repr__(self) -> str:
        return "InProcessEvaluator()"


class ProcessPoolEvaluator(Evaluator):
    """Runs trials in a pool of worker processes on this machine.

    Workers are started with ``spawn`` (safe with torch's threads, unlike ``fork``), and
    each trial runs with ``threads_per_worker`` torch threads so the workers do not
    oversubscribe the cores. ``fn`` and the trials must be picklable. The workers die with the
    process that made the pool, however it ends (killed, terminated).

    Examples
    --------
    >>> with ProcessPoolEvaluator(max_workers=2) as evaluator:
    ...     evaluator
    ProcessPoolEvaluator(max_workers=2, threads_per_worker=1)
    """

    def __init__(self, max_workers: int = 2, *, threads_per_worker: int = 1, context: str = "spawn"):
        if max_workers < 1 or threads_per_worker < 1:
            raise SettingError(
                f"max_workers and threads_per_worker must be at least 1, "
                f"got max_workers={max_workers}, threads_per_worker={threads_per_worker}"
            )
        self._max_workers, self._threads = max_workers, threads_per_worker
        self._pool = ProcessPoolExecutor(max_workers, mp_context=multiprocessing.get_context(context),
                                         initializer=_die_with, initargs=(os.getpid(),))

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def submit(self, fn: Callable[[Trial], Result], trial: Trial) -> Future[Result]:
        return self._pool.submit(_evaluate, fn, trial, self._threads)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __repr__(self) -> str:
        return f"ProcessPoolEvaluator(max_workers={self._max_workers}, threads_per_worker={self._threads})"


class RayEvaluator(Evaluator):
    """Runs trials as Ray tasks, on a cluster or on a local Ray instance (``archgraph[ray]``).

    Connects with ``ray.init(address=address, num_cpus=num_cpus, **init_kwargs)`` unless
    Ray is already initialised in this process, and shuts Ray down on :meth:`close` only if
    it started it. Each trial is a task reserving ``cpus_per_trial`` CPUs (and torch uses
    that many threads) and ``gpus_per_trial`` GPUs. Every worker needs archgraph installed
    (on a cluster, as in its ``runtime_env``).

    Parameters
    ----------
    address:
        A cluster's address (``"auto"``, ``"ray://host:10001"``); ``None`` starts a local instance.
    num_cpus:
        CPUs of a local instance (``None``: all).
    init_kwargs:
        More :func:`ray.init` arguments, e.g. ``include_dashboard=False``, ``runtime_env``.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        cpus_per_trial: int = 1,
        gpus_per_trial: float = 0,
        **init_kwargs: Any,
    ):
        try:
            import ray
        except ImportError:
            raise ImportError('RayEvaluator needs Ray; install it with: pip install "archgraph[ray]"') from None
        self._ray = ray
        self._started_ray = not ray.is_initialized()
        if self._started_ray:
            if address is not None:
                _probe(address)
            ray.init(address=address, num_cpus=num_cpus, **init_kwargs)
        self._per_trial = {"CPU": cpus_per_trial, "GPU": gpus_per_trial}
        self._task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial)(_evaluate)

    @property
    def max_workers(self) -> int:
        """Trials the cluster's CPUs (and GPUs, if trials use them) can run at once."""
        resources = self._ray.cluster_resources()
        slots = [resources.get(kind, 0) // need for kind, need in self._per_trial.items() if need]
        return max(1, int(min(slots)))

    def submit(self, fn: Callable[[Trial], Result], trial: Trial) -> Future[Result]:
        return self._task.remote(fn, trial, self._per_trial["CPU"]).future()

    def close(self) -> None:
        if self._started_ray and self._ray.is_initialized():
            self._ray.shutdown()

    def __repr__(self) -> str:
        return f"RayEvaluator(cpus_per_trial={self._per_trial['CPU']}, gpus_per_trial={self._per_trial['GPU']})"


def _probe(address: str, timeout: float = 5.0) -> None:
    """Refuse within ``timeout`` seconds a Ray address ``host:port`` (or ``ray://host:port``) where
    nothing listens: :func:`ray.init` retries such an address for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local": Ray looks for the cluster itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise EvaluatorError(f"no Ray cluster answers at {address} ({err.strerror or err}); start one there "
                             "(`ray start --head`) or give the address `ray status` prints") from None
