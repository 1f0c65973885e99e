"""DARTS_V2 written by hand, as a researcher would: the baseline against which
``benchmarks/compile_overhead.py`` times the network compiled from ArchGraphs.

The cells hard-wire the genotype's op and input lists (Liu et al. 2019, Figs. 4-5), each
node's two pairs listed by input id, and the forward pass indexes them directly. Module
names and order match :class:`archgraph.embody.darts.DartsNetwork` (without the auxiliary
head), so ``load_state_dict`` works in both directions and, with equal weights, outputs
are bit-identical.

Run it to print both networks' parameter counts and whether their outputs agree::

    python benchmarks/handwritten_darts.py
"""

from __future__ import annotations

import torch
from torch import nn

from archgraph.embody.darts import drop_path
from archgraph.ops import DilConv, FactorizedReduce, ReLUConvBN, SepConv

__all__ = ["HandwrittenDartsV2"]

# (op, input) per intermediate node 2..5, two per node.
NORMAL_OPS = ["sep_conv_3x3", "sep_conv_3x3", "sep_conv_3x3", "sep_conv_3x3",
              "skip_connect", "sep_conv_3x3", "skip_connect", "dil_conv_3x3"]
NORMAL_INPUTS = [0, 1, 0, 1, 0, 1, 0, 2]
REDUCE_OPS = ["max_pool_3x3", "max_pool_3x3", "max_pool_3x3", "skip_connect",
              "max_pool_3x3", "skip_connect", "max_pool_3x3", "skip_connect"]
REDUCE_INPUTS = [0, 1, 1, 2, 0, 2, 1, 2]


def _op(name: str, C: int, stride: int) -> nn.Module:
    if name == "sep_conv_3x3":
        return SepConv(C, C, 3, stride, 1)
    if name == "dil_conv_3x3":
        return DilConv(C, C, 3, stride, 2, 2)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(C, C)
    raise ValueError(f"DARTS_V2 has no op {name!r}")


class _Cell(nn.Module):
    def __init__(self, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.preprocess0 = FactorizedReduce(C_prev_prev, C) if reduction_prev else ReLUConvBN(C_prev_prev, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        names, self.inputs = (REDUCE_OPS, REDUCE_INPUTS) if reduction else (NORMAL_OPS, NORMAL_INPUTS)
        self.edge_ops = nn.ModuleList(
            _op(name, C, 2 if reduction and j < 2 else 1) for name, j in zip(names, self.inputs)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(4):
            op1, op2 = self.edge_ops[2 * i], self.edge_ops[2 * i + 1]
            h1 = op1(states[self.inputs[2 * i]])
            h2 = op2(states[self.inputs[2 * i + 1]])
            if self.training and drop_prob > 0.0:
                if not isinstance(op1, nn.Identity):
                    h1 = drop_path(h1, drop_prob)
                if not isinstance(op2, nn.Identity):
                    h2 = drop_path(h2, drop_prob)
            states.append(h1 + h2)
        return torch.cat(states[2:], dim=1)


class HandwrittenDartsV2(nn.Module):
    """The DARTS CIFAR evaluation network with the DARTS_V2 cells, written out by hand."""

    def __init__(self, C: int, num_classes: int, layers: int, input_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(input_channels, 3 * C, 3, padding=1, bias=False), nn.BatchNorm2d(3 * C))
        C_prev_prev, C_prev, C_curr = 3 * C, 3 * C, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                C_curr *= 2
            self.cells.append(_Cell(C_prev_prev, C_prev, C_curr, reduction, reduction_prev))
            reduction_prev = reduction
            C_prev_prev, C_prev = C_prev, 4 * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)
        self.drop_path_prob = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
        return self.classifier(self.global_pooling(s1).flatten(1))


def main() -> None:
    from archgraph.embody.darts import DARTS_V2, build_darts, genotype_to_graphs

    torch.manual_seed(0)
    hand = HandwrittenDartsV2(36, 10, 20).eval()
    compiled = build_darts(genotype_to_graphs(DARTS_V2), input_shape=(3, 32, 32), num_classes=10).eval()
    compiled.load_state_dict(hand.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        same = torch.equal(hand(x), compiled(x))
    print(f"parameters: hand-written {sum(p.numel() for p in hand.parameters()):,}, "
          f"compiled {sum(p.numel() for p in compiled.parameters()):,}; bit-identical outputs: {same}")


if __name__ == "__main__":
    main()
