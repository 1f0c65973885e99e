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
    AMOEBANET,
    DARTS_V1,
    DARTS_V2,
    ENAS,
    GENOTYPES,
    NASNET,
    PNAS,
    DartsCell,
    DartsNetwork,
    Genotype,
    build_darts,
    check_darts_cell,
    darts_concat,
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


# The parameter counts of the DARTS reference network for each genotype: NetworkCIFAR(C=36,
# num_classes=10, layers=20, auxiliary, genotype) of quark0/darts (cnn/model.py at commit f276dd3),
# counted as sum(p.numel() for p in net.parameters()) by running the reference code itself,
# outside this project (a scratch folder with its model.py, operations.py and genotypes.py, ENAS
# and PNAS added there in its format as GENOTYPES holds them). Pairs: without, with the auxiliary head.
REFERENCE_PARAMS = {
    "DARTS_V1": (3_169_414, 3_645_840),
    "DARTS_V2": (3_349_342, 3_825_768),
    "NASNET": (3_830_950, 4_288_944),
    "AMOEBANET": (3_145_078, 3_603_072),
    "ENAS": (4_020_166, 4_515_024),
    "PNAS": (4_481_110, 4_975_968),
}


@pytest.mark.parametrize("name", list(REFERENCE_PARAMS))
@pytest.mark.parametrize("auxiliary", [False, True])
def test_parameter_count_equals_the_reference_networks(name, auxiliary):
    net = build_darts(genotype_to_graphs(GENOTYPES[name]), input_shape=(3, 32, 32), num_classes=10,
                      C=36, layers=20, auxiliary=auxiliary)
    assert _count(net) == REFERENCE_PARAMS[name][auxiliary]


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


def test_a_parallel_op_compiles_into_one_module_per_op_summed():
    graph = ArchGraph([(0, 2, "sep_conv_3x3 + max_pool_3x3"), (1, 2, "skip_connect")])
    cell = DartsCell(graph, 4, 4, 4).eval()
    assert cell.sources == [0, 0, 1] and cell.droppable == [True, True, False]
    s0, s1 = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        x0 = cell.preprocess0(s0)
        expected = cell.edge_ops[0](x0) + cell.edge_ops[1](x0) + cell.preprocess1(s1)
        assert {type(cell.edge_ops[0]).__name__, type(cell.edge_ops[1]).__name__} == {"SepConv", "MaxPool2d"}
        assert torch.allclose(cell(s0, s1), expected)


def test_an_output_vertex_concatenates_only_its_inputs():
    graph = ArchGraph([(0, 2, "sep_conv_3x3"), (1, 2, "skip_connect"), (2, 3, "max_pool_3x3"), (1, 3, "skip_connect"),
                       (0, 4, "avg_pool_3x3"), (1, 4, "skip_connect"), (3, 5), (4, 5)])
    cell = DartsCell(graph, 4, 4, 4).eval()
    assert (cell.concat, cell.multiplier, cell.nodes) == ([3, 4], 2, 3)
    assert cell.extra_repr() == "nodes=3, concat=[3, 4], edges=6, reduction=False"
    s0, s1 = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        x0, x1 = cell.preprocess0(s0), cell.preprocess1(s1)
        node2 = cell.edge_ops[0](x0) + x1
        node3 = x1 + cell.edge_ops[3](node2)  # the plan runs by (target, source)
        node4 = cell.edge_ops[4](x0) + x1
        assert torch.allclose(cell(s0, s1), torch.cat([node3, node4], 1))


@pytest.mark.parametrize("name", ["NASNET", "AMOEBANET", "ENAS", "PNAS"])
def test_published_cells_run_and_export(name):
    torch.manual_seed(0)
    net = build_darts(genotype_to_graphs(GENOTYPES[name]), input_shape=(3, 16, 16), num_classes=10, C=2,
                      layers=3).eval()
    x = torch.randn(2, 3, 16, 16)
    expected = net(x)
    assert expected.shape == (2, 10)
    assert torch.equal(torch.fx.symbolic_trace(net)(x), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch ≥ 2.9
        assert torch.equal(torch.jit.script(net)(x), expected)


def test_repr_names_nodes_edges_and_reduction():
    net = DartsNetwork(*V2, C=2, layers=3)
    assert net.cells[1].extra_repr() == "nodes=4, edges=8, reduction=True"
    assert net.extra_repr() == "layers=3, auxiliary=False"


# --- genotypes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("genotype", list(GENOTYPES.values()), ids=list(GENOTYPES))
def test_genotype_round_trip(genotype):
    normal, reduce = genotype_to_graphs(genotype)
    back = graphs_to_genotype(normal, reduce)

    def by_node(pairs):
        return [sorted(pairs[i:i + 2], key=lambda p: (p[1], p[0])) for i in range(0, len(pairs), 2)]

    assert by_node(back.normal) == by_node(genotype.normal)
    assert by_node(back.reduce) == by_node(genotype.reduce)
    assert (back.normal_concat, back.reduce_concat) == (genotype.normal_concat, genotype.reduce_concat)
    again = genotype_to_graphs(back)
    assert again[0].is_identical(normal) and again[1].is_identical(reduce)


def test_a_node_taking_one_input_twice_gets_one_edge_with_both_ops():
    normal, _ = genotype_to_graphs(NASNET)  # node 3: sep_conv_5x5 and sep_conv_3x3 of input 0
    assert normal.edge_op(0, 3) == "sep_conv_3x3 + sep_conv_5x5"
    assert normal.edge_op(0, 5) == "avg_pool_3x3 + avg_pool_3x3"
    assert normal.num_edges == 7 and normal.num_nodes == 7  # 10 ops on 7 edges


def test_a_cell_concatenating_some_nodes_ends_in_an_output_vertex():
    normal, reduce = genotype_to_graphs(AMOEBANET)
    assert reduce.num_nodes == 8 and reduce.predecessors(7) == (3, 4, 6)
    assert all(reduce.edge_op(u, 7) is None for u in (3, 4, 6))
    assert darts_concat(reduce) == (3, 4, 6) and darts_concat(normal) == (4, 5, 6)
    assert check_darts_cell(reduce) == 5
    assert darts_concat(genotype_to_graphs(ENAS)[1]) == (2, 3, 4, 5, 6)  # all nodes: no output vertex
    assert genotype_to_graphs(ENAS)[1].num_nodes == 7


def test_graphs_of_genotypes_are_equal_whatever_the_order_of_a_nodes_pairs():
    swapped = PNAS._replace(normal=[p for i in range(0, 10, 2) for p in PNAS.normal[i:i + 2][::-1]])
    assert swapped.normal != PNAS.normal
    assert genotype_to_graphs(swapped)[0].is_identical(genotype_to_graphs(PNAS)[0])


def test_the_graphs_and_hashes_of_darts_found_cells_are_unchanged():
    # pinned before parallel ops and output vertices existed: one op per edge keeps its form
    normal, reduce = V2
    assert normal.canonical_hash() == "cb58c62edb13950d843bcf00b73b415c0c49f7d8"
    assert reduce.canonical_hash() == "d821d228ba651f3f0ba1bf00240020331155f9c4"


def test_genotype_edges_become_edge_ops():
    normal, reduce = V2
    assert normal.edges == ((0, 2), (0, 3), (0, 4), (0, 5), (1, 2), (1, 3), (1, 4), (2, 5))
    assert normal.edge_op(2, 5) == "dil_conv_3x3" and reduce.edge_op(2, 3) == "skip_connect"


@pytest.mark.parametrize("genotype, match", [
    (Genotype([("sep_conv_3x3", 0)], [2], [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)], [2]), "two .* pairs per node"),
    (DARTS_V2._replace(normal_concat=[5, 4]), r"normal_concat is \[5, 4\]; list intermediate nodes of "
                                              r"\[2, 3, 4, 5\], each once, in increasing order"),
    (DARTS_V2._replace(reduce_concat=[1, 4]), r"reduce_concat is \[1, 4\]"),
    (DARTS_V2._replace(reduce_concat=[4, 4]), r"reduce_concat is \[4, 4\]"),
    (DARTS_V2._replace(reduce_concat=[]), r"reduce_concat is \[\]"),
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
    (ArchGraph([(0, 2, "sep_conv_3x3"), (1, 2, "skip_connect"), (0, 3), (2, 3)]), r"edge \(0, 3\) has no op; .* only enter an output vertex"),
    (ArchGraph([(1, 2, "sep_conv_3x3"), (2, 3, "skip_connect"), (2, 4), (3, 4)], num_nodes=5),
     "output vertex 4 concatenates every intermediate node, which a cell without an output vertex does; remove"),
    (ArchGraph([(0, 2, "sep_conv_3x3"), (1, 3, "skip_connect"), (2, 4), (3, 4, "skip_connect")]),
     r"edge \(2, 4\) has no op"),
])
def test_cells_breaking_the_convention_are_refused(graph, match):
    with pytest.raises(SpaceError, match=match) as info:
        check_darts_cell(graph)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, match", [
    (dict(input_shape=(40,)), r"takes images \(C, H, W\) or signals \(C, L\), got shape \(40,\)"),
    (dict(input_shape=(1, 42)), "halves the length 2 times, so L must be a multiple of 4; got 42"),
    (dict(input_shape=(1, 40), auxiliary=True), "auxiliary head reads 2-d maps; pass auxiliary=False"),
    (dict(input_shape=(3, 30, 30)), "multiples of 4; got 30×30"),
    (dict(input_shape=(1, 8, 8), auxiliary=True), "8×8 maps .* gives 2×2; pass auxiliary=False"),
])
def test_build_darts_refuses_inputs_it_cannot_take(kwargs, match):
    with pytest.raises(ShapeError, match=match):
        build_darts(V2, num_classes=10, **kwargs)


@pytest.mark.parametrize("name", ["DARTS_V2", "NASNET"])
def test_on_signals_the_network_has_the_image_networks_parameters_less_one_kernel_axis(name):
    cells = genotype_to_graphs(GENOTYPES[name])
    flat, square = (build_darts(cells, input_shape=shape, num_classes=10, C=4, layers=5, seed=0)
                    for shape in ((2, 40), (2, 8, 8)))
    one, two = dict(flat.named_parameters()), dict(square.named_parameters())
    assert one.keys() == two.keys()
    for key, p in two.items():
        assert one[key].shape == (p.shape[:-1] if p.dim() == 4 else p.shape), key
    assert flat.eval()(torch.randn(3, 2, 40)).shape == (3, 10)
    assert not any("2d" in type(m).__name__ for m in flat.modules())


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
