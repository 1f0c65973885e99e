"""The MLP embodiment: a chain of dense layers, the space of the controller-NAS seed.

An MLP is a path graph whose vertices carry ``dense(width, activation)`` or ``dropout(p)``
ops (Minutoli & Ciranni, NAS overview §4: widths {8, …, 512}, activations {sigmoid, tanh,
ReLU, ELU}, dropout 0.2 as a token of its own). The output layer is fitted to the task:
one sigmoid unit for two classes, a softmax layer otherwise. The module returns logits for
a cross-entropy loss; for two classes the single unit ``z`` is returned as the pair
``(-z/2, z/2)``, whose softmax is exactly ``(1 - σ(z), σ(z))``.

Examples
--------
>>> import torch
>>> from archgraph.embody import build_mlp, mlp_graph
>>> g = mlp_graph([(64, "relu"), "dropout", (32, "tanh")])
>>> g.node_ops[1]
'dropout(0.2)'
>>> net = build_mlp(g, input_shape=(13,), num_classes=3)
>>> net(torch.randn(4, 13)).shape
torch.Size([4, 3])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .. import ops
from ..errors import InvalidGraphError, SettingError
from ..graph import ArchGraph
from ._seeded import seeded_init

__all__ = ["MLPNetwork", "build_mlp", "mlp_graph", "mlp_layers"]


def mlp_graph(layers: Sequence[tuple[int, str] | str]) -> ArchGraph:
    """A path graph from layer tokens: ``(width, activation)`` pairs or ``"dropout"``
    (probability 0.2, as in the seed) / ``"dropout(p)"``."""
    node_ops = {}
    for i, layer in enumerate(layers):
        if isinstance(layer, str):
            name, args = ops.parse(layer)
            node_ops[i] = f"dropout({args[0] if args else 0.2})" if name == "dropout" else ops.check(layer)
        else:
            width, activation = layer
            node_ops[i] = f"dense({int(width)}, {activation})"
    if not node_ops:
        raise InvalidGraphError("an MLP needs at least one layer")
    return ArchGraph([(i, i + 1) for i in range(len(node_ops) - 1)], num_nodes=len(node_ops), node_ops=node_ops)


def mlp_layers(graph: ArchGraph) -> list[str]:
    """The layer op specs of an MLP chain, input side first; raises unless the graph is a
    single path whose every vertex carries an op."""
    order = graph.topological_order()
    is_path = graph.num_edges == graph.num_nodes - 1 and all(
        graph.has_edge(u, v) for u, v in zip(order, order[1:]))
    if not is_path:
        raise InvalidGraphError(f"an MLP is a single path of layers, got {graph!r}; build it with mlp_graph()")
    missing = [v for v in order if graph.node_op(v) is None]
    if missing:
        raise InvalidGraphError(f"MLP vertices {missing} carry no op; give each a 'dense(width, activation)' or 'dropout(p)'")
    return [graph.node_op(v) for v in order]


class MLPNetwork(nn.Module):
    """Flatten → the chain's layers → output layer (sigmoid unit or softmax logits)."""

    def __init__(self, graph: ArchGraph, *, input_shape: Sequence[int], num_classes: int):
        super().__init__()
        if num_classes < 2:
            raise SettingError(f"num_classes must be at least 2, got {num_classes}")
        features = math.prod(int(s) for s in input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for spec in mlp_layers(graph):
            layer = ops.build(spec, ops.OpContext(features, features))
            features = getattr(layer, "out_features", features)
            layers.append(layer)
        self.layers = nn.Sequential(*layers)
        self.binary = num_classes == 2
        self.head = nn.Linear(features, 1 if self.binary else num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.head(self.layers(x))
        if self.binary:
            return torch.cat([-0.5 * z, 0.5 * z], dim=1)
        return z


def build_mlp(graph: ArchGraph, *, input_shape: Sequence[int], num_classes: int,
              seed: int | None = None) -> MLPNetwork:
    """Compile an MLP chain (see :func:`mlp_graph`) for inputs of ``input_shape``; ``seed`` as
    for :func:`~archgraph.embody.build_fade`."""
    with seeded_init(seed):
        return MLPNetwork(graph, input_shape=input_shape, num_classes=num_classes)
