import copy
import importlib.util
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from archgraph import ArchGraph, ShapeError, SpaceError
from archgraph.embody.darts import (
    DARTS_V1,
    DARTS_V2,
    DartsCell,
    DartsNetwork,
    Genotype,
    build_darts,
    check_darts_cell,
    drop_path,
    genotype_to_graphs,
    graphs_to_genotype,
)
from archgraph.ops import Zero

V2 = genotype_to_graphs(DARTS_V2)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- parameter count: an analytic formula per op, independent of the module code -----------

def _bn(c):
    return 2 * c  # affine weight and bias


def _relu_conv_bn(c_in, c_out, k=1):
    return c_in * c_out * k * k + _bn(c_out)


def _factorized_reduce(c_in, c_out):
    return 2 * c_in * (c_out // 2) + _bn(c_out)


def _dil_conv(c, k):
    return c * k * k + c * c + _bn(c)  # depthwise k×k, pointwise 1×1, BN


_OP_PARAMS = {
    "sep_conv_3x3": lambda c, stride: 2 * _dil_conv(c, 3),
    "sep_conv_5x5": lambda c, stride: 2 * _dil_conv(c, 5),
    "dil_conv_3x3": lambda c, stride: _dil_conv(c, 3),
    "dil_conv_5x5": lambda c, stride: _dil_conv(c, 5),
    "skip_connect": lambda c, stride: 0 if stride == 1 else _factorized_reduce(c, c),
    "max_pool_3x3": lambda c, stride: 0,
    "avg_pool_3x3": lambda c, stride: 0,
    "none": lambda c, stride: 0,
}


def _expected_params(genotype: Genotype, C: int, layers: int, num_classes: int, auxiliary: bool) -> int:
    total = 3 * (3 * C) * 3 * 3 + _bn(3 * C)  # stem: conv 3x3 from RGB, BN
    c_pp = c_p = 3 * C
    c, reduction_prev = C, False
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        c = 2 * c if reduction else c
        pairs = genotype.reduce if reduction else genotype.normal
        total += _factorized_reduce(c_pp, c) if reduction_prev else _relu_conv_bn(c_pp, c)
        total += _relu_conv_bn(c_p, c)
        total += sum(_OP_PARAMS[op](c, 2 if reduction and j < 2 else 1) for op, j in pairs)
        c_pp, c_p = c_p, len(pairs) // 2 * c
        if i == 2 * layers // 3:
            c_aux = c_p
        reduction_prev = reduction
    total += c_p * num_classes + num_classes  # classifier
    if auxiliary:  # 1x1 conv to 128, BN, 2x2 conv to 768, BN, linear
        total += c_aux * 128 + _bn(128) + 128 * 768 * 4 + _bn(768) + 768 * num_classes + num_classes
    return total


@pytest.mark.parametrize("genotype", [DARTS_V2, DARTS_V1], ids=["v2", "v1"])
@pytest.mark.parametrize("auxiliary", [False, True])
def test_parameter_count_of_the_cifar_network_matches_the_analytic_count(genotype, auxiliary):
    net = build_darts(genotype_to_graphs(genotype), input_shape=(3, 32, 32), num_classes=10,
                      C=36, layers=20, auxiliary=auxiliary)
    assert _count(net) == _expected_params(genotype, 36, 20, 10, auxiliary)


def test_darts_v2_has_the_papers_three_point_three_million_parameters():
    net = DartsNetwork(*V2, C=36, layers=20)
    assert round(_count(net) / 1e6, 1) == 3.3


# --- forward ------------------------------------------------------------------------------------

@pytest.mark.parametrize("input_shape, C, layers", [((3, 32, 32), 2, 3), ((1, 8, 8), 2, 3)], ids=["cifar", "digits"])
def test_logits_have_one_row_per_sample(input_shape, C, layers):
    net = build_darts(V2, input_shape=input_shape, num_classes=7, C=C, layers=layers)
    assert net.eval()(torch.randn(3, *input_shape)).shape == (3, 7)


def test_reduction_cells_halve_the_resolution_and_double_the_channels():
    net = DartsNetwork(*V2, C=2, layers=6, num_classes=10)
    sizes = []
    for cell in net.cells:
        cell.register_forward_hook(lambda m, i, out: sizes.append(tuple(out.shape[1:])))
    net.eval()(torch.randn(1, 3, 8, 8))
    assert [c.reduction for c in net.cells] == [False, False, True, False, True, False]
    assert sizes == [(8, 8, 8), (8, 8, 8), (16, 4, 4), (16, 4, 4), (32, 2, 2), (32, 2, 2)]


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = DartsNetwork(*V2, C=4, layers=3, auxiliary=True, drop_path_prob=0.2).train()
    logits, aux = net.forward_with_aux(torch.randn(4, 3, 32, 32))
    (logits.square().sum() + aux.square().sum()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_aux_logits_only_while_training_with_the_head():
    x = torch.randn(2, 3, 32, 32)
    with_head = DartsNetwork(*V2, C=2, layers=3, auxiliary=True)
    assert with_head.eval().forward_with_aux(x)[1] is None
    assert with_head.train().forward_with_aux(x)[1].shape == (2, 10)
    assert DartsNetwork(*V2, C=2, layers=3).train().forward_with_aux(x)[1] is None
    assert isinstance(with_head.train()(x), torch.Tensor)


def test_drop_path_acts_only_in_training():
    torch.manual_seed(0)
    net = DartsNetwork(*V2, C=2, layers=3, drop_path_prob=0.5)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        eval_out = net.eval()(x)
        net.drop_path_prob = 0.0
        assert torch.equal(net(x), eval_out)
        net.train()
        plain = net(x)
        net.drop_path_prob = 0.5
        torch.manual_seed(1)
        dropped = net(x)
    assert not torch.allclose(plain, dropped)


def test_drop_path_spares_identity_ops():
    cell = DartsCell(ArchGraph([(0, 2, "skip_connect"), (1, 2, "skip_connect"), (2, 3, "skip_connect")]), 4, 4, 4)
    s0, s1 = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    assert cell.droppable == [False, False, False]
    assert torch.equal(cell.train()(s0, s1, 0.9), cell(s0, s1, 0.0))


def test_drop_path_keeps_the_expectation():
    torch.manual_seed(0)
    y = drop_path(torch.ones(20000, 3), 0.3)
    assert y.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)


def test_same_seed_gives_the_same_network_and_outputs():
    def run():
        torch.manual_seed(0)
        net = DartsNetwork(*V2, C=2, layers=3, drop_path_prob=0.3).train()
        return net.state_dict(), net(torch.randn(2, 3, 8, 8))

    (state_a, out_a), (state_b, out_b) = run(), run()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert torch.equal(out_a, out_b)


def test_networks_deepcopy_and_pickle():
    net = DartsNetwork(*V2, C=2, layers=3).eval()
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(copy.deepcopy(net)(x), net(x))
    assert torch.equal(pickle.loads(pickle.dumps(net))(x), net(x))


# --- compilation ---------------------------------------------------------------------------------

def test_none_edges_are_dropped_at_compile_time():
    graph = ArchGraph([(0, 2, "sep_conv_3x3"), (1, 2, "none"), (0, 3, "none"), (2, 3, "max_pool_3x3")])
    cell = DartsCell(graph, 4, 4, 4)
    assert len(cell.edge_ops) == 2
    assert not any(isinstance(m, Zero) for m in cell.modules())


def test_a_node_whose_edges_are_all_none_outputs_zeros():
    graph = ArchGraph([(0, 2, "sep_conv_3x3"), (0, 3, "none"), (1, 3, "none")])
    cell = DartsCell(graph, 4, 4, 4, reduction=True).eval()
    out = cell(torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8))
    assert out.shape == (2, 8, 4, 4)
    assert torch.all(out[:, 4:] == 0) and out[:, :4].abs().sum() > 0


def test_cells_may_have_any_number_of_nodes_and_inputs():
    normal = ArchGraph([(0, 2, "sep_conv_3x3"), (1, 2, "skip_connect"), (0, 3, "dil_conv_5x5"),
                        (1, 3, "avg_pool_3x3"), (2, 3, "sep_conv_5x5")])
    reduce = ArchGraph([(0, 2, "max_pool_3x3"), (1, 2, "sep_conv_3x3")])
    net = DartsNetwork(normal, reduce, C=2, layers=4)
    assert [c.multiplier for c in net.cells] == [2, 1, 1, 2]
    assert net.eval()(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_repr_names_nodes_edges_and_reduction():
    net = DartsNetwork(*V2, C=2, layers=3)
    assert net.cells[1].extra_repr() == "nodes=4, edges=8, reduction=True"
    assert net.extra_repr() == "layers=3, auxiliary=False"


# --- genotypes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("genotype", [DARTS_V1, DARTS_V2], ids=["v1", "v2"])
def test_genotype_round_trip(genotype):
    normal, reduce = genotype_to_graphs(genotype)
    back = graphs_to_genotype(normal, reduce)

    def by_node(pairs):
        return [sorted(pairs[i:i + 2], key=lambda p: p[1]) for i in range(0, len(pairs), 2)]

    assert by_node(back.normal) == by_node(genotype.normal)
    assert by_node(back.reduce) == by_node(genotype.reduce)
    assert (back.normal_concat, back.reduce_concat) == (genotype.normal_concat, genotype.reduce_concat)
    again = genotype_to_graphs(back)
    assert again[0].is_identical(normal) and again[1].is_identical(reduce)


def test_genotype_edges_become_edge_ops():
    normal, reduce = V2
    assert normal.edges == ((0, 2), (0, 3), (0, 4), (0, 5), (1, 2), (1, 3), (1, 4), (2, 5))
    assert normal.edge_op(2, 5) == "dil_conv_3x3" and reduce.edge_op(2, 3) == "skip_connect"


@pytest.mark.parametrize("genotype, match", [
    (Genotype([("sep_conv_3x3", 0)], [2], [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)], [2]), "two .* pairs per node"),
    (DARTS_V2._replace(normal_concat=[4, 5]), r"concatenates every intermediate node \[2, 3, 4, 5\]"),
    (DARTS_V2._replace(reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 0)] + DARTS_V2.reduce[2:]), "takes input 0 twice"),
    (DARTS_V2._replace(normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 2)] + DARTS_V2.normal[2:]),
     "node 2 takes input 2; inputs are the vertices 0..1"),
])
def test_bad_genotypes_are_refused(genotype, match):
    with pytest.raises(SpaceError, match=match):
        genotype_to_graphs(genotype)


def test_genotype_format_needs_two_inputs_per_node():
    three = ArchGraph([(0, 2, "sep_conv_3x3"), (1, 2, "skip_connect"), (0, 3, "none"), (1, 3, "none"),
                       (2, 3, "skip_connect")])
    with pytest.raises(SpaceError, match="node 3 has 3 inputs"):
        graphs_to_genotype(three, V2[1])


# --- errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("graph, match", [
    (ArchGraph([(0, 1, "sep_conv_3x3")]), "got 2 vertices"),
    (ArchGraph([(0, 2, "sep_conv_3x3"), (2, 1, "sep_conv_3x3")]), r"edge \(2, 1\) enters input vertex 1"),
    (ArchGraph([(0, 3, "sep_conv_3x3"), (1, 2, "skip_connect"), (3, 2, "sep_conv_3x3")]),
     r"edge \(3, 2\) goes from a higher to a lower id"),
    (ArchGraph([(0, 2), (1, 2, "sep_conv_3x3")]), r"edge \(0, 2\) has no op"),
    (ArchGraph([(0, 2, "sep_conv_3x3")], num_nodes=4), "intermediate node 3 has no input"),
    (ArchGraph([(0, 2, "sep_conv_3x3")], num_nodes=3, node_ops={2: "sep_conv_3x3"}), "vertex 2 carries op"),
])
def test_cells_breaking_the_convention_are_refused(graph, match):
    with pytest.raises(SpaceError, match=match) as info:
        check_darts_cell(graph)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, match", [
    (dict(input_shape=(40,)), r"takes images \(C, H, W\), got shape \(40,\); use the fade or mlp space"),
    (dict(input_shape=(3, 30, 30)), "multiples of 4; got 30×30"),
    (dict(input_shape=(1, 8, 8), auxiliary=True), "8×8 maps .* gives 2×2; pass auxiliary=False"),
])
def test_build_darts_refuses_inputs_it_cannot_take(kwargs, match):
    with pytest.raises(ShapeError, match=match):
        build_darts(V2, num_classes=10, **kwargs)


def test_build_darts_needs_a_pair_of_graphs():
    with pytest.raises(SpaceError, match=r"a \(normal, reduce\) pair of ArchGraphs, got 1 item"):
        build_darts(V2[0], input_shape=(3, 32, 32), num_classes=10)
    with pytest.raises(SpaceError, match="enters input vertex 1"):
        build_darts((V2[0], ArchGraph([(0, 2, "sep_conv_3x3"), (2, 1, "skip_connect")])),
                    input_shape=(3, 32, 32), num_classes=10, C=2, layers=3)


# --- export --------------------------------------------------------------------------------------------

def test_eval_network_exports_with_fx_and_torchscript():
    torch.manual_seed(0)
    net = DartsNetwork(*V2, C=2, layers=3, auxiliary=True, drop_path_prob=0.2).eval()
    x = torch.randn(2, 3, 32, 32)
    expected = net(x)
    assert torch.equal(torch.fx.symbolic_trace(net)(x), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch ≥ 2.9
        scripted = torch.jit.script(net)
    assert torch.equal(scripted(x), expected)
    assert scripted.train().forward_with_aux(x)[1].shape == (2, 10)


# --- the hand-written baseline ----------------------------------------------------------------------

def _handwritten():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "handwritten_darts.py"
    spec = importlib.util.spec_from_file_location("handwritten_darts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_handwritten_darts_v2_is_bit_identical_to_the_compiled_network():
    torch.manual_seed(0)
    hand = _handwritten().HandwrittenDartsV2(4, 10, 5)
    compiled = build_darts(V2, input_shape=(3, 16, 16), num_classes=10, C=4, layers=5)
    assert _count(hand) == _count(compiled)
    compiled.load_state_dict(hand.state_dict())
    hand.load_state_dict(compiled.state_dict())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(hand.eval()(x), compiled.eval()(x))
    hand.drop_path_prob = compiled.drop_path_prob = 0.3
    outs = []
    for net in (hand.train(), compiled.train()):
        torch.manual_seed(1)
        out = net(x)
        out.sum().backward()
        outs.append(out)
    assert torch.equal(*outs)
    hand_grads, compiled_grads = ({name: p.grad for name, p in net.named_parameters()} for net in (hand, compiled))
    assert hand_grads.keys() == compiled_grads.keys()
    assert all(torch.equal(hand_grads[name], compiled_grads[name]) for name in hand_grads)
