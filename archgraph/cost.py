"""What a network costs to run: floating-point operations of one forward pass.

:func:`count_flops` counts them with :class:`torch.utils.flop_counter.FlopCounterMode`, which
counts a multiply-add as 2 FLOPs in matrix products and convolutions (elementwise operations,
activations and pooling are not counted). :class:`~archgraph.evaluate.TrialEvaluator` records
the count of each trained trial as its ``flops`` metric, a size objective beside
``parameters`` (:mod:`archgraph.pareto`).

Examples
--------
>>> import torch
>>> count_flops(torch.nn.Linear(10, 3), (10,))   # 2 × 10 × 3 multiply-adds, the bias not counted
60
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_flops"]


def count_flops(model: torch.nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of ``model`` on one input of ``input_shape`` (no batch axis), in evaluation mode,
    on the device of its parameters; the model's training mode is left as it was."""
    tensor = next(model.parameters(), None)
    x = torch.zeros(1, *input_shape, device=None if tensor is None else tensor.device)
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(training)
    return int(counter.get_total_flops())
