"""Shared plumbing of the cell compilers: the static edge plan a cell's forward walks.

A compiled cell walks its edges sorted by target vertex; each vertex's value is the sum of
its incoming edges' outputs, complete when its last edge has been added. The plan is plain
lists (sources, opens, closes), which keeps the modules scriptable and traceable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from .. import ops
from ..errors import ShapeError
from ..graph import ArchGraph


def node_plan(graph: ArchGraph, first: int, stop: int | None = None) -> list[tuple[int, int, str]]:
    """The ops ``(u, v, op)`` into the nodes ``first .. stop - 1`` (default: to the last
    vertex), sorted by ``(v, u)``, one entry per part of a parallel op; without ``none`` ops,
    except one for a node whose ops are all ``none``, so that it still outputs zeros of its
    shape."""
    plan = []
    for v in range(first, graph.num_nodes if stop is None else stop):
        edges = [(u, v, op) for u in graph.predecessors(v) for op in ops.split(graph.edge_op(u, v))]
        live = [e for e in edges if ops.parse(e[2])[0] != "none"]
        plan += live or edges[:1]
    return plan


def image_shape(input_shape: Sequence[int], *, space: str, halvings: int) -> tuple[int, int, int]:
    """``input_shape`` as ``(C, H, W)``, checked to survive ``halvings`` halvings exactly."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ShapeError(f"the {space} space takes images (C, H, W), got shape {shape}; "
                         "use the fade or mlp space for 1-d data")
    factor = 2**halvings
    if shape[1] % factor or shape[2] % factor:
        raise ShapeError(f"the {space} network halves the resolution {halvings} times, so H and W must be "
                         f"multiples of {factor}; got {shape[1]}×{shape[2]}: pad or crop the images")
    return shape


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero each sample's path with probability ``drop_prob``, scaling the kept ones by
    ``1 / (1 - drop_prob)`` (path dropout, DARTS App. A.2 after Zoph et al. 2018). Draws
    from torch's default generator on ``x``'s device, as ``nn.Dropout`` does.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> y = drop_path(torch.ones(10000, 1, 2, 2), 0.25)
    >>> round((y == 0).float().mean().item(), 2), round(y.max().item(), 4)
    (0.25, 1.3333)
    """
    keep = 1.0 - drop_prob
    shape = [x.size(0)] + [1] * (x.dim() - 1)
    mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x / keep * mask


class PlannedCell(nn.Module):
    """Base of the compiled cells: ``edge_ops[j]`` runs on edge ``plan[j] = (source, target)``,
    the plan sorted by target; a target's state is the sum of its edges' outputs (ReLU'd when
    ``activate``, as in FaDE), appended to the states once its last edge has been added."""

    def __init__(self, modules: Iterable[nn.Module], plan: Sequence[tuple[int, int]], *, activate: bool = False):
        super().__init__()
        self.edge_ops = nn.ModuleList(modules)
        targets = [v for _, v in plan]
        last = len(targets) - 1
        self.sources: list[int] = [u for u, _ in plan]
        self.opens: list[bool] = [j == 0 or targets[j - 1] != t for j, t in enumerate(targets)]
        self.closes: list[bool] = [j == last or targets[j + 1] != t for j, t in enumerate(targets)]
        self.droppable: list[bool] = [not isinstance(m, nn.Identity) for m in self.edge_ops]
        self.activate = activate

    def walk(self, states: list[torch.Tensor], drop_prob: float = 0.0) -> list[torch.Tensor]:
        """Run the plan on the given input states; drop-path hits non-identity edges while
        training when ``drop_prob > 0``. Returns the states, the new vertices appended."""
        acc = states[-1]
        for j, op in enumerate(self.edge_ops):
            y = op(states[self.sources[j]])
            if self.training and drop_prob > 0.0 and self.droppable[j]:
                y = drop_path(y, drop_prob)
            acc = y if self.opens[j] else acc + y
            if self.closes[j]:
                states.append(torch.relu(acc) if self.activate else acc)
        return states
