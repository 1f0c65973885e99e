"""Categorical encodings of cell spaces: an architecture as one category per dimension.

Random search, Bayesian optimisation and evolution search the NAS-Bench-201 and DARTS spaces
through these encodings (White et al. 2020, "A Study on Encodings for Neural Architecture
Search", call them *adjacency-and-op* encodings). A point is one row of category indices per
cell; :meth:`~CategoricalEncoding.decode` turns it into the cells the space compiles, built by
the embodiments' own readers (:func:`~archgraph.embody.nb201.from_nb201_string`'s edges,
:func:`~archgraph.embody.darts.genotype_to_graphs`), and :meth:`~CategoricalEncoding.encode`
reads them back.

* :class:`NB201Encoding`: the 6 edges ``j → i`` of the cell in NAS-Bench-201's string order,
  each one of the space's ops (5: 15,625 cells, Dong & Yang 2020, §2).
* :class:`DartsEncoding`: per cell, per intermediate node ``v``, the pair of distinct inputs it
  takes (among ``0 .. v-1``) and the op on each, listed by input id, as a DARTS genotype has
  them (Liu et al. 2019, §2.4: two inputs per node, ``none`` never chosen).

A mutation (:meth:`~CategoricalEncoding.mutate`) changes one op or, in a DARTS cell, one
input of one node (Real et al. 2019, §2: the *op* and *hidden-state* mutations), the kind
drawn uniformly among those the space allows.

Examples
--------
>>> import numpy as np
>>> from archgraph import spaces
>>> enc = NB201Encoding(spaces.load("nb201"))
>>> point = ((3, 0, 1, 2, 4, 3),)
>>> enc.encode(enc.decode(point)) == point
True
>>> enc.decode(point)[0].edge_op(0, 1), enc.sizes
('nor_conv_3x3', ((5, 5, 5, 5, 5, 5),))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from itertools import combinations

import numpy as np

from ..embody.darts import Genotype, genotype_to_graphs, graphs_to_genotype
from ..embody.nb201 import EDGES as NB201_EDGES
from ..errors import SpaceError
from ..graph import ArchGraph
from ..spaces import Architecture, Space

__all__ = ["CategoricalEncoding", "DartsEncoding", "NB201Encoding", "encoding_for"]

Point = tuple[tuple[int, ...], ...]  # one row of category indices per cell


class CategoricalEncoding(ABC):
    """One row of categorical dimensions per cell of ``space``; ``choices[c][d]`` lists the
    categories of dimension ``d`` of cell ``c``."""

    def __init__(self, space: Space, choices: Sequence[Sequence[Sequence]]):
        self.space = space
        self.choices = tuple(tuple(tuple(dim) for dim in cell) for cell in choices)

    @property
    def sizes(self) -> tuple[tuple[int, ...], ...]:
        """How many categories each dimension has, per cell."""
        return tuple(tuple(len(dim) for dim in cell) for cell in self.choices)

    @property
    def dimensions(self) -> list[list]:
        """Per cell, scikit-optimize's ``Categorical`` of each dimension's category indices."""
        from skopt.space import Categorical

        return [[Categorical(range(n)) for n in cell] for cell in self.sizes]

    def random_point(self, rng: np.random.Generator) -> Point:
        """A point drawn uniformly from the encoding (each dimension uniformly, independently)."""
        return tuple(tuple(int(rng.integers(n)) for n in cell) for cell in self.sizes)

    def draw(self, point: Point, rng: np.random.Generator) -> Architecture:
        """The architecture of ``point`` (there is one: ``rng`` is not used)."""
        return self.decode(point)

    def random_architecture(self, rng: np.random.Generator) -> Architecture:
        return self.decode(self.random_point(rng))

    def mutate_architecture(self, arch: Sequence[ArchGraph], rng: np.random.Generator) -> Architecture:
        """``arch`` with one op or input changed (:meth:`mutate`)."""
        return self.decode(self.mutate(self.encode(arch), rng))

    @abstractmethod
    def decode(self, point: Point) -> Architecture:
        """The cells of ``point``, as the space compiles them."""

    @abstractmethod
    def encode(self, arch: Sequence[ArchGraph]) -> Point:
        """The point of an architecture of the space (the inverse of :meth:`decode`).

        Raises
        ------
        SpaceError
            If the architecture is not one the encoding holds.
        """

    def mutate(self, point: Point, rng: np.random.Generator) -> Point:
        """``point`` with one op changed (or one input, where the encoding has inputs)."""
        kinds = self._mutation_kinds()
        kind = kinds[int(rng.integers(len(kinds)))]
        return getattr(self, f"_mutate_{kind}")(point, rng)

    def _mutate_op(self, point: Point, rng: np.random.Generator) -> Point:
        """Another category for one op dimension."""
        sites = [(c, d) for c, cell in enumerate(self.choices) for d in self._op_dimensions(c) if len(cell[d]) > 1]
        c, d = sites[int(rng.integers(len(sites)))]
        rows = [list(row) for row in point]
        rows[c][d] = int((rows[c][d] + 1 + rng.integers(len(self.choices[c][d]) - 1)) % len(self.choices[c][d]))
        return tuple(tuple(row) for row in rows)

    def _mutation_kinds(self) -> list[str]:
        can_change_op = any(len(cell[d]) > 1 for c, cell in enumerate(self.choices) for d in self._op_dimensions(c))
        return ["op"] if can_change_op else []

    @abstractmethod
    def _op_dimensions(self, cell: int) -> Sequence[int]:
        """The dimensions of ``cell`` that choose an op."""


class NB201Encoding(CategoricalEncoding):
    """The NAS-Bench-201 cell as 6 op dimensions, the edges in the benchmark's string order
    (:data:`archgraph.embody.nb201.EDGES`); each edge offers the ops the space gives it."""

    def __init__(self, space: Space):
        if space.embodiment != "nb201":
            raise SpaceError(f"NB201Encoding encodes 'nb201' spaces; space {space.name!r} is {space.embodiment!r}")
        super().__init__(space, [[space.ops_for(cell, edge) for edge in NB201_EDGES] for cell in space.cells])

    def _op_dimensions(self, cell: int) -> range:
        return range(len(NB201_EDGES))

    def decode(self, point: Point) -> Architecture:
        return tuple(ArchGraph([(j, i, ops[k]) for (j, i), ops, k in zip(NB201_EDGES, choices, row)], num_nodes=4)
                     for choices, row in zip(self.choices, point))

    def encode(self, arch: Sequence[ArchGraph]) -> Point:
        return tuple(tuple(ops.index(cell.edge_op(*edge)) for edge, ops in zip(NB201_EDGES, choices))
                     for choices, cell in zip(self.choices, self.space.validate(arch)))


class DartsEncoding(CategoricalEncoding):
    """A DARTS cell as three dimensions per intermediate node ``v``: the pair of distinct
    inputs ``j < k`` (among ``0 .. v-1``), the op on ``j → v`` and the op on ``k → v``. Every
    intermediate node is concatenated (the cell of a DARTS genotype with ``concat`` 2..).

    The ops are the space's less ``none`` (DARTS never keeps a zero op, §2.4); a space must
    offer the same ops on every edge of a cell.

    >>> from archgraph import spaces
    >>> enc = DartsEncoding(spaces.load("darts"))
    >>> enc.sizes[0], enc.choices[0][3]
    ((1, 7, 7, 3, 7, 7, 6, 7, 7, 10, 7, 7), ((0, 1), (0, 2), (1, 2)))
    """

    def __init__(self, space: Space):
        if space.embodiment != "darts" or space.max_vertices is None or space.max_vertices < 3:
            raise SpaceError(f"DartsEncoding encodes 'darts' spaces with max_vertices of 3 or more; space "
                             f"{space.name!r} is {space.embodiment!r} with max_vertices {space.max_vertices}")
        self.nodes = range(2, space.max_vertices)
        choices = []
        for cell in space.cells:
            offered = {space.ops_for(cell, (u, v)) for v in self.nodes for u in range(v)}
            if len(offered) > 1:
                raise SpaceError(f"space {space.name!r} offers different ops on the edges of cell {cell!r}; the DARTS "
                                 "encoding takes spaces with one op list for every edge, such as 'darts' or 's2'")
            ops = tuple(op for op in offered.pop() if op != "none")
            if not ops:
                raise SpaceError(f"space {space.name!r} offers only 'none' on cell {cell!r}; add an op")
            choices.append([dim for v in self.nodes for dim in (tuple(combinations(range(v), 2)), ops, ops)])
        super().__init__(space, choices)

    def decode(self, point: Point) -> Architecture:
        pairs = [[(self.choices[c][d + 1 + s][row[d + 1 + s]], self.choices[c][d][row[d]][s])
                  for d in range(0, len(row), 3) for s in (0, 1)] for c, row in enumerate(point)]
        concat = list(self.nodes)
        return genotype_to_graphs(Genotype(pairs[0], concat, pairs[1], concat))

    def encode(self, arch: Sequence[ArchGraph]) -> Point:
        if len(arch) != 2:
            raise SpaceError(f"a DARTS architecture is two cells, {' and '.join(self.space.cells)}; got {len(arch)}")
        genotype = graphs_to_genotype(*arch)
        rows = []
        for c, (pairs, concat) in enumerate(((genotype.normal, genotype.normal_concat),
                                            (genotype.reduce, genotype.reduce_concat))):
            if concat != list(self.nodes) or len(pairs) != 2 * len(self.nodes):
                raise SpaceError(f"the DARTS encoding holds cells of {len(self.nodes)} intermediate nodes, all "
                                 f"concatenated; cell {self.space.cells[c]!r} has {concat}")
            row = []
            for d, (first, second) in zip(range(0, 3 * len(self.nodes), 3), zip(pairs[::2], pairs[1::2])):
                inputs = (first[1], second[1])
                if inputs not in self.choices[c][d]:
                    raise SpaceError(f"the DARTS encoding holds nodes with two distinct inputs; node {d // 3 + 2} of "
                                     f"cell {self.space.cells[c]!r} takes {list(inputs)}")
                ops = self.choices[c][d + 1]
                if not {first[0], second[0]} <= set(ops):
                    raise SpaceError(f"node {d // 3 + 2} of cell {self.space.cells[c]!r} carries "
                                     f"{first[0]!r} and {second[0]!r}; the DARTS encoding's ops are {', '.join(ops)}")
                row += [self.choices[c][d].index(inputs), ops.index(first[0]), ops.index(second[0])]
            rows.append(tuple(row))
        return tuple(rows)

    def _op_dimensions(self, cell: int) -> list[int]:
        return [d for d in range(len(self.choices[cell])) if d % 3]

    def _mutation_kinds(self) -> list[str]:
        return [*super()._mutation_kinds(), *(["input"] if len(self.nodes) > 1 else [])]

    def _mutate_input(self, point: Point, rng: np.random.Generator) -> Point:
        """One node takes another input in place of one of its two, keeping that edge's op."""
        c = int(rng.integers(len(point)))
        d = 3 * int(rng.integers(1, len(self.nodes)))  # node 2 has no other input than 0 and 1
        v, slot = self.nodes[d // 3], int(rng.integers(2))
        row = list(point[c])
        edges = list(zip(self.choices[c][d][row[d]], row[d + 1:d + 3]))  # (input, op index), by input
        others = [u for u in range(v) if u not in (edges[0][0], edges[1][0])]
        edges[slot] = (others[int(rng.integers(len(others)))], edges[slot][1])
        edges.sort()
        row[d:d + 3] = [self.choices[c][d].index((edges[0][0], edges[1][0])), edges[0][1], edges[1][1]]
        return tuple(tuple(row) if i == c else r for i, r in enumerate(point))


def encoding_for(space: Space) -> CategoricalEncoding:
    """The categorical encoding of ``space`` by its embodiment (``nb201`` or ``darts``).

    Raises
    ------
    SpaceError
        For a space of another embodiment.
    """
    encodings = {"nb201": NB201Encoding, "darts": DartsEncoding}
    if space.embodiment not in encodings:
        raise SpaceError(f"space {space.name!r} ({space.embodiment!r}) has no categorical encoding; the encodings "
                         f"cover {', '.join(encodings)} spaces")
    return encodings[space.embodiment](space)
