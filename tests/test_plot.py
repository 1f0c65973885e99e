import itertools

import numpy as np
import pytest
from matplotlib.figure import Figure

from archgraph import ArchGraph
from archgraph.embody import DARTS_V1, DARTS_V2, genotype_to_graphs
from archgraph.plot import accuracy_by_step, draw_architecture, draw_graph, draw_row_probabilities

CELL = ArchGraph(
    [(0, 1, "sep_conv_3x3"), (0, 2, "skip_connect"), (1, 2), (1, 3, "conv(3)"), (2, 3), (0, 3)],
    node_ops={1: "max_pool"},
)


def vertex_labels(fig: Figure) -> dict[int, tuple[float, float]]:
    """Vertex id -> position of its label (vertex labels start with the id; edge labels with an op)."""
    texts = fig.axes[0].texts
    return {int(t.get_text().split("\n")[0]): t.get_position() for t in texts if t.get_text()[0].isdigit()}


def test_png_is_written(tmp_path):
    path = tmp_path / "cell.png"
    fig = draw_graph(CELL, path)
    assert isinstance(fig, Figure)
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n")


def test_svg_is_written_and_suffix_case_is_ignored(tmp_path):
    path = tmp_path / "cell.SVG"
    draw_graph(CELL, str(path))
    text = path.read_text()
    assert "<svg" in text and text.rstrip().endswith("</svg>")


def test_unknown_suffix_is_refused_before_drawing(tmp_path):
    path = tmp_path / "cell.jpg"
    with pytest.raises(ValueError, match=r"expected a path ending in \.png or \.svg"):
        draw_graph(CELL, path)
    assert not path.exists()


def test_labels_show_ids_node_ops_and_edge_ops():
    texts = sorted(t.get_text() for t in draw_graph(CELL).axes[0].texts)
    assert texts == ["0", "1\nmax_pool", "2", "3", "conv(3)", "sep_conv_3x3", "skip_connect"]
    assert sorted(vertex_labels(draw_graph(CELL))) == [0, 1, 2, 3]


def test_vertices_sit_in_topological_layers():
    g = ArchGraph([(3, 2), (2, 1), (3, 1), (1, 0), (4, 0)])
    pos = vertex_labels(draw_graph(g))
    assert len(pos) == g.num_nodes
    assert all(pos[u][0] < pos[v][0] for u, v in g.edges)  # edges run left to right
    assert pos[3][0] == pos[4][0]  # both sources: the first layer


def test_draws_into_given_axes_with_title():
    fig = Figure()
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    assert draw_graph(ArchGraph([(0, 1)]), ax=right, title="a chain") is fig
    assert right.get_title() == "a chain" and [t.get_text() for t in right.texts] == ["0", "1"]
    assert not left.texts  # the other axes stay empty


def test_single_vertex():
    fig = draw_graph(ArchGraph(num_nodes=1))
    assert [t.get_text() for t in fig.axes[0].texts] == ["0"]


# draw_row_probabilities: FaDE Fig. 4, each row's architecture weights over the epochs

ROW_HISTORY = [  # three epochs of a trainer history: rows of 3 and 2 candidates
    {"epoch": 0, "alpha": [[0.4, 0.3, 0.3], [0.5, 0.5]]},
    {"epoch": 1, "alpha": [[0.6, 0.2, 0.2], [0.3, 0.7]]},
    {"epoch": 2, "alpha": [[0.8, 0.1, 0.1], [0.1, 0.9]]},
]


def test_row_probabilities_png_one_panel_per_row(tmp_path):
    path = tmp_path / "rows.png"
    fig = draw_row_probabilities(ROW_HISTORY, path)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [ax.get_title() for ax in fig.axes] == ["row 1", "row 2"]
    first, second = fig.axes
    assert [line.get_ydata().tolist() for line in first.lines] == [[0.4, 0.6, 0.8], [0.3, 0.2, 0.1], [0.3, 0.2, 0.1]]
    assert [line.get_ydata().tolist() for line in second.lines] == [[0.5, 0.3, 0.1], [0.5, 0.7, 0.9]]
    assert first.lines[0].get_xdata().tolist() == [0, 1, 2]
    assert [t.get_text() for t in second.get_legend().get_texts()] == ["0", "1"]


def test_row_probabilities_from_alpha_lists_with_labels_per_row():
    alphas = [row["alpha"] for row in ROW_HISTORY]
    fig = draw_row_probabilities(alphas, labels=[["a", "b", "c"], ["x", "y"]])
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["x", "y"]
    same = draw_row_probabilities([[[0.5, 0.5]], [[0.4, 0.6]]], labels=["conv", "skip"])
    assert [t.get_text() for t in same.axes[0].get_legend().get_texts()] == ["conv", "skip"]


@pytest.mark.parametrize(
    ("history", "labels", "message"),
    [
        ([], None, "nothing to draw"),
        ([[[0.5, 0.5]], [[0.5, 0.5], [1.0]]], None, r"epoch 1 has rows of widths \[2, 1\], epoch 0 has \[2\]"),
        ([[[0.5, 0.5]], [[0.2, 0.3, 0.5]]], None, r"epoch 1 has rows of widths \[3\]"),
        (ROW_HISTORY, ["a", "b"], r"row 1 has 3 candidates, got 2 names"),
        (ROW_HISTORY, [["a", "b", "c"]], r"one list per row \(2 rows\); got 1 lists"),
    ],
)
def test_row_probabilities_reject_inconsistent_input(tmp_path, history, labels, message):
    path = tmp_path / "rows.png"
    with pytest.raises(TypeError, match="not the string"):
        draw_row_probabilities(ROW_HISTORY, path, labels="abc")
    with pytest.raises(ValueError, match=message):
        draw_row_probabilities(history, path, labels=labels)
    assert not path.exists()


def test_accuracy_by_step_draws_every_architecture_and_rejects_nothing_to_draw(tmp_path):
    fig = accuracy_by_step([(0, 0.2), (0, 0.4), (0, 0.9), (2, 0.5)], tmp_path / "a.png")
    assert fig.axes[0].lines[0].get_xdata().tolist() == [0.0, 2.0]
    assert fig.axes[0].lines[0].get_ydata().tolist() == [0.4, 0.5]
    assert len(fig.axes[0].collections[0].get_offsets()) == 4 and (tmp_path / "a.png").stat().st_size > 0
    with pytest.raises(ValueError, match="nothing to draw"):
        accuracy_by_step([])


def test_vertices_without_edges_are_drawn_inside_the_view():
    g = ArchGraph([(0, 1), (1, 3)], num_nodes=5)   # 2 and 4 have no edge
    ax = draw_graph(g).axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    pos = vertex_labels(ax.figure)
    assert sorted(pos) == [0, 1, 2, 3, 4]
    assert all(x0 < x < x1 and y0 < y < y1 for x, y in pos.values())


DARTS_CELLS = [(f"{name} {kind}", cell) for name, genotype in (("DARTS_V1", DARTS_V1), ("DARTS_V2", DARTS_V2))
               for kind, cell in zip(("normal", "reduce"), genotype_to_graphs(genotype))]


@pytest.mark.parametrize(("name", "cell"), DARTS_CELLS, ids=[name for name, _ in DARTS_CELLS])
def test_labels_of_darts_cells_do_not_overlap_and_sit_on_their_edges(name, cell):
    fig = draw_architecture([cell, cell], names=["alone", "beside"])   # both ways: as one cell and side by side
    for ax in [draw_graph(cell).axes[0], *fig.axes]:
        ax.figure.draw_without_rendering()
        frames = {t: t.get_bbox_patch().get_window_extent() for t in ax.texts}  # each label's box as drawn
        assert len(frames) == cell.num_nodes + cell.num_edges
        assert not [(a.get_text(), b.get_text()) for a, b in itertools.combinations(frames, 2)
                    if frames[a].overlaps(frames[b])]
        # each edge between neighbouring layers (drawn straight) has a label of its op on its middle 60 %
        pos = {int(t.get_text()): np.array(t.get_position()) for t in frames if t.get_text().isdigit()}
        labels = [(t.get_text(), np.array(t.get_position())) for t in frames if not t.get_text().isdigit()]
        for u, v in cell.edges:
            a, b = pos[u], pos[v]
            if any(a[0] < p[0] < b[0] for p in pos.values()):
                continue  # it skips a layer: drawn bent
            along = [np.dot(p - a, b - a) / np.dot(b - a, b - a) for op, p in labels if op == cell.edge_ops[u, v]
                     and np.allclose(a + np.dot(p - a, b - a) / np.dot(b - a, b - a) * (b - a), p)]
            assert any(0.2 < t < 0.8 for t in along), f"{name}: no {cell.edge_ops[u, v]} label on edge {u}->{v}"
