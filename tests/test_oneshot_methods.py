import functools

import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from archgraph import SpaceError, spaces
from archgraph.data import fade_split, load
from archgraph.oneshot import early_stop, methods, progressive
from archgraph.oneshot.early_stop import DartsES
from archgraph.oneshot.methods import METHODS, retrain, search_darts
from archgraph.oneshot.nb201 import NB201Supernet
from archgraph.relax import Dirichlet, Gumbel, Sigmoid, choices


@pytest.fixture(scope="module")
def digits():
    _, arch, weight = fade_split(load("digits").train, seed=0)
    return Subset(weight, range(128)), Subset(arch, range(64))


def run(digits, space="s5", method="darts", **kwargs):
    weight, arch = digits
    settings = dict(weight_data=weight, arch_data=arch, input_shape=(1, 8, 8), num_classes=10, epochs=2, C=4,
                    layers=3, batch_size=32, samples=50, progress=False)
    return search_darts(space, method, **{**settings, **kwargs})


@pytest.fixture
def spy(monkeypatch):
    """Records the supernet and settings of every train_bilevel call."""
    calls = []
    original = methods.train_bilevel

    def recording(model, *args, **kwargs):
        calls.append((model, kwargs))
        return original(model, *args, **kwargs)

    for module in (methods, early_stop, progressive):   # search_darts, R-DARTS and DrNAS' stages call it
        monkeypatch.setattr(module, "train_bilevel", recording)
    return calls


@pytest.mark.parametrize("method", ["darts", "fair", "drnas", "gdas", "rsws"])
def test_every_method_finds_cells_the_space_compiles(digits, method):
    result = run(digits, method=method)
    assert result.method == method and len(result.cells) == 2
    model = spaces.load("s5").compile(list(result.cells), input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    assert model.eval()(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert len(result.history) == 2 and result.seconds > 0
    assert (result.eigenvalue is None) == (method == "rsws")


def test_methods_are_configurations_of_one_trainer(digits, spy):
    run(digits, "s3", "fair")
    supernet, settings = spy[-1]
    assert all(isinstance(c.relaxation, Sigmoid) for c in choices(supernet))
    assert all("none" not in supernet.edge_ops(t, e) for t in supernet.cell_types for e in supernet.edges(t))
    assert type(settings["regularizer"]).__name__ == "ZeroOneLoss" and settings["optimizer"] == "sgd"
    run(digits, method="drnas")
    supernet, settings = spy[-1]
    assert all(isinstance(c.relaxation, Dirichlet) for c in choices(supernet)) and settings["arch_lr"] == 6e-4
    result = run(digits, method="gdas")
    supernet, settings = spy[-1]
    assert all(isinstance(c.relaxation, Gumbel) and c.relaxation.hard for c in choices(supernet))
    assert [row["tau"] for row in result.history] == [10.0, 0.1]
    run(digits, method="darts", order=2, lr=0.05)
    _, settings = spy[-1]
    assert settings["order"] == 2 and settings["lr"] == 0.05 and settings["arch_betas"] == (0.5, 0.999)


def test_darts_es_keeps_the_architecture_of_its_stop_epoch(digits, monkeypatch):
    eager = functools.partial(DartsES, ratio=100.0)     # with window 1: fires as soon as it can
    monkeypatch.setattr(methods, "DartsES", eager)
    result = run(digits, method="es", epochs=4, es_window=1)
    assert result.details["stop_epoch"] == 0 and len(result.history) == 2
    assert all(row["eigenvalue"] is not None for row in result.history)
    ada = run(digits, method="ada", epochs=4, es_window=1)
    assert ada.details["rollbacks"] == [0, 0] and ada.details["weight_decay"] == pytest.approx(3e-2)


def test_rdarts_keeps_the_search_whose_cells_retrain_best(digits):
    result = run(digits, method="rdarts", epochs=1, retrain_epochs=1)
    scores = result.details["scores"]
    assert list(scores) == [3e-4, 9e-4, 2.7e-3, 8.1e-3, 2.43e-2]
    weight, arch = digits
    best = max(scores, key=scores.get)
    assert retrain("s5", result.cells, weight, arch, input_shape=(1, 8, 8), num_classes=10, epochs=1, C=4,
                   layers=3, batch_size=32) == pytest.approx(scores[best])
    assert result.eigenvalue > 0                        # measured on the chosen search's supernet


def test_perturbation_selection_decides_every_edge(digits):
    result = run(digits, method="darts", select="pt", tune_epochs=0)
    assert result.select == "pt" and [cell.num_edges for cell in result.cells] == [2, 2]


def test_the_nas_bench_201_supernet_is_searched_and_discretised(digits, spy):
    result = run(digits, "nb201", "gdas", epochs=1, layers=1)
    supernet, _ = spy[-1]
    assert isinstance(supernet, NB201Supernet) and (supernet.C, supernet.N) == (4, 1)
    assert all(isinstance(c.relaxation, Gumbel) and c.relaxation.hard for c in choices(supernet))
    assert len(result.cells) == 1 and result.cells[0].is_identical(supernet.arch())  # each edge's argmax of α
    assert result.eigenvalue is not None
    projected = run(digits, "nb201", "darts", select="pt", tune_epochs=0, epochs=1, layers=1)
    cell = projected.cells[0]
    assert cell.num_edges == 6 and "none" not in cell.edge_ops.values()  # six op projections, no topology step
    weight, arch = digits
    assert 0.0 <= retrain("nb201", projected.cells, weight, arch, input_shape=(1, 8, 8), num_classes=10, epochs=1,
                          C=4, layers=1, batch_size=32) <= 1.0  # layers is N there


@pytest.mark.parametrize("method", ["fair", "rsws"])
def test_methods_that_need_the_darts_cell_are_refused_on_nb201(digits, method):
    with pytest.raises(SpaceError, match=f"method '{method}' needs the DARTS cell .*; choose one of darts, es, ada"):
        run(digits, "nb201", method)


def test_unknown_method_or_selection_is_refused(digits):
    with pytest.raises(ValueError, match="unknown method 'snas'; choose one of darts, es, ada"):
        run(digits, method="snas")
    with pytest.raises(ValueError, match="unknown select 'random'"):
        run(digits, select="random")
    assert set(METHODS) == {"darts", "es", "ada", "rdarts", "fair", "drnas", "gdas", "rsws", "rdarts-dp",
                            "drnas-progressive"}


# --- R-DARTS(DP), the lists and windows as parameters, DSCD, the caller's RNG ----------------------------------

def test_rdarts_dp_searches_once_per_drop_path_probability(digits, spy):
    result = run(digits, method="rdarts-dp", epochs=3, retrain_epochs=1, drop_path_probs=[0.0, 0.6])
    assert list(result.details["scores"]) == [0.0, 0.6]
    assert [settings["drop_path_prob"] for _, settings in spy] == [0.0, 0.6]
    assert spy[0][1]["cutout"] is None
    assert spy[1][1]["cutout"].length == 4 and spy[1][1]["cutout"].prob == 1.0   # half the 8-pixel side
    assert all(settings["weight_decay"] == 3e-4 for _, settings in spy)
    scores = result.details["scores"]
    best = max(scores, key=scores.get)
    assert [row["drop_path_prob"] for row in result.history] == ([0.0, 0.3, 0.6] if best == 0.6 else [None] * 3)


def test_rdarts_dp_on_signals_cuts_out_half_of_each_signal_and_retrains_a_1d_network(spy):
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(96, 1, 40, generator=generator), torch.randint(0, 10, (96,), generator=generator))
    weight, arch = Subset(data, range(64)), Subset(data, range(64, 96))
    result = run((weight, arch), method="rdarts-dp", epochs=2, retrain_epochs=1, drop_path_probs=[0.4],
                 input_shape=(1, 40))
    cutout = spy[0][1]["cutout"]
    assert (cutout.length, cutout.dim) == (20, 1) and list(result.details["scores"]) == [0.4]
    net = spaces.load("s5").compile(list(result.cells), input_shape=(1, 40), num_classes=10, C=4, layers=3)
    assert net.stem[0].kernel_size == (3,) and net(torch.randn(2, 1, 40)).shape == (2, 10)


def test_es_window_l2_factors_and_drop_path_probs_reach_their_methods(digits, spy, monkeypatch):
    windows = []
    monkeypatch.setattr(methods, "DartsES", lambda tracker, **kw: windows.append(kw) or DartsES(tracker, **kw))
    run(digits, method="es", epochs=1)
    run(digits, method="es", epochs=1, es_window=3)
    assert windows == [{"window": 5}, {"window": 3}]                       # the paper's k = 5 by default
    result = run(digits, method="rdarts", epochs=1, retrain_epochs=1, l2_factors=[1e-4, 1e-2])
    assert list(result.details["scores"]) == [1e-4, 1e-2]
    assert [settings["weight_decay"] for _, settings in spy[-2:]] == [1e-4, 1e-2]


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "darts", "es_window": 3}, "es_window is DARTS-ES' window k; it applies to method 'es' and 'ada' only"),
    ({"method": "es", "es_window": 0}, "es_window is DARTS-ES' k, .* an int of at least 1 .*; got 0"),
    ({"method": "darts", "l2_factors": [1e-3]}, "l2_factors are the L2 factors .* apply to method 'rdarts' only"),
    ({"method": "rdarts", "l2_factors": []}, "l2_factors is empty"),
    ({"method": "rdarts", "l2_factors": [1e-3, -1.0]}, r"l2_factors\[1\] is -1.0; each must be an L2 factor"),
    ({"method": "rdarts", "drop_path_probs": [0.2]}, "drop_path_probs are .* apply to method 'rdarts-dp' only"),
    ({"method": "rdarts-dp", "drop_path_probs": [0.2, 1.2]}, r"drop_path_probs\[1\] is 1.2"),
    ({"method": "rdarts-dp", "drop_path_probs": [0.2, 0.2]}, "drop_path_probs repeats a value"),
    ({"method": "darts", "arch_optimizer": "sgd"}, "unknown arch_optimizer 'sgd'; choose 'adam' .* or 'dscd'"),
    ({"method": "drnas-progressive", "C": 8}, "C must be a multiple of 12; got C=8"),
])
def test_bad_options_are_refused_before_anything_runs(digits, kwargs, message):
    method = kwargs.pop("method")
    with pytest.raises(ValueError, match=message):
        run(digits, method=method, **kwargs)


@pytest.mark.parametrize("method", ["darts", "rsws", "drnas"])
def test_search_and_retrain_leave_the_callers_random_generators_alone(digits, method):
    import random

    import numpy as np

    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    before = torch.get_rng_state(), np.random.get_state(), random.getstate()
    result = run(digits, method=method, epochs=1)
    weight, arch = digits
    retrain("s5", result.cells, weight, arch, input_shape=(1, 8, 8), num_classes=10, epochs=1, C=4, layers=3,
            batch_size=32)
    torch_state, np_state, py_state = before
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state))
    assert random.getstate() == py_state
    again = run(digits, method=method, epochs=1)                            # and the seed alone decides the run
    assert [c.is_identical(d) for c, d in zip(result.cells, again.cells)] == [True, True]
    assert [row.get("alpha") for row in result.history] == [row.get("alpha") for row in again.history]


def test_dscd_steps_alpha_in_every_search_that_trains_it(digits, dscd_instances):
    made = dscd_instances
    result = run(digits, method="darts", arch_optimizer="dscd")
    assert len(made) == 1 and made[0].state_dict()["step"] == made[0].total_steps == 2 * 4
    assert result.eigenvalue > 0


def test_cli_darts_with_dscd_on_s5_completes(tmp_path, capsys, dscd_instances):
    """``archgraph darts --space s5 --arch-optimizer dscd`` on digits with a tiny budget."""
    from archgraph.cli import main

    made = dscd_instances
    out = tmp_path / "run"
    code = main(["darts", "--space", "s5", "--arch-optimizer", "dscd", "--epochs", "1", "--C", "4", "--layers", "3",
                 "--batch-size", "128", "--retrain-epochs", "0", "--out", str(out), "--no-progress"])
    assert code == 0 and (out / "arch.json").exists()
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["arch_optimizer"] == "dscd" and len(metrics["history"]) == 1
    assert len(made) == 1 and made[0].total_steps == len(metrics["history"]) * 6       # 718 weight samples / 128
    assert "λ_max of ∇²_α L_valid at the end" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--method", "darts", "--l2-factors", "1e-3"], "--l2-factors are the L2 factors of R-DARTS(L2)'s searches"),
    (["--method", "rdarts-dp", "--drop-path-probs", "0.2", "1"], "--drop-path-probs[1] is 1.0"),
    (["--method", "es", "--es-window", "0"], "--es-window is DARTS-ES' k"),
    (["--method", "drnas-progressive"], "C must be a multiple of 12; got --C 8"),
])
def test_cli_darts_refuses_bad_lists_before_making_the_run_folder(tmp_path, capsys, argv, message):
    from archgraph.cli import main

    out = tmp_path / "run"
    assert main(["darts", "--space", "s5", *argv, "--out", str(out), "--no-progress"]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_drnas_progressive_runs_its_two_stages(digits, spy):
    result = run(digits, method="drnas-progressive", C=12, epochs=2)
    stages = result.details["stages"]
    assert [(s["epochs"], s["partial_channels"], s["ops_per_edge"], s["warmup"]) for s in stages] == [
        ((0, 1), 6, 3, 0), ((1, 2), 4, 3, 0)]                                 # S5 has 3 ops per edge: none pruned
    assert [settings["lr"] for _, settings in spy] == [0.1, 0.1] and spy[0][1]["min_lr"] == 0.0
    assert [settings["arch_lr"] for _, settings in spy] == [6e-4, 6e-4]
    assert [(s["start_epoch"], s["end_epoch"], s["arch_warmup"]) for _, s in spy] == [(0, 1, 0), (1, 2, 1)]
    assert [row["epoch"] for row in result.history] == [0, 1] and result.eigenvalue > 0
    model = spaces.load("s5").compile(list(result.cells), input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
