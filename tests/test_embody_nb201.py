import copy
import warnings

import pytest
import torch
from torch import nn

from archgraph import ArchGraph, ShapeError, SpaceError
from archgraph.embody.nb201 import (
    NB201_OPS,
    NB201Cell,
    NB201Network,
    build_nb201,
    check_nb201_cell,
    from_nb201_string,
    to_nb201_string,
)
from archgraph.ops import Zero

RESNET_LIKE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
MIXED = "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
DEAD_MIDDLE = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"


def _random_string(seed: int) -> str:
    g = torch.Generator().manual_seed(seed)
    ops = [NB201_OPS[int(i)] for i in torch.randint(len(NB201_OPS), (6,), generator=g)]
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


# --- strings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", [RESNET_LIKE, ALL_NONE, MIXED, DEAD_MIDDLE, _random_string(0), _random_string(1)])
def test_string_round_trip(arch):
    graph = from_nb201_string(arch)
    assert to_nb201_string(graph) == arch
    assert from_nb201_string(to_nb201_string(graph)).is_identical(graph)


def test_string_groups_are_the_inputs_of_nodes_one_to_three():
    graph = from_nb201_string(MIXED)
    assert graph.edges == ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    assert (graph.edge_op(0, 1), graph.edge_op(1, 2), graph.edge_op(0, 3), graph.edge_op(2, 3)) == (
        "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "nor_conv_1x1")


@pytest.mark.parametrize("arch, match", [
    ("|nor_conv_3x3~0|+|none~0|none~1|", "3 '\\+'-separated groups"),
    ("|nor_conv_3x3|+|none~0|none~1|+|none~0|none~1|none~2|", "expected 'op~input' in group 1"),
    ("|nor_conv_3x3~0|+|none~0|none~0|+|none~0|none~1|none~2|", "inputs 0..k-1 of node k once each"),
    ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~3|", "inputs 0..k-1 of node k once each"),
    ("|sep_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "'sep_conv_3x3', which is not a NAS-Bench-201 op"),
])
def test_bad_strings_are_refused(arch, match):
    with pytest.raises(SpaceError, match=match):
        from_nb201_string(arch)


@pytest.mark.parametrize("graph, match", [
    (ArchGraph([(0, 1, "none"), (1, 2, "none")]), "has 4 vertices, got 3"),
    (ArchGraph([(j, i, "none") for i in range(1, 4) for j in range(i) if (j, i) != (1, 3)], num_nodes=4),
     r"edge \(1, 3\) is missing; add it with op 'none'"),
    (ArchGraph([(j, i) for i in range(1, 4) for j in range(i)]), r"edge \(0, 1\) has no op"),
    (ArchGraph([(j, i, "none") for i in range(1, 4) for j in range(i)], node_ops={2: "none"}), "vertex 2 has one"),
])
def test_cells_breaking_the_convention_are_refused(graph, match):
    with pytest.raises(SpaceError, match=match) as info:
        check_nb201_cell(graph)
    assert "\n" not in str(info.value)


# --- parameter count: an analytic formula per op, independent of the module code ----------------

def _relu_conv_bn(c_in, c_out, k):
    return c_in * c_out * k * k + 2 * c_out


_OP_PARAMS = {"nor_conv_1x1": lambda c: _relu_conv_bn(c, c, 1), "nor_conv_3x3": lambda c: _relu_conv_bn(c, c, 3)}


def _expected_params(arch: str, C: int, N: int, num_classes: int) -> int:
    ops = [token.split("~")[0] for group in arch.split("+") for token in group.strip("|").split("|")]
    total = 3 * C * 9 + 2 * C  # stem conv 3x3 + BN
    for stage, c in enumerate((C, 2 * C, 4 * C)):
        if stage:  # residual block: two ReLU-conv-BN 3x3 and a 1x1 shortcut conv
            total += _relu_conv_bn(c // 2, c, 3) + _relu_conv_bn(c, c, 3) + c // 2 * c
        total += N * sum(_OP_PARAMS.get(op, lambda c: 0)(c) for op in ops)
    return total + 2 * 4 * C + 4 * C * num_classes + num_classes  # BN, classifier


@pytest.mark.parametrize("arch", [RESNET_LIKE, ALL_NONE, MIXED, DEAD_MIDDLE, _random_string(2), _random_string(3)])
def test_parameter_count_matches_the_analytic_count(arch):
    net = build_nb201(arch, input_shape=(3, 32, 32), num_classes=10)
    assert sum(p.numel() for p in net.parameters()) == _expected_params(arch, 16, 5, 10)


# --- forward ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("input_shape", [(3, 32, 32), (1, 8, 8)], ids=["cifar", "digits"])
def test_logits_have_one_row_per_sample(input_shape):
    net = build_nb201(RESNET_LIKE, input_shape=input_shape, num_classes=7, C=4, N=1)
    assert net.eval()(torch.randn(3, *input_shape)).shape == (3, 7)


def test_stages_halve_the_resolution_and_double_the_channels():
    net = NB201Network(from_nb201_string(RESNET_LIKE), C=4, N=2)
    sizes = []
    for block in net.cells:
        block.register_forward_hook(lambda m, i, out: sizes.append(tuple(out.shape[1:])))
    net(torch.randn(1, 3, 16, 16))
    assert [type(b).__name__ for b in net.cells].count("NB201Cell") == 6
    assert sizes == [(4, 16, 16)] * 2 + [(8, 8, 8)] * 3 + [(16, 4, 4)] * 3


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = NB201Network(from_nb201_string(RESNET_LIKE), C=4, N=1)
    net(torch.randn(4, 3, 8, 8)).square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_none_edges_are_dropped_at_compile_time():
    cell = NB201Cell(from_nb201_string(MIXED), 4)
    assert len(cell.edge_ops) == 4
    assert not any(isinstance(m, Zero) for m in cell.modules())


def test_a_node_without_live_inputs_outputs_zeros():
    x = torch.randn(2, 4, 6, 6)
    dead_output = NB201Cell(from_nb201_string("|nor_conv_3x3~0|+|skip_connect~1|none~0|+|none~0|none~1|none~2|"), 4)
    assert torch.equal(dead_output(x), torch.zeros_like(x))
    assert torch.equal(NB201Cell(from_nb201_string(ALL_NONE), 4)(x), torch.zeros_like(x))
    # node 2 is dead: node 3 = x + conv1x1(0), which is x plus a per-channel constant
    cell = NB201Cell(from_nb201_string(DEAD_MIDDLE), 4).eval()
    y = cell(x) - x
    assert torch.allclose(y, y[:, :, :1, :1].expand_as(y), atol=1e-6)


def test_cells_match_their_ops():
    cell = NB201Cell(from_nb201_string(RESNET_LIKE), 4)
    assert [type(m).__name__ for m in cell.edge_ops] == [
        "ReLUConvBN", "ReLUConvBN", "AvgPool2d", "Identity", "ReLUConvBN", "Identity"]
    assert cell.sources == [0, 0, 1, 0, 1, 2]


# --- building --------------------------------------------------------------------------------------

@pytest.mark.parametrize("input_shape, match", [
    ((64,), r"takes images \(C, H, W\), got shape \(64,\); use the fade or mlp space"),
    ((3, 30, 30), "multiples of 4; got 30×30"),
])
def test_build_nb201_refuses_inputs_it_cannot_take(input_shape, match):
    with pytest.raises(ShapeError, match=match):
        build_nb201(RESNET_LIKE, input_shape=input_shape, num_classes=10)


def test_build_nb201_takes_a_graph_or_a_string():
    graph = from_nb201_string(MIXED)
    torch.manual_seed(0)
    a = build_nb201(graph, input_shape=(3, 8, 8), num_classes=10, C=4, N=1)
    torch.manual_seed(0)
    b = build_nb201(MIXED, input_shape=(3, 8, 8), num_classes=10, C=4, N=1)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(a(x), b(x))
    with pytest.raises(SpaceError, match="one ArchGraph cell or a NAS-Bench-201 string, got tuple"):
        build_nb201((graph, graph), input_shape=(3, 8, 8), num_classes=10)


def test_network_exports_with_fx_and_torchscript():
    net = NB201Network(from_nb201_string(MIXED), C=4, N=1).eval()
    x = torch.randn(2, 3, 8, 8)
    expected = net(x)
    assert torch.equal(torch.fx.symbolic_trace(net)(x), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch ≥ 2.9
        assert torch.equal(torch.jit.script(net)(x), expected)


def test_network_deepcopies():
    net = NB201Network(from_nb201_string(MIXED), C=4, N=1).eval()
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(copy.deepcopy(net)(x), net(x))


def test_residual_block_has_no_final_relu():
    net = NB201Network(from_nb201_string(ALL_NONE), C=4, N=1)
    block = net.cells[1]
    assert not any(isinstance(m, nn.ReLU) for m in block.downsample.modules())
    out = block(torch.randn(8, 4, 8, 8))
    assert out.shape == (8, 8, 4, 4) and (out < 0).any()
