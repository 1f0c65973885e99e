"""The notations NAS papers, logs and benchmarks print, read into ArchGraphs and written back.

* a DARTS genotype, ``Genotype(normal=[(op, input), ...], normal_concat=..., reduce=[...],
  reduce_concat=...)``, as the DARTS reference code (quark0/darts) and its descendants print
  it in their logs: :func:`parse_genotype` and :func:`format_genotype`; the
  :class:`~archgraph.embody.darts.Genotype` goes to and from ``(normal, reduce)`` cells with
  :func:`~archgraph.embody.darts.genotype_to_graphs` and
  :func:`~archgraph.embody.darts.graphs_to_genotype`;
* a NAS-Bench-101 cell (Ying et al. 2019, §2.1), an upper-triangular 0/1 adjacency matrix and
  one op per vertex, ``input`` first and ``output`` last: :func:`from_nb101`, :func:`to_nb101`;
* a NAS-Bench-201 string (Dong & Yang 2020, §2), ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``:
  :func:`from_nb201_string`, :func:`to_nb201_string` (from :mod:`archgraph.embody.nb201`).

A string that cannot be read raises :class:`~archgraph.errors.SpaceError` with one line that
says what was expected.

Examples
--------
>>> from archgraph.embody.darts import genotype_to_graphs, graphs_to_genotype
>>> line = ("genotype = Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)], normal_concat=range(2, 3), "
...         "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=range(2, 3))")
>>> normal, reduce = genotype_to_graphs(parse_genotype(line))
>>> normal.edge_ops
mappingproxy({(0, 2): 'sep_conv_3x3', (1, 2): 'skip_connect'})
>>> format_genotype(graphs_to_genotype(normal, reduce))
"Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1)], normal_concat=[2], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])"
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from . import ops as _ops
from .embody.darts import Genotype
from .embody.nb201 import from_nb201_string, to_nb201_string
from .errors import SpaceError
from .graph import ArchGraph

__all__ = ["NB101_OPS", "format_genotype", "from_nb101", "from_nb201_string", "parse_genotype", "to_nb101",
           "to_nb201_string"]

_FIELDS = Genotype._fields
_GENOTYPE_FORM = "Genotype(normal=[(op, input), ...], normal_concat=[...], reduce=[(op, input), ...], reduce_concat=[...])"

#: NAS-Bench-101's vertex ops (Ying et al. 2019, §2.1) and the archgraph op each stands for.
NB101_OPS: dict[str, str] = {
    "conv3x3-bn-relu": "conv_bn_relu(3)",
    "conv1x1-bn-relu": "conv_bn_relu(1)",
    "maxpool3x3": "max_pool_3x3",
}


# --- DARTS genotypes ------------------------------------------------------------------------

def parse_genotype(text: str) -> Genotype:
    """The :class:`~archgraph.embody.darts.Genotype` in ``text``, a ``Genotype(...)`` as DARTS
    and its descendants print it: fields by keyword or by position, concat lists as lists or
    ``range(a, b)``; text around it (a log line's prefix) is ignored. The string is read, never
    run.

    Raises
    ------
    SpaceError
        If ``text`` holds no ``Genotype(...)``, it does not parse, a field is missing, unknown
        or given twice, or a field is not a list of ``(op, input)`` pairs (or of nodes).

    Examples
    --------
    >>> parse_genotype("Genotype([('skip_connect', 0), ('sep_conv_3x3', 1)], [2], "
    ...                "[('max_pool_3x3', 0), ('skip_connect', 1)], [2])").reduce
    [('max_pool_3x3', 0), ('skip_connect', 1)]
    >>> parse_genotype("Genotype(normal=[('skip_connect', 0)])")
    Traceback (most recent call last):
    ...
    archgraph.errors.SpaceError: the genotype lacks normal_concat, reduce, reduce_concat; write Genotype(normal=[(op, input), ...], ...
    """
    if not isinstance(text, str) or "Genotype(" not in text:
        raise SpaceError(f"expected a DARTS genotype, {_GENOTYPE_FORM}; got {_excerpt(text)}")
    start, end = text.index("Genotype("), text.rfind(")")
    source = text[start:end + 1] if end > start else text[start:]
    try:
        call = ast.parse(source, mode="eval").body
    except SyntaxError as e:
        raise SpaceError(f"cannot read the genotype {_excerpt(source)}: {e.msg} at character {e.offset}; "
                         f"write {_GENOTYPE_FORM}") from None
    if not isinstance(call, ast.Call) or len(call.args) > len(_FIELDS):
        raise SpaceError(f"cannot read the genotype {_excerpt(source)}; write {_GENOTYPE_FORM}")
    fields = dict(zip(_FIELDS, call.args))
    for keyword in call.keywords:
        if keyword.arg not in _FIELDS or keyword.arg in fields:
            what = "an unknown" if keyword.arg not in _FIELDS else "a repeated"
            raise SpaceError(f"the genotype has {what} field {keyword.arg!r}; its fields are {', '.join(_FIELDS)}")
        fields[keyword.arg] = keyword.value
    missing = [name for name in _FIELDS if name not in fields]
    if missing:
        raise SpaceError(f"the genotype lacks {', '.join(missing)}; write {_GENOTYPE_FORM}")
    return Genotype(*(_field(name, fields[name]) for name in _FIELDS))


def format_genotype(genotype: Genotype | Sequence) -> str:
    """``genotype`` written as DARTS writes it (the ``repr`` of its ``Genotype`` named tuple),
    concat lists as lists; :func:`parse_genotype` reads it back, and so does Python with the
    reference code's ``Genotype``.

    >>> from archgraph.embody.darts import DARTS_V2
    >>> format_genotype(DARTS_V2)[:64]
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep"
    """
    normal, normal_concat, reduce, reduce_concat = genotype

    def pairs(items) -> list[tuple[str, int]]:
        return [(str(op), int(j)) for op, j in items]

    return repr(Genotype(pairs(normal), [int(c) for c in normal_concat], pairs(reduce), [int(c) for c in reduce_concat]))


def _field(name: str, node: ast.expr) -> list:
    """A genotype field: a list of ``(op, input)`` pairs, or of nodes (``..._concat``)."""
    if name.endswith("_concat") and isinstance(node, ast.Call) and getattr(node.func, "id", None) == "range":
        bounds = [_literal(name, arg) for arg in node.args]
        if node.keywords or not 1 <= len(bounds) <= 3 or not all(_is_int(b) for b in bounds):
            raise SpaceError(f"the genotype's {name} is {ast.unparse(node)}; write range(first, stop) or a list of nodes")
        return list(range(*bounds))
    value = _literal(name, node)
    if not isinstance(value, (list, tuple)):
        raise SpaceError(f"the genotype's {name} is {ast.unparse(node)}, not a list")
    if name.endswith("_concat"):
        if not all(_is_int(c) for c in value):
            raise SpaceError(f"the genotype's {name} is {ast.unparse(node)}; list node ids, e.g. [2, 3, 4, 5]")
        return list(value)
    for item in value:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) and _is_int(item[1])):
            raise SpaceError(f"the genotype's {name} holds {item!r}; each entry is an (op, input) pair such as "
                             "('sep_conv_3x3', 0)")
    return [tuple(item) for item in value]


def _literal(name: str, node: ast.expr):
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise SpaceError(f"the genotype's {name} is {ast.unparse(node)}, which is not a literal; write it out, "
                         "e.g. [('sep_conv_3x3', 0), ...] or [2, 3, 4, 5]") from None


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _excerpt(text, limit: int = 80) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


# --- NAS-Bench-101 ------------------------------------------------------------------------------

def from_nb101(matrix, ops: Sequence[str]) -> ArchGraph:
    """The cell of a NAS-Bench-101 spec: ``matrix[u][v]`` is 1 for an edge u → v (``u < v``),
    ``ops`` names each vertex, ``"input"`` first, ``"output"`` last, the others from
    :data:`NB101_OPS`. The input and output vertices carry no op; the others carry the
    archgraph op :data:`NB101_OPS` names. Vertices are kept as given (a spec the benchmark
    would prune keeps its extra vertices), and the limits of the benchmark's space (7 vertices,
    9 edges) are not imposed. archgraph has no NAS-Bench-101 network: the graph serves
    identity (isomorphic specs give equal graphs), features, predictors and drawings.

    Raises
    ------
    SpaceError
        If the matrix is not square, not 0/1, not strictly upper-triangular, or ``ops`` does
        not name every vertex as above.

    Examples
    --------
    >>> g = from_nb101([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "maxpool3x3", "output"])
    >>> g.edges, dict(g.node_ops)
    (((0, 1), (0, 2), (1, 2)), {1: 'max_pool_3x3'})
    """
    rows = [list(row) for row in matrix]
    n = len(rows)
    if n < 2 or any(len(row) != n for row in rows):
        raise SpaceError(f"a NAS-Bench-101 matrix is square with at least 2 rows (input and output), got rows of "
                         f"lengths {[len(row) for row in rows]}")
    ops = [str(op) for op in ops]
    if len(ops) != n or ops[0] != "input" or ops[-1] != "output":
        raise SpaceError(f"a NAS-Bench-101 op list names the {n} vertices of the matrix, 'input' first and 'output' "
                         f"last, got {ops}")
    for v, op in enumerate(ops[1:-1], start=1):
        if op not in NB101_OPS:
            raise SpaceError(f"NAS-Bench-101 vertex {v} has op {op!r}; the benchmark's ops are {', '.join(NB101_OPS)}")
    edges = []
    for u, row in enumerate(rows):
        for v, x in enumerate(row):
            if x not in (0, 1):
                raise SpaceError(f"NAS-Bench-101 matrix entry [{u}][{v}] is {x!r}; entries are 0 or 1")
            if x and u >= v:
                raise SpaceError(f"NAS-Bench-101 matrix entry [{u}][{v}] is 1, but the matrix is upper-triangular "
                                 "(edges u → v with u < v): number the vertices in topological order")
            if x:
                edges.append((u, v))
    return ArchGraph(edges, num_nodes=n, node_ops={v: NB101_OPS[op] for v, op in enumerate(ops[1:-1], start=1)})


def to_nb101(graph: ArchGraph) -> tuple[list[list[int]], list[str]]:
    """The NAS-Bench-101 spec ``(matrix, ops)`` of a cell (inverse of :func:`from_nb101`): the
    op-less source is the input, the op-less sink the output, the other vertices in
    topological order between them.

    Raises
    ------
    SpaceError
        If the graph has an edge op, a vertex op that is not one of :data:`NB101_OPS`' ops, or
        not exactly two op-less vertices, a source and a sink.

    Examples
    --------
    >>> to_nb101(from_nb101([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv1x1-bn-relu", "output"]))
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ['input', 'conv1x1-bn-relu', 'output'])
    """
    names = {_ops.parse(op): name for name, op in NB101_OPS.items()}
    if graph.edge_ops:
        (u, v), op = next(iter(graph.edge_ops.items()))
        raise SpaceError(f"edge ({u}, {v}) carries op {op!r}, but NAS-Bench-101 ops sit on vertices")
    for v, op in graph.node_ops.items():
        if len(_ops.split(op)) > 1 or _ops.parse(op) not in names:
            raise SpaceError(f"vertex {v} carries op {op!r}, which NAS-Bench-101 does not have; its ops are "
                             f"{', '.join(NB101_OPS.values())}")
    plain = [v for v in graph.nodes if graph.node_op(v) is None]
    sources = [v for v in plain if not graph.predecessors(v)]
    sinks = [v for v in plain if not graph.successors(v)]
    if len(plain) != 2 or len(sources) != 1 or len(sinks) != 1 or sources == sinks:
        raise SpaceError(f"a NAS-Bench-101 cell has two vertices without an op, the input (a source) and the output "
                         f"(a sink); this graph has {len(plain)}: {plain}")
    first, last = sources[0], sinks[0]
    order = [first, *(v for v in graph.topological_order() if v not in (first, last)), last]
    index = {v: i for i, v in enumerate(order)}
    matrix = [[0] * len(order) for _ in order]
    for u, v in graph.edges:
        matrix[index[u]][index[v]] = 1
    return matrix, ["input", *(names[_ops.parse(graph.node_op(v))] for v in order[1:-1]), "output"]
