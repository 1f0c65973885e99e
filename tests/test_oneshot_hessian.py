import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archgraph.data import load
from archgraph.oneshot.hessian import arch_eigenvalue, dominant_eigenvalue, hessian
from archgraph.relax import Choice, Gumbel, arch_parameters


def quadratic(eigenvalues, seed=0, dtype=torch.float64):
    """``½ θᵀAθ + bᵀθ`` with ``A = Q diag(eigenvalues) Qᵀ``, θ split over two tensors of different shapes."""
    g = torch.Generator().manual_seed(seed)
    n = len(eigenvalues)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=dtype))
    a = q @ torch.diag(torch.tensor(eigenvalues, dtype=dtype)) @ q.T
    first = torch.randn(2, 3, generator=g, dtype=dtype, requires_grad=True)
    second = torch.randn(n - 6, generator=g, dtype=dtype, requires_grad=True)
    theta = torch.cat([first.reshape(-1), second])
    loss = 0.5 * theta @ a @ theta + torch.randn(n, generator=g, dtype=dtype) @ theta
    return loss, [first, second], a


def supernet(relaxation="softmax", seed=0):
    """Conv/pool/linear candidates on digits (1×8×8), batch norm inside, two Choices sharing one α."""
    torch.manual_seed(seed)

    def conv(k):
        return nn.Sequential(nn.Conv2d(4, 4, k, padding=k // 2, bias=False), nn.BatchNorm2d(4))

    shared = nn.Parameter(0.5 * torch.randn(3))
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        Choice([conv(3), conv(1), nn.MaxPool2d(3, 1, 1), nn.Identity()], relaxation, init_std=0.5),
        nn.ReLU(),
        Choice([conv(3), nn.AvgPool2d(3, 1, 1), nn.Identity()], relaxation, alpha=shared),
        Choice([conv(5), nn.MaxPool2d(3, 1, 1), nn.Identity()], relaxation, alpha=shared),
        nn.Flatten(),
        Choice([nn.Linear(256, 10), nn.Sequential(nn.Linear(256, 10), nn.Tanh())], relaxation, init_std=0.5),
    )


@pytest.fixture(scope="module")
def batch():
    train = load("digits").train
    return torch.stack([train[i][0] for i in range(64)]), torch.stack([train[i][1] for i in range(64)])


@pytest.mark.parametrize("eigenvalues", [
    [3.0, -1.0, 0.5, 2.0, 0.0, 1e-3, 7.25, -4.0, 1.0, 0.25],      # λ_max = 7.25
    [-5.0, -1.0, -0.5, -2.0, -3.0, -4.0, -6.0, -7.0],             # all negative: the largest algebraic
])
def test_quadratic_with_known_spectrum(eigenvalues):
    loss, params, a = quadratic(eigenvalues)
    h = hessian(loss, params)
    assert h.shape == a.shape and torch.allclose(h, a, atol=1e-12)
    assert dominant_eigenvalue(loss, params) == pytest.approx(max(eigenvalues), abs=1e-10)
    assert dominant_eigenvalue(loss, params) == dominant_eigenvalue(loss, params)  # seeded start: deterministic


def test_lanczos_on_a_spectrum_larger_than_its_krylov_space():
    eigenvalues = torch.linspace(-3.0, 2.0, 200).tolist()
    eigenvalues[17] = 9.5
    loss, params, _ = quadratic(eigenvalues, dtype=torch.float32)
    generator = torch.Generator().manual_seed(3)
    assert dominant_eigenvalue(loss, params, generator=generator) == pytest.approx(9.5, rel=1e-5)


def test_unused_and_linear_parameters_give_zero_curvature():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    unused = torch.ones(3, requires_grad=True)
    linear = torch.tensor(2.0, requires_grad=True)
    loss = (x ** 2).sum() + 3 * linear
    h = hessian(loss, [x, unused, linear])
    assert torch.equal(h, torch.diag(torch.tensor([2.0, 2.0, 0.0, 0.0, 0.0, 0.0])))
    assert dominant_eigenvalue(3 * linear + unused.sum(), [linear, unused]) == 0.0
    assert dominant_eigenvalue((linear - 1) ** 2, [linear]) == pytest.approx(2.0)  # one parameter


def test_arch_eigenvalue_agrees_with_the_explicit_hessian(batch):
    model = supernet()
    x, y = batch
    alphas = arch_parameters(model)
    assert sum(a.numel() for a in alphas) == 4 + 3 + 2  # the shared α counts once
    model.train()
    h = hessian(F.cross_entropy(model(x), y), alphas)
    assert torch.allclose(h, h.T, atol=1e-6)
    expected = torch.linalg.eigvalsh(h.double())[-1].item()
    model.eval()  # arch_eigenvalue switches to train mode itself, as the reference code
    lam = arch_eigenvalue(model, batch)
    assert expected > 0 and lam == pytest.approx(expected, rel=1e-4)
    assert arch_eigenvalue(model, batch, weight_decay=1e-3) == pytest.approx(expected + 1e-3, rel=1e-4)


def test_arch_eigenvalue_leaves_no_trace(batch):
    model = supernet(Gumbel(tau=1.0)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    first = arch_eigenvalue(model, batch)
    after_rng = torch.rand(3)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # running statistics too
    torch.manual_seed(5)
    assert torch.equal(torch.rand(3), after_rng)  # the Gumbel draw came from a forked RNG
    torch.manual_seed(5)
    assert arch_eigenvalue(model, batch) == pytest.approx(first, rel=1e-6)  # the same draw, the same λ
    torch.manual_seed(6)
    assert arch_eigenvalue(model, batch) != pytest.approx(first, rel=1e-3)  # another draw, another λ


def test_errors_say_what_to_do(batch):
    with pytest.raises(ValueError, match="contains no archgraph.relax.Choice"):
        arch_eigenvalue(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), batch)
    frozen = supernet()
    for alpha in arch_parameters(frozen):
        alpha.requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad=False"):
        arch_eigenvalue(frozen, batch)
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="scalar loss"):
        hessian(x ** 2, [x])
    with pytest.raises(ValueError, match="params is empty"):
        dominant_eigenvalue((x ** 2).sum(), [])
    with torch.no_grad(), pytest.raises(ValueError, match="no_grad"):
        hessian((x ** 2).sum(), [x])
