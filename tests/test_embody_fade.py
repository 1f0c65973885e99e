import importlib.util
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from archgraph import ArchGraph, ShapeError, SpaceError, spaces
from archgraph.embody import FadeCell, build_fade, chain_channels
from archgraph.embody.fade import cell_weights, equal_size_width
from archgraph.generate import enumerate_dags

ROOT = Path(__file__).resolve().parents[1]


def random_dag(rng: np.random.Generator, n: int) -> ArchGraph:
    edges = [(u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < 0.5]
    return ArchGraph(edges, num_nodes=n)


def paths_input_to_output(g: ArchGraph) -> int:
    """Paths from the prepended input vertex to the appended output vertex (networkx)."""
    aug = g.to_networkx()
    aug.add_edges_from(("in", s) for s in g.sources)
    aug.add_edges_from((t, "out") for t in g.sinks)
    return sum(1 for _ in nx.all_simple_paths(aug, "in", "out"))


@pytest.mark.parametrize("seed", range(6))
def test_cell_sums_inputs_then_relu_along_every_path(seed):
    # identity 1×1 convolutions: each vertex = ReLU(sum of its inputs), so the output of a
    # positive input is the input times the number of input→output paths.
    g = random_dag(np.random.default_rng(seed), 5)
    cell = FadeCell(g, 1, 1, kernel_size=1)
    with torch.no_grad():
        for conv in cell.edge_ops:
            conv.weight.fill_(1.0)
            conv.bias.zero_()
    x = torch.rand(2, 1, 3, 3) + 0.1
    torch.testing.assert_close(cell(x), x * paths_input_to_output(g))


def test_cell_has_one_conv_per_edge_source_and_sink():
    g = ArchGraph([(0, 2), (1, 2), (2, 3), (2, 4), (3, 4)])
    c_in, c, k = 3, 8, 5
    cell = FadeCell(g, c_in, c, kernel_size=k)
    n_in, n_inner = len(g.sources), g.num_edges + len(g.sinks)
    assert len(cell.edge_ops) == n_in + n_inner
    expected = n_in * (c_in * c * k * k + c) + n_inner * (c * c * k * k + c)
    assert sum(p.numel() for p in cell.parameters()) == expected


def test_edge_ops_override_the_default_convolution():
    g = ArchGraph([(0, 1, "skip_connect")])
    cell = FadeCell(g, 4, 4, kernel_size=3)
    kinds = [type(m).__name__ for m in cell.edge_ops]
    assert kinds == ["Conv2d", "Identity", "Conv2d"]


def test_chain_pools_between_cells_and_doubles_channels():
    cell = ArchGraph([(0, 1)])
    net = build_fade([cell] * 3, input_shape=(3, 16, 16), num_classes=5, channels=4)
    widths = [c.edge_ops[0].out_channels for c in net.cells if isinstance(c, FadeCell)]
    assert widths == [4, 8, 16]
    pools = [m for m in net.cells if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 2
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 5)


def test_one_dimensional_signals_and_tiny_maps():
    cell = ArchGraph([(0, 1), (1, 2)])
    net = build_fade([cell] * 4, input_shape=(1, 40), num_classes=10, channels=4)
    assert net(torch.randn(3, 1, 40)).shape == (3, 10)
    # 8×8 digits through 4 cells: the map shrinks to 1×1 and stays there
    net = build_fade([cell] * 5, input_shape=(1, 8, 8), num_classes=10, channels=2)
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_gradients_reach_every_parameter():
    cells, _ = spaces.load_architecture(ROOT / "examples" / "fade_arch.json")
    net = spaces.load("fade").compile(cells, input_shape=(1, 8, 8), num_classes=10)
    net(torch.randn(4, 1, 8, 8)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_kaiming_init_zero_bias_and_seeded_determinism():
    cell = ArchGraph([(0, 1)])
    torch.manual_seed(3)
    a = build_fade([cell], input_shape=(1, 8, 8), num_classes=10)
    torch.manual_seed(3)
    b = build_fade([cell], input_shape=(1, 8, 8), num_classes=10)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    conv = a.cells[0].edge_ops[1]
    fan_in = conv.weight[0].numel()
    assert conv.bias.abs().sum() == 0
    assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.15)


def test_matches_the_handwritten_network():
    spec = importlib.util.spec_from_file_location("handwritten_fade", ROOT / "benchmarks" / "handwritten_fade.py")
    hand = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hand)
    cells, _ = spaces.load_architecture(ROOT / "examples" / "fade_arch.json")
    net = spaces.load("fade").compile(cells, input_shape=(1, 8, 8), num_classes=10)
    twin = hand.HandwrittenFade()
    hand.copy_weights(net, twin)
    x = torch.randn(5, 1, 8, 8, requires_grad=True)
    torch.testing.assert_close(net(x), twin(x), rtol=0, atol=0)


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ShapeError, match="images \\(C, H, W\\) or signals \\(C, L\\).*mlp space"):
        build_fade([ArchGraph([(0, 1)])], input_shape=(64,), num_classes=10)
    with pytest.raises(SpaceError, match="pool must be 'max', 'avg' or None, got 'min'"):
        build_fade([ArchGraph([(0, 1)])] * 2, input_shape=(1, 8, 8), num_classes=10, pool="min")


def test_chain_channels():
    assert chain_channels(16, 3) == [16, 32, 64]
    assert chain_channels([3, 5], 2) == [3, 5]
    with pytest.raises(SpaceError, match="one count per cell"):
        chain_channels([3, 5], 3)


# --- equal-size cells (FaDE §3.1) ---------------------------------------------------------

@pytest.mark.parametrize("graph, dim", [
    (ArchGraph([], num_nodes=1), 2),
    (ArchGraph([(0, 2), (1, 2), (2, 3), (2, 4)]), 2),
    (ArchGraph([(0, 1, "sep_conv_3x3"), (1, 2), (0, 2, "skip_connect")]), 2),
    (ArchGraph([(i, j) for j in range(5) for i in range(j)]), 1),
])
@pytest.mark.parametrize("width", [1, 7, 30])
def test_cell_weights_counts_the_built_cell(graph, dim, width):
    cell = FadeCell(graph, 3, 8, width=width, kernel_size=5, dim=dim)
    assert cell_weights(graph, 3, 8, width, kernel_size=5, dim=dim) == sum(p.numel() for p in cell.parameters())


def test_a_wide_cell_keeps_its_channels_at_the_boundary_and_its_width_inside():
    g = ArchGraph([(0, 1), (1, 2)])
    cell = FadeCell(g, 3, 8, width=20, kernel_size=3)
    assert [(m.in_channels, m.out_channels) for m in cell.edge_ops] == [(3, 20), (20, 20), (20, 20), (20, 8)]
    assert cell(torch.randn(2, 3, 6, 6)).shape == (2, 8, 6, 6)
    default = FadeCell(g, 3, 8, kernel_size=3)
    assert default.width == 8 and all(m.out_channels == 8 for m in default.edge_ops)


def test_every_dag_up_to_six_vertices_fits_the_papers_cell_size():
    """FaDE §3.1: ≈ 0.25 M weights per cell, 5×5 kernels; every DAG's width within ±5 %."""
    target = 250_000
    for n in range(1, 7):
        for g in enumerate_dags(n):
            width = equal_size_width(g, 16, 32, target, kernel_size=5)
            count = cell_weights(g, 16, 32, width, kernel_size=5)
            assert abs(count - target) <= 0.05 * target, (g, width, count)
            # the closest whole width: one channel more or less is no closer
            assert all(abs(count - target) <= abs(cell_weights(g, 16, 32, w, kernel_size=5) - target)
                       for w in (width - 1, width + 1) if w >= 1)


def test_equal_size_network_has_equal_cells_and_a_clear_error_where_a_size_cannot_be_met():
    cells = [ArchGraph([], num_nodes=1), ArchGraph([(i, j) for j in range(5) for i in range(j)]),
             ArchGraph([(0, 1), (1, 2)]), ArchGraph([(0, 1)])]
    net = build_fade(cells, input_shape=(1, 40), num_classes=10, channels=[4, 8, 16, 32], kernel_size=3,
                     weights_per_cell=[12000, 12000, 16000, 16000])
    counts = [sum(p.numel() for p in c.parameters()) for c in net.cells if isinstance(c, FadeCell)]
    assert all(abs(c - t) <= 0.05 * t for c, t in zip(counts, [12000, 12000, 16000, 16000])), counts
    assert net(torch.randn(2, 1, 40)).shape == (2, 10)
    with pytest.raises(SpaceError, match="choose a larger weights_per_cell"):
        build_fade(cells, input_shape=(1, 40), num_classes=10, channels=4, kernel_size=3, weights_per_cell=300)
    with pytest.raises(SpaceError, match="one count per cell: expected 4, got 2"):
        build_fade(cells, input_shape=(1, 40), num_classes=10, channels=4, weights_per_cell=[8000, 8000])
    with pytest.raises(SpaceError, match="must be positive"):
        build_fade(cells, input_shape=(1, 40), num_classes=10, channels=4, weights_per_cell=0)


def test_the_space_takes_weights_per_cell_as_a_parameter():
    cells = [ArchGraph([(0, 1)])] * 4
    net = spaces.load("fade").compile(cells, input_shape=(1, 40), num_classes=10, kernel_size=3,
                                      weights_per_cell=9000)
    assert [c.width for c in net.cells if isinstance(c, FadeCell)] == [
        equal_size_width(cells[0], c_in, c_out, 9000, kernel_size=3, dim=1)
        for c_in, c_out in [(1, 4), (4, 8), (8, 16), (16, 32)]]
