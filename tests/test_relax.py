import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archgraph.relax import (
    RELAXATIONS, Choice, Dirichlet, Gumbel, Sigmoid, Softmax, arch_parameters, as_relaxation, choices,
    concentration, weight_parameters,
)


class Scale(nn.Module):
    """x ↦ c·x with a learnable c: distinct, differentiable candidates."""

    def __init__(self, c: float):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x):
        return self.c * x


def scales(*cs):
    return [Scale(c) for c in cs]


ALL = [Softmax(), Gumbel(tau=1.0), Gumbel(tau=10.0, hard=True), Sigmoid(), Dirichlet()]


@pytest.mark.parametrize("relax", ALL, ids=repr)
def test_gradients_reach_every_alpha(relax):
    torch.manual_seed(0)
    choice = Choice(scales(1.0, 2.0, 3.0, 4.0), relax, init_std=0.5)
    loss = (choice(torch.linspace(-1, 2, 5)) - 1.0).pow(2).sum()
    loss.backward()
    assert choice.alpha.grad is not None
    assert (choice.alpha.grad != 0).all(), choice.alpha.grad


def test_soft_forward_is_the_weighted_sum():
    choice = Choice(scales(1.0, 2.0, -3.0), "softmax")
    with torch.no_grad():
        choice.alpha.copy_(torch.tensor([0.1, -0.4, 1.2]))
    x = torch.randn(4)
    w = torch.softmax(torch.tensor([0.1, -0.4, 1.2]), 0)
    torch.testing.assert_close(choice(x), (w[0] * 1 + w[1] * 2 - w[2] * 3) * x)


def test_hard_forward_equals_the_chosen_candidate_and_runs_only_it():
    calls = []
    candidates = scales(1.0, 2.0, 3.0)
    for k, c in enumerate(candidates):
        c.register_forward_hook(lambda m, i, o, k=k: calls.append(k))
    generator = torch.Generator().manual_seed(3)
    choice = Choice(candidates, Gumbel(tau=10.0, hard=True), init_std=0.5, generator=generator)
    x = torch.randn(6)
    for _ in range(20):
        state = generator.get_state()
        chosen = int(choice.weights().argmax())
        generator.set_state(state)          # the forward draws the same sample
        calls.clear()
        out = choice(x)
        assert calls == [chosen]
        torch.testing.assert_close(out, candidates[chosen](x))


@pytest.mark.parametrize("relax", ALL, ids=repr)
def test_a_fixed_choice_runs_only_its_candidate_and_blocks_alpha(relax):
    calls = []
    candidates = scales(1.0, 2.0, 3.0)
    for k, c in enumerate(candidates):
        c.register_forward_hook(lambda m, i, o, k=k: calls.append(k))
    choice = Choice(candidates, relax, init_std=0.5)
    choice.fix(2)
    x = torch.randn(5)
    out = choice(x)
    assert calls == [2]
    torch.testing.assert_close(out, 3.0 * x)
    torch.testing.assert_close(choice.probabilities(), torch.tensor([0.0, 0.0, 1.0]))
    out.sum().backward()
    assert choice.alpha.grad is None or not choice.alpha.grad.any()
    choice.fix(None)
    calls.clear()
    choice(x)
    assert calls != [2] or relax.hard


def test_masked_zeroes_weights_without_renormalising_and_skips_masked_candidates():
    calls = []
    candidates = scales(1.0, 2.0, -3.0)
    for k, c in enumerate(candidates):
        c.register_forward_hook(lambda m, i, o, k=k: calls.append(k))
    choice = Choice(candidates, "softmax")
    with torch.no_grad():
        choice.alpha.copy_(torch.tensor([0.1, -0.4, 1.2]))
    w = torch.softmax(torch.tensor([0.1, -0.4, 1.2]), 0)
    x = torch.randn(4)
    with choice.masked([1, 0, 1]):
        torch.testing.assert_close(choice.weights(), w * torch.tensor([1.0, 0.0, 1.0]))
        torch.testing.assert_close(choice(x), (w[0] * 1 - w[2] * 3) * x)
        assert calls == [0, 2]
        with choice.masked([0, 0, 0]):
            torch.testing.assert_close(choice(x), torch.zeros(4))
        assert choice.weights()[1] == 0
    torch.testing.assert_close(choice.weights(), w)   # restored on leaving the block


def test_hard_gumbel_picks_candidates_at_softmax_frequencies():
    # Gumbel-max: argmax(alpha + g) ~ Categorical(softmax(alpha)), whatever tau
    alpha = torch.tensor([0.5, -1.0, 1.5, 0.0])
    relax = Gumbel(tau=10.0, hard=True)
    generator = torch.Generator().manual_seed(0)
    n = 20000
    picks = relax.weights(alpha.expand(n, 4), generator).argmax(1)     # the last dimension is the candidates
    freq = torch.bincount(picks, minlength=4).double() / n
    torch.testing.assert_close(freq, torch.softmax(alpha.double(), 0), atol=0.015, rtol=0)


def test_soft_gumbel_has_the_distribution_of_torch_gumbel_softmax():
    alpha = torch.tensor([0.3, -0.2, 1.0])
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    ours = Gumbel(tau=0.7).weights(alpha.expand(20000, 3), generator)
    reference = F.gumbel_softmax(alpha.expand(20000, 3), tau=0.7)
    torch.testing.assert_close(ours.mean(0), reference.mean(0), atol=0.01, rtol=0)
    torch.testing.assert_close(ours.std(0), reference.std(0), atol=0.01, rtol=0)


def test_hard_gumbel_weight_is_one_with_the_soft_gradient():
    alpha = torch.tensor([0.2, 0.7, -0.3], requires_grad=True)
    generator = torch.Generator().manual_seed(5)
    w = Gumbel(tau=2.0, hard=True).weights(alpha, generator)
    assert sorted(w.tolist()) == [0.0, 0.0, 1.0]
    k = int(w.argmax())
    w[k].backward()
    generator.manual_seed(5)
    soft_alpha = alpha.detach().clone().requires_grad_()
    Gumbel(tau=2.0).weights(soft_alpha, generator)[k].backward()
    torch.testing.assert_close(alpha.grad, soft_alpha.grad)


def test_straight_through_over_all_candidates_gives_each_alpha_its_own_output():
    # estimator="all": the value is the drawn candidate's, and dL/dw_i = <dL/dout, candidate_i(x)>
    # for every i, through the soft sample's Jacobian (Jang et al. 2017, §2.2)
    calls = []
    candidates = scales(1.0, 2.0, -3.0)
    for k, c in enumerate(candidates):
        c.register_forward_hook(lambda m, i, o, k=k: calls.append(k))
    tau = 2.0
    choice = Choice(candidates, Gumbel(tau=tau, hard=True, estimator="all"), init_std=0.5,
                    generator=torch.Generator().manual_seed(7))
    x, target = torch.randn(5), torch.randn(5)
    state = choice.generator.get_state()
    chosen = int(choice.weights().argmax())
    choice.generator.set_state(state)
    out = choice(x)
    assert sorted(calls) == [0, 1, 2]
    torch.testing.assert_close(out, candidates[chosen](x))
    (out - target).pow(2).sum().backward()
    choice.generator.set_state(state)
    u = torch.rand(3, generator=choice.generator)
    soft = torch.softmax((choice.alpha.detach() - torch.log(-torch.log(u))) / tau, 0)
    dw = torch.tensor([float((2 * (out.detach() - target) * c * x).sum()) for c in (1.0, 2.0, -3.0)])
    expected = (torch.diag(soft) - torch.outer(soft, soft)) @ dw / tau   # softmax Jacobian, symmetric
    torch.testing.assert_close(choice.alpha.grad, expected)


def test_straight_through_runs_the_drawn_candidate_alone_when_alpha_needs_no_gradient():
    calls = []
    candidates = scales(1.0, 2.0, 3.0)
    for k, c in enumerate(candidates):
        c.register_forward_hook(lambda m, i, o, k=k: calls.append(k))
    choice = Choice(candidates, Gumbel(tau=10.0, hard=True, estimator="all"), init_std=0.5)
    with torch.no_grad():
        choice(torch.randn(4))
    assert len(calls) == 1
    choice.alpha.requires_grad_(False)
    calls.clear()
    choice(torch.randn(4)).sum().backward()     # a weight step: the drawn candidate's weight learns
    assert len(calls) == 1 and candidates[calls[0]].c.grad is not None
    assert repr(choice.relaxation) == "Gumbel(tau=10.0, hard=True, estimator='all')"


def test_sigmoid_weights_are_independent():
    alpha = torch.tensor([0.0, 2.0, -1.0])
    torch.testing.assert_close(Sigmoid().weights(alpha), 1 / (1 + torch.exp(-alpha)))
    torch.testing.assert_close(Sigmoid().probabilities(alpha), Sigmoid().weights(alpha))


def test_dirichlet_samples_have_the_dirichlet_mean():
    alpha = torch.tensor([1.0, -0.5, 0.0])
    beta = concentration(alpha)
    torch.testing.assert_close(beta, torch.tensor([2.0, math.exp(-0.5), 1.0]))
    torch.manual_seed(0)
    samples = Dirichlet().weights(alpha.expand(20000, 3))
    torch.testing.assert_close(samples.sum(1), torch.ones(20000))
    torch.testing.assert_close(samples.mean(0), beta / beta.sum(), atol=0.01, rtol=0)
    torch.testing.assert_close(Dirichlet().probabilities(alpha), torch.softmax(alpha, 0))


def test_shared_alpha_is_counted_once():
    alpha = nn.Parameter(torch.zeros(2))
    net = nn.Sequential(Choice(scales(1.0, 2.0), alpha=alpha), nn.Linear(3, 3), Choice(scales(3.0, 4.0), alpha=alpha))
    assert choices(net) == [net[0], net[2]]
    assert arch_parameters(net) == [alpha]
    assert len(weight_parameters(net)) == 4 + 2     # four scales, weight and bias
    assert {id(p) for p in weight_parameters(net)}.isdisjoint({id(alpha)})


def test_choice_init_and_repr():
    generator = torch.Generator().manual_seed(0)
    choice = Choice(scales(1.0, 2.0, 3.0), "gumbel", init_std=0.5, generator=generator)
    torch.testing.assert_close(choice.alpha.detach(), torch.randn(3, generator=torch.Generator().manual_seed(0)) * 0.5)
    assert len(choice) == 3
    assert "candidates=3, relaxation=Gumbel(tau=1.0, hard=False)" in repr(choice)


def test_fix_and_mask_refuse_bad_input():
    choice = Choice(scales(1.0, 2.0))
    with pytest.raises(ValueError, match=r"candidate index in \[0, 1\] or None; got 2"):
        choice.fix(2)
    with pytest.raises(ValueError, match="mask has 3 entries, the Choice 2 candidates"):
        with choice.masked([1, 0, 1]):
            pass
    choice.fix(0)
    assert "fixed=0" in repr(choice)


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="at least one candidate"):
        Choice([])
    with pytest.raises(ValueError, match=r"expected shape \(2,\)"):
        Choice(scales(1.0, 2.0), alpha=nn.Parameter(torch.zeros(3)))
    with pytest.raises(ValueError, match="unknown relaxation 'gdas'; known: softmax, gumbel"):
        as_relaxation("gdas")
    with pytest.raises(ValueError, match="must be positive"):
        Gumbel(tau=0.0)
    with pytest.raises(ValueError, match="estimator is 'sampled'"):
        Gumbel(tau=1.0, hard=True, estimator="every")
    assert set(RELAXATIONS) == {"softmax", "gumbel", "sigmoid", "dirichlet"}
