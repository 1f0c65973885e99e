"""An architecture of a space as one PyG graph, for GNN predictors.

An architecture is a tuple of cells (one :class:`~archgraph.graph.ArchGraph` per cell of a
:class:`~archgraph.spaces.Space`); a GNN wants one graph whose vertices carry fixed-width
features. :class:`Featurizer` builds it in three steps:

* **ops become vertices.** A vertex op is one-hot encoded on its vertex. An edge op is moved
  onto a new vertex that subdivides the edge (``u → v`` with op becomes ``u → w → v``, ``w``
  carrying the op), which gives the vertex-labelled form of NAS-Bench-101 (Ying et al. 2019)
  to any cell. Plain GIN layers then see every op, whatever the space puts them on: vertices
  (mlp), edges (nb201, darts) or neither (fade). An edge without op stays an edge; a ``none``
  edge stays too, as a vertex carrying ``none`` (the GNN learns that it passes nothing).
* **cells are chained.** Terminal vertices ``t_0 .. t_C`` join the ``C`` cells in sequence:
  ``t_i`` feeds every source of cell ``i`` and every sink of cell ``i`` feeds ``t_{i+1}``,
  as the FaDE embodiment joins its cells (Neumeier et al. §2.4: an input vertex before the
  sources, an output vertex after the sinks, cell ``i``'s output is cell ``i + 1``'s input).
  A one-cell space gets an input and an output vertex. In a DARTS cell every intermediate
  vertex feeds the output (Liu et al. 2019, §2.1: the output concatenates them), and the
  normal cell is followed by the reduction cell, as in the network's stack.
* **every vertex says where it is.** Besides the op one-hot, each vertex carries flags and the
  one-hot position of its cell in the space (so a DARTS reduce cell is told from a normal
  one, and a fade cell from the cell after it, even beyond the GNN's receptive field).

Vertex features, in order (:attr:`Featurizer.num_features` columns in all): one column per
op of the vocabulary; ``other op`` (an op outside the vocabulary); ``plain vertex`` (a cell
vertex without op); ``edge op`` (a vertex made from an edge); ``terminal``; one column per
cell of the space. Ops are compared as parsed specs (:func:`archgraph.ops.parse`), so
``"dense(8,relu)"`` and ``"dense(8, relu)"`` share a column.

Nothing depends on the vertex numbering: renumbering a cell gives an isomorphic graph with
the same features.

Examples
--------
>>> from archgraph import spaces
>>> from archgraph.embody.nb201 import from_nb201_string
>>> from archgraph.predict.featurize import Featurizer
>>> nb201 = spaces.load("nb201")
>>> f = Featurizer(nb201)
>>> cell = from_nb201_string("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
>>> data = f((cell,))
>>> data.num_nodes, data.num_edges     # 4 vertices + 6 edge-op vertices + 2 terminals
(12, 14)
>>> data.x.shape == (12, f.num_features), f.num_features   # 5 ops + 4 flags + 1 cell
(True, 10)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from .. import ops as _ops
from ..errors import SettingError
from ..graph import ArchGraph
from ..spaces import Space

__all__ = ["Featurizer", "ops_present"]

_FLAGS = ("other op", "plain vertex", "edge op", "terminal")


def ops_present(archs: Iterable[Sequence[ArchGraph]]) -> tuple[str, ...]:
    """The distinct ops (vertex and edge) of some architectures, sorted: the vocabulary of a
    space that names none (``space.ops is None``).

    >>> from archgraph import ArchGraph
    >>> ops_present([(ArchGraph([(0, 1, "conv(3)"), (1, 2, "skip_connect")]),), (ArchGraph([(0, 1)]),)])
    ('conv(3)', 'skip_connect')
    """
    seen = {}
    for arch in archs:
        for cell in ((arch,) if isinstance(arch, ArchGraph) else arch):
            for op in (*cell.node_ops.values(), *cell.edge_ops.values()):
                seen.setdefault(_ops.parse(op), op)
    return tuple(sorted(seen.values()))


class Featurizer:
    """Turns architectures of ``space`` into ``torch_geometric.data.Data`` graphs.

    Parameters
    ----------
    space:
        The space the architectures belong to; :meth:`__call__` validates them against it.
    ops:
        The op vocabulary, one feature column each; default ``space.ops`` (or no op at all
        when the space names none: every op is then an ``other op``; pass
        :func:`ops_present` of the training architectures to tell them apart).
    """

    def __init__(self, space: Space, ops: Sequence[str] | None = None):
        self.space = space
        self.ops = tuple(ops if ops is not None else space.ops or ())
        self._column = {_ops.parse(op): i for i, op in enumerate(self.ops)}
        if len(self._column) != len(self.ops):
            raise SettingError(f"the op vocabulary names an op twice: {list(self.ops)}")

    @property
    def num_features(self) -> int:
        """Width of a vertex's feature vector: ops, flags, cell positions."""
        return len(self.ops) + len(_FLAGS) + len(self.space.cells)

    def __repr__(self) -> str:
        return f"Featurizer(space={self.space.name!r}, ops={len(self.ops)}, num_features={self.num_features})"

    def __call__(self, arch: ArchGraph | Sequence[ArchGraph]):
        """The architecture as one graph: ``x`` (vertices × :attr:`num_features`),
        ``edge_index`` (2 × edges) and ``num_nodes``.

        Raises
        ------
        SpaceError
            If ``arch`` is not an architecture of the space (wrong number of cells, a cell too
            large, an op the space does not offer).
        """
        from torch_geometric.data import Data

        cells = self.space.validate(arch)
        k = len(self.ops)
        x_rows: list[torch.Tensor] = []
        edges: list[tuple[int, int]] = []

        def vertex(op: str | None, flag: str | None, cell: int | None) -> int:
            row = torch.zeros(self.num_features)
            column = None if op is None else self._column.get(_ops.parse(op))
            if column is not None:
                row[column] = 1.0
            elif op is not None:
                row[k + _FLAGS.index("other op")] = 1.0
            if flag is not None:
                row[k + _FLAGS.index(flag)] = 1.0
            if cell is not None:
                row[k + len(_FLAGS) + cell] = 1.0
            x_rows.append(row)
            return len(x_rows) - 1

        previous = vertex(None, "terminal", None)
        for c, cell in enumerate(cells):
            ids = [vertex(cell.node_op(v), None if cell.node_op(v) else "plain vertex", c) for v in cell.nodes]
            for u, v in cell.edges:
                op = cell.edge_op(u, v)
                if op is None:
                    edges.append((ids[u], ids[v]))
                else:
                    w = vertex(op, "edge op", c)
                    edges += [(ids[u], w), (w, ids[v])]
            edges += [(previous, ids[v]) for v in cell.sources]
            previous = vertex(None, "terminal", None)
            edges += [(ids[v], previous) for v in self._outputs(cell)]

        x = torch.stack(x_rows)
        edge_index = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t().contiguous()
        return Data(x=x, edge_index=edge_index, num_nodes=len(x_rows))

    def _outputs(self, cell: ArchGraph) -> Sequence[int]:
        """The vertices that make a cell's output: its sinks, or, in a DARTS cell, every
        intermediate vertex (the output concatenates them, Liu et al. §2.1)."""
        return range(2, cell.num_nodes) if self.space.embodiment == "darts" else cell.sinks
