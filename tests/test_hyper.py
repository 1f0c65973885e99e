import copy

import pytest
import torch
import torch.nn.functional as F

from archgraph import ArchGraph, ShapeError, SpaceError, spaces
from archgraph.embody import FadeCell, FadeNetwork
from archgraph.hyper import HyperArchitecture, HyperCell, MaskedCell, build_hyper
from archgraph.relax import Gumbel, arch_parameters

ONE = ArchGraph([], num_nodes=1)                          # a single vertex
ISOLATED = ArchGraph([(0, 1)], num_nodes=3)               # vertex 2 is a source and a sink
FORK = ArchGraph([(0, 2), (1, 2), (2, 3), (2, 4)])        # two sources, two sinks, 5 vertices
RENUMBERED = ArchGraph([(2, 0), (0, 1), (2, 1)])          # ids not in topological order
COMPLETE = ArchGraph([(i, j) for j in range(5) for i in range(j)])   # one source, one sink
POOL = [[ONE, ISOLATED, FORK], [FORK, RENUMBERED, ONE], [ISOLATED, FORK, RENUMBERED], [RENUMBERED, ONE, ISOLATED]]
SHAPE = (2, 8, 8)


def hyper(pool=POOL, *, shared, seed=0, **kwargs) -> HyperArchitecture:
    torch.manual_seed(seed)
    kwargs = {"channels": 2, "kernel_size": 3, **kwargs}
    return build_hyper("fade", pool, input_shape=SHAPE, num_classes=5, shared=shared,
                       generator=torch.Generator().manual_seed(seed), **kwargs)


def force(h: HyperArchitecture, path) -> None:
    """Make every row's hard Gumbel pick ``path`` whatever the noise."""
    with torch.no_grad():
        for row, k in zip(h.rows, path):
            row.alpha.zero_()
            row.alpha[k] = 1e4


def fade_edges(g: ArchGraph) -> list[tuple[int, int]]:
    """A FadeCell's edges by position (FaDE §2.4), in the order the cell holds their modules."""
    position = {v: i + 1 for i, v in enumerate(g.topological_order())}
    edges = [(0, position[s]) for s in g.sources] + [(position[u], position[v]) for u, v in g.edges]
    edges += [(position[t], g.num_nodes + 1) for t in g.sinks]
    return sorted(edges, key=lambda e: (e[1], e[0]))


def in_g_max(edge, n: int, n_max: int) -> tuple[int, int]:
    u, v = edge
    return (u, n_max + 1) if v == n + 1 else (u, v)


@pytest.mark.parametrize("shared", [False, True])
def test_shapes_probabilities_and_defaults(shared):
    h = hyper(shared=shared)
    assert h(torch.randn(3, *SHAPE)).shape == (3, 5)
    p = h.probabilities()
    assert p.shape == h.shape == (4, 3) and not p.requires_grad
    torch.testing.assert_close(p.sum(dim=1), torch.ones(4))
    assert all(row.relaxation is h.rows[0].relaxation for row in h.rows)   # one relaxation, annealed together
    assert (h.rows[0].relaxation.tau, h.rows[0].relaxation.hard) == (10.0, True)
    assert repr(h).startswith(f"HyperArchitecture(\n  d=4, w=3, shared={shared}")
    assert len(arch_parameters(h)) == 4
    assert [row.candidates[0].edge_ops[0].out_channels for row in h.rows] == [2, 4, 8, 16]
    assert isinstance(h.downsample, torch.nn.MaxPool2d) and h.downsample.ceil_mode
    assert isinstance(h.rows[0].candidates[0], MaskedCell if shared else FadeCell)


@pytest.mark.parametrize("shared", [False, True])
def test_gradients_reach_every_alpha(shared):
    h = hyper(shared=shared)
    loss = F.cross_entropy(h(torch.randn(4, *SHAPE)), torch.arange(4))
    loss.backward()
    for row in h.rows:
        assert row.alpha.grad is not None and (row.alpha.grad != 0).all()


@pytest.mark.parametrize("shared", [False, True])
def test_hard_choice_runs_the_sampled_candidate(shared):
    h = hyper(shared=shared, seed=3)
    x = torch.randn(2, *SHAPE)
    for i, row in enumerate(h.rows):
        x = h.downsample(x) if i else x
        state = row.generator.get_state()
        k = int(row.weights().argmax())
        row.generator.set_state(state)
        y = row(x)
        torch.testing.assert_close(y, row.candidates[k](x))
        x = y


@pytest.mark.parametrize("graph", [ONE, ISOLATED, FORK, RENUMBERED, COMPLETE])
def test_masked_hyper_cell_equals_the_fade_cell_with_the_same_weights(graph):
    torch.manual_seed(0)
    hyper_cell = HyperCell(5, 2, 3, kernel_size=3)
    masked = MaskedCell(hyper_cell, graph)
    cell = FadeCell(graph, 2, 3, kernel_size=3)
    edges = [in_g_max(e, graph.num_nodes, 5) for e in fade_edges(graph)]
    for edge, module in zip(edges, cell.edge_ops, strict=True):
        module.load_state_dict(hyper_cell.edge(*edge).state_dict())
    x = torch.randn(2, 2, 6, 6)
    torch.testing.assert_close(masked(x), cell(x))
    assert list(masked.enabled) == edges


def test_a_masked_forward_runs_only_its_edges():
    hyper_cell = HyperCell(5, 1, 2, kernel_size=1)
    ran = []
    for e, module in zip(hyper_cell.edges, hyper_cell.edge_ops, strict=True):
        module.register_forward_hook(lambda *_, e=e: ran.append(e))
    for graph in (ONE, FORK, RENUMBERED):
        ran.clear()
        MaskedCell(hyper_cell, graph)(torch.randn(1, 1, 4, 4))
        assert sorted(ran) == sorted(in_g_max(e, graph.num_nodes, 5) for e in fade_edges(graph))
    ran.clear()
    hyper_cell(torch.randn(1, 1, 4, 4))   # the hyper-cell itself runs all of G_max: 5 + 10 + 5 edges
    assert len(ran) == len(set(ran)) == 20


def test_the_hyper_cell_is_the_fully_connected_g_max():
    # identity 1×1 convolutions: each vertex = ReLU(sum of inputs), so a positive input comes out
    # multiplied by the number of input→output paths of G_max, 2^n − 1 (one per vertex subset).
    for n in (1, 2, 4):
        hyper_cell = HyperCell(n, 1, 1, kernel_size=1)
        with torch.no_grad():
            for conv in hyper_cell.edge_ops:
                conv.weight.fill_(1.0)
                conv.bias.zero_()
        x = torch.rand(2, 1, 3, 3) + 0.1
        torch.testing.assert_close(hyper_cell(x), x * (2**n - 1))


def test_shared_rows_reference_one_hyper_cell():
    h = hyper(shared=True)
    assert len(h.hyper_cells) == 4 and all(c.max_vertices == 5 for c in h.hyper_cells)  # the space's bound
    for hyper_cell, row in zip(h.hyper_cells, h.rows):
        for masked in row.candidates:
            assert all(m is hyper_cell.edge(*e) for m, e in zip(masked.edge_ops, masked.enabled))
    expected = sum(p.numel() for p in [*h.hyper_cells.parameters(), *h.classifier.parameters()]) + 4 * 3
    assert sum(p.numel() for p in h.parameters()) == expected
    twin = copy.deepcopy(h)                                              # a copy shares within itself
    assert twin.rows[1].candidates[2].edge_ops[0] is twin.hyper_cells[1].edge(*h.rows[1].candidates[2].enabled[0])
    direct = HyperArchitecture(POOL, input_shape=SHAPE, num_classes=5, shared=True, channels=2, kernel_size=3)
    assert [c.max_vertices for c in direct.hyper_cells] == [5, 5, 5, 3]   # no space: each row's largest graph


@pytest.mark.parametrize("shared", [False, True])
def test_extract_equals_the_forced_hyper_architecture(shared):
    h = hyper(shared=shared)
    path = (2, 1, 0, 1)
    force(h, path)
    assert h.best_path() == path and h.sample_path() == path
    net = h.extract(path)
    assert isinstance(net, FadeNetwork)
    assert [c.graph for c in net.cells if isinstance(c, FadeCell)] == list(h.architecture(path))
    x = torch.randn(3, *SHAPE)
    torch.testing.assert_close(net(x), h(x))


def test_warm_start_copies_every_shared_weight_and_keeps_alpha():
    old = hyper(shared=True, seed=1)
    new = hyper([[FORK, ONE], [ISOLATED, ONE], [RENUMBERED, FORK], [ONE, ONE]], shared=True, seed=2)
    alphas = [row.alpha.detach().clone() for row in new.rows]
    assert new.warm_start(old) is new
    for mine, theirs in zip(new.hyper_cells.parameters(), old.hyper_cells.parameters(), strict=True):
        assert torch.equal(mine, theirs) and mine is not theirs
    assert torch.equal(new.classifier.weight, old.classifier.weight)
    assert all(torch.equal(row.alpha, a) for row, a in zip(new.rows, alphas))


def test_warm_start_of_separate_paths_copies_identical_cells():
    old = hyper(shared=False, seed=1)
    pool = [[FORK, ArchGraph([(0, 1)])], *POOL[1:]]      # row 0: FORK was old candidate 2; (0, 1) is new
    new = hyper([row[:2] for row in pool], shared=False, seed=2)
    fresh = [p.detach().clone() for p in new.rows[0].candidates[1].parameters()]
    new.warm_start(old)
    for i, (row, old_row) in enumerate(zip(new.rows, old.rows)):
        j = 2 if i == 0 else 0                            # rows 1..3 keep old candidates 0 and 1
        for mine, theirs in zip(row.candidates[0].parameters(), old_row.candidates[j].parameters(), strict=True):
            assert torch.equal(mine, theirs)
    assert all(torch.equal(p, q) for p, q in zip(new.rows[0].candidates[1].parameters(), fresh))
    for mine, theirs in zip(new.rows[1].candidates[1].parameters(), old.rows[1].candidates[1].parameters()):
        assert torch.equal(mine, theirs)
    assert torch.equal(new.classifier.bias, old.classifier.bias)
    shared = hyper(shared=True, seed=3)                  # a masked cell loads into its FadeCell too
    new.warm_start(shared)
    assert torch.equal(new.rows[0].candidates[0].edge_ops[0].weight, shared.rows[0].candidates[2].edge_ops[0].weight)


def test_warm_start_rejects_other_shapes_and_kinds():
    with pytest.raises(ShapeError, match="cannot warm-start the hyper-cells: .* shape \\(4, 2, 3, 3\\) here, "
                                         "\\(2, 2, 3, 3\\) in the previous"):
        hyper(shared=True, channels=4).warm_start(hyper(shared=True))
    with pytest.raises(ShapeError, match="from a shared one only"):
        hyper(shared=True).warm_start(hyper(shared=False))
    one_cell = spaces.Space("one", "fade", ("c",), max_vertices=3)
    with pytest.raises(ShapeError, match="of 4 rows from one of 1"):
        hyper(shared=False).warm_start(build_hyper(one_cell, [[ONE]], input_shape=SHAPE, num_classes=5))


def test_bad_pools_spaces_and_paths_are_clear_errors():
    with pytest.raises(SpaceError, match="rectangular: row 0 has 3 graphs, row 2 has 2"):
        hyper([POOL[0], POOL[1], POOL[2][:2], POOL[3]], shared=False)
    with pytest.raises(SpaceError, match="chains 4 cells .* needs 4 rows; got 3"):
        hyper(POOL[:3], shared=False)
    big = ArchGraph([(i, i + 1) for i in range(5)])
    with pytest.raises(SpaceError, match="pool column 1: .*cell 'cell3' has 6 vertices, the space allows 1..5"):
        hyper([POOL[0], POOL[1], [ONE, big, ONE], POOL[3]], shared=False)
    with pytest.raises(SpaceError, match="'darts' embodiment; use a space with embodiment = 'fade'"):
        build_hyper("darts", POOL, input_shape=SHAPE, num_classes=5)
    with pytest.raises(SpaceError, match="carries edge ops.*shared=False"):
        hyper([[ArchGraph([(0, 1, "skip_connect")])]] * 4, shared=True)
    with pytest.raises(SpaceError, match="no parameter\\(s\\) \\['chanels'\\]"):
        hyper(shared=False, chanels=3)
    with pytest.raises(SpaceError, match="4 indices in 0..2, got \\(0, 3, 0, 0\\)"):
        hyper(shared=False).extract((0, 3, 0, 0))
    with pytest.raises(SpaceError, match="G_max needs at least one vertex, got max_vertices=0"):
        HyperCell(0, 1, 2)
    separate = hyper([[ArchGraph([(0, 1, "skip_connect")])]] * 4, shared=False)   # separate paths take edge ops
    assert isinstance(separate.rows[0].candidates[0].edge_ops[1], torch.nn.Identity)


def test_relaxation_and_generator_are_the_callers():
    h = hyper(shared=True, relaxation="softmax")
    assert type(h.rows[0].relaxation).__name__ == "Softmax"
    assert all(torch.equal(a, b) for a, b in zip(arch_parameters(h), arch_parameters(hyper(shared=True))))
    tau = Gumbel(tau=2.0, hard=True)
    assert hyper(shared=False, relaxation=tau).rows[3].relaxation is tau


def test_equal_size_paths_extract_to_the_standalone_network():
    """FaDE §3.1's equal-size cells: a path trained from scratch has the channels it had in the
    hyper-architecture, so the extracted network is the compiled one, weight for weight."""
    sizes = [12000, 12000, 16000, 16000]
    h = hyper(shared=False, weights_per_cell=sizes)
    path = (0, 2, 1, 0)
    force(h, path)
    net = h.extract(path)
    torch.manual_seed(5)
    standalone = spaces.load("fade").compile(h.architecture(path), input_shape=SHAPE, num_classes=5, channels=2,
                                             kernel_size=3, weights_per_cell=sizes)
    assert {k: v.shape for k, v in standalone.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    for row, size in zip(h.rows, sizes):
        assert all(abs(sum(p.numel() for p in c.parameters()) - size) <= 0.05 * size for c in row.candidates)
    assert len({c.width for c in h.rows[1].candidates}) == 3, "each DAG of a row gets a width of its own"
    standalone.load_state_dict(net.state_dict())
    x = torch.randn(3, *SHAPE)
    torch.testing.assert_close(standalone(x), h(x))


def test_equal_size_cells_need_separate_paths():
    with pytest.raises(SpaceError, match="needs separate paths"):
        hyper(shared=True, weights_per_cell=3000)


@pytest.mark.parametrize("shared", [False, True])
def test_seed_draws_weights_and_alpha_without_touching_the_global_generator(shared):
    def build(seed, alpha_seed=None):
        generator = None if alpha_seed is None else torch.Generator().manual_seed(alpha_seed)
        h = build_hyper("fade", POOL, input_shape=SHAPE, num_classes=5, shared=shared, channels=2, kernel_size=3,
                        seed=seed, generator=generator)
        alphas = {id(a) for a in arch_parameters(h)}
        return h, ([p.detach().clone() for p in h.parameters() if id(p) not in alphas],
                   [a.detach().clone() for a in arch_parameters(h)])

    def same(xs, ys) -> bool:
        return all(torch.equal(x, y) for x, y in zip(xs, ys, strict=True))

    before = torch.get_rng_state()
    (first, (weights, alphas)), (_, again), (_, other) = build(0), build(0), build(1)
    assert same(weights, again[0]) and same(alphas, again[1])   # without a generator the seed draws α too
    assert not same(weights, other[0]) and not same(alphas, other[1])
    (_, one), (_, two) = build(0, alpha_seed=7), build(1, alpha_seed=7)   # with one, α come from the generator
    assert same(one[1], two[1]) and not same(one[0], two[0])
    first.extract((0, 1, 2, 0))   # its weights are copied in: building it draws nothing from the caller's stream
    assert torch.equal(torch.get_rng_state(), before)
