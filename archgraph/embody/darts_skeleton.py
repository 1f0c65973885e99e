"""The DARTS network skeleton: stem, a stack of two-input cells with reductions, classifier.

Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019, §3.1.1 (search
network) and §3.2, App. A.2 (evaluation network): a 3×3 conv + BN stem to ``stem_multiplier · C``
channels, ``layers`` cells — each reading the outputs of the two previous cells, the ones at one
and two thirds of the depth *reduction* cells that halve the resolution and double the channels —
global average pooling and a linear classifier; an optional auxiliary head reads the output of
the last reduction cell.

With ``dim=1`` the skeleton takes 1-d signals ``(C, L)`` such as MNIST-1D: the stem is a
kernel-3 ``Conv1d`` + ``BatchNorm1d``, the pooling ``AdaptiveAvgPool1d``, and the cells are
built with the 1-d counterparts of their ops (:class:`~archgraph.ops.OpContext` ``dim=1``);
a reduction then halves the length. The auxiliary head is 2-d only.

The skeleton does not know what a cell is: it takes a *cell factory*,
``make_cell(C_prev_prev, C_prev, C, *, reduction, reduction_prev)``, returning a module called
as ``cell(s0, s1, drop_prob)`` whose output has ``cell.multiplier * C`` channels. The compiled
network (:class:`~archgraph.embody.DartsNetwork`, cells compiled from graphs) and the search
supernet (:class:`~archgraph.oneshot.Supernet`, cells of mixed edges) are this skeleton with
different cells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

import torch
from torch import nn

from .. import ops
from ..errors import SettingError, ShapeError
from ._plan import image_shape

__all__ = ["CellFactory", "DartsSkeleton", "darts_input", "reduction_layers"]

#: ``make_cell(C_prev_prev, C_prev, C, *, reduction, reduction_prev) -> cell``
CellFactory = Callable[..., nn.Module]


def reduction_layers(layers: int) -> list[int]:
    """The indices of the reduction cells: one and two thirds of the depth (DARTS §3.2).

    >>> reduction_layers(20), reduction_layers(2)
    ([6, 13], [0, 1])
    """
    return sorted({layers // 3, 2 * layers // 3})


def darts_input(input_shape: Sequence[int], *, space: str, halvings: int) -> tuple[int, int]:
    """``(channels, dim)`` of an image ``(C, H, W)`` (``dim`` 2) or a signal ``(C, L)``
    (``dim`` 1), checked to survive ``halvings`` halvings exactly.

    >>> darts_input((1, 40), space="s2", halvings=2), darts_input((3, 32, 32), space="s2", halvings=2)
    ((1, 1), (3, 2))
    >>> darts_input((1, 42), space="s2", halvings=2)
    Traceback (most recent call last):
    ...
    archgraph.errors.ShapeError: the s2 network halves the length 2 times, so L must be a multiple of 4; got 42: pad or crop the signals
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return image_shape(shape, space=space, halvings=halvings)[0], 2
    if len(shape) != 2:
        raise ShapeError(f"the {space} space takes images (C, H, W) or signals (C, L), got shape {shape}")
    if shape[1] % 2**halvings:
        raise ShapeError(f"the {space} network halves the length {halvings} times, so L must be a multiple of "
                         f"{2**halvings}; got {shape[1]}: pad or crop the signals")
    return shape[0], 1


class _AuxiliaryHead(nn.Module):
    """The auxiliary classifier of the DARTS CIFAR network, for 8×8 feature maps
    (App. A.2, after Szegedy et al. 2015)."""

    def __init__(self, C: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),  # 8×8 → 2×2
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DartsSkeleton(nn.Module):
    """A DARTS network around the cells ``make_cell`` builds; see the module docstring.

    ``forward(x)`` returns the logits, in every mode; ``forward_with_aux(x)`` returns ``(logits,
    aux_logits)``, ``aux_logits`` ``None`` unless the network is training and has the auxiliary
    head. The attribute ``drop_path_prob`` is passed to every cell.

    Examples
    --------
    >>> from archgraph.embody.darts import DARTS_V2, DartsCell, genotype_to_graphs
    >>> normal, reduce = genotype_to_graphs(DARTS_V2)
    >>> net = DartsSkeleton(lambda *c, reduction, reduction_prev: DartsCell(
    ...     reduce if reduction else normal, *c, reduction=reduction, reduction_prev=reduction_prev), C=2, layers=3)
    >>> net(torch.randn(2, 3, 8, 8)).shape, [cell.reduction for cell in net.cells]
    (torch.Size([2, 10]), [False, True, True])
    """

    def __init__(self, make_cell: CellFactory, *, C: int, layers: int, num_classes: int = 10, in_channels: int = 3,
                 stem_multiplier: int = 3, auxiliary: bool = False, drop_path_prob: float = 0.0, dim: int = 2):
        super().__init__()
        if layers < 1:
            raise SettingError(f"a DARTS network needs at least one cell, got layers={layers}")
        if auxiliary and dim != 2:
            raise ShapeError("the DARTS auxiliary head reads 2-d maps; pass auxiliary=False for 1-d signals")
        c_stem = stem_multiplier * C
        self.stem = ops.build("conv_bn", ops.OpContext(in_channels, c_stem, dim=dim))  # 3×3 conv, no bias + BN
        reductions = reduction_layers(layers)
        self.aux_index = reductions[-1]
        c_prev_prev, c_prev, c_cell = c_stem, c_stem, C
        cells, reduction_prev = [], False
        for i in range(layers):
            reduction = i in reductions
            c_cell = 2 * c_cell if reduction else c_cell
            cell = make_cell(c_prev_prev, c_prev, c_cell, reduction=reduction, reduction_prev=reduction_prev)
            cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_cell
            if i == self.aux_index:
                c_aux = c_prev
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = _AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)[dim - 1](1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self.drop_path_prob = float(drop_path_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._forward(x, False)[0]

    @torch.jit.export
    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(logits, aux_logits)``; ``aux_logits`` is ``None`` unless training with the head."""
        return self._forward(x, True)

    def _forward(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        aux: Optional[torch.Tensor] = None
        s0 = self.stem(x)
        s1 = s0
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if self.auxiliary_head is not None:
                if with_aux and self.training and i == self.aux_index:
                    aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits, aux

    def extra_repr(self) -> str:
        return f"layers={len(self.cells)}, auxiliary={self.auxiliary_head is not None}"
