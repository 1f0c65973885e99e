import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Subset, TensorDataset

from archgraph.data import load
from archgraph.errors import ShapeError
from archgraph.train import TrainResult, evaluate, train


@pytest.fixture(scope="module")
def digits():
    task = load("digits")
    return Subset(task.train, range(400)), Subset(task.test, range(200))


def mlp(seed=0, dropout=0.0, in_features=64, classes=10):
    """A small MLP whose initial weights depend on ``seed`` only (the global RNG is left alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        hidden = nn.Linear(in_features, 32)
        return nn.Sequential(nn.Flatten(), hidden, nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, classes))


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def without_time(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def line(n=32):
    """A separable 1-d task: x in [-1, 1], class x > 0."""
    x = torch.linspace(-1, 1, n).unsqueeze(1)
    return TensorDataset(x, (x[:, 0] > 0).long())


def test_loss_decreases_and_digits_are_learnt(digits):
    train_data, val_data = digits
    model = mlp()
    result = train(model, train_data, val_data=val_data, epochs=6, batch_size=64, lr=1e-2, progress=False)
    assert isinstance(result, TrainResult) and len(result.history) == 6
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] / 2
    assert result.best_val_accuracy > 0.8
    assert result.best_val_accuracy == max(row["val_accuracy"] for row in result.history)
    assert set(result.history[0]) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert result.final is result.history[-1] and not result.restored_best and not result.stopped_early
    assert repr(result).startswith("TrainResult(epochs=6, best_epoch=")


def test_same_seed_same_run_other_seed_other_run(digits):
    train_data, val_data = digits
    runs = []
    for seed in (7, 7, 8):
        model = mlp(dropout=0.3)
        result = train(model, train_data, val_data=val_data, epochs=2, batch_size=50, seed=seed, progress=False)
        runs.append((without_time(result.history), weights(model)))
    (h1, w1), (h2, w2), (h3, w3) = runs
    assert h1 == h2 and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert h1 != h3 and not all(torch.equal(w1[k], w3[k]) for k in w1)


def test_training_leaves_the_global_rng_alone(digits):
    before = torch.get_rng_state()
    train(mlp(dropout=0.5), digits[0], epochs=1, progress=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_grad_clip_bounds_the_step():
    # one batch, plain SGD with lr=1: the step is exactly the (clipped) gradient
    data = TensorDataset(torch.randn(16, 4, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3)
    model = mlp(in_features=4, classes=3)
    start = weights(model)
    F.cross_entropy(model(data.tensors[0]), data.tensors[1]).backward()
    grad_norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    model.zero_grad()
    clip = float(grad_norm) / 4
    train(model, data, epochs=1, batch_size=16, optimizer="sgd", lr=1.0, momentum=0.0, grad_clip=clip, progress=False)
    step = torch.cat([(model.state_dict()[k] - start[k]).flatten() for k in start])
    assert step.norm().item() == pytest.approx(clip, rel=1e-4)


def test_cosine_schedule_anneals_to_min_lr(monkeypatch):
    seen = []
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR
    original_step = cosine.step

    def recording_step(self, *args, **kwargs):
        original_step(self, *args, **kwargs)
        seen.append(self.get_last_lr()[0])

    monkeypatch.setattr(cosine, "step", recording_step)
    epochs, lr, min_lr = 5, 0.1, 0.01
    result = train(nn.Linear(1, 2), line(), epochs=epochs, lr=lr, schedule="cosine", min_lr=min_lr, progress=False)
    expected = [min_lr + (lr - min_lr) * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)]
    assert [row["lr"] for row in result.history] == pytest.approx(expected)
    assert seen[-1] == pytest.approx(min_lr)  # the lr after the last epoch
    assert [row["lr"] for row in train(nn.Linear(1, 2), line(), epochs=3, lr=lr, progress=False).history] == [lr] * 3


def test_early_stop_stops_and_restores_the_best_weights():
    # validation labels are the training labels flipped: the better the fit, the worse val_loss
    train_data = line()
    x, y = train_data.tensors
    val_data = TensorDataset(x, 1 - y)
    snapshots = []
    result = train(
        nn.Linear(1, 2), train_data, val_data=val_data, epochs=20, batch_size=8, lr=0.05,
        early_stop=2, monitor="val_loss", progress=False,
        on_epoch=lambda row, model: snapshots.append(weights(model)),
    )
    assert (len(result.history), result.best_epoch, result.stopped_early, result.restored_best) == (3, 0, True, True)
    val_losses = [row["val_loss"] for row in result.history]
    assert val_losses == sorted(val_losses)
    assert result.final is result.history[0]
    model = nn.Linear(1, 2)
    model.load_state_dict(snapshots[0])
    assert evaluate(model, val_data)["loss"] == pytest.approx(result.history[0]["val_loss"])


def test_early_stop_restores_best_weights_even_when_patience_never_runs_out(digits):
    model = mlp()
    kept = []
    result = train(model, digits[0], val_data=digits[1], epochs=3, early_stop=10, progress=False,
                   on_epoch=lambda row, m: kept.append(weights(m)))
    assert result.restored_best and not result.stopped_early
    assert all(torch.equal(v, kept[result.best_epoch][k]) for k, v in model.state_dict().items())


def test_on_epoch_can_stop_training():
    result = train(nn.Linear(1, 2), line(), epochs=10, progress=False, on_epoch=lambda row, model: row["epoch"] == 1)
    assert len(result.history) == 2 and result.stopped_early and result.best_epoch is None
    assert result.history[0]["val_accuracy"] is None


def test_evaluate_matches_a_manual_computation():
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(23, 5, generator=g), torch.randint(0, 3, (23,), generator=g))
    model = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.5))
    model.train()
    metrics = evaluate(model, data, batch_size=7)
    model.eval()
    with torch.no_grad():
        logits = model[0](data.tensors[0])
    assert metrics["accuracy"] == pytest.approx((logits.argmax(1) == data.tensors[1]).float().mean().item())
    assert metrics["loss"] == pytest.approx(F.cross_entropy(logits, data.tensors[1]).item())
    model.train()
    evaluate(model, data)
    assert model.training, "evaluate gives the model back in the mode it had"


class WithAuxHead(nn.Module):
    """DARTS-style: (logits, aux_logits) in training mode, logits in eval mode."""

    def __init__(self):
        super().__init__()
        self.main, self.aux = nn.Linear(1, 2), nn.Linear(1, 2)

    def forward(self, x):
        return (self.main(x), self.aux(x)) if self.training else self.main(x)


@pytest.mark.parametrize("aux_weight", [0.4, 1.5])
def test_aux_logits_are_weighted_into_the_training_loss(aux_weight):
    data = line(16)
    x, y = data.tensors
    model = WithAuxHead()
    with torch.no_grad():
        expected = F.cross_entropy(model.main(x), y) + aux_weight * F.cross_entropy(model.aux(x), y)
    result = train(model, data, val_data=data, epochs=1, batch_size=16, optimizer="sgd", lr=0.0,
                   aux_weight=aux_weight, progress=False)
    assert result.history[0]["train_loss"] == pytest.approx(expected.item())
    assert result.history[0]["val_loss"] == pytest.approx(F.cross_entropy(model.main(x), y).item())


def test_samples_the_model_cannot_take_give_a_one_line_shape_error(digits):
    with pytest.raises(ShapeError, match=r"samples of shape \(1, 8, 8\).*expects 40 features") as info:
        train(mlp(in_features=40), digits[0], epochs=1, progress=False)
    assert "\n" not in str(info.value) and "input_shape (1, 8, 8)" in str(info.value)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(ShapeError, match="expects 3 channels"):
        evaluate(conv, digits[1])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (mlp(classes=4), r"labels go up to 9 but the model outputs 4 classes; build it with num_classes=10"),
        (nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Unflatten(1, (2, 5))), r"logits have shape \(\d+, 2, 5\)"),
    ],
)
def test_outputs_that_do_not_fit_the_labels_give_a_shape_error(digits, model, message):
    with pytest.raises(ShapeError, match=message):
        train(model, digits[0], epochs=1, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'; known: adam, adamw, sgd"),
        ({"schedule": "step"}, "unknown schedule 'step'"),
        ({"monitor": "train_loss"}, "unknown monitor"),
        ({"early_stop": 3}, "needs val_data"),
        ({"grad_clip": 0.0}, "grad_clip must be positive"),
        ({"epochs": 0}, "at least 1"),
    ],
)
def test_bad_settings_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train(nn.Linear(1, 2), line(), progress=False, **kwargs)


def test_progress_bar_hides_itself_off_a_terminal_and_device_may_be_named(capsys):
    result = train(nn.Linear(1, 2), line(), epochs=2, device="cpu", progress=True)
    assert len(result.history) == 2 and capsys.readouterr().err == ""


def test_empty_data_is_a_shape_error():
    empty = TensorDataset(torch.zeros(0, 1), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ShapeError, match="empty"):
        train(nn.Linear(1, 2), empty, progress=False)
    with pytest.raises(ShapeError, match="empty"):
        evaluate(nn.Linear(1, 2), empty)


def test_a_diverged_run_runs_out_of_patience_without_a_best_epoch():
    model = nn.Linear(1, 2)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    result = train(model, line(), val_data=line(), epochs=10, early_stop=2, monitor="val_loss", progress=False)
    assert (len(result.history), result.best_epoch, result.restored_best) == (2, None, False)
    assert result.best_val_accuracy is None and math.isnan(result.final["val_loss"])


def test_darts_auxiliary_head_is_trained():
    from archgraph.embody import DARTS_V2, build_darts, genotype_to_graphs

    torch.manual_seed(0)
    net = build_darts(genotype_to_graphs(DARTS_V2), input_shape=(3, 32, 32), num_classes=3, C=2, layers=3,
                      auxiliary=True)
    data = TensorDataset(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))
    before = [p.detach().clone() for p in net.auxiliary_head.parameters()]
    train(net, data, epochs=1, batch_size=4, progress=False)
    assert any(not torch.equal(b, p) for b, p in zip(before, net.auxiliary_head.parameters()))


def test_optimizer_state_continues_across_calls():
    data = TensorDataset(torch.randn(40, 3), torch.randint(0, 2, (40,)))
    model = nn.Linear(3, 2)
    first = train(model, data, epochs=1, batch_size=10, progress=False)
    second = train(model, data, epochs=1, batch_size=10, progress=False, optimizer_state=first.optimizer_state)
    steps = [int(r.optimizer_state["state"][0]["step"]) for r in (first, second)]
    assert steps == [4, 8]  # Adam's step count (and moments) carried on, not restarted


def test_evaluate_leaves_the_global_rng_alone():
    data, model = TensorDataset(torch.randn(8, 3), torch.randint(0, 2, (8,))), nn.Linear(3, 2)
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    evaluate(model, data)
    assert torch.equal(torch.rand(1), expected)


def test_a_run_continued_with_its_optimizer_and_rng_state_equals_the_uninterrupted_run(digits):
    train_data, _ = digits
    straight = mlp(dropout=0.3)
    whole = train(straight, train_data, epochs=4, batch_size=32, seed=5, progress=False)
    paused = mlp(dropout=0.3)
    first = train(paused, train_data, epochs=2, batch_size=32, seed=5, progress=False)
    second = train(paused, train_data, epochs=2, batch_size=32, seed=5, progress=False,
                   optimizer_state=first.optimizer_state, rng_state=first.rng_state)
    assert all(torch.equal(v, paused.state_dict()[k]) for k, v in straight.state_dict().items())
    losses = [row["train_loss"] for row in whole.history]
    assert [row["train_loss"] for row in first.history + second.history] == losses
    # without the random state, the continuation repeats the first epochs' batches and dropout masks
    restarted = mlp(dropout=0.3)
    train(restarted, train_data, epochs=2, batch_size=32, seed=5, progress=False)
    train(restarted, train_data, epochs=2, batch_size=32, seed=5, progress=False,
          optimizer_state=first.optimizer_state)
    assert not torch.equal(restarted[1].weight, straight[1].weight)


def test_a_last_batch_of_one_sample_is_left_out_so_batch_norm_trains():
    x = torch.randn(33, 4, generator=torch.Generator().manual_seed(0))
    data = TensorDataset(x, (x[:, 0] > 0).long())
    seen = []

    def model_with(norm: nn.Module) -> nn.Module:
        model = nn.Sequential(nn.Linear(4, 8), norm, nn.ReLU(), nn.Linear(8, 2))
        model.register_forward_hook(lambda module, args, out: seen.append(len(args[0])) if module.training else None)
        return model

    result = train(model_with(nn.BatchNorm1d(8)), data, val_data=data, epochs=2, batch_size=32, progress=False)
    assert len(result.history) == 2 and seen == [32, 32]   # 33 = 32 + 1: the lone last sample waits
    seen.clear()
    train(model_with(nn.Identity()), TensorDataset(x[:30], (x[:30, 0] > 0).long()), epochs=1, batch_size=8,
          progress=False)
    assert seen == [8, 8, 8, 6]   # a last batch of more than one sample is kept
