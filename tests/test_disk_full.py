"""A full disk during a search: one line that names the run folder and says how to go on, exit
status 2, and a run that resumes, once there is space, to the run an uninterrupted search makes."""

import errno
import sqlite3

import pytest

from archgraph import evaluate
from archgraph.cli import main
from archgraph.search import session
from archgraph.search.session import search
from archgraph.store import STORE_FILE, SQLiteStore
from test_search_session import CLI_RANDOM, RANDOM, same_run


def full_on(calls: int, error: Exception):
    """A wrapper of a writer that does its first ``calls - 1`` writes and then raises ``error``."""
    def wrap(write):
        count = [0]

        def writer(*args, **kwargs):
            count[0] += 1
            if count[0] >= calls:
                raise error
            return write(*args, **kwargs)
        return writer
    return wrap


NO_SPACE = OSError(errno.ENOSPC, "No space left on device")
WRITERS = {  # what fills the disk: (object, attribute, the error its write raises)
    "checkpoint": (evaluate, "save_checkpoint", NO_SPACE),
    "store": (SQLiteStore, "record_tell", sqlite3.OperationalError("database or disk is full")),
    "outputs": (session, "_write_outputs", NO_SPACE),
}


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    run = tmp_path_factory.mktemp("whole") / "run"
    search(RANDOM, run, progress=False)
    return run


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_disk_stops_the_search_in_one_line_and_the_run_resumes_to_the_uninterrupted_one(
        tmp_path, monkeypatch, capsys, whole, writer):
    owner, name, error = WRITERS[writer]
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(owner, name, full_on(4 if writer != "outputs" else 1, error)(getattr(owner, name)))
        assert main(["search", *CLI_RANDOM, "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"archgraph: error: the disk of {run} is full (")
    assert err.endswith(f"free space, then continue it with `archgraph search --resume {run}`\n")
    with SQLiteStore(run / STORE_FILE) as store:  # readable, with its config and what finished
        assert store.config() is not None
        told = len(store.results())
    assert told == (6 if writer == "outputs" else 3)
    assert main(["search", "--resume", str(run), "--no-progress"]) == 0
    same_run(run, whole)
    assert (run / "best.json").exists()
