"""Every strategy on every space from the command line, and the strategies' own help."""

import inspect

import pytest

from archgraph import spaces
from archgraph.cli import main
from archgraph.search.encoding import encoding_for
from archgraph.search.options import strategy_options
from archgraph.search.session import STRATEGIES
from archgraph.store import STORE_FILE, SQLiteStore
from archgraph.trial import TrialState


def stored(run):
    with SQLiteStore(run / STORE_FILE) as store:
        return store.trials(), store.results()


def test_search_evolves_nas_bench_201_cells_on_digits(tmp_path, capsys):
    run = tmp_path / "run"
    # a population of one: the second trial is the first, mutated
    assert main(["search", "--space", "nb201", "--strategy", "evolution", "--dataset", "digits", "--trials", "2",
                 "--epochs", "1", "--param", "C=4", "--param", "N=1", "--strategy-param", "population_size=1",
                 "--strategy-param", "sample_size=1", "--no-progress", "--out", str(run)]) == 0
    assert "2 trials told" in capsys.readouterr().out
    trials, results = stored(run)
    assert all(r.state is TrialState.COMPLETE and r.metrics["epochs"] == 1 for r in results.values())
    parent, child = trials
    assert child.info["parent"] == parent.id
    encoding = encoding_for(spaces.load("nb201"))
    assert sum(a != b for a, b in zip(*(encoding.encode(t.arch)[0] for t in trials))) == 1
    cells, space = spaces.load_architecture(run / "best_arch.json")
    assert space == "nb201" and cells in (parent.arch, child.arch)


def test_search_draws_darts_cells_at_random_on_digits(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["search", "--space", "darts", "--strategy", "random", "--dataset", "digits", "--trials", "2",
                 "--epochs", "1", "--param", "C=4", "--param", "layers=3", "--no-progress", "--out", str(run)]) == 0
    trials, results = stored(run)
    assert [r.state for r in results.values()] == [TrialState.COMPLETE] * 2
    encoding = encoding_for(spaces.load("darts"))
    for t in trials:  # a trial is its point of the encoding, decoded
        assert encoding.encode(t.arch) == tuple(map(tuple, t.info["coordinates"]))
    assert trials[0].arch != trials[1].arch


def test_strategies_lists_every_parameter_with_its_default_and_documentation(capsys):
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    blocks = out.strip().split("\n\n")
    assert [block.split(":")[0] for block in blocks] == list(STRATEGIES)
    for block, cls in zip(blocks, STRATEGIES.values()):
        lines = block.splitlines()[1:]
        signature = inspect.signature(cls.__init__).parameters
        given = ("epochs", "seed", "objectives")  # objectives: --objective
        expected = [n for n, p in signature.items() if p.kind is p.KEYWORD_ONLY and n not in given]
        assert [line.split("=")[0].strip() for line in lines] == expected
        for line, name in zip(lines, expected):
            assert line.startswith(f"  {name}={signature[name].default!r} ")
            assert len(line.split(None, 1)[1]) > 15, f"{cls.__name__}.{name} has no documentation"


def test_strategies_takes_names_and_refuses_an_unknown_one(capsys):
    assert main(["strategies", "evolution"]) == 0
    assert capsys.readouterr().out == (
        "evolution: Ask/tell regularised evolution on a topology-only chained space or an nb201 or darts space.\n"
        "  population_size=10  Architectures the population holds (Real et al.'s P).\n"
        "  sample_size=3       Members drawn to choose a parent, the best of them (Real et al.'s S).\n"
        "  lag=None            Ask k waits for the first k − lag results and sees no later one, so any number of "
        "workers asks the same trials (w − 1 keeps w workers busy); None: it sees all told so far, which depend on "
        "the number of workers.\n")
    assert main(["strategies", "evolutoin"]) == 2
    assert capsys.readouterr().err == ("archgraph: error: unknown strategy 'evolutoin'; known: "
                                       f"{', '.join(STRATEGIES)}\n")


def test_a_parameter_documented_once_for_several_names_documents_each():
    options = {o.name: o for o in strategy_options(STRATEGIES["controller"])}
    assert options["lr"].doc == options["lr_decay"].doc and options["lr"].doc.startswith("Adam learning rate")
    fade = {o.name: o.doc for o in strategy_options(STRATEGIES["fade"])}
    assert fade["cell_dependent"] == "Cell-dependent max-norm schedule (shallower rows regularised earlier, §2.2, Fig. 2a)."
    assert fade["gamma"] == "The finite-difference offset γ in scaled feature units."


@pytest.mark.parametrize(("argv", "expected"), [
    (["--strategy", "evolution", "--strategy-param", "population=4"],
     "strategy 'evolution' has no parameter 'population'; its parameters: population_size=10, sample_size=3, "
     "lag=None (see `archgraph strategies evolution`)"),
    (["--strategy", "evolution", "--strategy-param", "sample_size=20"],
     "strategy 'evolution' refuses sample_size=20: need 1 <= sample_size <= population_size, got 20 and 10; its "
     "parameters: population_size=10, sample_size=3, lag=None (see `archgraph strategies evolution`)"),
    (["--strategy", "evolution", "--strategy-param", "lag=-1"],
     "strategy 'evolution' refuses lag=-1: lag is a whole number >= 0 (or None: asynchronous), got -1; its "
     "parameters: population_size=10, sample_size=3, lag=None (see `archgraph strategies evolution`)"),
    (["--strategy", "random", "--strategy-param", "draws=0"],
     "strategy 'random' refuses draws=0: draws must be at least 1, got 0; its parameters: draws=None (see "),
])
def test_a_bad_strategy_parameter_names_the_valid_ones_in_one_line(tmp_path, capsys, argv, expected):
    run = tmp_path / "run"
    assert main(["search", "--space", "nb201", *argv, "--trials", "1", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"archgraph: error: {expected}") and err.count("\n") == 1
    assert not run.exists()
