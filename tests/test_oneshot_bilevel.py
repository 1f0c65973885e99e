import json

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from archgraph.data import fade_split, load
from archgraph.errors import ShapeError
from archgraph.oneshot import BilevelResult, MaxNorm, train_bilevel
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
        "epoch", "train_loss", "train_accuracy", "arch_loss", "arch_accuracy", "arch_penalty", "coefficients",
        "tau", "val_loss", "val_accuracy", "alpha", "seconds",
    }
    for row in result.history:
        assert [len(p) for p in row["alpha"]] == [2, 3]
        assert all(sum(p) == pytest.approx(1.0) for p in row["alpha"])
        assert row["coefficients"] == reg.coefficients(row["epoch"], rows=2)
        assert row["tau"] is None and row["seconds"] > 0
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
