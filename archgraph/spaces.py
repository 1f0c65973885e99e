"""Declarative search spaces: TOML files loaded into :class:`Space` objects.

A space names its embodiment (``fade``, ``darts``, ``nb201``, ``mlp``), the cells an
architecture consists of, how many vertices a cell may have, which ops it may carry, and the
embodiment's default parameters. An *architecture* of a space is a tuple of ArchGraphs, one
per cell; architecture files are JSON (see :func:`save_architecture`).

A ``[fit]`` table fits the defaults to the input (:meth:`Space.fitted`): FaDE's space keeps the
paper's 5×5 kernels and max pooling between cells on inputs of the paper's size and leaves the
pooling out, and narrows the kernel, where the deepest cell's maps would shrink to a few pixels.

``ops`` lists the ops any edge or vertex may carry; an optional ``[edge_ops.<cell>]`` table
narrows them edge by edge, keyed ``"u->v"`` (RobustDARTS S1 offers a different pair of ops
on every edge, Zela et al. 2020, §3, Fig. 7). Without ``ops``, the space offers the ops its
``edge_ops`` tables name.

The spaces shipped with archgraph are TOML files inside the package, in ``archgraph/space_files/``,
read through :mod:`importlib.resources` so that they are found however archgraph is installed
(an editable checkout, a wheel, ``pip install --target``). Folders listed in the
``ARCHGRAPH_SPACES`` environment variable (``os.pathsep``-separated) are searched before them,
and :func:`load` also takes the path of a file.

Examples
--------
>>> from archgraph import spaces, ArchGraph
>>> space = spaces.load("fade")
>>> space.name, len(space.cells), space.max_vertices
('fade', 4, 5)
>>> cell = ArchGraph([(0, 1)])
>>> net = space.compile([cell] * 4, input_shape=(1, 8, 8), num_classes=10)
>>> type(net).__name__
'FadeNetwork'
>>> s1 = spaces.load("s1")
>>> s1.ops_for("normal", (0, 2)), s1.ops_for("reduce", (0, 2))
(('skip_connect', 'dil_conv_3x3'), ('max_pool_3x3', 'avg_pool_3x3'))
"""

from __future__ import annotations

import inspect
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from torch import nn

from . import ops as _ops
from .errors import InvalidGraphError, SpaceError, UnknownOpError
from .graph import ArchGraph
from .space_params import check_values

__all__ = ["Space", "load", "available", "load_architecture", "save_architecture"]

Architecture = tuple[ArchGraph, ...]
Edge = tuple[int, int]

_EDGE_KEY = re.compile(r"^\s*(\d+)\s*->\s*(\d+)\s*$")


# embodiment name → builder in archgraph.embody, each ``build(cells, *, input_shape, num_classes, **params)``
_EMBODIMENTS = {"fade": "build_fade", "mlp": "build_mlp", "darts": "build_darts", "nb201": "build_nb201"}


@dataclass(frozen=True)
class Space:
    """A search space: what an architecture may be and how it is compiled.

    ``edge_ops`` maps a cell name to ``{(u, v): ops}``, the ops that edge may carry when
    they are fewer than the space's ``ops`` (``"u->v"`` keys are accepted, as in the files).
    """

    name: str
    embodiment: str
    cells: tuple[str, ...]
    min_vertices: int = 1
    max_vertices: int | None = None
    ops: tuple[str, ...] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    edge_ops: Mapping[str, Mapping[Edge, tuple[str, ...]]] = field(default_factory=dict)
    fit: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.embodiment, str) or self.embodiment not in _EMBODIMENTS:
            raise SpaceError(f"space {self.name!r}: unknown embodiment {self.embodiment!r}; "
                             f"known: {', '.join(_EMBODIMENTS)}")
        self._check_shape()
        object.__setattr__(self, "cells", tuple(self.cells))
        if self.ops is not None:
            object.__setattr__(self, "ops", tuple(self.ops))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        check_values(self.name, self.params, cells=len(self.cells))
        for op in self.ops or ():
            _ops.check(op)
        if not isinstance(self.edge_ops, Mapping):
            raise SpaceError(f"space {self.name!r}: edge_ops must map cell names to tables of 'u->v' = [ops], "
                             f"got {type(self.edge_ops).__name__}")
        edge_ops = MappingProxyType({cell: MappingProxyType(self._edge_table(cell, table))
                                     for cell, table in self.edge_ops.items()})
        object.__setattr__(self, "edge_ops", edge_ops)
        object.__setattr__(self, "fit", MappingProxyType(self._fit_rule(self.fit)))
        if self.ops is None and edge_ops:
            named = (op for table in edge_ops.values() for ops in table.values() for op in ops)
            object.__setattr__(self, "ops", tuple(dict.fromkeys(named)))

    def _check_shape(self) -> None:
        """Refuse fields of the wrong kind before they are used: a string as ``cells`` would become one
        cell per letter, and min_vertices > max_vertices a space no architecture fits."""
        where = f"space {self.name!r}"
        if not isinstance(self.cells, list | tuple) or not self.cells or not all(isinstance(c, str) and c
                                                                                for c in self.cells):
            raise SpaceError(f"{where}: cells must be a list of cell names, e.g. cells = [\"cell1\", \"cell2\"], "
                             f"got {self.cells!r}")
        if len(set(self.cells)) != len(self.cells):
            raise SpaceError(f"{where}: cells names a cell twice ({', '.join(self.cells)}); give each cell its own name")
        bounds = (("min_vertices", self.min_vertices), ("max_vertices", self.max_vertices))
        for key, value in bounds:
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise SpaceError(f"{where}: {key} must be a whole number of 1 or more, got {value!r}")
        if self.max_vertices is not None and self.min_vertices > self.max_vertices:
            raise SpaceError(f"{where}: min_vertices {self.min_vertices} exceeds max_vertices {self.max_vertices}; "
                             "no cell could fit, so lower min_vertices or raise max_vertices")
        if self.ops is not None and (not isinstance(self.ops, list | tuple)
                                     or not all(isinstance(op, str) for op in self.ops)):
            raise SpaceError(f"{where}: ops must be a list of op names, e.g. ops = [\"conv_3x3\"], got {self.ops!r}")
        if not isinstance(self.params, Mapping):
            raise SpaceError(f"{where}: params must be a table ([params] in a space file), got {self.params!r}")

    def _edge_table(self, cell: str, table: Mapping) -> dict[Edge, tuple[str, ...]]:
        """``table`` with ``"u->v"`` keys read as ``(u, v)``, every entry checked."""
        if cell not in self.cells:
            raise SpaceError(f"space {self.name!r}: edge_ops names cell {cell!r}, but the space's cells are "
                             f"{', '.join(self.cells)}")
        if not isinstance(table, Mapping):
            raise SpaceError(f"space {self.name!r}: edge_ops.{cell} must be a table of 'u->v' = [ops], "
                             f"got {type(table).__name__}")
        offered = None if self.ops is None else {_ops.parse(op) for op in self.ops}
        checked = {}
        for key, ops in table.items():
            u, v = edge = _edge_key(key, f"space {self.name!r}, edge_ops.{cell}")
            if self.max_vertices is not None and v >= self.max_vertices:
                raise SpaceError(f"space {self.name!r}: edge_ops.{cell} lists edge {u}->{v}, but cells have at "
                                 f"most {self.max_vertices} vertices (0..{self.max_vertices - 1})")
            ops = (ops,) if isinstance(ops, str) else tuple(ops)
            if not ops:
                raise SpaceError(f"space {self.name!r}: edge_ops.{cell} gives edge {u}->{v} no op; list at least one")
            for op in ops:
                _ops.check(op)
                if offered is not None and _ops.parse(op) not in offered:
                    raise SpaceError(f"space {self.name!r}: edge_ops.{cell} offers {op!r} on edge {u}->{v}, which "
                                     f"the space's ops do not list; add it to ops ({', '.join(self.ops)})")
            checked[edge] = ops
        return checked

    def _fit_rule(self, fit: Mapping[str, Any]) -> dict[str, Any]:
        """The ``[fit]`` table, checked: ``deepest_side``, a whole number of 1 or more, in a space of
        the ``fade`` embodiment (whose ``kernel_size`` and ``pool`` it fits)."""
        if not isinstance(fit, Mapping):
            raise SpaceError(f"space {self.name!r}: fit must be a table ([fit] in a space file), got {fit!r}")
        if fit and self.embodiment != "fade":
            raise SpaceError(f"space {self.name!r}: [fit] fits the kernel size and pooling of the fade embodiment; "
                             f"a {self.embodiment!r} space takes none")
        if unknown := set(fit) - {"deepest_side"}:
            raise SpaceError(f"space {self.name!r}: [fit] has no key(s) {sorted(unknown)}; it takes deepest_side")
        side = fit.get("deepest_side", 1)
        if not isinstance(side, int) or isinstance(side, bool) or side < 1:
            raise SpaceError(f"space {self.name!r}: [fit] deepest_side must be a whole number of 1 or more, got {side!r}")
        return dict(fit)

    def fitted(self, input_shape: Sequence[int], given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parameters the space's ``[fit]`` table fits to inputs of ``input_shape`` (channels
        first), leaving out those ``given`` sets; ``{}`` for a space without one, or an input
        that is not an image ``(C, H, W)`` or signal ``(C, L)``. Pass them to :meth:`compile`
        under your own overrides, as ``archgraph train`` and ``archgraph search`` do.

        With ``deepest_side = d``, on an input whose narrowest side is ``s``:

        - ``pool``: the space's pooling between cells where the deepest cell's maps stay at
          least ``d`` wide (each pooling halves a map, rounding up), else ``None``;
        - ``kernel_size``: the space's, narrowed to ``max(3, 2m - 1)`` for the narrowest map
          ``m`` a cell sees, so that every tap can fall on the map (a wider kernel reads padding
          only, beyond ``2m - 1``).

        FaDE's space (``d = 4``) keeps the paper's 5×5 kernels and max pooling on 32×32
        CIFAR-10 (maps 32, 16, 8, 4) and on MNIST-1D's 40-sample signals (40, 20, 10, 5), and on
        8×8 digits (8, 4, 2, 1) leaves the pooling out, its 5×5 kernels reading 8×8 maps:

        >>> fade = load("fade")
        >>> fade.fitted((3, 32, 32)), fade.fitted((1, 40)), fade.fitted((1, 8, 8))
        ({'pool': 'max', 'kernel_size': 5}, {'pool': 'max', 'kernel_size': 5}, {'pool': None, 'kernel_size': 5})
        >>> fade.fitted((1, 8, 8), {"pool": "max"}), fade.fitted((1, 4, 4), {"kernel_size": 5})
        ({'kernel_size': 3}, {'pool': None})
        """
        given = given or {}
        if not self.fit or len(input_shape) not in (2, 3):
            return {}
        params = {**builder_options(self.builder()), **self.params}
        side, halvings = min(int(n) for n in input_shape[1:]), len(self.cells) - 1
        pool = given.get("pool", params["pool"] if -(-side // 2 ** halvings) >= self.fit["deepest_side"] else None)
        narrowest = -(-side // 2 ** halvings) if pool is not None else side
        kernel = given.get("kernel_size", min(params["kernel_size"], max(3, 2 * narrowest - 1)))
        return {key: value for key, value in (("pool", pool), ("kernel_size", kernel)) if key not in given}

    def ops_for(self, cell: str, edge: Edge) -> tuple[str, ...] | None:
        """The ops edge ``(u, v)`` of ``cell`` may carry: its ``edge_ops`` entry, else the
        space's ``ops`` (``None``: any registered op).

        >>> load("darts").ops_for("normal", (0, 2))[:2]
        ('none', 'max_pool_3x3')
        """
        if cell not in self.cells:
            raise SpaceError(f"space {self.name!r} has no cell {cell!r}; its cells: {', '.join(self.cells)}")
        return self.edge_ops.get(cell, {}).get(tuple(edge), self.ops)

    def validate(self, arch: ArchGraph | Sequence[ArchGraph]) -> Architecture:
        """Return the architecture as a tuple of cells, or raise :class:`SpaceError`
        saying which cell breaks which rule of the space."""
        cells = (arch,) if isinstance(arch, ArchGraph) else tuple(arch)
        if len(cells) != len(self.cells) or not all(isinstance(c, ArchGraph) for c in cells):
            raise SpaceError(f"space {self.name!r} takes {len(self.cells)} ArchGraph cells "
                             f"({', '.join(self.cells)}), got {len(cells)}")
        for name, cell in zip(self.cells, cells):
            hi = self.max_vertices if self.max_vertices is not None else cell.num_nodes
            if not self.min_vertices <= cell.num_nodes <= hi:
                raise SpaceError(f"space {self.name!r}: cell {name!r} has {cell.num_nodes} vertices, "
                                 f"the space allows {self.min_vertices}..{hi}")
            for op in cell.node_ops.values():
                self._check_op(op, self.ops, f"cell {name!r} uses op {op!r}")
            for (u, v), op in cell.edge_ops.items():
                self._check_op(op, self.ops_for(name, (u, v)), f"cell {name!r} uses op {op!r} on edge {u}->{v}")
        return cells

    def _check_op(self, op: str, allowed: Sequence[str] | None, what: str) -> None:
        if allowed is not None and _ops.parse(op) not in {_ops.parse(a) for a in allowed}:
            raise SpaceError(f"space {self.name!r}: {what}, which the space does not offer there; "
                             f"choose from {', '.join(allowed)}")

    def compile(self, arch: ArchGraph | Sequence[ArchGraph], *, input_shape: Sequence[int],
                num_classes: int, seed: int | None = None, **params) -> nn.Module:
        """Compile an architecture of this space into a module; ``params`` override the
        space's defaults (unknown names raise).

        ``seed`` draws the initial weights from a generator seeded with it and leaves torch's
        global generator as it was, so the same seed gives the same module wherever it is
        compiled; ``None`` draws them from (and advances) the global generator, as PyTorch's
        constructors do. (The builder runs under :func:`torch.random.fork_rng`, since PyTorch's
        layers initialise themselves from the default generator and take no other.)

        >>> import torch
        >>> cells = [ArchGraph([(0, 1)])] * 4
        >>> a, b = (load("fade").compile(cells, input_shape=(1, 8, 8), num_classes=10, seed=0) for _ in range(2))
        >>> all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
        True
        """
        cells = self.validate(arch)
        self.check_params(params)
        return self.builder()(cells[0] if len(cells) == 1 else cells, input_shape=tuple(input_shape),
                              num_classes=num_classes, seed=seed, **{**self.params, **params})

    def builder(self) -> Callable[..., nn.Module]:
        """The embodiment's ``build(cells, *, input_shape, num_classes, **params)`` in
        :mod:`archgraph.embody`."""
        from . import embody

        return getattr(embody, _EMBODIMENTS[self.embodiment])

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Raise a SpaceError naming the parameters in ``params`` that this space does not take:
        its parameters are those its file sets and the keyword options of its embodiment's
        builder (e.g. ``weights_per_cell`` of :func:`~archgraph.embody.build_fade`).

        >>> load("fade").check_params({"weights_per_cell": 20000})
        >>> load("fade").check_params({"chanels": 4})
        Traceback (most recent call last):
        ...
        archgraph.errors.SpaceError: space 'fade' has no parameter(s) ['chanels']; its parameters: channels, \
kernel_size, pool, weights_per_cell
        """
        known = [*self.params, *(name for name in builder_options(self.builder()) if name not in self.params)]
        if unknown := set(params) - set(known):
            raise SpaceError(f"space {self.name!r} has no parameter(s) {sorted(unknown)}; "
                             f"its parameters: {', '.join(known) or 'none'}")
        check_values(self.name, params, cells=len(self.cells))

    @classmethod
    def from_toml(cls, path: str | Path | Traversable) -> Space:
        """Read a space file: a path, or a file of a package's resources (see the shipped
        files in ``archgraph/space_files/`` for the keys)."""
        if isinstance(path, str):
            path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise SpaceError(f"space file {path} is not valid TOML: {e}") from None
        known = {"name", "embodiment", "cells", "min_vertices", "max_vertices", "ops", "params", "description",
                 "edge_ops", "fit"}
        if unknown := set(data) - known:
            raise SpaceError(f"space file {path}: unknown key(s) {sorted(unknown)}; known keys: {sorted(known)}")
        for key in ("embodiment", "cells"):
            if key not in data:
                raise SpaceError(f"space file {path} lacks the key {key!r}")
        data.setdefault("name", Path(path.name).stem)
        return cls(**data)


def builder_options(build: Callable[..., nn.Module]) -> dict[str, Any]:
    """A builder's compile parameters and their defaults: its keyword-only options, less the task
    (``input_shape``, ``num_classes``) and ``seed``, which are not space parameters.

    >>> from archgraph.embody import build_nb201
    >>> builder_options(build_nb201)
    {'C': 16, 'N': 5}
    """
    return {name: p.default for name, p in inspect.signature(build).parameters.items()
            if p.kind is p.KEYWORD_ONLY and name not in ("input_shape", "num_classes", "seed")}


def _edge_key(key: str | Sequence[int], where: str) -> Edge:
    """An ``edge_ops`` key, ``"u->v"`` or a pair ``(u, v)``, as a pair with ``u < v``."""
    if isinstance(key, str):
        m = _EDGE_KEY.match(key)
        pair = (int(m.group(1)), int(m.group(2))) if m else ()
    else:
        pair = tuple(key)
    if len(pair) != 2 or not all(isinstance(i, int) and i >= 0 for i in pair) or pair[0] >= pair[1]:
        raise SpaceError(f"{where}: edge key {key!r} must name an edge 'u->v' with vertex ids u < v, e.g. '0->2'")
    return pair


def _search_path() -> list[Path | Traversable]:
    """The folders searched for a space by name: ``ARCHGRAPH_SPACES``'s first, then the
    package's own ``space_files``."""
    extra = [Path(p) for p in os.environ.get("ARCHGRAPH_SPACES", "").split(os.pathsep) if p]
    return [*extra, resources.files("archgraph") / "space_files"]


def available() -> list[str]:
    """Names of the spaces found on the search path.

    >>> {"fade", "darts", "nb201", "mlp"} <= set(available())
    True
    """
    return sorted({p.name.removesuffix(".toml") for d in _search_path() if d.is_dir() for p in d.iterdir()
                   if p.name.endswith(".toml") and p.is_file()})


def load(name_or_path: str | Path) -> Space:
    """Load a space by name (``"fade"``) or from a TOML file path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise SpaceError(f"space file {path} does not exist")
        return Space.from_toml(path)
    for folder in _search_path():
        if (candidate := folder / f"{name_or_path}.toml").is_file():
            return Space.from_toml(candidate)
    raise SpaceError(f"no space named {str(name_or_path)!r}; available: {', '.join(available())}, "
                     "or give the path of a .toml file")


def save_architecture(arch: ArchGraph | Sequence[ArchGraph], path: str | Path, *, space: str | None = None,
                      params: Mapping[str, Any] | None = None) -> Path:
    """Write an architecture (one or more cells) as JSON: ``{"space": ..., "params": {...}, "cells": [...]}``,
    ``params`` being the space parameters it is compiled with (``kernel_size``, ``channels``, ...)."""
    cells = (arch,) if isinstance(arch, ArchGraph) else tuple(arch)
    head = f'"space": {json.dumps(space)}, ' if space else ""
    head += f'"params": {json.dumps(dict(params))}, ' if params is not None else ""
    body = ",\n  ".join(json.dumps(c.to_dict()) for c in cells)  # one cell per line
    path = Path(path)
    path.write_text(f'{{{head}"cells": [\n  {body}\n]}}\n')
    return path


def load_architecture(path: str | Path) -> tuple[Architecture, str | None]:
    """Read an architecture file; returns the cells and the space it names (or ``None``).

    Accepts ``{"space": ..., "cells": [graph, ...]}``, a list of graphs, or one graph.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SpaceError(f"architecture file {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise SpaceError(f"architecture file {path} is not valid JSON: {e}") from None
    named = isinstance(data, dict) and "cells" in data
    listed = data["cells"] if named else data if isinstance(data, list) else [data]
    try:
        cells = tuple(ArchGraph.from_dict(c) for c in listed)
    except (InvalidGraphError, UnknownOpError) as err:  # the same error, naming the file
        raise type(err)(f"architecture file {path}: {err}") from None
    return cells, data.get("space") if named else None
