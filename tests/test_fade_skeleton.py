"""The FaDE skeleton"s compiled network and hyper-architectures keep their checkpoints.

Stored runs and benchmark caches (benchmarks/results/fade_hyper/) load the state_dicts of
``build_fade`` networks and hyper-architectures, and seeded searches replay their initial
weights. The figures below were measured before the two were made one skeleton (commit
e8769e0): the names, shapes and order of every state_dict entry and parameter (a digest), the
seeded weights (a position-weighted sum) and the output on a fixed input must not move.
"""

import hashlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archgraph import ArchGraph
from archgraph.embody import FadeCell, FadeSkeleton, build_fade
from archgraph.hyper import HyperArchitecture, build_hyper

A = ArchGraph([(0, 1), (0, 2), (1, 2)])
B = ArchGraph([(0, 2), (1, 2)])
C = ArchGraph([], num_nodes=1)


def fade_2d():
    return build_fade([A, B, C], input_shape=(2, 8, 8), num_classes=3, channels=2, kernel_size=3, seed=0)


def fade_1d_without_pooling():
    return build_fade([B, A], input_shape=(1, 12), num_classes=4, channels=[3, 2], kernel_size=3, pool=None, seed=1)


def fade_equal_size():
    return build_fade([A, C], input_shape=(1, 8, 8), num_classes=3, channels=2, kernel_size=3,
                      weights_per_cell=2000, pool="avg", seed=2)


def hyper(shared):
    return build_hyper("fade", [[A, B], [C, A], [B, C], [A, A]], input_shape=(2, 8, 8), num_classes=3,
                       shared=shared, channels=2, kernel_size=3, pool="max", seed=3)  # not the space's defaults


def hyper_equal_size_1d():
    torch.manual_seed(4)
    return HyperArchitecture([[A, B, C], [C, B, A]], input_shape=(1, 10), num_classes=2, channels=2, kernel_size=3,
                             weights_per_cell=[2000, 3000], generator=torch.Generator().manual_seed(4))


BUILDS = {
    "fade_2d": (fade_2d, (2, 8, 8)),
    "fade_1d_without_pooling": (fade_1d_without_pooling, (1, 12)),
    "fade_equal_size": (fade_equal_size, (1, 8, 8)),
    "hyper_separate": (lambda: hyper(False), (2, 8, 8)),
    "hyper_shared": (lambda: hyper(True), (2, 8, 8)),
    "hyper_equal_size_1d": (hyper_equal_size_1d, (1, 10)),
}

# name: (state_dict entries, digest of their names and shapes and of the parameter names, weighted weight sum,
#        output sum on the fixed input)
PINNED = {
    "fade_1d_without_pooling": (22, "56201a72d4818447", -52.74238058924675, -0.052401269786059856),
    "fade_2d": (26, "100f5f95f9fb042c", -64.13331845414359, 0.17512451438233256),
    "fade_equal_size": (16, "1c05c35f07cae56e", -121.94413507071386, -0.1607804261147976),
    "hyper_equal_size_1d": (52, "1058d6fc791061f2", 291.78020998021384, -0.4479038864374161),
    "hyper_separate": (74, "ada06a699244d029", 1089.3275496033496, -0.06538309203460813),
    "hyper_shared": (234, "595f52c85900c027", 12818.607166229525, -0.06210061628371477),
}

# the paths (0, 1, 0, 1) and (1, 0, 1, 0) of hyper(shared) extracted
PINNED_EXTRACT = {
    False: [
        (42, "146337adf9008582", -97.4988232867629, -0.002470379142323509),
        (30, "b769a483913ebfb8", 444.1438672428376, -0.08599113300442696)],
    True: [
        (42, "146337adf9008582", 672.3069660814349, -0.01851968211121857),
        (30, "b769a483913ebfb8", 192.50245476144164, -0.2966472050175071)],
}


def fixed_input(shape):
    return torch.linspace(-1, 1, 2 * torch.Size(shape).numel()).reshape(2, *shape)


def fingerprint(net, shape):
    state = net.state_dict()
    names = [f"{k}:{tuple(v.shape)}" for k, v in state.items()] + ["--"] + [k for k, _ in net.named_parameters()]
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    weights = sum(float(v.double().sum()) * (i + 1) for i, v in enumerate(state.values()))
    for row in getattr(net, "rows", ()):
        row.generator = torch.Generator().manual_seed(9)  # the same Gumbel noise before and after
    with torch.no_grad():
        out = float(net(fixed_input(shape)).double().sum())
    return len(state), digest, weights, out


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_checkpoint_layout_seeded_weights_and_outputs_are_pinned(name):
    build, shape = BUILDS[name]
    count, digest, weights, out = fingerprint(build(), shape)
    assert (count, digest) == PINNED[name][:2]
    assert weights == PINNED[name][2]  # bit-identical seeded initialisation
    assert out == pytest.approx(PINNED[name][3], rel=1e-6, abs=1e-9)  # other hardware may sum in another order


@pytest.mark.parametrize("shared", [False, True])
def test_extracted_networks_are_pinned(shared):
    h = hyper(shared)
    nets = [h.extract(path) for path in ((0, 1, 0, 1), (1, 0, 1, 0))]
    for net, pinned in zip(nets, PINNED_EXTRACT[shared], strict=True):
        count, digest, weights, out = fingerprint(net, (2, 8, 8))
        assert (count, digest, weights) == pinned[:3]
        assert out == pytest.approx(pinned[3], rel=1e-6, abs=1e-9)



def test_the_skeleton_asks_the_factory_for_each_cell_and_chains_them():
    calls = []

    def make_cell(i, c_in, c_out, *, weights, dim):
        calls.append((i, c_in, c_out, weights, dim))
        return nn.Conv1d(c_in, c_out, 3, padding=1)

    net = FadeSkeleton(make_cell, 3, input_shape=(2, 10), num_classes=4, channels=[3, 5, 7],
                       weights_per_cell=[10, 20, 30], pool="avg")
    assert calls == [(0, 2, 3, 10, 1), (1, 3, 5, 20, 1), (2, 5, 7, 30, 1)]
    layers = list(net.cells)
    assert net.chain() == layers[::2] and all(m is net.downsample for m in layers[1::2])
    x = torch.randn(2, 2, 10)
    y = x
    for i, conv in enumerate(net.chain()):   # 10 → 5 → 3 (ceil mode) positions
        y = conv(F.avg_pool1d(y, 2, ceil_mode=True) if i else y)
    assert y.shape == (2, 7, 3)
    torch.testing.assert_close(net(x), net.classifier(y.mean(dim=2)))


@pytest.mark.parametrize("shared", [False, True])
def test_a_hyper_architecture_and_its_paths_are_one_skeleton(shared):
    h = hyper(shared)
    path = (1, 0, 1, 0)
    net = h.extract(path)
    assert [type(m) for m in net.chain()] == [FadeCell] * 4 and len(h.chain()) == 4
    assert [cell.graph for cell in net.chain()] == list(h.architecture(path))
    assert (net.input_shape, type(net.downsample), net.classifier.weight.shape) == \
           (h.input_shape, type(h.downsample), h.classifier.weight.shape)
