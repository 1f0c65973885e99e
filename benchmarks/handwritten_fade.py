"""A FaDE chain written by hand: the four cells of ``examples/fade_arch.json`` wired with
explicit variables, as a researcher would write them without archgraph.

Its parameters are registered in the compiled network's order, so weights copy over with
:func:`copy_weights` and both give the same outputs (``tests/test_embody_fade.py``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import relu


def _conv(c_in: int, c_out: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


class Diamond(nn.Module):  # 0→1, 0→2, 1→3, 2→3
    def __init__(self, c_in, c, k):
        super().__init__()
        self.i0, self.e01, self.e02, self.e13, self.e23, self.e3o = (
            _conv(c_in, c, k), _conv(c, c, k), _conv(c, c, k), _conv(c, c, k), _conv(c, c, k), _conv(c, c, k))

    def forward(self, x):
        v0 = relu(self.i0(x))
        v1, v2 = relu(self.e01(v0)), relu(self.e02(v0))
        v3 = relu(self.e13(v1) + self.e23(v2))
        return relu(self.e3o(v3))


class Triangle(nn.Module):  # 0→1, 0→2, 1→2
    def __init__(self, c_in, c, k):
        super().__init__()
        self.i0, self.e01, self.e02, self.e12, self.e2o = (
            _conv(c_in, c, k), _conv(c, c, k), _conv(c, c, k), _conv(c, c, k), _conv(c, c, k))

    def forward(self, x):
        v0 = relu(self.i0(x))
        v1 = relu(self.e01(v0))
        v2 = relu(self.e02(v0) + self.e12(v1))
        return relu(self.e2o(v2))


class TwoSources(nn.Module):  # 0→2, 1→2, 2→3, 2→4, 3→4
    def __init__(self, c_in, c, k):
        super().__init__()
        self.i0, self.i1, self.e02, self.e12, self.e23, self.e24, self.e34, self.e4o = (
            _conv(c_in, c, k), _conv(c_in, c, k), _conv(c, c, k), _conv(c, c, k),
            _conv(c, c, k), _conv(c, c, k), _conv(c, c, k), _conv(c, c, k))

    def forward(self, x):
        v0, v1 = relu(self.i0(x)), relu(self.i1(x))
        v2 = relu(self.e02(v0) + self.e12(v1))
        v3 = relu(self.e23(v2))
        v4 = relu(self.e24(v2) + self.e34(v3))
        return relu(self.e4o(v4))


class Path(nn.Module):  # 0→1
    def __init__(self, c_in, c, k):
        super().__init__()
        self.i0, self.e01, self.e1o = _conv(c_in, c, k), _conv(c, c, k), _conv(c, c, k)

    def forward(self, x):
        return relu(self.e1o(relu(self.e01(relu(self.i0(x))))))


class HandwrittenFade(nn.Module):
    """The example FaDE chain: 4 cells, max pooling between them, global pool, linear."""

    def __init__(self, in_channels=1, num_classes=10, channels=(4, 8, 16, 32), kernel_size=5):
        super().__init__()
        c1, c2, c3, c4 = channels
        k = kernel_size
        self.cell1 = Diamond(in_channels, c1, k)
        self.cell2 = Triangle(c1, c2, k)
        self.cell3 = TwoSources(c2, c3, k)
        self.cell4 = Path(c3, c4, k)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.classifier = nn.Linear(c4, num_classes)

    def forward(self, x):
        x = self.pool(self.cell1(x))
        x = self.pool(self.cell2(x))
        x = self.pool(self.cell3(x))
        x = self.cell4(x)
        return self.classifier(x.mean(dim=(2, 3)))


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy parameters in registration order (the two networks register them alike)."""
    pairs = list(zip(source.parameters(), target.parameters(), strict=True))
    with torch.no_grad():
        for s, t in pairs:
            if s.shape != t.shape:
                raise ValueError(f"parameter shapes differ: {tuple(s.shape)} vs {tuple(t.shape)}")
            t.copy_(s)
