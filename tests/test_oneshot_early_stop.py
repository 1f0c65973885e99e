import math

import pytest
import torch
from torch import nn
from torch.utils.data import default_collate

from archgraph.data import fade_split, load
from archgraph.oneshot import early_stop
from archgraph.oneshot.bilevel import train_bilevel
from archgraph.oneshot.early_stop import (
    L2_FACTORS,
    DartsES,
    EigenvalueTracker,
    chain_callbacks,
    darts_ada,
    rdarts,
)
from archgraph.oneshot.hessian import arch_eigenvalue
from archgraph.relax import Choice, Gumbel, arch_parameters

# λ_max rising after epoch 7; λ̄(i) = mean of the 5 values up to epoch i:
# epoch  7    8     9     10    11    12   13
# λ̄    1.0  1.02  1.06  1.14  1.28  1.5  1.8
# λ̄(i−5)/λ̄(i) at i = 11: 1.0/1.28 = 0.78 ≥ 0.75; at i = 12: 1.0/1.5 = 0.67 < 0.75 → stop, keep epoch 7;
# with min_epochs=14 the first check is at i = 13: 1.02/1.8 = 0.57 → stop, keep epoch 8
RISING = [1.0] * 8 + [1.1, 1.2, 1.4, 1.7, 2.1, 2.6, 3.2, 4.0, 5.0, 6.2, 7.7, 9.6]


class Scripted:
    """A tracker replaying λ_max = script[epoch] on the epochs it evaluates."""

    def __init__(self, script, every=1):
        self.script, self.every, self.values = script, every, []

    def __call__(self, row, model):
        if row["epoch"] % self.every == 0:
            self.values.append((row["epoch"], self.script[row["epoch"]]))


class Replay:
    """A tracker replaying λ_max from ``script[epoch]``, one value per visit: an epoch run again gets the next."""

    def __init__(self, script):
        self.script, self.values = {epoch: list(values) for epoch, values in script.items()}, []

    def __call__(self, row, model):
        self.values.append((row["epoch"], self.script[row["epoch"]].pop(0)))


@pytest.fixture(scope="module")
def digits():
    """FaDE's 1-1-4 split of digits: (test, arch, weight)."""
    return fade_split(load("digits").train, seed=0)


def two_rows(relaxation="softmax", seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(),
        Choice([nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32)), nn.Sequential(nn.Linear(64, 32), nn.ReLU())],
               relaxation, init_std=0.5),
        Choice([nn.Linear(32, 10), nn.Sequential(nn.Linear(32, 10), nn.Tanh())], relaxation, init_std=0.5),
    )


def alpha_rows(history):
    return [row["alpha"] for row in history]


def test_tracker_records_one_value_per_epoch_and_leaves_the_search_alone(digits):
    _, arch, weight = digits
    settings = {"epochs": 2, "batch_size": 256, "lr": 1e-2, "arch_lr": 0.05, "seed": 3, "progress": False}
    model = two_rows(Gumbel(tau=1.0))
    tracker = EigenvalueTracker(arch, batch_size=32, seed=1)
    tracked = train_bilevel(model, weight, arch, on_epoch=tracker, **settings)
    assert [epoch for epoch, _ in tracker.values] == [0, 1]
    assert [row["eigenvalue"] for row in tracked.history] == [value for _, value in tracker.values]
    assert all(math.isfinite(value) for _, value in tracker.values)
    untracked = train_bilevel(two_rows(Gumbel(tau=1.0)), weight, arch, **settings)
    assert alpha_rows(tracked.history) == alpha_rows(untracked.history)  # no RNG draw, no batch-norm update leaks


def test_tracker_every_k_epochs(digits):
    _, arch, weight = digits
    tracker = EigenvalueTracker(arch, every=2, batch_size=16, seed=1)
    model = two_rows()
    result = train_bilevel(model, weight, arch, epochs=5, batch_size=256, on_epoch=tracker, progress=False)
    assert [epoch for epoch, _ in tracker.values] == [0, 2, 4]
    assert [row["eigenvalue"] is None for row in result.history] == [False, True, False, True, False]
    assert "values=3" in repr(tracker)
    generator = torch.Generator().manual_seed(1)  # the tracker's third batch, on the final model
    picks = [torch.randperm(len(arch), generator=generator)[:16] for _ in range(3)]
    batch = default_collate([arch[i] for i in picks[-1].tolist()])
    assert arch_eigenvalue(model, batch) == pytest.approx(tracker.values[-1][1], rel=1e-6)


def test_chain_runs_every_callback_and_stops_on_any():
    seen = []
    on_epoch = chain_callbacks(lambda row, model: True, lambda row, model: seen.append(row["epoch"]))
    assert on_epoch({"epoch": 4}, None) is True and seen == [4]
    assert chain_callbacks()({"epoch": 0}, None) is False


@pytest.mark.parametrize(("min_epochs", "fires_at", "keeps"), [(None, 12, 7), (14, 13, 8)])
def test_darts_es_fires_where_the_smoothed_sequence_says(digits, min_epochs, fires_at, keeps):
    _, arch, weight = digits
    model = two_rows()
    es = DartsES(Scripted(RISING), min_epochs=min_epochs)
    result = train_bilevel(model, weight, arch, epochs=len(RISING), batch_size=256, lr=1e-2, arch_lr=0.05,
                           on_epoch=es, progress=False)
    assert result.stopped_early and result.history[-1]["epoch"] == fires_at
    assert es.stop_epoch == keeps
    for alpha, probabilities in zip(es.alphas(), result.history[keeps]["alpha"]):
        assert torch.softmax(alpha, -1).tolist() == pytest.approx(probabilities)
    assert not torch.equal(es.alphas(fires_at)[0], es.alphas()[0])  # α moved on after the epoch kept
    es.restore(model)
    assert all(torch.equal(a.detach(), b) for a, b in zip(arch_parameters(model), es.alphas()))
    assert all(torch.equal(v, es.state()[k]) for k, v in model.state_dict().items())


def test_darts_es_thresholds_and_evaluations():
    model = Choice([nn.Identity(), nn.Tanh()])
    flat = DartsES(Scripted([2.0] * 30))
    assert not any(flat({"epoch": e}, model) for e in range(30)) and flat.stop_epoch is None
    # λ̄ = 1 then 4/3: λ̄(i − k)/λ̄(i) = 0.75 exactly, which is not below 0.75
    boundary = DartsES(Scripted([1.0] * 5 + [4 / 3] * 5), window=5)
    assert not any(boundary({"epoch": e}, model) for e in range(10))
    # every 2nd epoch evaluated: windows of k evaluations, and the epoch kept is k evaluations back
    sparse = DartsES(Scripted([1.0] * 8 + [5.0] * 8, every=2), window=2)
    fired = next(e for e in range(16) if sparse({"epoch": e}, model))
    assert fired == 8 and sparse.stop_epoch == 4  # evaluations 0 2 4 6 8: λ̄(4) = 1 < 0.75 · λ̄(8) = 3
    assert sorted(sparse._states) == [0, 2, 4, 6, 8]  # the states of the evaluated epochs
    with pytest.raises(KeyError, match="no snapshot of epoch 3"):
        sparse.state(3)


def test_darts_es_errors():
    with pytest.raises(TypeError, match="list `values`"):
        DartsES(lambda row, model: None)
    with pytest.raises(ValueError, match="window"):
        DartsES(Scripted([]), window=0)
    with pytest.raises(ValueError, match="has not stopped"):
        DartsES(Scripted([])).alphas()


class RecordingES(DartsES):
    """DARTS-ES that checks, at each rollback, that the model left holds the snapshot of the stop epoch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.restored = []

    def roll_back(self, model):
        snapshot = self.state()
        moved_on = not all(torch.equal(v.cpu(), snapshot[k]) for k, v in model.state_dict().items())
        epoch = super().roll_back(model)
        self.restored.append(moved_on and all(torch.equal(v.cpu(), snapshot[k]) for k, v in model.state_dict().items()))
        return epoch


def test_darts_ada_rolls_back_and_multiplies_the_weight_decay_up_to_its_cap(digits, monkeypatch):
    _, arch, weight = digits
    runs = []

    def spy(*args, **kwargs):
        runs.append((kwargs["start_epoch"], kwargs["weight_decay"]))
        return train_bilevel(*args, **kwargs)

    monkeypatch.setattr(early_stop, "train_bilevel", spy)
    # window 2, λ̄(i) = mean(λ(i − 1), λ(i)); run 1: λ̄(4) = 1 < 0.75 · λ̄(6) = 1.5 → stop at 6, back to 4;
    # run 2 (from 5): λ(5) = 5, λ̄(3) = 1 < 0.75 · λ̄(5) = 2.25 → stop at 5, back to 3 (before the first stop);
    # run 3 (from 4): 3e-2 · 10 would pass the cap, so λ is tracked but not acted on
    es = RecordingES(Replay({0: [1], 1: [1], 2: [1], 3: [1], 4: [1, 1], 5: [1, 5, 1], 6: [3, 1], 7: [9], 8: [27]}),
                     window=2)
    model = two_rows()
    result = darts_ada(model, weight, arch, epochs=9, early_stop=es, batch_size=256, lr=1e-2, arch_lr=0.05,
                       progress=False)
    assert result.rollbacks == [4, 3] and es.restored == [True, True]
    assert runs == [(0, 3e-4), (5, 3e-4 * 10), (4, 3e-4 * 10 * 10)]
    assert result.weight_decay == pytest.approx(3e-2)
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3, 4, 5, 6, 5, 4, 5, 6, 7, 8]
    assert [row["weight_decay"] for row in result.history] == pytest.approx([3e-4] * 7 + [3e-3] + [3e-2] * 5)
    assert es.tracker.values == [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 9), (8, 27)]
    assert result.history[-1]["alpha"] == [c.probabilities().tolist() for c in (model[1], model[2])]


def test_darts_ada_without_a_stop_is_one_run(digits):
    _, arch, weight = digits
    es = DartsES(Scripted([1.0] * 4), window=1)
    result = darts_ada(two_rows(), weight, arch, epochs=4, early_stop=es, batch_size=256, progress=False)
    assert result.rollbacks == [] and result.weight_decay == 3e-4 and len(result.history) == 4
    with pytest.raises(ValueError, match="eta > 1"):
        darts_ada(two_rows(), weight, arch, epochs=4, eta=1.0)


def test_rdarts_keeps_the_architecture_that_retrains_best(digits, monkeypatch):
    _, arch, weight = digits
    searched = []

    def spy(model, *args, **kwargs):
        searched.append((model, kwargs["weight_decay"]))  # kept alive: ids of freed models get reused
        return train_bilevel(model, *args, **kwargs)

    monkeypatch.setattr(early_stop, "train_bilevel", spy)
    scores = iter([0.2, 0.9, math.nan, 0.9, 0.1])
    selected, retrained = [], []

    def select(model):
        selected.append(model)
        return f"architecture {len(selected)}"

    def retrain(architecture):
        retrained.append(architecture)
        return next(scores)

    result = rdarts(two_rows, weight, arch, select=select, retrain=retrain, epochs=1, batch_size=256, progress=False)
    assert [wd for _, wd in searched] == list(L2_FACTORS) == pytest.approx([3e-4, 9e-4, 2.7e-3, 8.1e-3, 2.43e-2])
    assert all(s is m for s, (m, _) in zip(selected, searched))
    assert len({id(m) for m in selected}) == 5                 # a fresh model per search
    assert retrained == [f"architecture {i}" for i in range(1, 6)]
    assert [c.weight_decay for c in result.candidates] == list(L2_FACTORS)
    assert result.best.architecture == "architecture 2" and result.best.weight_decay == 9e-4  # the first of a tie
    assert all(len(c.search.history) == 1 for c in result.candidates)
    with pytest.raises(ValueError, match="weight_decays is empty"):
        rdarts(two_rows, weight, arch, select=select, retrain=retrain, weight_decays=(), epochs=1)


# --- R-DARTS(DP): ScheduledDropPath (RobustDARTS §5.1) -----------------------------------------------------------

class DropPathRows(nn.Module):
    """``two_rows`` with a ``drop_path_prob``; records the value of every training forward, per epoch."""

    def __init__(self):
        super().__init__()
        self.drop_path_prob = 0.0
        self.body = two_rows()
        self.seen: list[float] = []

    def forward(self, x):
        if self.training:
            self.seen.append(self.drop_path_prob)
        return self.body(x)


def test_rdarts_dp_schedules_each_probability_linearly_and_keeps_the_best(digits, monkeypatch):
    from archgraph.oneshot.early_stop import DROP_PATH_PROBS, rdarts_dp
    from archgraph.oneshot.regularize import Cutout

    _, arch, weight = digits
    calls, schedules = [], []

    def spy(model, *args, **kwargs):
        calls.append(kwargs)
        per_epoch = []
        result = train_bilevel(model, *args, **kwargs, on_epoch=lambda row, m: per_epoch.append(set(m.seen))
                               or m.seen.clear())
        schedules.append(per_epoch)
        return result

    monkeypatch.setattr(early_stop, "train_bilevel", spy)
    cutout = Cutout(length=4)
    scores = iter([0.5, 0.7, 0.9, 0.6])
    result = rdarts_dp(DropPathRows, weight, arch, select=lambda m: len(calls), retrain=lambda a: next(scores),
                       cutout=cutout, epochs=4, batch_size=512, progress=False)
    assert DROP_PATH_PROBS == (0.0, 0.2, 0.4, 0.6)
    assert [c["drop_path_prob"] for c in calls] == list(DROP_PATH_PROBS)
    assert [c["cutout"] for c in calls] == [None, cutout, cutout, cutout]      # the reference: no cutout at p = 0
    assert all(c["weight_decay"] == 3e-4 for c in calls)
    for p, per_epoch, search in zip(DROP_PATH_PROBS, schedules, result.candidates):
        # RobustDARTS' reference code: model.drop_path_prob = drop_path_prob * epoch / (epochs - 1), exactly
        expected = [p * e / (4 - 1) for e in range(4)] if p > 0 else [0.0] * 4
        assert per_epoch == [{v} for v in expected]
        assert [row["drop_path_prob"] for row in search.search.history] == (expected if p > 0 else [None] * 4)
    assert result.best.drop_path_prob == 0.4 and result.best.architecture == 3
    assert [c.drop_path_prob for c in result.candidates] == list(DROP_PATH_PROBS)
    with pytest.raises(ValueError, match=r"drop_path_probs\[1\] is 1.0; each must be a drop-path probability in \[0, 1\)"):
        rdarts_dp(DropPathRows, weight, arch, select=len, retrain=len, drop_path_probs=(0.2, 1.0), epochs=1)
    with pytest.raises(ValueError, match="drop_path_probs is empty"):
        rdarts_dp(DropPathRows, weight, arch, select=len, retrain=len, drop_path_probs=(), epochs=1)
    with pytest.raises(ValueError, match="drop_path_probs repeats a value"):
        rdarts_dp(DropPathRows, weight, arch, select=len, retrain=len, drop_path_probs=(0.2, 0.2), epochs=1)
    with pytest.raises(TypeError, match="rdarts_dp sets drop_path_prob itself"):
        rdarts_dp(DropPathRows, weight, arch, select=len, retrain=len, drop_path_prob=0.2, epochs=1)


def test_drop_path_in_the_supernet_zeroes_whole_paths_with_its_probability_and_rescales_the_rest():
    """In a training forward each mixed edge's output is, per sample, either all zero (probability p) or
    scaled by exactly 1 / (1 − p), decided per sample and edge; in eval mode nothing is dropped."""
    from archgraph.oneshot.supernet import build_supernet

    net = build_supernet("s5", input_shape=(1, 8, 8), num_classes=10, C=4, layers=3, seed=0)
    cell = net.cells[0]                                   # a normal cell: node 2 = drop(edge 0→2) + drop(edge 1→2)
    outputs = {}
    hooks = [op.register_forward_hook(lambda m, i, o, j=j: outputs.__setitem__(j, o.detach()))
             for j, op in enumerate(cell.edge_ops)]
    hooks.append(cell.register_forward_hook(lambda m, i, o: outputs.__setitem__("node", o.detach())))
    p, n = 0.4, 500
    x = torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    net.drop_path_prob = p
    torch.manual_seed(0)
    net.train()(x)
    y0, y1, node = outputs[0], outputs[1], outputs["node"]
    masks = []
    for i in range(n):
        fits = [(m0, m1) for m0 in (0, 1) for m1 in (0, 1)
                if torch.allclose(node[i], (m0 * y0[i] + m1 * y1[i]) / (1 - p), rtol=1e-5, atol=1e-6)]
        assert len(fits) == 1, f"sample {i}: not a sum of whole paths scaled by 1/(1 − p)"
        masks.append(fits[0])
    dropped = 2 * n - sum(m0 + m1 for m0, m1 in masks)
    assert abs(dropped - 2 * n * p) < 4.5 * math.sqrt(2 * n * p * (1 - p))      # binomial(1000, 0.4): 400 ± 70
    assert {m for m in masks} == {(0, 0), (0, 1), (1, 0), (1, 1)}              # independent per edge
    net.eval()
    kept = net(x)
    net.drop_path_prob = 0.0
    assert torch.equal(kept, net(x))                      # eval mode: no drop-path
    assert torch.equal(outputs["node"], outputs[0] + outputs[1])
    for hook in hooks:
        hook.remove()
