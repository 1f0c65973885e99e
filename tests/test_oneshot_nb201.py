"""The NAS-Bench-201 search supernet: its fused fast path against the per-edge Choices, the
shared α and draw, ``arch()``, its errors, and bi-level training on it."""

import math
from collections import Counter
from contextlib import ExitStack

import pytest
import torch
from torch.utils.data import TensorDataset

from archgraph import ShapeError
from archgraph.embody.nb201 import EDGES, NB201_OPS, to_nb201_string, xautodl_names
from archgraph.oneshot.bilevel import train_bilevel
from archgraph.oneshot.nb201 import NB201SearchCell, build_nb201_supernet
from archgraph.relax import Gumbel, arch_parameters

C, SHAPE = 4, (3, 8, 8)
NONE, CONV_3X3 = NB201_OPS.index("none"), NB201_OPS.index("nor_conv_3x3")


def _supernet(relaxation="softmax", *, N=1, fused=True, channels_last=True, seed=0):
    """A float64 supernet; the same arguments give the same weights, α (std 1) and noise."""
    torch.manual_seed(seed)
    return build_nb201_supernet(input_shape=SHAPE, num_classes=10, C=C, N=N, relaxation=relaxation, init_std=1.0,
                                generator=torch.Generator().manual_seed(seed), fused=fused,
                                channels_last=channels_last).double()


def _images(batch=6, seed=1):
    return torch.randn(batch, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _search_cells(net):
    return [cell for cell in net.cells if isinstance(cell, NB201SearchCell)]


# --- fused vs plain --------------------------------------------------------------------------------
# A case prepares each twin alike: it may change α or running statistics, fix Choices, or enter
# masks on ``stack`` (held through the forward and backward pass).

def _set_alpha(net, edge, values):
    with torch.no_grad():
        net.choice("cell", edge).alpha.copy_(torch.tensor(values))


def _none_into(node):
    """Fix every edge into ``node`` to ``none``."""
    def prepare(net, stack):
        for u in range(node):
            for choice in net.edge_choices("cell", (u, node)):
                choice.fix(NONE)
    return prepare


def _sample_none_into(node):
    """α making hard Gumbel sample ``none`` on every edge into ``node`` (noise is at most ~37)."""
    def prepare(net, stack):
        for u in range(node):
            _set_alpha(net, (u, node), [100.0, 0.0, 0.0, 0.0, 0.0])
    return prepare


def _mask(net, stack):
    for choice in net.edge_choices("cell", (0, 3)):
        stack.enter_context(choice.masked([1, 0, 1, 0, 1]))
    for choice in net.edge_choices("cell", (1, 2)):  # the edge removed
        stack.enter_context(choice.masked([0, 0, 0, 0, 0]))


def _fix(net, stack):
    for edge, k in (((1, 2), CONV_3X3), ((0, 3), NB201_OPS.index("skip_connect"))):
        for choice in net.edge_choices("cell", edge):
            choice.fix(k)


@torch.no_grad()
def _random_running_stats(net, stack):
    g = torch.Generator().manual_seed(7)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _nothing(net, stack):
    pass


HARD = Gumbel(1.0, hard=True)
CASES = {  # name: (relaxation, prepare, train, channels_last)
    "softmax": ("softmax", _nothing, True, True),
    "softmax-contiguous": ("softmax", _nothing, True, False),
    "gumbel-hard": (HARD, _nothing, True, True),
    "gumbel-hard-contiguous": (HARD, _nothing, True, False),
    "gumbel-soft": (Gumbel(0.5), _nothing, True, True),
    "sigmoid": ("sigmoid", _nothing, True, True),
    "dirichlet": ("dirichlet", _nothing, True, True),
    "masked": ("softmax", _mask, True, True),
    "fixed": ("softmax", _fix, True, True),
    "fixed-gumbel": (HARD, _fix, True, True),
    "eval": ("softmax", _random_running_stats, False, True),
    "eval-gumbel": (HARD, _random_running_stats, False, True),
    "node1-fixed-none": ("softmax", _none_into(1), True, True),
    "node3-fixed-none": ("softmax", _none_into(3), True, True),
    "node1-sampled-none": (HARD, _sample_none_into(1), True, True),
    "node3-sampled-none": (HARD, _sample_none_into(3), True, True),
}


def _step(net, x, train: bool):
    """Logits, gradients of every parameter (α included) and buffers after one forward/backward."""
    net.train(train)
    torch.manual_seed(2)  # Dirichlet draws from the global RNG
    logits = net(x)
    cotangent = torch.randn(logits.shape, dtype=logits.dtype, generator=torch.Generator().manual_seed(3))
    (logits * cotangent).sum().backward()
    grads = {name: p.grad for name, p in net.named_parameters()}  # None: not in the graph (optimisers skip it)
    return logits, grads, dict(net.named_buffers())


@pytest.mark.parametrize("case", CASES)
def test_fused_path_matches_the_per_edge_choices(case):
    relaxation, prepare, train, channels_last = CASES[case]
    x = _images()
    results = []
    for fused in (True, False):
        net = _supernet(relaxation, N=2 if case == "softmax" else 1, fused=fused, channels_last=channels_last)
        with ExitStack() as stack:
            prepare(net, stack)
            results.append(_step(net, x, train))
    (logits, grads, buffers), (ref_logits, ref_grads, ref_buffers) = results
    close = {"rtol": 1e-6, "atol": 1e-6}
    torch.testing.assert_close(logits, ref_logits, **close)
    assert grads.keys() == ref_grads.keys() and buffers.keys() == ref_buffers.keys()
    for name, grad in grads.items():
        assert (grad is None) == (ref_grads[name] is None), name
        if grad is not None:
            torch.testing.assert_close(grad, ref_grads[name], **close, msg=name)
    for name, buffer in buffers.items():
        torch.testing.assert_close(buffer, ref_buffers[name], **close, msg=name)
    assert any(g.abs().max() > 1e-3 for name, g in grads.items() if g is not None and "alpha" not in name)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("prepare", [_none_into(3), _sample_none_into(3)], ids=["fixed", "sampled"])
def test_a_cell_whose_output_node_has_only_none_inputs_outputs_zeros(prepare, fused):
    net = _supernet(HARD, fused=fused)
    prepare(net, None)
    x = torch.randn(4, C, 8, 8, dtype=torch.float64)
    y = _search_cells(net)[0](x)
    assert y.shape == x.shape and y.dtype == x.dtype and not y.any()


# --- sharing: α and the draw -----------------------------------------------------------------------

def test_every_cell_shares_the_six_alphas():
    net = _supernet(N=2)
    alphas = net.arch_parameters()
    assert len({id(a) for a in alphas}) == 6 and {id(a) for a in arch_parameters(net)} == {id(a) for a in alphas}
    for alpha, edge in zip(alphas, EDGES):
        shared = net.edge_choices("cell", edge)
        assert len(shared) == 6 and shared[0] is net.choice("cell", edge)  # 3 stages × N = 2
        assert all(c.alpha is alpha for c in shared)


@pytest.mark.parametrize("fused", [True, False])
def test_one_forward_pass_draws_each_edge_once(fused):
    relaxation = Gumbel(1.0, hard=True)
    net = _supernet(relaxation, N=2, fused=fused)
    draws = []

    def recording(alpha, generator=None):
        draws.append(alpha)
        return Gumbel.weights(relaxation, alpha, generator)

    relaxation.weights = recording
    net(_images())
    assert [id(a) for a in draws] == [id(a) for a in net.arch_parameters()]  # 6 cells, 6 draws


def test_under_hard_gumbel_every_cell_runs_the_same_sampled_op():
    net = _supernet(Gumbel(1.0, hard=True), N=2, fused=False)  # the plain path calls the candidates
    ran = []
    for i, cell in enumerate(_search_cells(net)):
        for j, choice in enumerate(cell.mixed):
            for k, op in enumerate(choice.candidates):
                op.register_forward_hook(lambda *_, i=i, j=j, k=k: ran.append((i, j, k)))
    samples = set()
    for _ in range(4):
        ran.clear()
        net(_images())
        assert Counter((i, j) for i, j, _ in ran) == {(i, j): 1 for i in range(6) for j in range(6)}
        sample = tuple(k for i, j, k in sorted(ran) if i == 0)
        assert all(k == sample[j] for _, j, k in ran)
        samples.add(sample)
    assert len(samples) > 1  # a fresh draw each pass


# --- arch, errors ----------------------------------------------------------------------------------

def test_arch_takes_the_argmax_of_each_edge():
    net = _supernet()
    picks = ["nor_conv_3x3", "none", "avg_pool_3x3", "skip_connect", "nor_conv_1x1", "nor_conv_3x3"]
    for edge, op in zip(EDGES, picks):
        values = [0.1 * k for k in range(5)]
        values[NB201_OPS.index(op)] = 1.0
        _set_alpha(net, edge, values)
    expected = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    assert to_nb201_string(net.arch()) == expected
    for choice in net.edge_choices("cell", (0, 2)):
        choice.fix(CONV_3X3)
    assert to_nb201_string(net.arch()) == expected.replace("none~0", "nor_conv_3x3~0")


@pytest.mark.parametrize("call, error, match", [
    (lambda net: net.choice("normal", (0, 1)), ValueError, "unknown cell type 'normal'"),
    (lambda net: net.edges("reduce"), ValueError, "unknown cell type 'reduce'"),
    (lambda net: net.choice("cell", (0, 4)), ValueError, r"\(0, 4\) is not an edge of a NAS-Bench-201 cell"),
    (lambda net: net.edge_choices("cell", (2, 1)), ValueError, r"\(2, 1\) is not an edge"),
    (lambda net: xautodl_names(net), TypeError, "cell 0 is a NB201SearchCell"),
])
def test_bad_lookups_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call(_supernet())


@pytest.mark.parametrize("shape, match", [((64,), "takes images"), ((3, 30, 32), "multiples of 4")])
def test_non_image_shapes_are_refused(shape, match):
    with pytest.raises(ShapeError, match=match):
        build_nb201_supernet(input_shape=shape, num_classes=10, C=C, N=1)


# --- training --------------------------------------------------------------------------------------

@pytest.mark.parametrize("relaxation", ["softmax", Gumbel(10.0, hard=True)], ids=["darts", "gdas"])
def test_bilevel_training_moves_every_alpha(relaxation):
    torch.manual_seed(0)
    net = build_nb201_supernet(input_shape=SHAPE, num_classes=10, C=C, N=1, relaxation=relaxation)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, *SHAPE, generator=g), torch.randint(10, (32,), generator=g)
    before = torch.stack(net.arch_parameters()).detach().clone()
    result = train_bilevel(net, TensorDataset(x[:16], y[:16]), TensorDataset(x[16:], y[16:]), epochs=1, batch_size=8,
                           arch_lr=0.01, progress=False)
    (row,) = result.history
    assert math.isfinite(row["train_loss"]) and math.isfinite(row["arch_loss"])
    assert len(row["alpha"]) == 6  # one row per shared α, not per cell
    assert (torch.stack(net.arch_parameters()) != before).all()


def test_seed_draws_weights_and_alpha_without_touching_the_global_generator():
    def state(seed):  # the weights and α (both in the state dict)
        net = build_nb201_supernet(input_shape=SHAPE, num_classes=10, C=C, N=1, seed=seed)
        return [t.detach().clone() for t in net.state_dict().values()]

    before = torch.get_rng_state()
    first, again, other = state(0), state(0), state(1)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
