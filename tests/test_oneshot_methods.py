import functools

import pytest
import torch
from torch.utils.data import Subset

from archgraph import SpaceError, spaces
from archgraph.data import fade_split, load
from archgraph.oneshot import methods
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

    monkeypatch.setattr(methods, "train_bilevel", recording)
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
    eager = functools.partial(DartsES, window=1, ratio=100.0)     # fires as soon as it can
    monkeypatch.setattr(methods, "DartsES", eager)
    result = run(digits, method="es", epochs=4)
    assert result.details["stop_epoch"] == 0 and len(result.history) == 2
    assert all(row["eigenvalue"] is not None for row in result.history)
    ada = run(digits, method="ada", epochs=4)
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
    assert set(METHODS) == {"darts", "es", "ada", "rdarts", "fair", "drnas", "gdas", "rsws"}
