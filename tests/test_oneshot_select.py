import itertools

import pytest
import torch
from torch import nn

from archgraph import ArchGraph, SpaceError, ops, spaces
from archgraph.embody.darts import DARTS_V2, build_darts, genotype_to_graphs, graphs_to_genotype
from archgraph.oneshot.select import magnitude, threshold
from archgraph.oneshot.supernet import build_supernet
from archgraph.relax import Gumbel


def tiny(space, **kwargs):
    return build_supernet(space, input_shape=(1, 8, 8), num_classes=10, C=4, layers=3, **kwargs)


def set_alpha(net, cell_type, edge, values, base=0.0):
    """α of ``edge``: ``base`` everywhere, ``values[op]`` on the named ops."""
    names = net.edge_ops(cell_type, edge)
    alpha = torch.full((len(names),), float(base))
    for op, value in values.items():
        alpha[names.index(op)] = value
    with torch.no_grad():
        net.choice(cell_type, edge).alpha.copy_(alpha)


# normal cell, DARTS space: edge -> {op: α}; the other ops have α = 0
NORMAL = {
    (0, 2): {"sep_conv_3x3": 2.0},
    (1, 2): {"none": 6.0, "dil_conv_3x3": 1.0},       # none dominates; dil_conv_3x3 is the best other op
    (0, 3): {"skip_connect": 1.0},
    (1, 3): {"max_pool_3x3": 3.0},
    (2, 3): {"sep_conv_5x5": 2.0},
    (0, 4): {"none": 5.0},                             # strongest edge of node 4 if none counted
    (1, 4): {"avg_pool_3x3": 1.0},
    (2, 4): {"dil_conv_5x5": 2.0},
    (3, 4): {"skip_connect": 0.5},
    (0, 5): {"sep_conv_3x3": 4.0},
    (1, 5): {"none": 6.0},
    (2, 5): {"skip_connect": 1.0},
    (3, 5): {"skip_connect": 1.5},
    (4, 5): {"sep_conv_3x3": 3.5},
}
EXPECTED_NORMAL = ArchGraph([
    (0, 2, "sep_conv_3x3"), (1, 2, "dil_conv_3x3"),
    (1, 3, "max_pool_3x3"), (2, 3, "sep_conv_5x5"),
    (1, 4, "avg_pool_3x3"), (2, 4, "dil_conv_5x5"),
    (0, 5, "sep_conv_3x3"), (4, 5, "sep_conv_3x3"),
])


def test_magnitude_returns_the_hand_written_genotype():
    net = tiny("darts")
    for edge, values in NORMAL.items():
        set_alpha(net, "normal", edge, values)
    kept = genotype_to_graphs(DARTS_V2)[1].edge_ops  # reduce cell: DARTS_V2's, α = 3 on its ops, 0 elsewhere
    for edge in net.edges("reduce"):
        set_alpha(net, "reduce", edge, {kept[edge]: 3.0} if edge in kept else {})
    normal, reduce = magnitude(net)
    assert normal.is_identical(EXPECTED_NORMAL)
    assert reduce.is_identical(genotype_to_graphs(DARTS_V2)[1])
    assert graphs_to_genotype(normal, reduce).normal[2:4] == [("max_pool_3x3", 1), ("sep_conv_5x5", 2)]
    net_eval = spaces.load("darts").compile((normal, reduce), input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    assert net_eval(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_top_k_ignores_none_in_s3():
    net = tiny("s3")
    for cell_type in net.cell_types:
        for u, v in net.edges(cell_type):  # none dominates everywhere; the input-0 edges carry skip, others sep
            set_alpha(net, cell_type, (u, v), {"none": 8.0, "skip_connect": 2.0 if u == 0 else 0.0,
                                               "sep_conv_3x3": 1.0 if u > 0 else 0.0})
    for cell in magnitude(net):
        assert "none" not in cell.edge_ops.values()
        for v in range(3, 6):  # input 0 (skip, α = 2) first, then the lowest input id of the ties at α = 1
            assert cell.predecessors(v) == (0, 1)
            assert (cell.edge_op(0, v), cell.edge_op(1, v)) == ("skip_connect", "sep_conv_3x3")


def test_s5_has_exactly_81_discretisations():
    net = tiny("s5")
    slots = [(cell_type, edge) for cell_type in net.cell_types for edge in net.edges(cell_type)]
    names = net.edge_ops("normal", (0, 2))
    seen = set()
    for pick in itertools.product(range(3), repeat=len(slots)):
        for (cell_type, edge), k in zip(slots, pick):
            set_alpha(net, cell_type, edge, {names[k]: 5.0})
        normal, reduce = magnitude(net)
        assert [normal.edge_op(0, 2), normal.edge_op(1, 2), reduce.edge_op(0, 2), reduce.edge_op(1, 2)] == \
            [names[k] for k in pick]
        seen.add((tuple(sorted(normal.edge_ops.items())), tuple(sorted(reduce.edge_ops.items()))))
    assert len(seen) == 81 == 3 ** 4
    compiled = spaces.load("s5").compile((normal, reduce), input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    assert compiled(torch.randn(1, 1, 8, 8)).shape == (1, 10)


def test_k_keeps_that_many_inputs_and_is_checked():
    net = tiny("s2", generator=torch.Generator().manual_seed(0))
    one, _ = magnitude(net, k=1)
    assert [len(one.predecessors(v)) for v in range(2, 6)] == [1, 1, 1, 1]
    three, reduce = magnitude(net, k=3)
    assert [len(three.predecessors(v)) for v in range(2, 6)] == [2, 3, 3, 3]  # node 2 has only 2 inputs
    assert build_darts((three, reduce), input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)(
        torch.randn(1, 1, 8, 8)).shape == (1, 10)
    with pytest.raises(ValueError, match="k=6, but a node of this supernet has at most 5 input edges"):
        magnitude(net, k=6)
    with pytest.raises(ValueError, match="k=0"):
        threshold(net, k=0)
    with pytest.raises(TypeError, match="expected a Supernet"):
        magnitude(nn.Linear(2, 2))


def test_ops_are_named_as_the_registry_names_them():
    for name in ("darts", "s1", "s4"):
        for cell in magnitude(tiny(name, generator=torch.Generator().manual_seed(1))):
            assert set(cell.edge_ops.values()) <= set(ops.known_ops())
            assert all(len(cell.predecessors(v)) == 2 for v in range(2, 6))


def test_selection_reads_the_noise_free_preference():
    soft, hard = tiny("s3"), tiny("s3", relaxation=Gumbel(1.0, hard=True))
    hard.load_state_dict(soft.state_dict())
    assert magnitude(hard) == magnitude(hard)
    assert all(a.is_identical(b) for a, b in zip(magnitude(hard), magnitude(soft)))


def test_threshold_keeps_top_edges_whose_sigmoid_passes():
    net = tiny("s2", relaxation="sigmoid")
    strengths = {  # edge -> (op, α); the other op has α = -5 (σ ≈ 0)
        (0, 2): ("sep_conv_3x3", 3.0), (1, 2): ("skip_connect", 1.0),                                # .95, .73
        (0, 3): ("skip_connect", 2.0), (1, 3): ("sep_conv_3x3", 3.0), (2, 3): ("sep_conv_3x3", 4.0),  # .88 .95 .98
        (0, 4): ("sep_conv_3x3", 1.0), (1, 4): ("skip_connect", 1.5), (2, 4): ("sep_conv_3x3", 0.0),  # none pass
        (3, 4): ("sep_conv_3x3", -1.0),
        (0, 5): ("sep_conv_3x3", 2.5), (1, 5): ("skip_connect", -1.0), (2, 5): ("skip_connect", -1.0),
        (3, 5): ("skip_connect", 1.6), (4, 5): ("sep_conv_3x3", -1.0),                               # .92, .83
    }
    for cell_type in net.cell_types:
        for edge, (op, value) in strengths.items():
            set_alpha(net, cell_type, edge, {op: value}, base=-5.0)
    normal, reduce = threshold(net)
    expected = ArchGraph([(0, 2, "sep_conv_3x3"), (1, 3, "sep_conv_3x3"), (2, 3, "sep_conv_3x3"),
                          (1, 4, "skip_connect"),  # no edge of node 4 passes: its strongest stays
                          (0, 5, "sep_conv_3x3")], num_nodes=6)
    assert normal.is_identical(expected) and reduce.is_identical(expected)
    assert build_darts((normal, reduce), input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)(
        torch.randn(1, 1, 8, 8)).shape == (1, 10)
    loose, _ = threshold(net, threshold=0.0)  # every top-2 edge passes: magnitude's cells
    assert loose.is_identical(magnitude(net)[0])
    with pytest.raises(ValueError, match="threshold is a weight in \\[0, 1\\]"):
        threshold(net, threshold=1.5)


def test_a_node_without_a_real_op_is_an_error():
    space = spaces.Space("zeros", "darts", ("normal", "reduce"), min_vertices=3, max_vertices=3, ops=("none",))
    net = build_supernet(space, input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    with pytest.raises(SpaceError, match="node 2 has no input edge offering an op other than 'none'"):
        magnitude(net)


def test_cells_with_other_node_counts_compile_with_build_darts():
    cells = magnitude(tiny("s2", nodes=2))
    assert [c.num_nodes for c in cells] == [4, 4]
    assert build_darts(cells, input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)(
        torch.randn(1, 1, 8, 8)).shape == (1, 10)
    with pytest.raises(SpaceError, match="has 4 vertices, the space allows 6..6"):
        spaces.load("s2").validate(cells)
