"""Shared plumbing of the cell compilers: the static edge plan a cell's forward walks.

A cell's forward pass walks its edges sorted by target vertex; each vertex's value is the
sum of its incoming edges' outputs, complete when its last edge has been added. The plan is
plain lists (sources, opens, closes), which keeps the modules scriptable and traceable.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import ops
from ..errors import ShapeError
from ..graph import ArchGraph


def node_plan(graph: ArchGraph, first: int) -> list[tuple[int, int, str]]:
    """The edges ``(u, v, op)`` into the nodes ``first ..``, sorted by ``(v, u)``, without
    ``none`` edges, except one for a node whose edges are all ``none``, so that it still
    outputs zeros of its shape."""
    plan = []
    for v in range(first, graph.num_nodes):
        edges = [(u, v, graph.edge_op(u, v)) for u in graph.predecessors(v)]
        live = [e for e in edges if ops.parse(e[2])[0] != "none"]
        plan += live or edges[:1]
    return plan


def opens_closes(targets: list[int]) -> tuple[list[bool], list[bool]]:
    """Where each node's run of edges in a plan starts and ends."""
    last = len(targets) - 1
    opens = [j == 0 or targets[j - 1] != t for j, t in enumerate(targets)]
    closes = [j == last or targets[j + 1] != t for j, t in enumerate(targets)]
    return opens, closes


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
