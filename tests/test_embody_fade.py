import importlib.util
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from archgraph import ArchGraph, ShapeError, spaces
from archgraph.embody import FadeCell, build_fade, chain_channels

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


def test_chain_channels():
    assert chain_channels(16, 3) == [16, 32, 64]
    assert chain_channels([3, 5], 2) == [3, 5]
    with pytest.raises(ValueError, match="one count per cell"):
        chain_channels([3, 5], 3)
