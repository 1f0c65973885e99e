from fractions import Fraction

import pytest
import torch
from torch import nn

from archgraph.oneshot import MaxNorm
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
