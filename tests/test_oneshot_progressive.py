"""DrNAS' progressive search (reference xiangning-chen/DrNAS, DARTS-space): partial channels, pruning, widening, stages."""

import math

import pytest
import torch
from torch import nn
from torch.utils.data import Subset

from archgraph.data import fade_split, load
from archgraph.oneshot import progressive
from archgraph.oneshot.bilevel import train_bilevel
from archgraph.oneshot.progressive import (
    DRNAS_STAGES,
    PartialMixedOp,
    channel_shuffle,
    partial_channels,
    prune,
    train_progressive,
    widen,
)
from archgraph.oneshot.supernet import build_supernet
from archgraph.relax import arch_parameters


def supernet(space="darts", C=12, relaxation="softmax"):
    return build_supernet(space, input_shape=(1, 8, 8), num_classes=10, C=C, layers=3, relaxation=relaxation, seed=0)


@pytest.fixture(scope="module")
def digits():
    _, arch, weight = fade_split(load("digits").train, seed=0)
    return Subset(weight, range(64)), Subset(arch, range(64))


def test_the_reference_stages():
    assert DRNAS_STAGES == {"partial_channels": (6, 4), "keep": (None, 4), "stage_epochs": (25, 25),
                            "warmup": (10, 10)}


def test_channel_shuffle_interleaves_the_groups():
    x = torch.arange(12.0).reshape(1, 12, 1, 1)
    # 4 groups of 3: channel g·3 + i moves to i·4 + g
    expected = [g * 3 + i for i in range(3) for g in range(4)]
    assert channel_shuffle(x, 4).flatten().tolist() == expected


@pytest.mark.parametrize("cell_type, edge", [("normal", (1, 3)), ("reduce", (0, 2)), ("reduce", (2, 3))])
def test_a_partial_edge_mixes_its_ops_on_c_over_k_channels_and_passes_the_rest(cell_type, edge):
    net = supernet()
    partial_channels(net, 6)
    mixed = net.choice(cell_type, edge)
    assert isinstance(mixed, PartialMixedOp) and mixed.k == 6
    C = mixed.C
    x = torch.randn(4, C, 8, 8)
    with torch.no_grad():
        mixed.alpha.copy_(torch.randn(len(mixed), generator=torch.Generator().manual_seed(3)))
    mixed.train()
    torch.manual_seed(0)
    got = mixed(x)
    w = torch.softmax(mixed.alpha, 0)
    torch.manual_seed(0)
    ops = sum(w[i] * op(x[:, :C // 6]) for i, op in enumerate(mixed.candidates) if mixed.names[i] != "none")
    rest = x[:, C // 6:]
    if mixed.stride == 2:
        rest = nn.functional.max_pool2d(rest, 2, 2)
    both = torch.cat([ops, rest], 1)
    expected = torch.stack([both[:, g * (C // 6) + i] for i in range(C // 6) for g in range(6)], 1)
    torch.testing.assert_close(got, expected)
    assert all(op.__class__.__name__ != "SepConv" or op[0][1].in_channels == C // 6 for op in mixed.candidates)


def test_partial_channels_need_c_divisible_by_k_and_plain_edges():
    with pytest.raises(ValueError, match=r"K = 6 .* cells have 8, 16, 32 channels .*C a multiple of every K"):
        partial_channels(supernet(C=8), 6)
    net = supernet()
    partial_channels(net, 6)
    with pytest.raises(ValueError, match="already run on partial channels .*use widen"):
        partial_channels(net, 4)
    with pytest.raises(ValueError, match="widen lowers the partial-channel K"):
        widen(supernet(), 4)
    with pytest.raises(ValueError, match="widen lowers"):
        widen(net, 6)


def test_prune_keeps_the_strongest_ops_of_every_edge_in_order_with_one_alpha_per_cell_type():
    net = supernet()
    partial_channels(net, 6)
    before = {(t, e): (net.edge_ops(t, e), net.choice(t, e).alpha.detach().clone(), list(net.choice(t, e).candidates))
              for t in net.cell_types for e in net.edges(t)}
    with torch.no_grad():   # a tie on the first edge: the earlier op wins
        alpha = net.choice("normal", (0, 2)).alpha
        alpha.copy_(torch.tensor([0.5, 0.1, 0.9, 0.5, 0.2, 0.3, 0.0, 0.4]))
        before["normal", (0, 2)] = (before["normal", (0, 2)][0], alpha.clone(), before["normal", (0, 2)][2])
    prune(net, 4)
    for (cell_type, edge), (names, alpha, candidates) in before.items():
        order = sorted(range(len(alpha)), key=lambda i: (-alpha[i].item(), i))
        kept = sorted(order[:4])
        assert net.edge_ops(cell_type, edge) == tuple(names[i] for i in kept)
        mixed_ops = net.edge_choices(cell_type, edge)
        assert all(m.alpha is mixed_ops[0].alpha for m in mixed_ops)           # shared across the cells of a type
        assert torch.equal(mixed_ops[0].alpha.detach(), alpha[kept])
        assert all(a is candidates[i] for a, i in zip(net.choice(cell_type, edge).candidates, kept))
    assert net.edge_ops("normal", (0, 2)) == ("none", "avg_pool_3x3", "skip_connect", "dil_conv_5x5")
    assert len(arch_parameters(net)) == 2 * 14
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="keep is the number of ops each edge keeps"):
        prune(net, 0)


def test_widen_copies_the_old_channels_in_place_and_the_new_ones_from_drawn_old_ones():
    net = supernet()
    partial_channels(net, 6)
    net.train()(torch.randn(8, 1, 8, 8))                   # batch-norm running statistics worth copying
    old = {name: op for name, op in zip(net.choice("normal", (0, 2)).names, net.choice("normal", (0, 2)).candidates)}
    old_fr = dict(zip(net.choice("reduce", (0, 2)).names, net.choice("reduce", (0, 2)).candidates))["skip_connect"]
    widen(net, 4, generator=torch.Generator().manual_seed(0))
    mixed = net.choice("normal", (0, 2))
    assert mixed.k == 4
    new = dict(zip(mixed.names, mixed.candidates))
    sep_old, sep_new = old["sep_conv_3x3"], new["sep_conv_3x3"]
    c_old, c_new = 12 // 6, 12 // 4
    for half in (0, 1):
        depthwise_o, pointwise_o, bn_o = sep_old[half][1], sep_old[half][2], sep_old[half][3]
        depthwise_n, pointwise_n, bn_n = sep_new[half][1], sep_new[half][2], sep_new[half][3]
        assert depthwise_n.weight.shape == (c_new, 1, 3, 3) and depthwise_n.groups == c_new
        assert torch.equal(depthwise_n.weight[:c_old], depthwise_o.weight)        # old channels in place
        assert torch.equal(pointwise_n.weight[:c_old, :c_old], pointwise_o.weight)
        # each new depthwise filter is a copy of an old one, and the pointwise conv reads it as that one
        (drawn,) = [i for i in range(c_old) if torch.equal(depthwise_n.weight[c_old], depthwise_o.weight[i])]
        assert torch.equal(pointwise_n.weight[:c_old, c_old], pointwise_o.weight[:, drawn])
        (out,) = [i for i in range(c_old) if torch.equal(pointwise_n.weight[c_old, :c_old], pointwise_o.weight[i])]
        assert bn_n.running_mean[c_old] == bn_o.running_mean[out] and bn_n.running_var[c_old] == bn_o.running_var[out]
        assert torch.equal(bn_n.running_mean[:c_old], bn_o.running_mean)
    fr = dict(zip(net.choice("reduce", (0, 2)).names, net.choice("reduce", (0, 2)).candidates))["skip_connect"]
    half_old, half_new = old_fr.conv_1.out_channels, fr.conv_1.out_channels      # 2 → 3 of 24 / 6 → 24 / 4
    assert (half_old, half_new) == (2, 3)
    assert torch.equal(fr.bn.running_mean[:half_old], old_fr.bn.running_mean[:half_old])
    assert torch.equal(fr.bn.running_mean[half_new:half_new + half_old], old_fr.bn.running_mean[half_old:])
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_train_progressive_runs_the_stages_on_one_schedule(digits, monkeypatch):
    weight, arch = digits
    calls = []

    def spy(model, *args, **kwargs):
        ops = {len(model.choice(t, e)) for t in model.cell_types for e in model.edges(t)}
        calls.append((kwargs, model.choice("normal", (0, 2)).k, ops, [a.detach().clone() for a in arch_parameters(model)]))
        return train_bilevel(model, *args, **kwargs)

    monkeypatch.setattr(progressive, "train_bilevel", spy)
    net = supernet("darts", relaxation="dirichlet")
    seen = []
    result = train_progressive(net, weight, arch, epochs=5, stage_epochs=(3, 2), warmup=(1, 1), batch_size=32,
                               optimizer="sgd", lr=0.1, schedule="cosine", min_lr=0.0, progress=False,
                               generator=torch.Generator().manual_seed(0),
                               on_epoch=lambda row, model: seen.append([a.detach().clone() for a in
                                                                        arch_parameters(model)]) and False)
    assert [(c["start_epoch"], c["end_epoch"], c["arch_warmup"], c["epochs"]) for c, *_ in calls] == [
        (0, 3, 1, 5), (3, 5, 4, 5)]
    assert [(k, ops) for _, k, ops, _ in calls] == [(6, {8}), (4, {4})]     # all 8 DARTS ops, then the 4 kept
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3, 4]
    # one cosine over the 5 epochs of both stages (the reference's scheduler carries over)
    assert [row["lr"] for row in result.history] == pytest.approx(
        [0.1 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)], rel=1e-12)
    # α stays in each stage's warm-up epoch (stage 0: epoch 0; stage 1: epoch 3), moves after it
    assert all(torch.equal(a, b) for a, b in zip(seen[0], calls[0][3]))
    assert not all(torch.equal(a, b) for a, b in zip(seen[1], seen[0]))
    assert all(torch.equal(a, b) for a, b in zip(seen[3], calls[1][3]))
    assert [(s["epochs"], s["partial_channels"], s["ops_per_edge"], s["warmup"]) for s in result.stages] == [
        ((0, 3), 6, 8, 1), ((3, 5), 4, 4, 1)]
    assert not result.stopped_early


def test_train_progressive_defaults_and_errors(digits):
    weight, arch = digits
    net = supernet("s5", relaxation="dirichlet")
    result = train_progressive(net, weight, arch, epochs=3, batch_size=32, progress=False)
    # 3 epochs split 2 + 1; warm-up round(0.4 · stage epochs), the reference's 10 of 25
    assert [(s["epochs"], s["warmup"]) for s in result.stages] == [((0, 2), 1), ((2, 3), 0)]
    with pytest.raises(ValueError, match=r"stage_epochs .* sums to epochs=4; got \(1, 2\)"):
        train_progressive(supernet(), weight, arch, epochs=4, stage_epochs=(1, 2))
    with pytest.raises(ValueError, match=r"warmup .* \[0, stage epochs - 1\]; got \(2, 0\)"):
        train_progressive(supernet(), weight, arch, epochs=4, warmup=(2, 0))
    with pytest.raises(ValueError, match="ints >= 1 that decrease"):
        train_progressive(supernet(), weight, arch, epochs=4, partial_channels=(4, 6))
    with pytest.raises(ValueError, match="C a multiple of every K"):
        train_progressive(supernet(C=8), weight, arch, epochs=4)
    with pytest.raises(TypeError, match="sets arch_warmup per stage"):
        train_progressive(supernet(), weight, arch, epochs=4, arch_warmup=1)
    with pytest.raises(TypeError, match="rebuilds the mixed edges of an archgraph.oneshot.Supernet"):
        train_progressive(nn.Linear(2, 2), weight, arch, epochs=4)
