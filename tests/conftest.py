from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished random search of 3 one-epoch trials of the fade space (channels=2) on digits,
    made once for the tests that read a run folder (records, runs list, load_model, export); a test
    that changes the folder works on a copy."""
    from archgraph.search.session import SearchConfig, search

    run = tmp_path_factory.mktemp("tiny") / "run"
    search(SearchConfig(strategy="random", trials=3, epochs=1, space_params={"channels": 2, "kernel_size": 3},
                        strategy_params={"draws": 1}, training={"batch_size": 256}), run, progress=False)
    return run


@pytest.fixture
def dscd_instances(monkeypatch) -> list:
    """Every DSCD the bi-level trainer makes during the test, in the order made."""
    from archgraph.oneshot import bilevel

    made = []

    class Recorded(bilevel.DSCD):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(bilevel, "DSCD", Recorded)
    return made
