import pytest
import torch
from torch import nn
from torch.utils.data import Subset

from archgraph import ShapeError, SpaceError, spaces
from archgraph.data import fade_split, load
from archgraph.oneshot.bilevel import train_bilevel
from archgraph.oneshot.supernet import MixedOp, build_supernet, cell_edges
from archgraph.relax import Gumbel, arch_parameters, choices

SPACES = ["darts", "s1", "s2", "s3", "s4", "s5"]


def tiny(space="s2", **kwargs):
    return build_supernet(space, input_shape=(1, 8, 8), num_classes=10, C=4, layers=kwargs.pop("layers", 3), **kwargs)


@pytest.mark.parametrize("name", SPACES)
def test_every_space_gives_logits_on_digits_with_its_ops(name):
    torch.manual_seed(0)
    net = tiny(name)
    x = torch.randn(4, 1, 8, 8)
    assert net(x).shape == (4, 10)
    assert net.eval()(x).shape == (4, 10)
    space = spaces.load(name)
    assert net.nodes == space.max_vertices - 2
    for cell_type, cell in zip(net.cell_types, space.cells):
        assert net.edges(cell_type) == cell_edges(net.nodes)
        for edge in net.edges(cell_type):
            assert net.edge_ops(cell_type, edge) == space.ops_for(cell, edge)


def test_s1_offers_the_reference_pair_on_each_edge():
    net = tiny("s1")
    assert net.edge_ops("normal", (0, 4)) == ("max_pool_3x3", "skip_connect")
    assert net.edge_ops("normal", (4, 5)) == ("dil_conv_3x3", "dil_conv_5x5")
    assert net.edge_ops("reduce", (1, 2)) == ("max_pool_3x3", "dil_conv_3x3")
    assert net.edge_ops("reduce", (2, 3)) == ("skip_connect", "dil_conv_5x5")
    assert {len(c) for c in choices(net)} == {2}


def test_one_alpha_per_edge_per_cell_type_shared_by_the_cells():
    net = tiny("darts", layers=5)  # reductions at 1 and 3: three normal cells, two reduce cells
    assert [cell.reduction for cell in net.cells] == [False, True, False, True, False]
    assert len(choices(net)) == 5 * 14
    assert len(arch_parameters(net)) == 2 * 14
    for cell_type, count in (("normal", 3), ("reduce", 2)):
        for edge in net.edges(cell_type):
            shared = net.edge_choices(cell_type, edge)
            assert len(shared) == count and shared[0] is net.choice(cell_type, edge)
            assert all(c.alpha is shared[0].alpha for c in shared)
    assert net.choice("normal", (0, 2)).alpha is not net.choice("reduce", (0, 2)).alpha


def test_alpha_init_is_seeded_and_small():
    a = [p.detach().clone() for p in arch_parameters(tiny(generator=torch.Generator().manual_seed(3)))]
    b = [p.detach().clone() for p in arch_parameters(tiny(generator=torch.Generator().manual_seed(3)))]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert max(x.abs().max().item() for x in a) < 1e-2  # init_std = 1e-3


@pytest.mark.parametrize("relaxation", ["softmax", "sigmoid", "dirichlet", Gumbel(1.0, hard=True)], ids=repr)
def test_gradients_reach_every_alpha(relaxation):
    torch.manual_seed(0)
    # a hard Gumbel edge that draws `none` outputs zeros, so its α get no gradient in that step: use S2
    net = tiny("s2" if isinstance(relaxation, Gumbel) else "s3", relaxation=relaxation)
    nn.functional.cross_entropy(net(torch.randn(8, 1, 8, 8)), torch.arange(8)).backward()
    for alpha in arch_parameters(net):
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0


def _count_calls(net):
    """{(id of a Choice, candidate index): forward calls}, filled by forward hooks."""
    calls = {}

    def counter(key):
        return lambda module, inputs, output: calls.__setitem__(key, calls.get(key, 0) + 1)

    for c in choices(net):
        for k, candidate in enumerate(c.candidates):
            candidate.register_forward_hook(counter((id(c), k)))
    return calls


def test_hard_gumbel_runs_one_op_per_edge_the_same_in_every_cell_of_a_type():
    net = tiny("darts", layers=5, relaxation=Gumbel(1.0, hard=True), generator=torch.Generator().manual_seed(0))
    calls = _count_calls(net)
    net(torch.randn(2, 1, 8, 8))
    for cell_type in net.cell_types:
        for edge in net.edges(cell_type):
            ran = [[k for k in range(8) if calls.get((id(c), k))] for c in net.edge_choices(cell_type, edge)]
            assert all(len(r) == 1 for r in ran), ran  # one op per edge and cell
            assert all(r == ran[0] for r in ran)  # the same op in all cells of the type: one draw
    soft = tiny("darts")
    soft_calls = _count_calls(soft)
    soft(torch.randn(2, 1, 8, 8))
    ops_but_none = sum(1 for c in choices(soft) for name in c.names if name != "none")
    assert len(soft_calls) == ops_but_none  # softmax runs every op but none, whose weighted zeros add nothing


def test_a_mixed_op_alone_draws_its_own_weights():
    net = tiny("s3", relaxation="dirichlet")
    choice = net.choice("normal", (0, 2))
    assert not torch.equal(choice.weights(), choice.weights())  # outside a forward pass: fresh samples


def test_drop_path_zeroes_paths_while_training_only():
    torch.manual_seed(0)
    net = tiny("s2")
    assert net.drop_path_prob == 0.0
    outputs = []
    net.cells[0].register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    x = torch.randn(64, 1, 8, 8)

    def zero_first_nodes():  # samples whose node 2 (both its edges dropped) is exactly zero
        return int((outputs[-1][:, :4].flatten(1).abs().sum(1) == 0).sum())

    net.train()(x)
    assert zero_first_nodes() == 0
    net.drop_path_prob = 0.5
    net(x)
    assert 4 <= zero_first_nodes() <= 30  # P(both dropped) = 0.25 of 64
    net.eval()
    with_drop = net(x)
    net.drop_path_prob = 0.0
    assert zero_first_nodes() == 0 and torch.equal(with_drop, net(x))


def test_search_cells_use_non_affine_batch_norm_and_pool_then_norm():
    net = tiny("darts")
    norms = [m for cell in net.cells for m in cell.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.affine for m in norms)
    assert net.stem[1].affine  # the stem's batch norm is affine, as in the reference
    pool = net.choice("normal", (0, 2)).candidates[net.edge_ops("normal", (0, 2)).index("max_pool_3x3")]
    assert isinstance(pool[0], nn.MaxPool2d) and isinstance(pool[1], nn.BatchNorm2d)


def test_reduction_cells_halve_and_channels_follow_the_reference():
    net = tiny("s5", layers=6)
    assert [c.reduction for c in net.cells] == [False, False, True, False, True, False]
    assert net.stem[0].out_channels == 12 and net.classifier.in_features == 1 * 16  # nodes * 4C
    assert isinstance(net.choice("reduce", (0, 2)), MixedOp)


def test_nodes_other_than_the_space_s():
    net = tiny("darts", nodes=2)
    assert net.edges("normal") == [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10) and net.classifier.in_features == 2 * 16
    assert build_supernet(spaces.Space("free", "darts", ("normal", "reduce"), ops=("skip_connect",)),
                          input_shape=(1, 8, 8), num_classes=3).nodes == 4  # unbounded cells: DARTS' 4
    with pytest.raises(ValueError, match="at least one intermediate node, got nodes=0"):
        tiny("darts", nodes=0)


def test_repr_is_one_readable_line():
    net = tiny("s4", relaxation=Gumbel(10.0, hard=True))
    assert repr(net) == ("Supernet(space='s4', C=4, layers=3, nodes=4, cells=1 normal + 2 reduce, "
                         "relaxation=Gumbel(tau=10.0, hard=True), drop_path_prob=0.0)")
    assert repr(net.cells[0]).startswith("SearchCell(\n  nodes=4, edges=14, reduction=False")
    assert "noise, sep_conv_3x3; candidates=2" in repr(net.choice("normal", (0, 2)))


def test_clear_errors():
    with pytest.raises(SpaceError, match="no space named 'nope'"):
        tiny("nope")
    with pytest.raises(SpaceError, match="darts embodiment.*'fade'"):
        tiny("fade")
    with pytest.raises(ShapeError, match="takes images \\(C, H, W\\) or signals \\(C, L\\), got shape \\(40,\\)"):
        build_supernet("darts", input_shape=(40,), num_classes=10)
    with pytest.raises(ShapeError, match="so L must be a multiple of 4; got 42"):
        build_supernet("darts", input_shape=(1, 42), num_classes=10)
    with pytest.raises(ShapeError, match="multiples of 4; got 6×6"):
        build_supernet("darts", input_shape=(1, 6, 6), num_classes=10)
    with pytest.raises(ValueError, match="at least 3 cells"):
        tiny(layers=2)
    net = tiny()
    with pytest.raises(ValueError, match="unknown cell type 'norm'"):
        net.edges("norm")
    with pytest.raises(ValueError, match="\\(0, 7\\) is not an edge of the normal cell"):
        net.choice("normal", (0, 7))


def test_trains_with_the_bilevel_trainer():
    torch.manual_seed(0)
    _, arch, weight = fade_split(Subset(load("digits").train, range(96)), seed=0)
    net = tiny("s5")
    before = [p.detach().clone() for p in arch_parameters(net)]
    result = train_bilevel(net, weight, arch, epochs=1, batch_size=32, arch_lr=1e-2, progress=False)
    assert len(result.history) == 1 and len(result.history[0]["alpha"]) == 4  # one row per shared α
    assert all(not torch.equal(b, p) for b, p in zip(before, arch_parameters(net)))


def test_seed_draws_weights_and_alpha_without_touching_the_global_generator():
    def state(seed):  # the weights and α (both in the state dict)
        return [t.detach().clone() for t in tiny(seed=seed).state_dict().values()]

    before = torch.get_rng_state()
    first, again, other = state(0), state(0), state(1)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("name", ["s1", "s3", "s4"])
def test_on_signals_every_op_is_its_1d_counterpart_with_the_2d_parameters_less_one_kernel_axis(name):
    flat, square = (build_supernet(name, input_shape=shape, num_classes=10, C=4, layers=3, seed=0)
                    for shape in ((1, 40), (1, 8, 8)))
    assert flat(torch.randn(3, 1, 40)).shape == (3, 10)
    one, two = dict(flat.named_parameters()), dict(square.named_parameters())
    assert one.keys() == two.keys()
    for key, p in two.items():  # a k×k kernel becomes k long; everything else is the same
        assert one[key].shape == (p.shape[:-1] if p.dim() == 4 else p.shape), key
    layers = {type(m).__name__ for m in flat.modules()}
    assert {"Conv1d", "BatchNorm1d", "AdaptiveAvgPool1d"} <= layers and not any("2d" in n for n in layers)
    pools = [m for m in flat.modules() if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d))]
    assert all(p.kernel_size in (3, (3,)) for p in pools) and bool(pools) == (name == "s1")
