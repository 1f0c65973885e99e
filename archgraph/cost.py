"""What a network costs to run: floating-point operations of one forward pass, and its latency.

:func:`count_flops` counts them with :class:`torch.utils.flop_counter.FlopCounterMode`, which
counts a multiply-add as 2 FLOPs in matrix products and convolutions (elementwise operations,
activations and pooling are not counted). :func:`measure_latency` times forward passes of a batch
on the model's device. :class:`~archgraph.evaluate.TrialEvaluator` records both for each trained
trial, as its ``flops`` and ``latency`` metrics, size objectives beside ``parameters``
(:mod:`archgraph.pareto`).

Examples
--------
>>> import torch
>>> count_flops(torch.nn.Linear(10, 3), (10,))   # 2 × 10 × 3 multiply-adds, the bias not counted
60
>>> measure_latency(torch.nn.Linear(10, 3), (10,), batch_size=4) > 0
True
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch.utils.flop_counter import FlopCounterMode

from .errors import SettingError

__all__ = ["count_flops", "measure_latency"]


def count_flops(model: torch.nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of ``model`` on one input of ``input_shape`` (no batch axis), in evaluation mode,
    on the device of its parameters; the model's training mode is left as it was."""
    with _evaluating(model) as device, FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, device=device))
    return int(counter.get_total_flops())


def measure_latency(model: torch.nn.Module, input_shape: Sequence[int], *, batch_size: int, warmup: int = 2,
                    repeats: int = 5) -> float:
    """Seconds of one forward pass of a batch of ``batch_size`` inputs of ``input_shape``: the median
    of ``repeats`` timed passes after ``warmup`` untimed ones (caches filled, kernels chosen), in
    evaluation mode without gradients, on the device of the model's parameters (waiting for a CUDA
    device to finish each pass); the model's training mode is left as it was."""
    if batch_size < 1 or warmup < 0 or repeats < 1:
        raise SettingError(f"need batch_size >= 1, warmup >= 0 and repeats >= 1, got {batch_size}, {warmup}, {repeats}")
    with _evaluating(model) as device:
        x = torch.zeros(batch_size, *input_shape, device=device)
        sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else lambda: None
        seconds = []
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(x)
            sync()
            if i >= warmup:
                seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


@contextmanager
def _evaluating(model: torch.nn.Module) -> Iterator[torch.device | None]:
    """The model in evaluation mode without gradients; yields its parameters' device (``None``: it has none)."""
    tensor = next(model.parameters(), None)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield None if tensor is None else tensor.device
    finally:
        model.train(training)
