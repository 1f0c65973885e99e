import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.utils.data import TensorDataset

from archgraph.data import fade_split, load
from archgraph.errors import ShapeError
from archgraph.oneshot import BilevelResult, MaxNorm, steps, train_bilevel
from archgraph.oneshot.regularize import Cutout
from archgraph.oneshot.steps import _ArchMeter, _FirstOrderStep, _SecondOrderStep
from archgraph.plot import draw_row_probabilities
from archgraph.relax import Choice, Gumbel, arch_parameters, weight_parameters
from archgraph.train import evaluate


class Zero(nn.Module):
    """A candidate that knows nothing: constant zero logits."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.classes = classes

    def forward(self, x):
        return x.new_zeros(len(x), self.classes)


@pytest.fixture(scope="module")
def digits():
    """FaDE's 1-1-4 split of digits: (test, arch, weight)."""
    return fade_split(load("digits").train, seed=0)


def linear_or_zero(relaxation="softmax", seed=0):
    torch.manual_seed(seed)
    choice = Choice([nn.Linear(64, 10), Zero()], relaxation)
    with torch.no_grad():
        choice.alpha.zero_()
    return nn.Sequential(nn.Flatten(), choice)


def two_rows(relaxation="softmax", seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(),
        Choice([nn.Linear(64, 32), nn.Sequential(nn.Linear(64, 32), nn.ReLU())], relaxation, init_std=0.5),
        Choice([nn.Linear(32, 10), nn.Sequential(nn.Linear(32, 10), nn.Tanh()), Zero()], relaxation, init_std=0.5),
    )


def flat(data):
    """``data`` with flattened samples, for the candidates that follow the Flatten."""
    x = torch.stack([data[i][0].flatten() for i in range(len(data))])
    return TensorDataset(x, torch.stack([data[i][1] for i in range(len(data))]))


def without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize("relaxation", ["softmax", Gumbel(tau=1.0, hard=True)])
def test_alpha_moves_to_the_better_candidate(digits, relaxation):
    test, arch, weight = digits
    model = linear_or_zero(relaxation)
    result = train_bilevel(model, weight, arch, epochs=4, batch_size=64, lr=1e-2, arch_lr=0.05, progress=False)
    p_linear = [row["alpha"][0][0] for row in result.history]
    assert p_linear == sorted(p_linear) and p_linear[-1] > 0.95  # the Linear layer beats constant zero logits
    assert result.history[-1]["arch_accuracy"] > result.history[0]["arch_accuracy"] + 0.3
    assert result.alphas[0].tolist() == result.history[-1]["alpha"][0]
    assert evaluate(model[1].candidates[0], flat(test))["accuracy"] > 0.85  # and the preferred path is good


def test_same_seed_same_run_and_caller_rng_untouched(digits):
    _, arch, weight = digits
    runs = []
    for _ in range(2):
        model = two_rows(Gumbel(tau=10.0, hard=True))  # the FaDE setting: noise on every forward
        torch.manual_seed(123)
        result = train_bilevel(model, weight, arch, epochs=2, batch_size=64, regularizer=MaxNorm(2),
                               val_data=digits[0], seed=7, progress=False)
        runs.append((result, model.state_dict(), torch.rand(3)))
    (a, state_a, after_a), (b, state_b, after_b) = runs
    assert without_seconds(a.history) == without_seconds(b.history)
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    torch.manual_seed(123)
    assert torch.equal(after_a, torch.rand(3)) and torch.equal(after_a, after_b)  # the caller's RNG is restored

    other = two_rows(Gumbel(tau=10.0, hard=True))
    c = train_bilevel(other, weight, arch, epochs=2, batch_size=64, seed=8, progress=False)
    assert c.history[-1]["alpha"] != a.history[-1]["alpha"]


def test_history_rows(digits):
    test, arch, weight = digits
    model = two_rows()
    reg = MaxNorm(3, cell_dependent=True)
    result = train_bilevel(model, weight, arch, epochs=3, batch_size=128, regularizer=reg, val_data=test,
                           progress=False)
    assert isinstance(result, BilevelResult) and not result.stopped_early
    assert json.loads(json.dumps(result.history)) == result.history  # JSON-serialisable as it is
    assert [row["epoch"] for row in result.history] == [0, 1, 2]
    assert set(result.history[0]) == {
        "epoch", "lr", "train_loss", "train_accuracy", "arch_loss", "arch_accuracy", "arch_penalty", "coefficients",
        "tau", "drop_path_prob", "val_loss", "val_accuracy", "alpha", "seconds",
    }
    for row in result.history:
        assert [len(p) for p in row["alpha"]] == [2, 3]
        assert all(sum(p) == pytest.approx(1.0) for p in row["alpha"])
        assert row["coefficients"] == reg.coefficients(row["epoch"], rows=2)
        assert row["tau"] is None and row["drop_path_prob"] is None and row["seconds"] > 0
        assert 0 <= row["train_accuracy"] <= 1 and 0 <= row["arch_accuracy"] <= 1
    assert result.history[0]["coefficients"] == [1.0, 1.0] and result.history[-1]["coefficients"] == [-1.0, -1.0]
    last = result.history[-1]
    assert last["alpha"] == [c.probabilities().tolist() for c in (model[1], model[2])]
    assert [a.tolist() for a in result.alphas] == last["alpha"]
    metrics = evaluate(model, test, batch_size=128)  # soft Choices: the plain forward is deterministic
    assert (last["val_loss"], last["val_accuracy"]) == (metrics["loss"], metrics["accuracy"])
    fig = draw_row_probabilities(result.history)  # FaDE Fig. 4 straight from the history
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 3


def test_penalty_is_the_mean_regulariser_value_and_sees_every_epoch(digits):
    _, arch, weight = digits
    calls = []

    def regularizer(model, epoch):
        calls.append(epoch)
        return torch.tensor(float(epoch + 1)) + 0 * model[1].alpha.sum()

    result = train_bilevel(two_rows(), weight, arch, epochs=2, batch_size=100, regularizer=regularizer,
                           progress=False)
    steps = -(-len(weight) // 100)  # one α step per weight batch
    assert calls == [0] * steps + [1] * steps
    assert [row["arch_penalty"] for row in result.history] == [1.0, 2.0]
    assert [row["coefficients"] for row in result.history] == [None, None]


def test_regulariser_steers_alpha(digits):
    _, arch, weight = digits
    model = linear_or_zero()

    def reward_zero(model, epoch):  # strongly rewards the useless candidate
        return -100.0 * model[1].probabilities()[1]

    settings = {"epochs": 1, "batch_size": 64, "lr": 1e-2, "arch_lr": 0.1, "progress": False}
    train_bilevel(model, weight, arch, regularizer=reward_zero, **settings)
    assert model[1].probabilities()[1] > 0.9
    unregularised = linear_or_zero()
    train_bilevel(unregularised, weight, arch, **settings)
    assert unregularised[1].probabilities()[1] < 0.2


class Spy(nn.Module):
    """Records, in training mode, which split each batch came from (feature 64 is its tag)."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def forward(self, x):
        if self.training:
            self.log.append((int(x[0, 64]), len(x)))
        return x[:, :64]


def tagged(data, tag):
    x, y = flat(data).tensors
    return TensorDataset(torch.cat([x, torch.full((len(x), 1), float(tag))], dim=1), y)


def test_alpha_step_on_arch_batch_then_weight_step(digits):
    _, arch, weight = digits
    log = []
    model = nn.Sequential(Spy(log), Choice([nn.Linear(64, 10), Zero()]))
    weight_data, arch_data = tagged(weight, 0), tagged(arch, 1)
    train_bilevel(model, weight_data, arch_data, epochs=2, batch_size=100, val_data=weight_data, progress=False)
    steps = -(-len(weight) // 100)
    assert [tag for tag, _ in log] == [1, 0] * (2 * steps)  # DARTS Alg. 1: α step, then ω step
    weight_sizes = [n for tag, n in log if tag == 0]
    assert weight_sizes == ([100] * (steps - 1) + [len(weight) % 100]) * 2  # an epoch = one pass over weight_data
    arch_sizes = [n for tag, n in log if tag == 1]
    per_pass = [100] * (len(arch) // 100) + [len(arch) % 100]
    assert arch_sizes == (per_pass * 10)[: 2 * steps]  # arch_data is cycled


def test_weight_steps_run_with_alpha_frozen_so_straight_through_runs_all_candidates_only_in_alpha_steps(digits):
    _, arch, weight = digits
    log, ran = [], []
    candidates = [nn.Linear(64, 10), nn.Sequential(nn.Linear(64, 10), nn.Tanh()), Zero()]
    for k, c in enumerate(candidates):
        c.register_forward_hook(lambda m, i, o, k=k: ran.append((log[-1][0], k)))
    choice = Choice(candidates, Gumbel(tau=10.0, hard=True, estimator="all"), init_std=0.5)
    model = nn.Sequential(Spy(log), choice)
    train_bilevel(model, tagged(weight, 0), tagged(arch, 1), epochs=1, batch_size=100, progress=False)
    steps = -(-len(weight) // 100)
    assert sorted(k for tag, k in ran if tag == 1) == sorted([0, 1, 2] * steps)  # α steps: every candidate
    assert len([k for tag, k in ran if tag == 0]) == steps  # weight steps: the drawn one
    assert choice.alpha.requires_grad and choice.alpha.grad is not None


def test_each_optimiser_moves_only_its_parameters(digits):
    _, arch, weight = digits
    model = two_rows()
    alpha0 = [p.detach().clone() for p in arch_parameters(model)]
    weights0 = [p.detach().clone() for p in weight_parameters(model)]
    train_bilevel(model, weight, arch, epochs=1, arch_lr=0.0, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(arch_parameters(model), alpha0))
    assert not all(torch.equal(p, q) for p, q in zip(weight_parameters(model), weights0))

    model = two_rows()
    weights0 = [p.detach().clone() for p in weight_parameters(model)]
    train_bilevel(model, weight, arch, epochs=1, lr=0.0, weight_decay=0.0, arch_lr=0.1, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(weight_parameters(model), weights0))
    assert model[1].alpha.grad is not None and not torch.equal(model[1].alpha.detach(), alpha0[0])


def test_gradient_clipping_acts_on_the_weights(digits):
    _, arch, weight = digits
    moved = {}
    for clip in (10.0, 1e-12):
        model = two_rows()
        weights0 = [p.detach().clone() for p in weight_parameters(model)]
        alpha0 = [p.detach().clone() for p in arch_parameters(model)]
        train_bilevel(model, weight, arch, epochs=1, weight_decay=0.0, grad_clip=clip, progress=False)
        moved[clip] = (
            max((p - q).abs().max().item() for p, q in zip(weight_parameters(model), weights0)),
            max((p - q).abs().max().item() for p, q in zip(arch_parameters(model), alpha0)),
        )
    # clipped to norm 1e-12, Adam's steps shrink to ≈ lr · 1e-12 / eps: the weights barely move ...
    assert moved[10.0][0] > 5e-3 and moved[1e-12][0] < 1e-3 * moved[10.0][0]
    # ... while α, never clipped, still moves
    assert moved[1e-12][1] > 5e-4


def test_temperature_anneals_every_gumbel_linearly(digits):
    _, arch, weight = digits
    model = two_rows(Gumbel(tau=10.0, hard=True))
    result = train_bilevel(model, weight, arch, epochs=4, temperature=(10.0, 1.0), progress=False)
    assert [row["tau"] for row in result.history] == pytest.approx([10.0, 7.0, 4.0, 1.0])
    assert model[1].relaxation.tau == 1.0 and model[2].relaxation.tau == 1.0


def test_arch_warmup_trains_only_the_weights_first(digits):
    _, arch, weight = digits
    model = two_rows()
    alpha0 = [p.detach().clone() for p in arch_parameters(model)]
    seen = []

    def alphas_fixed(row, model):
        seen.append(all(torch.equal(p, q) for p, q in zip(arch_parameters(model), alpha0)))

    result = train_bilevel(model, weight, arch, epochs=3, arch_warmup=2, arch_lr=0.1, progress=False,
                           regularizer=MaxNorm(3), on_epoch=alphas_fixed)
    assert seen == [True, True, False]
    assert [row["arch_loss"] is None for row in result.history] == [True, True, False]
    assert result.history[0]["arch_penalty"] is None and result.history[2]["arch_penalty"] is not None
    assert result.history[0]["train_loss"] > result.history[1]["train_loss"]


def test_on_epoch_stops(digits):
    _, arch, weight = digits
    seen = []
    result = train_bilevel(two_rows(), weight, arch, epochs=5, progress=False,
                           on_epoch=lambda row, model: seen.append(row["epoch"]) or row["epoch"] == 1)
    assert seen == [0, 1] and len(result.history) == 2 and result.stopped_early


def test_bad_input_is_refused(digits):
    _, arch, weight = digits
    empty = TensorDataset(torch.zeros(0, 64), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="contains no archgraph.relax.Choice.*archgraph.train.train"):
        train_bilevel(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), weight, arch, epochs=1)
    with pytest.raises(ValueError, match="epochs must be an int of at least 1, got 0"):
        train_bilevel(two_rows(), weight, arch, epochs=0)
    with pytest.raises(ValueError, match=r"arch_warmup .* \[0, 1\]; got 2"):
        train_bilevel(two_rows(), weight, arch, epochs=2, arch_warmup=2)
    with pytest.raises(ShapeError, match="arch_data is empty"):
        train_bilevel(two_rows(), weight, empty, epochs=1)
    with pytest.raises(ShapeError, match="weight_data is empty"):
        train_bilevel(two_rows(), empty, arch, epochs=1)
    with pytest.raises(ValueError, match="none of the model's Choices uses one"):
        train_bilevel(two_rows(), weight, arch, epochs=1, temperature=(10.0, 0.1))
    with pytest.raises(ValueError, match="two positive Gumbel temperatures"):
        train_bilevel(two_rows("gumbel"), weight, arch, epochs=1, temperature=(10.0, 0.0))
    with pytest.raises(ValueError, match="no trainable weights"):
        train_bilevel(nn.Sequential(nn.Flatten(), Choice([nn.Identity(), nn.ReLU()])), weight, arch, epochs=1)
    with pytest.raises(TypeError, match="must return a scalar tensor"):
        train_bilevel(two_rows(), weight, arch, epochs=1, regularizer=lambda model, epoch: 1.0, progress=False)


# --- DARTS' second order (eq. 7-8, App. A) -------------------------------------------------------------------

def tiny_float64(relaxation):
    """A small float64 classifier of 3 features into 3 classes with one Choice in the middle."""
    torch.manual_seed(0)
    choice = Choice([nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.Tanh()), nn.Identity()], relaxation,
                    init_std=0.5)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), choice, nn.Linear(4, 3)).double()


def arch_and_weight_batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 3, generator=g, dtype=torch.float64)
    y = torch.randint(3, (2, 16), generator=g)
    return (x[0], y[0]), (x[1], y[1])


def exact_unrolled_gradient(model, arch_batch, weight_batch, xi):
    """d/dα L_arch(ω − ξ ∇_ω L_weight(ω, α), α) by autograd through the virtual step (DARTS eq. 6)."""
    alphas = arch_parameters(model)
    weights = {name: p for name, p in model.named_parameters() if all(p is not a for a in alphas)}
    weight_loss = nn.functional.cross_entropy(model(weight_batch[0]), weight_batch[1])
    grads = torch.autograd.grad(weight_loss, list(weights.values()), create_graph=True)
    virtual = {name: w - xi * g for (name, w), g in zip(weights.items(), grads)}  # α is taken from the module
    arch_loss = nn.functional.cross_entropy(functional_call(model, virtual, (arch_batch[0],)), arch_batch[1])
    return torch.autograd.grad(arch_loss, alphas)


def alpha_gradient(model, step_class, arch_batch, weight_batch, xi, regularizer=None):
    """The gradient one α step of ``step_class`` sets (α itself stays: its optimiser has lr 0)."""
    alphas, weights = arch_parameters(model), weight_parameters(model)
    cpu = torch.device("cpu")
    extra = {"weights": weights, "weight_optimizer": torch.optim.SGD(weights, lr=xi)} if step_class is _SecondOrderStep else {}
    step = step_class(model, torch.optim.SGD(alphas, lr=0.0), alphas, regularizer, 0, cpu, _ArchMeter(cpu), **extra)
    step(arch_batch, weight_batch)
    return [a.grad.clone() for a in alphas]


@pytest.mark.parametrize("relaxation", ["softmax", "gumbel", "gumbel with its own generator", "dirichlet"])
def test_second_order_gradient_matches_the_exact_unrolled_gradient(relaxation, monkeypatch):
    model = tiny_float64(Gumbel(tau=1.0) if relaxation.startswith("gumbel") else relaxation)
    own = torch.Generator().manual_seed(5)
    if relaxation == "gumbel with its own generator":
        model[2].generator = own
    own_state = own.get_state()
    arch_batch, weight_batch = arch_and_weight_batch()
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def gradient(compute):
        """α's gradient, and the noise drawn next (random relaxations: each computation draws the same noise)."""
        torch.manual_seed(3)
        own.set_state(own_state)
        return compute()[0], (torch.rand(2), own.get_state())

    exact, next_noise = gradient(lambda: exact_unrolled_gradient(model, arch_batch, weight_batch, xi=0.5))
    errors = {}
    for r in (0.01, 0.001):  # ε · ‖∇_ω' L_arch‖: DARTS App. A's 0.01, and smaller
        monkeypatch.setattr(steps, "_FINITE_DIFFERENCE", r)
        second, noise = gradient(lambda: alpha_gradient(model, _SecondOrderStep, arch_batch, weight_batch, xi=0.5))
        errors[r] = float((second - exact).norm() / exact.norm())
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # ω and α given back exactly
        # the replayed draws leave no trace: the noise goes on from the architecture forward
        assert torch.equal(noise[0], next_noise[0]) and torch.equal(noise[1], next_noise[1])
    assert errors[0.01] < 1e-4 and errors[0.001] < 1e-6
    assert errors[0.01] / errors[0.001] == pytest.approx(100, rel=0.2)  # the O(ε²) error of central differences
    first, _ = gradient(lambda: alpha_gradient(model, _FirstOrderStep, arch_batch, weight_batch, xi=0.5))
    assert float((first - exact).norm() / exact.norm()) > 0.5  # the implicit term matters here


def test_second_order_with_zero_learning_rate_is_the_first_order():
    model = tiny_float64("softmax")
    arch_batch, weight_batch = arch_and_weight_batch()
    first = alpha_gradient(model, _FirstOrderStep, arch_batch, weight_batch, 0.0)
    second = alpha_gradient(model, _SecondOrderStep, arch_batch, weight_batch, 0.0)
    assert torch.equal(first[0], second[0])


@pytest.mark.parametrize("step_class", [_FirstOrderStep, _SecondOrderStep])
def test_regulariser_gradient_is_added_in_both_orders(step_class):
    model = tiny_float64("softmax")
    arch_batch, weight_batch = arch_and_weight_batch()

    def regularizer(model, epoch):  # ∇_α = 6 α
        return 3.0 * (model[2].alpha ** 2).sum()

    plain = alpha_gradient(model, step_class, arch_batch, weight_batch, 0.5)
    regularised = alpha_gradient(model, step_class, arch_batch, weight_batch, 0.5, regularizer)
    assert torch.allclose(regularised[0] - plain[0], 6.0 * model[2].alpha.detach(), rtol=1e-12, atol=1e-12)


def test_second_order_finds_the_better_candidate(digits):
    _, arch, weight = digits
    model = linear_or_zero()
    result = train_bilevel(model, weight, arch, epochs=3, batch_size=64, order=2, optimizer="sgd", lr=0.05,
                           schedule="cosine", min_lr=0.001, arch_lr=0.05, progress=False)
    p_linear = [row["alpha"][0][0] for row in result.history]
    assert p_linear == sorted(p_linear) and p_linear[-1] > 0.9
    assert result.history[-1]["arch_accuracy"] > result.history[0]["arch_accuracy"]


# --- weight optimiser and learning-rate schedule ------------------------------------------------------------

def recording(monkeypatch, name):
    """Replace ``torch.optim.<name>`` by a subclass that records its instances."""
    made = []
    base = getattr(torch.optim, name)

    class Recorded(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(torch.optim, name, Recorded)
    return made


def test_sgd_with_cosine_learning_rate(digits, monkeypatch):
    _, arch, weight = digits
    sgds, adams = recording(monkeypatch, "SGD"), recording(monkeypatch, "Adam")
    lrs = []
    model = two_rows()
    result = train_bilevel(model, weight, arch, epochs=5, optimizer="sgd", lr=0.025, schedule="cosine",
                           min_lr=0.001, weight_decay=3e-4, progress=False,
                           on_epoch=lambda row, model: lrs.append(sgds[0].param_groups[0]["lr"]))
    assert len(sgds) == 1 and len(adams) == 1  # SGD for ω, Adam for α
    (group,) = sgds[0].param_groups
    assert group["momentum"] == 0.9 and group["weight_decay"] == 3e-4
    assert {id(p) for p in group["params"]} == {id(p) for p in weight_parameters(model)}
    # torch's CosineAnnealingLR stepped once per epoch, as DARTS does, gives the same values
    reference = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.025)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=5, eta_min=0.001)
    expected = []
    for _ in range(5):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        schedule.step()
    assert lrs == pytest.approx(expected, rel=1e-12) and lrs[0] == 0.025
    assert [row["lr"] for row in result.history] == lrs


def test_adam_with_constant_learning_rate_by_default(digits, monkeypatch):
    _, arch, weight = digits
    sgds, adams = recording(monkeypatch, "SGD"), recording(monkeypatch, "Adam")
    result = train_bilevel(two_rows(), weight, arch, epochs=2, lr=3e-3, weight_decay=1e-4, progress=False)
    assert not sgds and len(adams) == 2
    weight_group = adams[0].param_groups[0]
    assert (weight_group["lr"], weight_group["betas"], weight_group["eps"], weight_group["weight_decay"]) == (
        3e-3, (0.9, 0.999), 1e-8, 1e-4)  # FaDE §3
    assert [row["lr"] for row in result.history] == [3e-3, 3e-3]


# --- start_epoch, drop-path and cutout ------------------------------------------------------------------------

class DropPathNet(nn.Module):
    """``two_rows`` with a ``drop_path_prob`` attribute; records the value each training forward sees."""

    def __init__(self, relaxation="softmax"):
        super().__init__()
        self.drop_path_prob = 0.0
        self.body = two_rows(relaxation)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(self.drop_path_prob)
        return self.body(x)


def test_drop_path_probability_rises_linearly_to_its_maximum(digits):
    _, arch, weight = digits
    model = DropPathNet()
    per_epoch = []
    train_bilevel(model, weight, arch, epochs=4, batch_size=200, drop_path_prob=0.3, progress=False,
                  on_epoch=lambda row, model: per_epoch.append(sorted(set(model.seen))) or model.seen.clear())
    # RobustDARTS' reference code: drop_path_prob · e / (epochs − 1) in epoch e
    assert per_epoch == [[0.0], [pytest.approx(0.1)], [pytest.approx(0.2)], [0.3]]


def test_start_epoch_resumes_every_schedule_at_the_absolute_epoch(digits):
    _, arch, weight = digits
    model = DropPathNet(Gumbel(tau=10.0))
    reg_epochs, drop_paths = [], []

    class Recording(MaxNorm):
        def __call__(self, model, epoch):
            reg_epochs.append(epoch)
            return super().__call__(model, epoch)

    max_norm = Recording(6)

    result = train_bilevel(model, weight, arch, epochs=6, start_epoch=3, arch_warmup=4, batch_size=200,
                           optimizer="sgd", lr=0.1, schedule="cosine", min_lr=0.0, temperature=(10.0, 5.0),
                           regularizer=max_norm, drop_path_prob=0.5, cutout=Cutout(length=2), progress=False,
                           on_epoch=lambda row, model: drop_paths.append(model.drop_path_prob))
    assert [row["epoch"] for row in result.history] == [3, 4, 5] and not result.stopped_early
    assert [row["lr"] for row in result.history] == pytest.approx(
        [0.05 * (1 + math.cos(math.pi * e / 6)) for e in (3, 4, 5)])
    assert [row["tau"] for row in result.history] == pytest.approx([7.0, 6.0, 5.0])
    assert drop_paths == pytest.approx([0.3, 0.4, 0.5])
    assert [row["coefficients"] for row in result.history] == [max_norm.coefficients(e, rows=2) for e in (3, 4, 5)]
    assert [row["arch_loss"] is None for row in result.history] == [True, False, False]  # epoch 3 < arch_warmup
    steps = -(-len(weight) // 200)
    assert reg_epochs == [4] * steps + [5] * steps

    stopped = train_bilevel(two_rows(), weight, arch, epochs=6, start_epoch=3, progress=False,
                            on_epoch=lambda row, model: row["epoch"] == 4)
    assert [row["epoch"] for row in stopped.history] == [3, 4] and stopped.stopped_early


class ImageSpy(nn.Module):
    """Records, in training mode, each batch's tag (its largest value) and how many of its images have a zero."""

    def __init__(self, log):
        super().__init__()
        self.log = log

    def forward(self, x):
        if self.training:
            self.log.append((int(x.max()), int((x == 0).flatten(1).any(dim=1).sum()), len(x)))
        return x.flatten(1)


def images(n, value, seed):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.full((n, 1, 8, 8), float(value)), torch.randint(10, (n,), generator=g))


def test_cutout_masks_weight_batches_with_rising_probability():
    log = []
    model = nn.Sequential(ImageSpy(log), Choice([nn.Linear(64, 10), Zero()]))
    weight, arch = images(400, 1, seed=0), images(100, 2, seed=1)
    train_bilevel(model, weight, arch, epochs=3, batch_size=100, cutout=Cutout(length=4, prob=1.0), progress=False)
    weight_log, arch_log = [e for e in log if e[0] == 1], [e for e in log if e[0] == 2]
    assert len(weight_log) == 12 and len(arch_log) == 12
    assert all(cut == 0 for _, cut, _ in arch_log)  # architecture batches are never cut out
    fractions = [sum(cut for _, cut, _ in weight_log[4 * e: 4 * e + 4]) / 400 for e in range(3)]
    assert fractions[0] == 0.0 and fractions[2] == 1.0  # p = 1.0 · e / 2
    assert abs(fractions[1] - 0.5) < 0.1  # binomial(400, 0.5): 4 standard deviations


def test_bad_settings_are_refused(digits):
    _, arch, weight = digits
    flat_weight = flat(weight)
    with pytest.raises(ValueError, match=r"order is 1 .* or 2 .*; got 3"):
        train_bilevel(two_rows(), weight, arch, epochs=1, order=3)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'.*'adam'.*'sgd'"):
        train_bilevel(two_rows(), weight, arch, epochs=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="unknown schedule 'step'.*None.*'cosine'"):
        train_bilevel(two_rows(), weight, arch, epochs=1, schedule="step")
    with pytest.raises(ValueError, match=r"0 <= min_lr <= lr .*lr=0.001, min_lr=0.01"):
        train_bilevel(two_rows(), weight, arch, epochs=1, schedule="cosine", min_lr=0.01)
    with pytest.raises(ValueError, match=r"drop_path_prob .* in \[0, 1\]; got -0.1"):
        train_bilevel(DropPathNet(), weight, arch, epochs=1, drop_path_prob=-0.1)
    with pytest.raises(ValueError, match="Sequential has no such attribute.*drop_path_prob=0"):
        train_bilevel(two_rows(), weight, arch, epochs=1, drop_path_prob=0.2)
    with pytest.raises(ValueError, match=r"start_epoch .* \[0, epochs - 1\] = \[0, 2\]; got 3"):
        train_bilevel(two_rows(), weight, arch, epochs=3, start_epoch=3)
    with pytest.raises(ValueError, match=r"start_epoch .*; got -1"):
        train_bilevel(two_rows(), weight, arch, epochs=3, start_epoch=-1)
    with pytest.raises(TypeError, match="cutout must be an archgraph.oneshot.regularize.Cutout"):
        train_bilevel(two_rows(), weight, arch, epochs=1, cutout=16)
    with pytest.raises(ShapeError, match=r"Cutout\(dim=2\) masks a batch of shape .*height, width.*got shape \(128, 64\): train without cutout"):
        model = nn.Sequential(Choice([nn.Linear(64, 10), Zero()]))
        train_bilevel(model, flat_weight, flat(arch), epochs=1, cutout=Cutout(), progress=False)


def test_requiring_grad_sets_flags_within_and_restores_each_one_after_an_error():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2), requires_grad=False)
    with pytest.raises(RuntimeError, match="inside"):
        with steps.requiring_grad([a, b], True):
            assert a.requires_grad and b.requires_grad
            raise RuntimeError("inside")
    assert a.requires_grad and not b.requires_grad
    with steps.requiring_grad([a, b], False):
        assert not a.requires_grad and not b.requires_grad
    assert a.requires_grad and not b.requires_grad


# --- DSCD as the α optimiser (Bodin et al., Alg. 1, App. C) ----------------------------------------------------

def independent_loss(model, params, alphas, batch):
    """The cross-entropy of ``model`` on ``batch`` with weights ``params`` and architecture parameters ``alphas``."""
    names = {id(p): name for name, p in model.named_parameters()}
    values = {**params, **{names[id(a)]: value for a, value in zip(arch_parameters(model), alphas)}}
    x, y = batch
    return nn.functional.cross_entropy(functional_call(model, values, (x,)), y)


def beta_by_hand(v, phi):
    """App. C, written out again: μ, σ, then (a, b) of the Beta with that mean and deviation."""
    mu = phi * v + (1 - phi) * 0.5
    sigma = (1 - phi) / math.sqrt(12)
    c1 = mu / (1 - mu)
    c2 = sigma**2 * (c1 + 1) ** 2
    b = (c1 - c2) / (c2 * (c1 + 1))
    return c1 * b, b


def test_dscd_as_the_alpha_optimiser_steps_alpha_as_oneshot_dscd_specifies(digits, monkeypatch):
    """Every α step of train_bilevel with DSCD, recomputed independently from the state before it: a local
    step is the local optimiser's (SGD) step on ∇_α L_arch at the current ω; a global step draws one entry
    d, proposes lo + (hi − lo)·u, u ~ Beta(a, b) around it with φ = (1 − cos(πt/total))/2, and keeps it iff
    the loss there beats the lowest loss of the last K steps; the phase switches after T steps that did not
    improve."""
    from torch.utils.data import Subset

    from archgraph.oneshot.dscd import DSCD

    _, arch, weight = digits
    weight, arch = Subset(weight, range(96)), Subset(arch, range(64))
    model = two_rows()
    lr, T, K, bounds = 0.5, 2, 3, (-3.0, 3.0)
    made, records = [], []

    def factory(alphas, total_steps):
        made.append(DSCD(alphas, torch.optim.SGD(alphas, lr=lr), total_steps=total_steps, bounds=bounds, T=T, K=K,
                         generator=np.random.default_rng(5)))
        return made[-1]

    original = steps._FirstOrderStep.__call__

    def recording(self, arch_batch, weight_batch):
        before = {"alphas": [a.detach().clone() for a in self.alphas], "state": self.optimizer.state_dict(),
                  "params": {n: p.detach().clone() for n, p in model.named_parameters()}, "batch": arch_batch,
                  "phase": self.optimizer.phase}
        original(self, arch_batch, weight_batch)
        records.append((before, [a.detach().clone() for a in self.alphas]))

    monkeypatch.setattr(steps._FirstOrderStep, "__call__", recording)
    train_bilevel(model, weight, arch, epochs=6, batch_size=32, lr=1e-3, arch_optimizer=factory, progress=False)
    total = made[0].total_steps
    assert total == 6 * 3 == len(records)                  # one α step per weight batch: 96 / 32 per epoch

    window, phase, streak = [], "local", 0                  # (step, loss) of every step; the independent state
    kinds = []
    for t, (before, after) in enumerate(records):
        assert before["phase"] == phase and before["state"]["step"] == t
        alphas, params, batch = before["alphas"], before["params"], before["batch"]
        best = min((loss for s, loss in window if s > t - K), default=math.inf)
        if phase == "local":
            leaves = [a.clone().requires_grad_() for a in alphas]
            loss = independent_loss(model, params, leaves, batch)
            grads = torch.autograd.grad(loss, leaves)
            expected = [a - lr * g for a, g in zip(alphas, grads)]
            value = loss.item()
            kinds.append("local")
        else:
            rng = np.random.default_rng()
            rng.bit_generator.state = before["state"]["rng"]
            sizes = [a.numel() for a in alphas]
            d = int(rng.integers(sum(sizes)))
            i = int(np.searchsorted(np.cumsum(sizes), d, side="right"))
            j = d - sum(sizes[:i])
            lo, hi = bounds
            phi = (1 - math.cos(math.pi * min(t, total) / total)) / 2
            v = min(max((alphas[i].flatten()[j].item() - lo) / (hi - lo), 0.0), 1.0)
            proposal = [a.clone() for a in alphas]
            proposal[i].view(-1)[j] = lo + (hi - lo) * (v if phi >= 1 else rng.beta(*beta_by_hand(v, phi)))
            with torch.no_grad():
                value = independent_loss(model, params, proposal, batch).item()
            expected = proposal if value < best else alphas
            kinds.append("accepted" if value < best else "rejected")
        for got, want in zip(after, expected):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
        streak = 0 if value < best else streak + 1
        if streak >= T:
            phase, streak = ("global" if phase == "local" else "local"), 0
        window.append((t, value))
    assert {"local", "accepted", "rejected"} <= set(kinds)     # every kind of step was checked


def test_dscd_by_name_wraps_the_arch_adam_and_leaves_the_callers_rng(digits, dscd_instances):
    _, arch, weight = digits
    made = dscd_instances
    runs = []
    for _ in range(2):
        model = two_rows()
        torch.manual_seed(1)
        np_state = np.random.get_state()
        result = train_bilevel(model, weight, arch, epochs=3, batch_size=256, arch_warmup=1, arch_lr=3e-4,
                               arch_betas=(0.5, 0.999), arch_weight_decay=1e-3, arch_optimizer="dscd", seed=4,
                               progress=False)
        assert torch.equal(torch.rand(2), torch.manual_seed(1) and torch.rand(2))   # the caller's RNG untouched
        assert np.array_equal(np.random.get_state()[1], np_state[1])
        runs.append((without_seconds(result.history), model.state_dict()))
    dscd = made[0]
    group = dscd.local.param_groups[0]
    assert isinstance(dscd.local, torch.optim.Adam)
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (3e-4, (0.5, 0.999), 1e-8, 1e-3)
    assert (dscd.bounds, dscd.T, dscd.K, dscd.tol) == ((-3.0, 3.0), 50, 1000, 0.0)       # Bodin et al.
    n_batches = math.ceil(len(weight) / 256)
    assert dscd.total_steps == 2 * n_batches                                           # epochs 1 and 2 step α
    assert dscd.state_dict()["step"] == dscd.total_steps
    (a, state_a), (b, state_b) = runs
    assert a == b and all(torch.equal(state_a[k], state_b[k]) for k in state_a)        # seeded: the same run


def test_dscd_with_the_second_order_compares_losses_at_the_virtual_weights(digits):
    """A global step's loss is L_arch(ω', α) at ω' = ω − ξ∇_ω L_weight(ω, α), the objective whose gradient the
    second-order local step takes: at the same α both give the same value, and ω is given back."""
    from archgraph.oneshot.dscd import DSCD

    torch.manual_seed(0)
    model = tiny_float64("softmax")
    alphas, weights = arch_parameters(model), weight_parameters(model)
    arch_batch, weight_batch = arch_and_weight_batch()
    cpu = torch.device("cpu")
    step = _SecondOrderStep(model, torch.optim.SGD(alphas, lr=0.0), alphas, None, 0, cpu, _ArchMeter(cpu),
                            weights=weights, weight_optimizer=torch.optim.SGD(weights, lr=0.1))
    before = [w.detach().clone() for w in weights]
    evaluated = step._evaluate(arch_batch, weight_batch)
    assert all(torch.equal(w, w0) for w, w0 in zip(weights, before))
    stepped = step._set_gradients(arch_batch, weight_batch)
    torch.testing.assert_close(evaluated, stepped, rtol=1e-12, atol=0)
    model = two_rows()
    result = train_bilevel(model, *digits[1:][::-1], epochs=2, batch_size=256, order=2, progress=False,
                           arch_optimizer=lambda a, n: DSCD(a, torch.optim.Adam(a, lr=0.05), total_steps=n, T=1,
                                                            generator=np.random.default_rng(0)))
    assert all(row["arch_loss"] is not None for row in result.history)


def test_arch_optimizer_factories_and_bad_names(digits):
    _, arch, weight = digits
    seen = []

    def sgd(alphas, total_steps):
        seen.append((len(alphas), total_steps))
        return torch.optim.SGD(alphas, lr=0.1)

    model = two_rows()
    alpha0 = [a.detach().clone() for a in arch_parameters(model)]
    train_bilevel(model, weight, arch, epochs=2, batch_size=256, arch_optimizer=sgd, progress=False)
    assert seen == [(2, 2 * math.ceil(len(weight) / 256))]
    assert not any(torch.equal(a, b) for a, b in zip(arch_parameters(model), alpha0))
    with pytest.raises(ValueError, match="unknown arch_optimizer 'rmsprop'; use 'adam'.*'dscd'.*or a factory"):
        train_bilevel(two_rows(), weight, arch, epochs=1, arch_optimizer="rmsprop")
    with pytest.raises(TypeError, match=r"arch_optimizer\(alphas, total_steps\) must return a torch.optim.Optimizer"):
        train_bilevel(two_rows(), weight, arch, epochs=1, arch_optimizer=lambda a, n: "adam", progress=False)


def test_end_epoch_stops_a_run_within_its_schedule(digits):
    _, arch, weight = digits
    first = train_bilevel(two_rows(), weight, arch, epochs=4, end_epoch=2, optimizer="sgd", lr=0.1,
                          schedule="cosine", batch_size=256, progress=False)
    assert [row["epoch"] for row in first.history] == [0, 1] and not first.stopped_early
    assert [row["lr"] for row in first.history] == [0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2]
    second = train_bilevel(two_rows(), weight, arch, epochs=4, start_epoch=2, end_epoch=4, optimizer="sgd", lr=0.1,
                           schedule="cosine", batch_size=256, progress=False)
    assert [row["epoch"] for row in second.history] == [2, 3]
    with pytest.raises(ValueError, match=r"end_epoch .* \[3, 4\] .*; got 2"):
        train_bilevel(two_rows(), weight, arch, epochs=4, start_epoch=2, end_epoch=2)
