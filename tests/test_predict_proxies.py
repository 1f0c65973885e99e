import math

import numpy as np
import pytest
import torch
from torch import nn

from archgraph import ArchGraph, spaces
from archgraph.embody import mlp_graph
from archgraph.errors import ShapeError
from archgraph.predict.proxies import (PROXIES, fisher, grad_norm, grasp, jacob_cov, naswot, score, snip,
                                       synflow)

WEIGHT_PROXIES = [synflow, snip, grasp, grad_norm, fisher]


def _linear_net(seed=0, d=5, h=4, c=3):
    """Bias-free two-layer linear net in double precision: f(x) = W2 W1 x."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h, bias=False), nn.Linear(h, c, bias=False)).double()


def _batch(seed=1, n=6, d=5, c=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randint(0, c, (n,), generator=g)


def _hand(net, x, y):
    """Closed forms of the linear net under the batch-mean cross-entropy, in numpy."""
    w1, w2 = (m.weight.detach().numpy() for m in net)
    X = x.numpy()
    a1 = X @ w1.T
    z = a1 @ w2.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    G = (p - np.eye(z.shape[1])[y.numpy()]) / len(X)  # ∂L/∂z
    return {"w": (w1, w2), "a": (a1, z), "ga": (G @ w2, G), "gw": ((G @ w2).T @ X, G.T @ a1)}


def test_snip_and_grad_norm_match_the_closed_form_gradients():
    net, (x, y) = _linear_net(), _batch()
    hand = _hand(net, x, y)
    expect_snip = sum(np.abs(w * g).sum() for w, g in zip(hand["w"], hand["gw"]))
    expect_norm = sum(np.linalg.norm(g) for g in hand["gw"])
    assert snip(net, x, y) == pytest.approx(expect_snip, rel=1e-12)
    assert grad_norm(net, x, y) == pytest.approx(expect_norm, rel=1e-12)


def test_fisher_matches_the_per_channel_saliency_and_the_fan_in_weighting():
    net, (x, y) = _linear_net(), _batch()
    hand = _hand(net, x, y)
    deltas = [0.5 * ((a * g) ** 2).mean(0) for a, g in zip(hand["a"], hand["ga"])]
    assert fisher(net, x, y) == pytest.approx(sum(d.sum() for d in deltas), rel=1e-12)
    fan_ins = [m.in_features for m in net]
    assert fisher(net, x, y, fan_in=True) == pytest.approx(sum(d.sum() * f for d, f in zip(deltas, fan_ins)),
                                                           rel=1e-12)


def test_synflow_is_the_layer_count_times_the_path_norm():
    net = _linear_net()
    w1, w2 = (m.weight.detach().abs().numpy() for m in net)
    r = (w2 @ w1).sum()  # R = 1ᵀ|W2||W1|1
    assert synflow(net, *_batch()) == pytest.approx(2 * r, rel=1e-12)
    deep = nn.Sequential(*net, nn.Linear(3, 2, bias=False).double())
    r3 = (deep[2].weight.detach().abs().numpy() @ w2 @ w1).sum()
    assert synflow(deep, *_batch()) == pytest.approx(3 * r3, rel=1e-12)


def test_grasp_matches_a_finite_difference_hessian_gradient_product():
    net, (x, y) = _linear_net(), _batch()
    theta = [w.copy() for w in _hand(net, x, y)["w"]]
    g = _hand(net, x, y)["gw"]

    def grads_at(step):
        shifted = _linear_net()
        with torch.no_grad():
            for m, w, gi in zip(shifted, theta, g):
                m.weight.copy_(torch.from_numpy(w + step * gi))
        return _hand(shifted, x, y)["gw"]

    eps = 1e-5
    hg = [(p - m) / (2 * eps) for p, m in zip(grads_at(eps), grads_at(-eps))]
    expect = -sum((w * h).sum() for w, h in zip(theta, hg))
    assert grasp(net, x, y) == pytest.approx(expect, rel=1e-6)


def _relu_net(seed=0, d=5, h=7, c=3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, c)).double()


def test_jacob_cov_matches_numpy_on_closed_form_jacobians():
    net, (x, _) = _relu_net(), _batch(n=8)
    w1, w2, w3 = (net[i].weight.detach().numpy() for i in (0, 2, 4))
    b1, b2 = (net[i].bias.detach().numpy() for i in (0, 2))
    X = x.numpy()
    m1 = (X @ w1.T + b1) > 0
    m2 = (np.maximum(X @ w1.T + b1, 0) @ w2.T + b2) > 0
    # ∂Σf/∂x = W1ᵀ (m1 ⊙ W2ᵀ (m2 ⊙ W3ᵀ 1)), sample by sample
    J = ((m1 * ((m2 * w3.sum(0)) @ w2)) @ w1)
    v = np.linalg.eigvalsh(np.corrcoef(J)).clip(min=0) + 1e-5
    assert jacob_cov(net, x) == pytest.approx(-(np.log(v) + 1 / v).sum(), rel=1e-10)


def test_naswot_counts_agreeing_codes_at_every_relu():
    net, (x, _) = _relu_net(), _batch(n=6)
    w1, w2 = (net[i].weight.detach().numpy() for i in (0, 2))
    b1, b2 = (net[i].bias.detach().numpy() for i in (0, 2))
    X = x.numpy()
    z1 = X @ w1.T + b1
    z2 = np.maximum(z1, 0) @ w2.T + b2
    # K_nm = number of units where samples n and m are on the same side of zero
    K = sum(((c[:, None, :] == c[None, :, :]).sum(-1)) for c in (z1 > 0, z2 > 0)).astype(float)
    assert naswot(net, x) == pytest.approx(np.linalg.slogdet(K)[1], rel=1e-12)


class _FunctionalReLU(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net[4](torch.relu(self.net[2](torch.nn.functional.relu(self.net[0](x)))))


def test_naswot_reads_functional_relus_as_modules():
    net, (x, _) = _relu_net(), _batch(n=6)
    assert naswot(_FunctionalReLU(net), x) == naswot(net, x)
    fade = spaces.load("fade").compile([ArchGraph([(0, 1)])] * 4, input_shape=(1, 8, 8), num_classes=10)
    assert math.isfinite(naswot(fade, torch.randn(4, 1, 8, 8)))


def test_synflow_ignores_the_data_and_bypasses_batch_norm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
    x = torch.randn(4, 1, 4, 4)
    base = synflow(net, x, None)
    assert synflow(net, 5 * torch.rand(9, 1, 4, 4), torch.zeros(9, dtype=torch.long)) == base
    without_bn = nn.Sequential(net[0], nn.Identity(), *net[2:])
    assert synflow(without_bn, x) == pytest.approx(base, rel=1e-12)


def test_snip_scales_with_weight_magnitude_and_survives_rebalancing():
    net, (x, y) = _linear_net(), _batch()
    gain = lambda out, target: out.sum()  # noqa: E731 - ∂L/∂θ does not depend on the last layer's scale
    base = snip(net, x, y, loss_fn=gain)
    with torch.no_grad():
        net[0].weight.mul_(2.5)
    assert snip(net, x, y, loss_fn=gain) == pytest.approx(2.5 * base, rel=1e-12)
    # W1 → αW1, b1 → αb1, W2 → W2/α keeps a ReLU net's function: θ ⊙ ∂L/∂θ is unchanged, ‖∂L/∂θ‖ is not
    relu, (x, y) = _relu_net(), _batch()
    before = {p: PROXIES[p](relu, x, y) for p in ("snip", "synflow", "grad_norm")}
    with torch.no_grad():
        relu[0].weight.mul_(4.0), relu[0].bias.mul_(4.0), relu[2].weight.div_(4.0)
    assert snip(relu, x, y) == pytest.approx(before["snip"], rel=1e-10)
    assert synflow(relu, x, y) == pytest.approx(before["synflow"], rel=1e-10)
    assert grad_norm(relu, x, y) != pytest.approx(before["grad_norm"], rel=1e-3)


def test_fisher_reads_the_channel_axis_of_linear_and_convolution_outputs():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 5, 3)).double()
    conv = nn.Conv1d(4, 6, 1).double()
    with torch.no_grad():
        conv.weight.copy_(lin[0].weight[:, :, None])
        conv.bias.copy_(lin[0].bias)

    class Transposed(nn.Module):  # the same function, with the channels on dim 1
        def __init__(self):
            super().__init__()
            self.conv, self.head = conv, lin[3]

        def forward(self, x):
            return self.head(torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2).flatten(1))

    x, y = torch.randn(7, 5, 4, dtype=torch.float64), torch.randint(0, 3, (7,))
    assert fisher(Transposed(), x, y) == pytest.approx(fisher(lin, x, y), rel=1e-12)


def _stateful_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 16, 3))


@pytest.mark.parametrize("proxy", list(PROXIES))
def test_the_model_and_the_random_state_are_left_unchanged(proxy):
    net = _stateful_net().eval()
    net[0].bias.requires_grad_(False)
    net[5].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [p.requires_grad for p in net.parameters()]
    x, y = torch.randn(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    rng = torch.get_rng_state()
    PROXIES[proxy](net, x, y)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert [p.requires_grad for p in net.parameters()] == flags
    assert not any(m.training for m in net.modules())
    assert all(p.grad is None for p in net.parameters()) and not x.requires_grad
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("proxy", ["snip", "grasp", "grad_norm", "fisher", "jacob_cov", "naswot"])
def test_scores_are_deterministic_for_a_seed(proxy):
    net = _stateful_net()
    x, y = torch.randn(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    first = PROXIES[proxy](net, x, y, seed=3)
    assert PROXIES[proxy](net, x, y, seed=3) == first
    assert PROXIES[proxy](net, x, y, seed=4) != first  # dropout draws other masks


def test_score_collects_the_named_proxies():
    net, (x, y) = _relu_net(), _batch()
    assert score(net, x, y) == {name: f(net, x, y) for name, f in PROXIES.items()}
    gain = lambda out, target: out.sum()  # noqa: E731
    assert score(net, x, None, ["snip", "synflow"], loss_fn=gain) == {
        "snip": snip(net, x, None, loss_fn=gain), "synflow": synflow(net, x)}
    with pytest.raises(ValueError, match="unknown proxy 'zen'; known: grad_norm, snip"):
        score(net, x, y, ["snip", "zen"])


@pytest.mark.parametrize("proxy", WEIGHT_PROXIES)
def test_a_model_without_scored_layers_is_an_error(proxy):
    with pytest.raises(ValueError, match="no Conv1d/Conv2d/Conv3d or Linear layer"):
        proxy(nn.Sequential(nn.Flatten(), nn.Tanh()), torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))


def test_naswot_without_relus_is_an_error():
    tanh = spaces.load("mlp").compile([mlp_graph([(8, "tanh")])], input_shape=(4,), num_classes=3)
    with pytest.raises(ValueError, match="called no ReLU"):
        naswot(tanh, torch.randn(5, 4))


def test_batch_and_shape_errors():
    net, (x, y) = _relu_net(), _batch()
    with pytest.raises(ShapeError, match=r"one target per sample of x \(6\), got shape \(5,\)"):
        snip(net, x, y[:5])
    with pytest.raises(ShapeError, match="one target per sample of x"):
        fisher(net, x, None)
    with pytest.raises(ShapeError, match=r"N ≥ 1 samples, got a tensor of shape \(5,\)"):
        grad_norm(net, x[0], y)
    with pytest.raises(ShapeError, match="N ≥ 2"):
        jacob_cov(net, x[:1])
    with pytest.raises(ShapeError, match="N ≥ 2"):
        naswot(net, x[:1])
    with pytest.raises(ShapeError, match=r"map a batch of 6 samples to 6 outputs, got shape \(12,\)"):
        snip(nn.Sequential(nn.Linear(5, 2), nn.Flatten(0)).double(), x, y)
    with pytest.raises(TypeError, match="expected an nn.Module"):
        snip(lambda t: t, x, y)


def test_jacob_cov_of_a_network_that_ignores_its_input_is_nan():
    net = nn.Sequential(nn.Linear(5, 3)).double()
    with torch.no_grad():
        net[0].weight.zero_()
    assert math.isnan(jacob_cov(net, _batch()[0]))
