"""The FaDE network skeleton: a chain of cells with pooling between them, then a linear classifier.

Neumeier, Stier & Granitzer, "Efficient NAS with FaDE on Hierarchical Spaces", §2.4
("Search Space") and §3: channels and feature-map size are fixed within a cell; between cells
the channels roughly double and max pooling (2×2, stride 2) halves the feature map; the network
ends in global average pooling and a linear classifier; Kaiming initialisation. Feature maps
may be 2-d images ``(C, H, W)`` or 1-d signals ``(C, L)`` such as MNIST-1D.

The skeleton does not know what a cell is: it takes a *cell factory*,
``make_cell(i, in_channels, out_channels, *, weights, dim)``, returning the module at depth
``i``; it maps ``in_channels`` to ``out_channels`` channels at a fixed map size, with ``weights``
the cell's weight target (FaDE §3.1's equal-size cells) or ``None``. The compiled network
(:class:`~archgraph.embody.FadeNetwork`, one FadeCell per depth) and the hyper-architecture
(:class:`~archgraph.hyper.HyperArchitecture`, at each depth a Choice over a pool of cells,
separate or masks of one shared hyper-cell) are this skeleton with different cells, so a path of
a hyper-architecture is the compiled network of its cells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from ..errors import ShapeError, SpaceError

__all__ = ["CellFactory", "FadeSkeleton", "cell_shapes", "chain_channels"]

#: ``make_cell(i, in_channels, out_channels, *, weights, dim) -> cell``
CellFactory = Callable[..., nn.Module]


class FadeSkeleton(nn.Module):
    """A FaDE chain around the cells ``make_cell`` builds; see the module docstring.

    ``channels`` is the first cell's channel count, doubled for each following cell, or one
    count per cell (:func:`chain_channels`); ``weights_per_cell`` (one count, or one per cell)
    is passed to the factory as each cell's ``weights``. ``pool`` (``"max"``, ``"avg"`` or
    ``None``) is the ``downsample`` between two cells.

    The cells are held as ``cells``, an ``nn.Sequential`` with ``downsample`` between two cells
    (the compiled network's checkpoint layout); a subclass that holds them otherwise overrides
    :meth:`_hold`, :meth:`chain` and ``forward``.

    Examples
    --------
    >>> net = FadeSkeleton(lambda i, c_in, c_out, *, weights, dim: nn.Conv2d(c_in, c_out, 3, padding=1), 3,
    ...                    input_shape=(1, 8, 8), num_classes=10, channels=4)
    >>> [type(m).__name__ for m in net.cells], [cell.out_channels for cell in net.chain()]
    (['Conv2d', 'MaxPool2d', 'Conv2d', 'MaxPool2d', 'Conv2d'], [4, 8, 16])
    >>> net(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, make_cell: CellFactory, num_cells: int, *, input_shape: Sequence[int], num_classes: int,
                 channels: int | Sequence[int] = 16, pool: str | None = "max",
                 weights_per_cell: int | Sequence[int] | None = None):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        dim = _spatial_dim(self.input_shape)
        shapes = cell_shapes(self.input_shape[0], channels, weights_per_cell, num_cells)
        self.downsample = None if pool is None else _pooling(pool, dim)
        self._hold(make_cell(i, c_in, c_out, weights=size, dim=dim) for i, (c_in, c_out, size) in enumerate(shapes))
        self.global_pool = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)[dim - 1](1)
        self.classifier = nn.Linear(shapes[-1][1], num_classes)
        _kaiming_init(self)

    def _hold(self, cells: Iterable[nn.Module]) -> None:
        """Register the cells, which are built as ``cells`` is consumed (a subclass may register
        modules the cells share first)."""
        layers: list[nn.Module] = []
        for cell in cells:
            if layers and self.downsample is not None:
                layers.append(self.downsample)
            layers.append(cell)
        self.cells = nn.Sequential(*layers)

    def chain(self) -> list[nn.Module]:
        """The cells, first to last."""
        return [m for m in self.cells if m is not self.downsample]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(x))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pooling and the classifier, on the last cell's output."""
        return self.classifier(self.global_pool(x).flatten(1))


def cell_shapes(in_channels: int, channels: int | Sequence[int], weights_per_cell: int | Sequence[int] | None,
                num_cells: int) -> list[tuple[int, int, int | None]]:
    """``(input channels, output channels, weight target or None)`` of each cell of a chain.

    >>> cell_shapes(1, 4, 5000, 3)
    [(1, 4, 5000), (4, 8, 5000), (8, 16, 5000)]
    """
    widths = chain_channels(channels, num_cells)
    if weights_per_cell is None or isinstance(weights_per_cell, int):
        sizes = [weights_per_cell] * num_cells
    else:
        sizes = [int(w) for w in weights_per_cell]
        if len(sizes) != num_cells:
            raise SpaceError(f"weights_per_cell lists one count per cell: expected {num_cells}, got {len(sizes)}")
    return list(zip([int(in_channels), *widths[:-1]], widths, sizes))


def chain_channels(channels: int | Sequence[int], num_cells: int) -> list[int]:
    """Per-cell channel counts: an int doubles from cell to cell, a sequence is taken as is.

    >>> chain_channels(4, 4)
    [4, 8, 16, 32]
    """
    if isinstance(channels, int):
        return [channels * 2**i for i in range(num_cells)]
    widths = [int(c) for c in channels]
    if len(widths) != num_cells:
        raise SpaceError(f"channels lists one count per cell: expected {num_cells}, got {len(widths)}")
    return widths


def _spatial_dim(input_shape: Sequence[int]) -> int:
    if len(input_shape) not in (2, 3):
        raise ShapeError(
            f"the fade embodiment takes images (C, H, W) or signals (C, L), got input shape {tuple(input_shape)}; "
            "reshape flat features to (1, L), or use the mlp space for tabular data"
        )
    return len(input_shape) - 1


def _pooling(kind: str, dim: int) -> nn.Module:
    pools = {"max": (nn.MaxPool1d, nn.MaxPool2d), "avg": (nn.AvgPool1d, nn.AvgPool2d)}
    if kind not in pools:
        raise SpaceError(f"pool must be 'max', 'avg' or None, got {kind!r}")
    return pools[kind][dim - 1](2, stride=2, ceil_mode=True)


def _kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal weights for convolutions and linear layers, zero biases (FaDE §3)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
