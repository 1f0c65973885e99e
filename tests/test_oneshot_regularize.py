import math
from fractions import Fraction

import pytest
import torch
from scipy.special import digamma, polygamma
from torch import nn
from torch.utils.data import Subset

from archgraph.data import load
from archgraph.errors import ShapeError
from archgraph.oneshot import MaxNorm, train_bilevel
from archgraph.oneshot.regularize import Cutout, DirichletKL, ZeroOneLoss
from archgraph.relax import Choice, Sigmoid


def chain(widths, relaxation="softmax", seed=0):
    """A toy chain of Choices over parameter-free candidates, alpha drawn from N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    candidates = [nn.Identity(), nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Softsign()]
    return nn.Sequential(*(Choice(candidates[:w], relaxation, init_std=1.0, generator=g) for w in widths))


def test_cell_independent_schedule_is_linear_from_start_to_end():
    reg = MaxNorm(50)  # FaDE Fig. 2a: r from 1 to -1 over 50 epochs
    assert reg.coefficients(0, rows=3) == [1.0, 1.0, 1.0]
    assert reg.coefficients(49, rows=3) == [-1.0, -1.0, -1.0]
    for epoch in (1, 10, 24, 37):
        expected = float(1 - Fraction(2 * epoch, 49))
        assert reg.coefficients(epoch, rows=3) == pytest.approx([expected] * 3, abs=1e-15)
    assert reg.coefficients(60, rows=1) == [-1.0]  # past the schedule: end


def test_cell_dependent_rows_reach_end_at_their_own_epoch():
    reg = MaxNorm(50, start=1.0, end=-1.0, cell_dependent=True)
    # row i reaches end at t_i = 49 (i + 1) / 4: 12.25, 24.5, 36.75, 49
    ends = [Fraction(49 * (i + 1), 4) for i in range(4)]

    def expected(epoch):
        return [float(1 - 2 * min(Fraction(1), Fraction(epoch) / t)) for t in ends]

    for epoch in (0, 5, 12, 13, 24, 25, 36, 40, 49):
        assert reg.coefficients(epoch, rows=4) == pytest.approx(expected(epoch), abs=1e-15)
    assert reg.coefficients(13, rows=4)[0] == -1.0 and reg.coefficients(12, rows=4)[0] > -1.0
    assert reg.coefficients(49, rows=4) == [-1.0] * 4
    # shallower rows are regularised earlier: at every epoch r_0 <= r_1 <= ... (FaDE §2.2)
    for epoch in range(50):
        r = reg.coefficients(epoch, rows=4)
        assert r == sorted(r)


def test_one_row_cell_dependent_equals_cell_independent():
    for epoch in range(10):
        assert MaxNorm(10, cell_dependent=True).coefficients(epoch, rows=1) == MaxNorm(10).coefficients(epoch, rows=1)


def test_custom_range_and_single_epoch():
    assert MaxNorm(3, start=0.5, end=0.0).coefficients(1, rows=2) == [0.25, 0.25]
    assert MaxNorm(1).coefficients(0, rows=2) == [1.0, 1.0]


def test_value_is_weighted_sum_of_row_maxima():
    model = chain([3, 4, 2])
    reg = MaxNorm(10, cell_dependent=True)
    r = reg.coefficients(4, rows=3)
    expected = sum(r_i * max(torch.softmax(c.alpha.detach(), 0).tolist()) for r_i, c in zip(r, model))
    assert reg(model, 4).item() == pytest.approx(expected, rel=1e-6)


def test_gradient_matches_the_softmax_derivative():
    model = chain([3, 4, 2], seed=1)
    reg = MaxNorm(10, cell_dependent=True)
    r = reg.coefficients(3, rows=3)
    reg(model, 3).backward()
    for r_i, choice in zip(r, model):
        # d max_k p_k / d alpha_j = p_m (δ_mj - p_j), m = the argmax (independent of autograd)
        p = torch.softmax(choice.alpha.detach().double(), 0)
        m = int(p.argmax())
        expected = r_i * p[m] * (torch.eye(len(p), dtype=torch.float64)[m] - p)
        assert torch.allclose(choice.alpha.grad.double(), expected, atol=1e-7)


def test_sigmoid_rows_use_their_own_probabilities():
    model = chain([3, 3], relaxation=Sigmoid(), seed=2)
    reg = MaxNorm(5)
    value = reg(model, 0)
    assert value.item() == pytest.approx(sum(torch.sigmoid(c.alpha.detach()).max().item() for c in model), rel=1e-6)
    value.backward()
    for choice in model:
        s = torch.sigmoid(choice.alpha.detach())
        m = int(s.argmax())
        expected = torch.zeros_like(s)
        expected[m] = s[m] * (1 - s[m])
        assert torch.allclose(choice.alpha.grad, expected, atol=1e-7)


def test_choices_sharing_alpha_count_once():
    shared = nn.Parameter(torch.tensor([0.0, 1.0]))
    model = nn.Sequential(Choice([nn.Identity(), nn.ReLU()], alpha=shared), Choice([nn.Tanh(), nn.ReLU()], alpha=shared))
    assert MaxNorm(3)(model, 0).item() == pytest.approx(torch.softmax(shared.detach(), 0).max().item())


def test_errors_say_what_to_do():
    with pytest.raises(ValueError, match="at least 1"):
        MaxNorm(0)
    with pytest.raises(ValueError, match="pass rows="):
        MaxNorm(5).coefficients(0)
    with pytest.raises(ValueError, match="made for 3 rows, asked for 2"):
        MaxNorm(5, rows=3)(chain([2, 2]), 0)
    with pytest.raises(ValueError, match="has none"):
        MaxNorm(5)(nn.Linear(2, 2), 0)
    with pytest.raises(ValueError, match="count from 0"):
        MaxNorm(5).coefficients(-1, rows=1)


def test_rows_given_up_front_and_repr():
    reg = MaxNorm(5, cell_dependent=True, rows=2)
    assert reg.coefficients(2) == [-1.0, 0.0]
    assert repr(reg) == "MaxNorm(epochs=5, start=1.0, end=-1.0, cell_dependent=True, rows=2)"


# --- FairDARTS' zero-one loss, DrNAS' Dirichlet KL, the α L2 -----------------------------------------------------

def sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


def test_zero_one_loss_is_the_mean_over_every_alpha_entry():
    shared = nn.Parameter(torch.tensor([0.3, -2.0]))
    model = nn.Sequential(chain([3, 4], relaxation=Sigmoid(), seed=4),
                          Choice([nn.Identity(), nn.ReLU()], Sigmoid(), alpha=shared),
                          Choice([nn.Tanh(), nn.ReLU()], Sigmoid(), alpha=shared))
    entries = [a for c in (*model[0], model[1]) for a in c.alpha.tolist()]  # 3 + 4 + 2: the shared α once
    value = ZeroOneLoss(weight=10.0)(model, 0)
    assert value.item() == pytest.approx(-10.0 * sum((sigmoid(a) - 0.5) ** 2 for a in entries) / 9, rel=1e-6)
    value.backward()
    for choice in (*model[0], model[1]):
        # d/dα_j of −w/N Σ (σ − ½)² = −w/N · 2 (σ_j − ½) σ_j (1 − σ_j)
        expected = [-10.0 / 9 * 2 * (sigmoid(a) - 0.5) * sigmoid(a) * (1 - sigmoid(a)) for a in choice.alpha.tolist()]
        assert choice.alpha.grad.tolist() == pytest.approx(expected, rel=1e-5)


def dirichlet_kl(beta, prior):
    """KL(Dir(β) ‖ Dir(prior · 1)) by its closed form, and its gradient in β."""
    b = [prior] * len(beta)
    b0, beta0 = sum(b), sum(beta)
    value = (math.lgamma(beta0) - sum(map(math.lgamma, beta)) - math.lgamma(b0) + sum(map(math.lgamma, b))
             + sum((x - y) * (digamma(x) - digamma(beta0)) for x, y in zip(beta, b)))
    gradient = [(x - y) * polygamma(1, x) - polygamma(1, beta0) * (beta0 - b0) for x, y in zip(beta, b)]
    return value, gradient


@pytest.mark.parametrize("prior", [1.0, 2.5])
def test_dirichlet_kl_matches_the_closed_form(prior):
    model = chain([3, 5], relaxation="dirichlet", seed=6)
    reg = DirichletKL(prior=prior, weight=0.1)
    value = reg(model, 0)
    expected, grads = 0.0, []
    for choice in model:
        alpha = choice.alpha.tolist()
        beta = [a + 1.0 if a > 0 else math.exp(a) for a in alpha]  # elu(α) + 1
        kl, d_beta = dirichlet_kl(beta, prior)
        expected += kl
        grads.append([g * (1.0 if a > 0 else math.exp(a)) for g, a in zip(d_beta, alpha)])
    assert value.item() == pytest.approx(0.1 * expected, rel=1e-5)
    value.backward()
    for choice, grad in zip(model, grads):
        assert choice.alpha.grad.tolist() == pytest.approx([0.1 * g for g in grad], rel=1e-4, abs=1e-7)


def test_relaxation_specific_regularisers_refuse_other_relaxations():
    with pytest.raises(TypeError, match="ZeroOneLoss.*Sigmoid relaxation.*Softmax.*relaxation='sigmoid'"):
        ZeroOneLoss()(chain([2, 3]), 0)
    with pytest.raises(TypeError, match="DirichletKL.*Dirichlet relaxation.*Sigmoid.*relaxation='dirichlet'"):
        DirichletKL()(chain([2], relaxation=Sigmoid()), 0)
    with pytest.raises(ValueError, match="Linear has none"):
        ZeroOneLoss()(nn.Linear(2, 2), 0)
    with pytest.raises(ValueError, match="positive number; got 0"):
        DirichletKL(prior=0)
    assert repr(ZeroOneLoss()) == "ZeroOneLoss(weight=10.0)"
    assert repr(DirichletKL()) == "DirichletKL(prior=1.0, weight=0.001)"


def test_drnas_alpha_l2_is_the_arch_weight_decay():
    """DrNAS' default L2 on α (factor λ) is Adam's weight decay: the same steps as adding λ/2 · ‖α‖²."""
    task = load("digits")
    weight, arch = Subset(task.train, range(300)), Subset(task.train, range(300, 500))

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), Choice([nn.Linear(64, 10), nn.Sequential(nn.Linear(64, 10), nn.ReLU())],
                                                  init_std=1.0))

    settings = {"epochs": 1, "batch_size": 50, "arch_lr": 0.05, "progress": False}
    decayed, penalised = model(), model()
    train_bilevel(decayed, weight, arch, arch_weight_decay=0.5, **settings)
    train_bilevel(penalised, weight, arch, regularizer=lambda m, e: 0.25 * (m[1].alpha ** 2).sum(), **settings)
    assert torch.allclose(decayed[1].alpha, penalised[1].alpha, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(decayed[1].alpha, model()[1].alpha, atol=1e-3)


# --- Cutout ---------------------------------------------------------------------------------------------------

def runs(mask):
    """The indices where a 1-D boolean tensor is True, checked to be one contiguous run."""
    where = mask.nonzero().flatten().tolist()
    assert where == list(range(where[0], where[0] + len(where)))
    return where


@pytest.mark.parametrize("length", [4, 5])
def test_cutout_cuts_clipped_squares_with_the_given_probability(length):
    x = torch.rand(3000, 2, 12, 12) + 1.0  # no zeros of its own
    cut = Cutout(length=length, prob=0.3)(x, generator=torch.Generator().manual_seed(0))
    assert cut.shape == x.shape and (x >= 1).all()  # a new tensor; x is left alone
    zero = cut == 0
    assert torch.equal(zero[:, 0], zero[:, 1])  # the same square in every channel
    assert torch.equal(cut[~zero], x[~zero])  # only the square changes
    hit = zero.flatten(1).any(dim=1)
    assert abs(hit.float().mean().item() - 0.3) < 0.04  # binomial(3000, 0.3): sd 0.0084
    inner = 0
    for image in zero[hit, 0]:
        rows, cols = runs(image.any(dim=1)), runs(image.any(dim=0))
        assert int(image.sum()) == len(rows) * len(cols)  # a rectangle ...
        for run in (rows, cols):  # ... whose sides are `length`, shorter only where clipped at the border
            assert len(run) == length or (len(run) < length and (run[0] == 0 or run[-1] == 11))
        inner += len(rows) == len(cols) == length
    assert inner > 0.3 * int(hit.sum())


def test_cutout_probability_schedule_seed_and_errors():
    cutout = Cutout(length=16, prob=0.8)
    assert [cutout.probability(e, 5) for e in range(5)] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert cutout.probability(0, 1) == 0.0
    x = torch.ones(64, 3, 32, 32)
    assert torch.equal(cutout(x, prob=0.0), x) and not cutout(x, prob=1.0).all(dim=(1, 2, 3)).any()
    first, again = (cutout(x, generator=torch.Generator().manual_seed(7)) for _ in range(2))
    assert torch.equal(first, again)
    assert repr(cutout) == "Cutout(length=16, prob=0.8)"
    with pytest.raises(ValueError, match="at least 1; got 0"):
        Cutout(length=0)
    with pytest.raises(ValueError, match=r"in \[0, 1\]; got 1.5"):
        Cutout(prob=1.5)
    with pytest.raises(ShapeError, match=r"got shape \(4, 3\)"):
        cutout(torch.ones(4, 3))


def test_cutout_of_signals_zeroes_one_clipped_segment_in_every_channel():
    x = torch.rand(2000, 3, 20) + 1.0
    cut = Cutout(length=6, prob=0.5, dim=1)(x, generator=torch.Generator().manual_seed(0))
    zero = cut == 0
    assert cut.shape == x.shape and torch.equal(zero[:, 0], zero[:, 2]) and torch.equal(cut[~zero], x[~zero])
    hit = zero[:, 0].any(dim=1)
    assert abs(hit.float().mean().item() - 0.5) < 0.04  # binomial(2000, 0.5): sd 0.011
    lengths = [len(runs(segment)) for segment in zero[hit, 0]]
    assert max(lengths) == 6 and all(0 < n <= 6 for n in lengths)
    clipped = [s for s, n in zip(zero[hit, 0], lengths) if n < 6]
    assert all(s[0] or s[-1] for s in clipped)  # shorter only at the border
    assert repr(Cutout(length=6, dim=1)) == "Cutout(length=6, prob=1.0, dim=1)"
    with pytest.raises(ValueError, match="dim is 2 .* or 1"):
        Cutout(dim=3)
