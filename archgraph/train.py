"""The plain trainer: fit a classifier on a dataset and evaluate it.

:func:`train` is deterministic on the CPU for a fixed ``seed``: batches are shuffled by
a :class:`torch.Generator` seeded from it, and torch's global RNG (which dropout and other
random layers draw from) is seeded from it for the run and restored afterwards. A run can
be continued exactly: ``train(..., epochs=k)`` and then ``train(..., epochs=k,
optimizer_state=r.optimizer_state, rng_state=r.rng_state)`` from its result ``r`` give the
weights of ``train(..., epochs=2 * k)`` (with a constant learning rate). The
device flows from the caller: ``device=None`` keeps the model where its parameters are.

Examples
--------
>>> import torch
>>> from archgraph.data import load
>>> from archgraph.train import evaluate, train
>>> task = load("digits")
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, task.num_classes))
>>> result = train(model, task.train, val_data=task.test, epochs=3, lr=1e-2, progress=False)
>>> len(result.history), result.best_val_accuracy > 0.8
(3, True)
>>> evaluate(model, task.test)["accuracy"] == result.history[-1]["val_accuracy"]
True
"""

from __future__ import annotations

import copy
import itertools
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from .errors import SettingError, ShapeError

__all__ = ["PAPER_DEFAULTS", "TASK_DEFAULTS", "TrainResult", "check_settings", "evaluate", "task_defaults", "train"]

#: FaDE §3's training (Adam, batch 128, lr 1e-3), the defaults of a task :data:`TASK_DEFAULTS` lacks
#: (CIFAR-10, the paper's task, and your own data); 10 epochs to train, 3 per search trial.
PAPER_DEFAULTS = {"epochs": 10, "search_epochs": 3, "batch_size": 128, "lr": 1e-3}
#: What ``archgraph train`` and ``archgraph search`` train with on the embedded tasks where no flag says
#: otherwise (``epochs`` to train, ``search_epochs`` per search trial), keyed by the task's name: a table
#: rather than a rule of the task's size, each row measured (``benchmarks/defaults_table.py``). These
#: sets hold 114–3,200 training samples, where batch 128 gives 1–25 steps an epoch; batch 32 gives
#: 4–100. The rate stays FaDE §3's constant 1e-3 (a search trains its trials at a constant rate too).
TASK_DEFAULTS: dict[str, dict] = {
    "digits": {"epochs": 20, "search_epochs": 4, "batch_size": 32, "lr": 1e-3},
    "mnist1d": {"epochs": 30, "search_epochs": 4, "batch_size": 32, "lr": 1e-3},
    "wine": {"epochs": 30, "search_epochs": 8, "batch_size": 32, "lr": 1e-3},
    "breast_cancer": {"epochs": 30, "search_epochs": 8, "batch_size": 32, "lr": 1e-3},
}

_OPTIMIZERS = {
    "adam": lambda params, lr, weight_decay, momentum: torch.optim.Adam(params, lr=lr, weight_decay=weight_decay),
    "adamw": lambda params, lr, weight_decay, momentum: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay),
    "sgd": lambda params, lr, weight_decay, momentum: torch.optim.SGD(
        params, lr=lr, momentum=momentum, weight_decay=weight_decay
    ),
}
_SCHEDULES = (None, "cosine")
# +1: higher is better, -1: lower is better
_MONITORS = {"val_accuracy": 1.0, "val_loss": -1.0}
# torch's messages for inputs a layer cannot take
_SHAPE_MESSAGE = re.compile(r"shape|size|dimension|channels", re.IGNORECASE)


@dataclass
class TrainResult:
    """What :func:`train` did, epoch by epoch.

    Attributes
    ----------
    history:
        One dict per epoch run: ``epoch`` (from 0), ``train_loss`` and ``train_accuracy``
        (averaged over the epoch's batches while training; the loss is the optimised
        one, auxiliary term included), ``val_loss`` and ``val_accuracy`` (``None``
        without validation data), ``lr`` (the learning rate used in the epoch) and
        ``seconds``.
    best_epoch:
        The epoch with the best monitored validation metric, ``None`` without
        validation data.
    restored_best:
        Whether the model was given back the weights of ``best_epoch`` (with
        ``early_stop``) rather than those of the last epoch.
    stopped_early:
        Whether training ended before ``epochs``: patience ran out or ``on_epoch``
        asked to stop.
    optimizer_state:
        The optimizer's ``state_dict()`` at the end, to continue training later
        (``train(..., optimizer_state=...)``).
    rng_state:
        The random state at the end (``"shuffle"``: the batch-order generator's, ``"cpu"`` and,
        on an accelerator, ``"device"``: torch's global RNG's), to continue training later
        with the batches and dropout masks an uninterrupted run would have drawn
        (``train(..., rng_state=...)``).
    """

    history: list[dict]
    best_epoch: int | None
    restored_best: bool
    stopped_early: bool
    optimizer_state: dict | None = field(default=None, repr=False)
    rng_state: dict | None = field(default=None, repr=False)

    @property
    def best_val_accuracy(self) -> float | None:
        """Validation accuracy of ``best_epoch``."""
        return None if self.best_epoch is None else self.history[self.best_epoch]["val_accuracy"]

    @property
    def final(self) -> dict:
        """The history row of the weights the model holds on return."""
        return self.history[self.best_epoch if self.restored_best else -1]

    def __repr__(self) -> str:
        return (
            f"TrainResult(epochs={len(self.history)}, best_epoch={self.best_epoch}, "
            f"best_val_accuracy={self.best_val_accuracy}, stopped_early={self.stopped_early})"
        )


def train(
    model: nn.Module,
    train_data: Dataset,
    *,
    val_data: Dataset | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    grad_clip: float | None = None,
    schedule: str | None = None,
    min_lr: float = 0.0,
    early_stop: int | None = None,
    monitor: str = "val_accuracy",
    aux_weight: float = 0.4,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict, nn.Module], bool | None] | None = None,
    optimizer_state: dict | None = None,
    rng_state: dict | None = None,
) -> TrainResult:
    """Train ``model`` with cross-entropy on ``train_data``; the model is changed in place.

    Parameters
    ----------
    model:
        A classifier returning logits of shape ``(batch, num_classes)``. In training mode
        it may return ``(logits, aux_logits)`` (the DARTS auxiliary head); the loss is
        then ``CE(logits) + aux_weight * CE(aux_logits)``.
    train_data, val_data:
        Map-style datasets of ``(x, y)`` pairs; ``val_data`` is evaluated after every epoch.
    epochs, batch_size:
        Passes over ``train_data`` and samples per step. The last batch may be smaller, but not
        a single sample: batch norm cannot normalise one sample in training mode, so where
        ``len(train_data) % batch_size == 1`` the epoch leaves out the sample its shuffle puts
        last (another one each epoch).
    optimizer:
        ``"adam"``, ``"adamw"`` or ``"sgd"`` (with ``momentum``), with ``lr`` and ``weight_decay``.
    grad_clip:
        Clip the gradients' total 2-norm to this value before every step.
    schedule:
        ``None`` for a constant ``lr``, or ``"cosine"``: cosine annealing from ``lr`` in the
        first epoch to ``min_lr`` after the last (``CosineAnnealingLR`` with
        ``T_max=epochs``, stepped once per epoch, as DARTS).
    early_stop:
        Patience in epochs: stop when ``monitor`` has not improved for this many epochs.
        With ``early_stop`` the model ends with the weights of the best epoch, whether or
        not patience ran out. Needs ``val_data``.
    monitor:
        ``"val_accuracy"`` (higher is better) or ``"val_loss"`` (lower is better): what
        ``best_epoch`` and ``early_stop`` look at.
    seed:
        Seeds the shuffling generator and, for the run only, torch's global RNG of the CPU
        and of ``device`` (dropout draws from it); the caller's RNG state is restored
        afterwards.
    device:
        Where to train; the model is moved there. ``None``: where its parameters are.
    progress:
        Show a tqdm bar over epochs (tqdm hides it when stderr is not a terminal).
    on_epoch:
        Called as ``on_epoch(row, model)`` after each epoch with its history row; return
        ``True`` to stop training.
    optimizer_state:
        A ``state_dict()`` of an earlier run's optimizer (``TrainResult.optimizer_state``)
        to continue from, e.g. Adam's moments when a paused trial is resumed.
    rng_state:
        A ``TrainResult.rng_state`` of an earlier run to continue from instead of ``seed``'s
        fresh state: with ``optimizer_state`` too, continuing a run for more epochs trains
        as the uninterrupted run would have (NOSH resumes paused candidates so; Wang's
        thesis, ch. 4).

    Returns
    -------
    TrainResult

    Raises
    ------
    ShapeError
        When the model cannot take the data's samples, or its output does not fit the
        labels (wrong shape or fewer classes than the labels need).
    SettingError
        For an unknown ``optimizer``, ``schedule`` or ``monitor``, or out-of-range settings.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> x = torch.linspace(-1, 1, 64).unsqueeze(1)
    >>> data = TensorDataset(x, (x[:, 0] > 0).long())
    >>> model = torch.nn.Linear(1, 2)
    >>> result = train(model, data, val_data=data, epochs=20, batch_size=8, lr=0.1,
    ...                schedule="cosine", early_stop=5, progress=False)
    >>> result.final["val_accuracy"] > 0.9, result.history[0]["lr"]
    (True, 0.1)
    """
    check_settings(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
                   schedule=schedule, monitor=monitor, early_stop=early_stop, grad_clip=grad_clip,
                   val_data=val_data)
    device = _device(model, device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SettingError("the model has no trainable parameters; nothing to train")
    opt = _OPTIMIZERS[optimizer](params, lr, weight_decay, momentum)
    if optimizer_state is not None:  # a copy: loading keeps the given tensors, which training then updates
        opt.load_state_dict(copy.deepcopy(optimizer_state))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=min_lr) if schedule else None
    loader = _loader(train_data, batch_size, device, shuffle_seed=seed)
    if rng_state is not None:
        loader.generator.set_state(rng_state["shuffle"])
    step = partial(_step, opt, params, grad_clip)
    history: list[dict] = []
    best_epoch, best_score, best_state, since_best = None, float("-inf"), None, 0
    bar = tqdm(range(epochs), desc="train", unit="epoch", disable=None if progress else True)
    with _seeded_rng(seed, device, rng_state), bar:
        for epoch in bar:
            start, lr_now = time.perf_counter(), opt.param_groups[0]["lr"]
            model.train()
            fit = _run(model, loader, device, aux_weight, step)
            val = {"loss": None, "accuracy": None}
            if val_data is not None:
                val = evaluate(model, val_data, batch_size=batch_size, device=device)
            row = {
                "epoch": epoch,
                "train_loss": fit["loss"],
                "train_accuracy": fit["accuracy"],
                "val_loss": val["loss"],
                "val_accuracy": val["accuracy"],
                "lr": lr_now,
                "seconds": time.perf_counter() - start,
            }
            history.append(row)
            bar.set_postfix({k: f"{row[k]:.4g}" for k in ("train_loss", "val_accuracy") if row[k] is not None})
            if scheduler is not None:
                scheduler.step()
            if val_data is not None:
                since_best += 1
                if (score := _MONITORS[monitor] * row[monitor]) > best_score:  # False for NaN
                    best_epoch, best_score, since_best = epoch, score, 0
                    if early_stop is not None:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            patience_ran_out = early_stop is not None and since_best >= early_stop
            if (on_epoch is not None and on_epoch(row, model)) or patience_ran_out:
                break
        end_state = {"shuffle": loader.generator.get_state(), **_rng_state(device)}
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(history, best_epoch, restored_best=best_state is not None, stopped_early=len(history) < epochs,
                       optimizer_state=opt.state_dict(), rng_state=end_state)


def task_defaults(task: str) -> dict:
    """The training defaults of the task named ``task`` (a :func:`archgraph.data.load` name, sizes
    as ``mnist1d:10000`` included): its row of :data:`TASK_DEFAULTS`, else :data:`PAPER_DEFAULTS`.

    >>> task_defaults("mnist1d:10000")["batch_size"], task_defaults("cifar10")["batch_size"]
    (32, 128)
    """
    key = task.lower().replace("-", "_").partition(":")[0]
    return dict(TASK_DEFAULTS.get(key, PAPER_DEFAULTS))


def evaluate(
    model: nn.Module, data: Dataset, *, batch_size: int = 512, device: torch.device | str | None = None
) -> dict[str, float]:
    """Mean cross-entropy ``loss`` and ``accuracy`` of ``model`` on ``data``.

    Runs in eval mode without gradients, and gives the model back in the mode it had.
    A ``(logits, aux_logits)`` output is scored on ``logits`` alone.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> model = torch.nn.Linear(2, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.eye(2))
    >>> data = TensorDataset(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1, 1]))
    >>> metrics = evaluate(model, data)
    >>> round(metrics["accuracy"], 3), round(metrics["loss"], 3)
    (0.667, 0.647)
    """
    device = _device(model, device)
    model.to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return _run(model, _loader(data, batch_size, device), device, aux_weight=0.0)
    finally:
        model.train(was_training)


def check_settings(*, epochs: int = 1, batch_size: int = 1, optimizer: str = "adam", lr: float = 1e-3,
                   weight_decay: float = 0.0, schedule: str | None = None, monitor: str = "val_accuracy",
                   early_stop: int | None = None, grad_clip: float | None = None, val_data: Dataset | None = None) -> None:
    """Raise a :class:`~archgraph.errors.SettingError` for the first of :func:`train`'s settings it
    cannot run with (a search checks its trials' settings with it before the run begins)."""
    if epochs < 1:
        raise SettingError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise SettingError(f"batch_size must be at least 1, got {batch_size}")
    if not (lr >= 0 and weight_decay >= 0):  # lr 0 keeps the weights (a check of what else training does)
        raise SettingError(f"need lr >= 0 and weight_decay >= 0, got lr={lr}, weight_decay={weight_decay}")
    if optimizer not in _OPTIMIZERS:
        raise SettingError(f"unknown optimizer {optimizer!r}; known: {', '.join(_OPTIMIZERS)}")
    if schedule not in _SCHEDULES:
        raise SettingError(f"unknown schedule {schedule!r}; use None (constant lr) or 'cosine'")
    if monitor not in _MONITORS:
        raise SettingError(f"unknown monitor {monitor!r}; known: {', '.join(_MONITORS)}")
    if early_stop is not None and early_stop < 1:
        raise SettingError(f"early_stop is a patience of at least 1 epoch (or None), got {early_stop}")
    if early_stop is not None and val_data is None:
        raise SettingError("early_stop watches validation metrics and needs val_data; pass val_data or drop early_stop")
    if grad_clip is not None and grad_clip <= 0:
        raise SettingError(f"grad_clip must be positive (or None for no clipping), got {grad_clip}")


def _device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return tensor.device if tensor is not None else torch.get_default_device()


def _loader(data: Dataset, batch_size: int, device: torch.device, shuffle_seed: int | None = None) -> DataLoader:
    """Batches of ``data`` in order (to evaluate), or, to train, shuffled by a generator seeded
    with ``shuffle_seed`` and without a last batch of one sample: batch norm in training mode
    cannot normalise a lone sample (torch raises "Expected more than 1 value per channel")."""
    if len(data) == 0:
        raise ShapeError("the dataset is empty; give at least one (x, y) sample")
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle_seed is not None,
        drop_last=shuffle_seed is not None and len(data) > batch_size and len(data) % batch_size == 1,
        # an explicit generator even unshuffled: a DataLoader otherwise draws its base seed from torch's global RNG
        generator=torch.Generator().manual_seed(0 if shuffle_seed is None else shuffle_seed),
        pin_memory=device.type == "cuda",
    )


@contextmanager
def _seeded_rng(seed: int, device: torch.device, state: dict | None = None):
    """Seed torch's global RNG (CPU and ``device``) for the block, or set it to ``state``
    (a :func:`_rng_state`), then restore the caller's state."""
    on_accelerator = device.type != "cpu"
    with torch.random.fork_rng(
        devices=[device] if on_accelerator else [], device_type=device.type if on_accelerator else None
    ):
        torch.manual_seed(seed)
        if state is not None:
            torch.set_rng_state(state["cpu"])
            if on_accelerator and "device" in state:
                getattr(torch, device.type).set_rng_state(state["device"], device)
        yield


@contextmanager
def _kept_buffers(model: nn.Module):
    """Within the block the model may run in train mode; afterwards its buffers (batch-norm
    running statistics) hold their old values again, so measuring leaves no trace."""
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """Torch's global RNG state: the CPU's and, on an accelerator, ``device``'s."""
    state = {"cpu": torch.get_rng_state()}
    if device.type != "cpu":
        state["device"] = getattr(torch, device.type).get_rng_state(device)
    return state


def _step(
    optimizer: torch.optim.Optimizer, params: list[nn.Parameter], grad_clip: float | None, loss: torch.Tensor
) -> None:
    if not loss.requires_grad:  # the sampled path carries no trainable weight: nothing to step
        return
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


def _run(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    aux_weight: float,
    step: Callable[[torch.Tensor], None] | None = None,
) -> dict[str, float]:
    """One pass over ``loader``: mean loss and accuracy, with ``step(loss)`` after each batch."""
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits, loss = _loss(_forward(model, x, with_aux=step is not None), y, aux_weight)
        if step is not None:
            step(loss)
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(dim=1) == y).sum()
        seen += len(y)
    return {"loss": loss_sum.item() / seen, "accuracy": correct.item() / seen}


def _forward(model: nn.Module, x: torch.Tensor, with_aux: bool):
    """The model's output; while training, ``(logits, aux_logits)`` from a model with an
    auxiliary head (``forward_with_aux``, e.g. the DARTS network)."""
    forward = getattr(model, "forward_with_aux", model) if with_aux else model
    try:
        return forward(x)
    except RuntimeError as err:
        if "out of memory" in str(err) or not _SHAPE_MESSAGE.search(str(err)):
            raise
        sample = tuple(x.shape[1:])
        expects = _expected_input(model)
        torch_says = str(err).strip().splitlines()[0]
        raise ShapeError(
            f"the model cannot take samples of shape {sample}{f': {expects}' if expects else ''} "
            f"(torch: {torch_says}); build the model for input_shape {sample} "
            "or give it data of the shape it was built for"
        ) from err


def _expected_input(model: nn.Module) -> str | None:
    """What the model's input side says about the sample shape it takes, if anything."""
    if (shape := getattr(model, "input_shape", None)) is not None:
        return f"it expects samples of shape {tuple(shape)}"
    for module in model.modules():
        if isinstance(module, nn.Linear):
            return f"its first layer {module} expects {module.in_features} features"
        if isinstance(module, nn.modules.conv._ConvNd):
            return f"its first layer {module} expects {module.in_channels} channels"
    return None


def _loss(output, y: torch.Tensor, aux_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, loss)`` of a model output, ``logits`` or ``(logits, aux_logits)``."""
    if isinstance(output, (tuple, list)):
        if len(output) != 2:
            raise ShapeError(
                f"the model returned {len(output)} outputs; expected logits or a pair (logits, aux_logits)"
            )
        logits, aux = output
    else:
        logits, aux = output, None
    if y.dim() != 1 or torch.is_floating_point(y):
        raise ShapeError(f"labels must be class indices of shape (batch,), got {y.dtype} of shape {tuple(y.shape)}")
    for name, out in (("logits", logits), ("aux_logits", aux)):
        if out is not None and (out.dim() != 2 or out.shape[0] != len(y)):
            raise ShapeError(
                f"the model's {name} have shape {tuple(out.shape)} for a batch of {len(y)} labels; expected "
                f"({len(y)}, num_classes): end the model with a classifier head of num_classes outputs"
            )
    y = y.long()
    try:
        loss = F.cross_entropy(logits, y)
        if aux is not None and aux_weight:
            loss = loss + aux_weight * F.cross_entropy(aux, y)
    except IndexError:
        raise ShapeError(
            f"labels go up to {int(y.max())} but the model outputs {logits.shape[1]} classes; "
            f"build it with num_classes={int(y.max()) + 1} (or more)"
        ) from None
    return logits, loss
