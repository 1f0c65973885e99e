"""A --ray-address where no cluster answers: refused at once in one line, and the run, whose
config is written first, goes on with another evaluator."""

import socket
import subprocess
import sys

import pytest

from archgraph.cli import main
from archgraph.store import STORE_FILE, SQLiteStore
from test_search_session import CLI_TINY


def test_a_ray_address_nothing_answers_at_fails_in_one_line_and_the_run_resumes_on_the_pool(tmp_path, capsys):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on once it is closed
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    run = tmp_path / "run"
    argv = ["search", "--strategy", "random", "--trials", "2", "--no-progress", *CLI_TINY, "--out", str(run)]
    # ray.init itself retries such an address for minutes: the bound here is the test's, not a measurement
    done = subprocess.run([sys.executable, "-m", "archgraph.cli", *argv, "--evaluator", "ray", "--ray-address", address],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"archgraph: error: no Ray cluster answers at {address} (Connection refused); ")
    assert done.stderr.endswith(f"continue it with `archgraph search --resume {run} --evaluator process` "
                                "(or another --ray-address)\n")
    with SQLiteStore(run / STORE_FILE) as store:
        assert store.config()["trials"] == 2 and store.results() == {}
    assert main(["search", "--resume", str(run), "--evaluator", "process", "--workers", "1", "--no-progress"]) == 0
    with SQLiteStore(run / STORE_FILE) as store:
        assert len(store.results()) == 2
