"""Tests of archgraph.oneshot.dscd: the Beta proposal, the schedule, acceptance, switching, resuming."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import torch
from scipy import stats

from archgraph.oneshot.dscd import DSCD, beta_parameters, cosine_concentration, propose


def scripted(params, losses):
    """A closure returning the next of ``losses`` as a loss that depends on ``params`` (zero gradient),
    and the list of the parameters' values it saw at each call."""
    values, seen = iter(losses), []

    def closure():
        seen.append(torch.cat([p.detach().flatten() for p in params]).clone())
        return sum((p * 0).sum() for p in params) + next(values)

    return closure, seen


def styblinski_tang(x):
    return 0.5 * (x**4 - 16 * x**2 + 5 * x).sum()


@pytest.mark.parametrize("phi", [0.0, 0.3, 0.7, 0.95, 0.999])
@pytest.mark.parametrize("v", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_beta_parameters_give_the_mean_and_std_of_appendix_c(v, phi):
    a, b = beta_parameters(v, phi)
    mean, var = stats.beta(a, b).stats(moments="mv")
    assert a > 0 and b > 0
    assert math.isclose(mean, phi * v + (1 - phi) * 0.5, rel_tol=1e-9)
    assert math.isclose(math.sqrt(var), (1 - phi) / math.sqrt(12), rel_tol=1e-9)


@pytest.mark.parametrize("phi", [0.2, 0.6, 0.9])
def test_proposals_have_mu_and_sigma_mapped_onto_the_domain(phi):
    lo, hi = -2.0, 4.0
    x = 2.5                                                    # unit position v = 0.75
    u = propose(np.full(40_000, x), phi, bounds=(lo, hi), rng=np.random.default_rng(1))
    mu, sigma = phi * 0.75 + (1 - phi) * 0.5, (1 - phi) / math.sqrt(12)
    assert lo <= u.min() and u.max() <= hi
    assert abs(u.mean() - (lo + (hi - lo) * mu)) < 4 * (hi - lo) * sigma / math.sqrt(len(u))
    assert u.std() == pytest.approx((hi - lo) * sigma, rel=0.02)


def test_phi_zero_is_uniform_on_the_domain_wherever_the_coordinate_is():
    assert beta_parameters(0.9, 0.0) == pytest.approx((1.0, 1.0))
    for x in (-3.0, 0.4, 7.0):                                 # 7.0: outside the domain, clipped
        u = propose(np.full(20_000, x), 0.0, bounds=(-3.0, 3.0), rng=np.random.default_rng(2))
        assert stats.kstest(u, stats.uniform(-3.0, 6.0).cdf).pvalue > 0.01


def test_cosine_schedule_runs_from_uniform_to_dirac():
    phis = [cosine_concentration(t, 200) for t in range(0, 260, 10)]
    assert phis[0] == 0.0 and phis[20] == 1.0 and phis[-1] == 1.0
    assert phis[10] == pytest.approx(0.5)
    assert all(p <= q for p, q in pairwise(phis))
    assert phis[1] < 0.01 and phis[19] > 0.99                  # slow at both ends
    rng = np.random.default_rng(0)
    assert propose(np.array([1.25, -4.0]), 1.0, rng=rng).tolist() == [1.25, -3.0]  # Dirac at the (clipped) value
    x = torch.nn.Parameter(torch.zeros(1))
    dscd = DSCD([x], total_steps=4)
    assert dscd.phi == 0.0


def test_a_proposal_worse_than_the_best_of_the_last_k_steps_is_rejected():
    x = torch.nn.Parameter(torch.tensor([0.5, -0.5]))
    # T = 1: local 1.0 (a record), local 2.0 (none: switch to global), then a global proposal at 1.5:
    # better than the last step's 2.0 but not than the best of the last K = 1000 steps
    closure, seen = scripted([x], [1.0, 2.0, 1.5])
    dscd = DSCD([x], torch.optim.SGD([x], lr=0.1), total_steps=100, T=1, generator=np.random.default_rng(0))
    dscd.step(closure)
    dscd.step(closure)
    assert dscd.phase == "global" and dscd.best == 1.0
    assert float(dscd.step(closure)) == 1.5
    assert (seen[2] != x.detach()).sum() == 1                  # one coordinate was proposed ...
    assert torch.equal(x.detach(), seen[1])                    # ... and put back
    assert dscd.best == 1.0


def test_a_proposal_better_than_the_window_is_kept_and_k_bounds_the_window():
    x = torch.nn.Parameter(torch.tensor([0.5, -0.5]))
    # K = 1: the window is the previous step alone, so 1.5 beats the 2.0 before it
    closure, seen = scripted([x], [1.0, 2.0, 1.5])
    dscd = DSCD([x], torch.optim.SGD([x], lr=0.1), total_steps=100, T=1, K=1, generator=np.random.default_rng(0))
    for _ in range(3):
        dscd.step(closure)
    assert torch.equal(x.detach(), seen[2]) and not torch.equal(seen[2], seen[1])
    assert dscd.phase == "global" and dscd.best == 1.5         # accepted = improved: the global phase goes on


def test_the_phase_switches_after_t_steps_without_improvement():
    x = torch.nn.Parameter(torch.zeros(3))
    losses = [5.0, 4.0, 4.0, 4.0, 4.0,                         # local: records, then 3 ties
              9.0, 3.0, 9.0, 9.0, 9.0,                         # global: a reject, an accept, 3 rejects
              8.0, 2.0]                                        # local again
    closure, _ = scripted([x], losses)
    dscd = DSCD([x], torch.optim.SGD([x], lr=0.1), total_steps=100, T=3, generator=np.random.default_rng(0))
    phases = []
    for _ in losses:
        phases.append(dscd.phase)
        dscd.step(closure)
    assert phases == ["local"] * 5 + ["global"] * 5 + ["local"] * 2
    assert dscd.best == 2.0


def test_global_steps_propose_one_entry_of_any_parameter():
    a = torch.nn.Parameter(torch.zeros(2, 3))
    b = torch.nn.Parameter(torch.zeros(2, 2).t())  # not contiguous
    closure, seen = scripted([a, b], [0.0] + [1.0] * 400)       # T = 1: local, then global rejects and locals alternate
    dscd = DSCD([a, b], torch.optim.SGD([a, b], lr=0.0), total_steps=10**6, T=1, generator=np.random.default_rng(0))
    for _ in range(401):
        dscd.step(closure)
    changed = [torch.nonzero(s).flatten().tolist() for s in seen]
    proposals = [c for c in changed if c]
    assert all(len(c) == 1 for c in proposals) and len(proposals) == 200
    assert sorted({c[0] for c in proposals}) == list(range(10))
    assert torch.equal(a, torch.zeros(2, 3)) and torch.equal(b, torch.zeros(2, 2))


def _styblinski_tang_run(dscd: bool, steps: int = 600, seed: int = 0) -> torch.Tensor:
    # float32: Adam's loss stops setting records once it reaches float32 resolution, which ends
    # its local phase (in float64 it shaves digits for twice as long)
    x = torch.nn.Parameter(torch.tensor([2.5, 2.0]))          # basin of the local minimum 2.7468
    adam = torch.optim.Adam([x], lr=0.05)
    optimiser = DSCD([x], adam, total_steps=steps, bounds=(-5.0, 5.0), generator=np.random.default_rng(seed))
    for _ in range(steps):
        if dscd:
            optimiser.step(lambda: styblinski_tang(x))
        else:
            adam.zero_grad()
            styblinski_tang(x).backward()
            adam.step()
    return x.detach()


def test_adam_stays_in_the_local_minimum_while_adam_with_dscd_finds_the_global_one():
    local, found = _styblinski_tang_run(dscd=False), _styblinski_tang_run(dscd=True)
    assert local.tolist() == pytest.approx([2.7468, 2.7468], abs=1e-3)
    assert float(styblinski_tang(local)) == pytest.approx(-50.06, abs=0.01)
    assert found.tolist() == pytest.approx([-2.9035, -2.9035], abs=1e-3)
    assert float(styblinski_tang(found)) == pytest.approx(-39.16617 * 2, abs=1e-3)
    assert torch.equal(found, _styblinski_tang_run(dscd=True))  # seeded: deterministic


def test_a_torch_generator_seeds_it_reproducibly():
    def run():
        x = torch.nn.Parameter(torch.tensor([0.9]))
        dscd = DSCD([x], torch.optim.Adam([x], lr=0.05), total_steps=200, T=10,
                    generator=torch.Generator().manual_seed(3))
        return [float(dscd.step(lambda: ((x**2 - 1) ** 2 + 0.7 * x).sum())) for _ in range(200)]

    assert run() == run()


def test_state_dict_resumes_the_run_exactly():
    def fresh(seed=7):
        x = torch.nn.Parameter(torch.tensor([2.5, 2.0], dtype=torch.float64))
        return x, DSCD([x], torch.optim.Adam([x], lr=0.05), total_steps=300, bounds=(-5.0, 5.0), T=20,
                       generator=np.random.default_rng(seed))

    x, whole = fresh()
    expected = [float(whole.step(lambda: styblinski_tang(x))) for _ in range(300)]
    y, first = fresh()
    got = [float(first.step(lambda: styblinski_tang(y))) for _ in range(150)]
    state, values = first.state_dict(), y.detach().clone()
    z, resumed = fresh(seed=99)                                # the RNG state must come from the state_dict
    with torch.no_grad():
        z.copy_(values)
    resumed.load_state_dict(state)
    got += [float(resumed.step(lambda: styblinski_tang(z))) for _ in range(150)]
    assert got == expected and torch.equal(z, x)


def test_bad_input_is_refused_with_a_clear_message():
    x = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="lo < hi"):
        DSCD([x], total_steps=10, bounds=(3.0, -3.0))
    with pytest.raises(ValueError, match="T must be an int of at least 1"):
        DSCD([x], total_steps=10, T=0)
    with pytest.raises(ValueError, match="total_steps"):
        DSCD([x], total_steps=0)
    with pytest.raises(ValueError, match="does not update params"):
        DSCD([x], torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))]), total_steps=10)
    with pytest.raises(TypeError, match="generator"):
        DSCD([x], total_steps=10, generator=0)
    with pytest.raises(TypeError, match="requires_grad"):
        DSCD([torch.zeros(2)], total_steps=10)
    with pytest.raises(ValueError, match="no parameters"):
        DSCD([], total_steps=10)
    with pytest.raises(ValueError, match="scalar"):
        DSCD([x], total_steps=10).step(lambda: x**2)
    dscd = DSCD([x], total_steps=10, T=1)
    dscd.step(lambda: x.sum())
    dscd.step(lambda: x.sum() + 1)
    assert dscd.phase == "global"
    with pytest.raises(ValueError, match="scalar"):
        dscd.step(lambda: x**2)                                # refused in a global step too
    with pytest.raises(ValueError, match="no grad_fn"):
        DSCD([x], total_steps=10).step(lambda: torch.tensor(1.0))
    with pytest.raises(ValueError, match="state_dict"):
        dscd.load_state_dict({"step": 3})


def test_tol_makes_tiny_improvements_count_as_none_for_switching():
    phases = {}
    for tol in (0.0, 1e-3):
        z = torch.nn.Parameter(torch.zeros(1))
        losses = iter([10.0, 9.999, 9.998])          # creeping down by 1e-4 relative per step
        dscd = DSCD([z], total_steps=10, T=2, tol=tol)
        for _ in range(3):
            dscd.step(lambda: z.sum() * 0 + next(losses))
        phases[tol] = dscd.phase
    assert phases == {0.0: "local", 1e-3: "global"}
