"""Figures, drawn with matplotlib's object API (no pyplot state, no screen, no Graphviz).

Every function draws into a given ``ax`` or a new :class:`~matplotlib.figure.Figure`,
optionally saves it, and returns the figure.

Examples
--------
>>> from archgraph import ArchGraph, plot
>>> fig = plot.draw_graph(ArchGraph([(0, 1, "conv(3)"), (1, 2)]), title="cell")
>>> fig.axes[0].get_title()
'cell'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import networkx as nx
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from .errors import SettingError, ShapeError
from .graph import ArchGraph

__all__ = ["accuracy_by_step", "best_over_time", "draw_architecture", "draw_front", "draw_graph",
           "draw_row_probabilities", "draw_trajectories", "learning_curves"]

_FORMATS = (".png", ".svg")  # the suffixes a figure is saved under
_NODE_SIZE = 1400  # a vertex's size for networkx (pt²): edges stop sqrt(size) / 2 pt short of its centre


def draw_graph(
    graph: ArchGraph,
    path: str | Path | None = None,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Draw ``graph`` left to right in topological layers (vertices of one
    :func:`networkx.topological_generations` layer share a column).

    Vertices are labelled with their id and op, edges with their op, each on its edge where it
    covers no other label, vertex or arrowhead (a spot between 0.22 and 0.78 of the edge's length);
    vertices without edges are drawn too. With ``path``, the figure is saved as PNG or SVG
    according to its suffix.

    Parameters
    ----------
    graph:
        The architecture to draw.
    path:
        Where to save the figure, ending in ``.png`` or ``.svg``; ``None`` saves nothing.
    ax:
        Axes to draw into; by default a new figure sized to the graph.
    title:
        Title of the axes.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from archgraph import ArchGraph, plot
    >>> g = ArchGraph([(0, 1), (1, 2, "conv(3)")], node_ops={1: "max_pool"})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     fig = plot.draw_graph(g, pathlib.Path(tmp) / "cell.svg")
    ...     svg = (pathlib.Path(tmp) / "cell.svg").read_text()
    >>> sorted(t.get_text() for t in fig.axes[0].texts)
    ['0', '1\\nmax_pool', '2', 'conv(3)']
    >>> svg.lstrip().startswith("<?xml")
    True
    """
    _check_format(path)
    g = graph.to_networkx()
    layers = [sorted(layer) for layer in nx.topological_generations(g)]
    for depth, layer in enumerate(layers):
        for v in layer:
            g.nodes[v]["layer"] = depth
    pos = nx.multipartite_layout(g, subset_key="layer")

    if ax is None:
        fig = Figure(figsize=_graph_size(graph))
        FigureCanvasAgg(fig)  # a canvas with a renderer, which measures the labels' boxes
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    vertices = nx.draw_networkx_labels(
        g, pos, ax=ax, font_size=8,
        labels={v: f"{v}\n{op}" if op else str(v) for v, op in g.nodes(data="op")},
        bbox={"boxstyle": "round,pad=0.4", "facecolor": "#dbe8f5", "edgecolor": "#3b6ea5"},
    )
    # edges between adjacent layers are straight; longer ones bend more the more layers they skip
    spans: dict[int, list] = {}
    for u, v in g.edges:
        spans.setdefault(g.nodes[v]["layer"] - g.nodes[u]["layer"], []).append((u, v))
    bends = []
    for span, edges in sorted(spans.items()):
        nx.draw_networkx_edges(g, pos, edgelist=edges, ax=ax, node_size=_NODE_SIZE, arrowsize=12,
                               edge_color="#555555", connectionstyle=f"arc3,rad={0.2 * (span - 1):g}")
        bends += [(u, v, 0.2 * (span - 1), graph.edge_ops.get((u, v))) for u, v in edges]
    ax.set_axis_off()
    # the view holds every vertex, those without edges too (labels alone do not extend it)
    ax.update_datalim(np.array([pos[v] for v in g.nodes]))
    ax.margins(0.15)
    ax.autoscale_view()
    if title is not None:
        ax.set_title(title)
    _label_edges(ax, pos, bends, list(vertices.values()))
    return _save(fig, path)


def draw_architecture(cells: Sequence[ArchGraph], path: str | Path | None = None, *,
                      names: Sequence[str] | None = None) -> Figure:
    """Draw the cells of an architecture side by side, each titled with its name.

    >>> from archgraph import ArchGraph, plot
    >>> fig = plot.draw_architecture([ArchGraph([(0, 1)]), ArchGraph([(0, 1), (1, 2)])], names=["a", "b"])
    >>> [ax.get_title() for ax in fig.axes]
    ['a', 'b']
    """
    _check_format(path)
    names = list(names) if names is not None else [f"cell {i + 1}" for i in range(len(cells))]
    sizes = [_graph_size(cell) for cell in cells]
    fig = Figure(figsize=(sum(w for w, _ in sizes), max(h for _, h in sizes) + 0.4))  # each cell at draw_graph's scale
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, len(cells), width_ratios=[w for w, _ in sizes])
    for i, (cell, name) in enumerate(zip(cells, names, strict=True)):
        draw_graph(cell, ax=fig.add_subplot(grid[0, i]), title=name)
    return _save(fig, path)


def best_over_time(curves: Mapping[str, Sequence[tuple[float, float]]], path: str | Path | None = None, *,
                   xlabel: str = "seconds", ylabel: str = "best validation accuracy") -> Figure:
    """Best score so far against time (or trials), one step curve per label.

    ``curves`` maps a label (e.g. a strategy) to ``(time, score)`` pairs in any order; each
    curve shows the running maximum of the scores.

    >>> from archgraph import plot
    >>> fig = plot.best_over_time({"random": [(1, 0.5), (2, 0.4), (3, 0.7)]})
    >>> fig.axes[0].lines[0].get_ydata().tolist()
    [0.5, 0.5, 0.7]
    """
    _check_format(path)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for label, points in curves.items():
        times, scores = zip(*sorted(points)) if points else ((), ())
        ax.step(times, np.maximum.accumulate(scores) if scores else [], where="post", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend()
    return _save(fig, path)


def draw_front(points: Sequence[tuple[float, float]], front: Sequence[int], path: str | Path | None = None, *,
               labels: Sequence[str] | None = None, xlabel: str = "parameters",
               ylabel: str = "validation accuracy") -> Figure:
    """Every point ``(x, y)`` (e.g. size, accuracy), the Pareto front's (indices ``front``) marked,
    joined in order of x and labelled with ``labels``; x on a log scale when it spans over 10×.

    >>> from archgraph import plot
    >>> fig = plot.draw_front([(100, 0.5), (10, 0.4), (50, 0.3)], [0, 1], labels=["a", "b", "c"])
    >>> fig.axes[0].lines[0].get_xdata().tolist(), [t.get_text() for t in fig.axes[0].texts]
    ([10.0, 100.0], ['b', 'a'])
    """
    _check_format(path)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    xy = np.asarray(points, dtype=float).reshape(-1, 2)
    ax.scatter(xy[:, 0], xy[:, 1], s=14, color="#9aa5b1", label="trials")
    ordered = sorted(front, key=lambda i: (xy[i, 0], xy[i, 1]))
    ax.plot(xy[ordered, 0], xy[ordered, 1], marker="o", color="#c0392b", label="Pareto front")
    for i in ordered if labels is not None else ():
        ax.annotate(labels[i], xy[i], xytext=(4, 4), textcoords="offset points", fontsize=7)
    if len(xy) and xy[:, 0].min() > 0 and xy[:, 0].max() > 10 * xy[:, 0].min():
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def learning_curves(curves: Mapping[str, Sequence[tuple[float, float]]], path: str | Path | None = None, *,
                    highlight: Sequence[str] = (), ylabel: str = "validation accuracy") -> Figure:
    """One line per label of ``(epoch, value)`` pairs: thin and grey, those in ``highlight``
    coloured and named in the legend.

    >>> from archgraph import plot
    >>> fig = plot.learning_curves({"1": [(0, 0.2), (1, 0.5)], "2": [(0, 0.3)]}, highlight=["1"])
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['_2', '1']
    """
    _check_format(path)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for label, points in curves.items():  # the others first, beneath the highlighted
        if label not in highlight and points:
            ax.plot(*zip(*points), color="#b8c0c8", linewidth=0.8, label=f"_{label}")
    for label in highlight:
        if curves.get(label):
            ax.plot(*zip(*curves[label]), marker="." if len(curves[label]) < 30 else None, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if any(curves.get(label) for label in highlight):
        ax.legend(fontsize=7)
    return _save(fig, path)


def draw_row_probabilities(
    history_alphas: Sequence[Sequence[Sequence[float]] | Mapping],
    path: str | Path | None = None,
    *,
    labels: Sequence[str] | Sequence[Sequence[str]] | None = None,
) -> Figure:
    """Each row's architecture weights over the epochs, one panel per row (FaDE Fig. 4).

    Parameters
    ----------
    history_alphas:
        One entry per epoch: the probabilities of every row (Choice), a list of lists —
        the ``alpha`` of :func:`archgraph.oneshot.train_bilevel`'s history rows — or those
        history rows themselves. Every epoch must have the same rows of the same widths.
    path:
        Where to save the figure (``.png`` or ``.svg``); ``None`` saves nothing.
    labels:
        Names of the candidates: one list for every row, or one list per row; by
        default their indices (as in a path of :func:`archgraph.ranks.top_paths`).

    Examples
    --------
    >>> from archgraph import plot
    >>> history = [{"alpha": [[0.5, 0.5], [0.2, 0.8]]}, {"alpha": [[0.7, 0.3], [0.1, 0.9]]}]
    >>> fig = plot.draw_row_probabilities(history, labels=["conv", "skip"])
    >>> [ax.get_title() for ax in fig.axes]
    ['row 1', 'row 2']
    >>> [line.get_ydata().tolist() for line in fig.axes[0].lines]
    [[0.5, 0.7], [0.5, 0.3]]
    """
    _check_format(path)
    epochs = [entry["alpha"] if isinstance(entry, Mapping) else entry for entry in history_alphas]
    if not epochs or not epochs[0]:
        raise ShapeError("nothing to draw: give one entry per epoch, each a list of the rows' probabilities")
    widths = [len(row) for row in epochs[0]]
    for e, alpha in enumerate(epochs):
        if [len(row) for row in alpha] != widths:
            raise ShapeError(
                f"epoch {e} has rows of widths {[len(row) for row in alpha]}, epoch 0 has {widths}: "
                "every epoch must hold the same rows with the same number of candidates"
            )
    names = _candidate_labels(labels, widths)
    values = [np.array([alpha[i] for alpha in epochs], dtype=float) for i in range(len(widths))]  # (epochs, w)
    return _save(_row_panels(values, names, xlabel="epoch", ylabel="probability", columns=4), path)


def draw_trajectories(anchors: Sequence[Sequence[Sequence[float]]], path: str | Path | None = None, *,
                      features: Sequence[str]) -> Figure:
    """FaDE's anchors over the outer steps, one panel per row, one line per feature (FaDE Fig. 6).

    ``anchors[t][i]`` is row i's anchor (scaled feature coordinates) at step t, as in
    :attr:`archgraph.search.fade.FadeSearch.trajectory`.

    >>> from archgraph import plot
    >>> fig = plot.draw_trajectories([[[0.1, 0.5]], [[0.3, 0.4]]], features=["a", "b"])
    >>> [line.get_ydata().tolist() for line in fig.axes[0].lines]
    [[0.1, 0.3], [0.5, 0.4]]
    """
    _check_format(path)
    values = np.asarray(anchors, dtype=float)
    if values.ndim != 3 or values.shape[0] == 0 or values.shape[2] != len(features):
        raise ShapeError(f"anchors must be (steps, rows, {len(features)} features), got shape {values.shape}")
    panels = [values[:, i, :] for i in range(values.shape[1])]
    fig = _row_panels(panels, [list(features)] * len(panels), xlabel="outer step", ylabel="anchor coordinate",
                      columns=len(panels))
    return _save(fig, path)


def accuracy_by_step(points: Sequence[tuple[int, float]], path: str | Path | None = None, *,
                     ylabel: str = "validation accuracy") -> Figure:
    """Accuracies of the architectures drawn at each outer step, and their median (FaDE Fig. 7).

    >>> from archgraph import plot
    >>> fig = plot.accuracy_by_step([(0, 0.5), (0, 0.7), (1, 0.8)])
    >>> fig.axes[0].lines[0].get_ydata().tolist()           # the median per step
    [0.6, 0.8]
    """
    _check_format(path)
    if not points:
        raise ShapeError("nothing to draw: give (step, accuracy) pairs")
    steps, scores = (np.asarray(v, dtype=float) for v in zip(*points))
    unique = np.unique(steps)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(unique, [float(np.median(scores[steps == s])) for s in unique], label="median")
    ax.scatter(steps, scores, s=10, alpha=0.6, label="architectures")
    ax.set_xlabel("outer step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _row_panels(values: Sequence[np.ndarray], names: Sequence[Sequence[str]], *, xlabel: str, ylabel: str,
                columns: int) -> Figure:
    """One panel per row i ("row i + 1"), one line per column k of ``values[i]`` (steps × k), in [0, 1]."""
    columns = min(len(values), columns)
    grid_rows = -(-len(values) // columns)
    fig = Figure(figsize=(3.6 * columns, 2.8 * grid_rows), layout="constrained")
    for i, (series, labels) in enumerate(zip(values, names)):
        ax = fig.add_subplot(grid_rows, columns, i + 1)
        for k, label in enumerate(labels):
            ax.plot(series[:, k], marker="." if len(series) < 30 else None, label=label)
        ax.set_title(f"row {i + 1}")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def _candidate_labels(labels, widths: list[int]) -> list[list[str]]:
    """One list of candidate names per row, checked against the rows' widths."""
    if labels is None:
        return [[str(k) for k in range(w)] for w in widths]
    if isinstance(labels, str):
        raise TypeError(f"labels: give a list of candidate names, not the string {labels!r}")
    labels = list(labels)
    if all(isinstance(name, str) for name in labels):
        labels = [labels] * len(widths)
    elif len(labels) != len(widths):
        raise ShapeError(f"labels: give one list of names for every row, or one list per row ({len(widths)} rows); "
                         f"got {len(labels)} lists")
    for i, (names, w) in enumerate(zip(labels, widths)):
        if len(names) != w:
            raise ShapeError(f"labels: row {i + 1} has {w} candidates, got {len(names)} names {list(names)}")
    return [[str(name) for name in names] for names in labels]


def _graph_size(graph: ArchGraph) -> tuple[float, float]:
    """Inches for a drawing of ``graph``: 2.2 wide per topological layer, 1.3 high per vertex of
    its fullest layer."""
    layers = [len(layer) for layer in nx.topological_generations(graph.to_networkx())]
    return max(3.0, 2.2 * len(layers)), max(2.5, 1.3 * max(layers))


#: where along its edge a label may sit (0: the source, 1: the target): the middle first, then
#: outwards in steps of 0.04 up to 0.22 and 0.78
_LABEL_SPOTS = (0.5, *(0.5 + sign * 0.04 * k for k in range(1, 8) for sign in (-1, 1)))


def _label_edges(ax: Axes, pos: Mapping, edges: Sequence[tuple[int, int, float, str | None]],
                 vertices: list[Text]) -> None:
    """Write each edge's op on the edge, ``(u, v, rad, op)`` with ``rad`` its ``arc3`` bend and
    ``op`` ``None`` for none, at one of :data:`_LABEL_SPOTS`, chosen so that the labels' boxes keep
    clear of each other and of the vertices, and then of the other edges' lines. DARTS cells send
    several edges through one gap between layers, whose middles lie close together: written all
    in the middle, their labels would cover each other.

    Every label starts in the middle of its edge; then, label by label and pass by pass, each
    moves to the spot where its box overlaps the others' least, then crosses the fewest lines
    (the spot nearest the middle among equals), until no label moves. Each move lowers the total
    (overlap, crossings), so this ends, at no overlap wherever the spots allow it."""
    points = ax.figure.dpi / 72  # pixels per point
    fixed = [_box(text, (0.4 * 8 + 2) * points) for text in vertices]  # their frames (pad 0.4 of 8 pt) and 2 pt
    for u, v, rad, _ in edges:  # and the arrowheads, where each edge stops short of its target vertex
        near, end = _arc(ax, pos[u], pos[v], rad, np.array([0.95, 1.0]))
        head = end - (end - near) / np.linalg.norm(end - near) * (_NODE_SIZE**0.5 / 2 + 6) * points
        fixed.append(Bbox.from_bounds(*(head - 7 * points), 14 * points, 14 * points))
    style = {"fontsize": 7, "ha": "center", "va": "center", "zorder": 3,
             "bbox": {"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"}}
    lines = [_arc(ax, pos[u], pos[v], rad, np.linspace(0.1, 0.9, 41)) for u, v, rad, _ in edges]
    labelled = [i for i, (*_, op) in enumerate(edges) if op is not None]
    spots, sizes = {}, {}
    for i in labelled:
        u, v, rad, op = edges[i]
        spots[i] = _arc(ax, pos[u], pos[v], rad, np.array(_LABEL_SPOTS))
        probe = ax.text(*ax.transData.inverted().transform(spots[i][0]), op, **style)
        sizes[i] = _box(probe, (0.2 * 7 + 2) * points).size  # its frame (pad 0.2 of 7 pt) and 2 pt clear
        probe.remove()

    def box(i: int, k: int) -> Bbox:
        (x, y), (w, h) = spots[i][k], sizes[i]
        return Bbox.from_bounds(x - w / 2, y - h / 2, w, h)

    def cost(i: int, k: int) -> tuple[float, int]:
        b = box(i, k)
        overlap = sum(_area(Bbox.intersection(b, other)) for other in fixed + [box(j, chosen[j]) for j in chosen
                                                                                if j != i])
        crossings = sum(int(b.count_contains(line)) for j, line in enumerate(lines) if j != i)
        return overlap, crossings

    chosen = dict.fromkeys(labelled, 0)
    moved = True
    while moved:
        moved = False
        for i in labelled:
            costs = [cost(i, k) for k in range(len(_LABEL_SPOTS))]
            best = min(range(len(costs)), key=costs.__getitem__)
            if costs[best] < costs[chosen[i]]:
                chosen[i], moved = best, True
    for i, k in chosen.items():
        ax.text(*ax.transData.inverted().transform(spots[i][k]), edges[i][3], **style)


def _arc(ax: Axes, start, end, rad: float, t: np.ndarray) -> np.ndarray:
    """Screen points at ``t`` along the edge from ``start`` to ``end`` (data coordinates) as
    matplotlib's ``arc3,rad=rad`` draws it: a quadratic Bézier curve on the screen."""
    start, end = ax.transData.transform([start, end])
    bend = (start + end) / 2 + rad * np.array([end[1] - start[1], start[0] - end[0]])
    t = t[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * bend + t**2 * end


def _box(text: Text, pad: float) -> Bbox:
    """The screen box of ``text`` with ``pad`` pixels around it, where its frame is drawn."""
    return text.get_window_extent().padded(pad)


def _area(box: Bbox | None) -> float:
    return 0.0 if box is None else box.width * box.height


def _check_format(path: str | Path | None) -> None:
    if path is not None and Path(path).suffix.lower() not in _FORMATS:
        raise SettingError(f"cannot save a figure as {str(path)!r}: expected a path ending in {' or '.join(_FORMATS)}")


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        fig.savefig(path, bbox_inches="tight", dpi=150)
    return fig
