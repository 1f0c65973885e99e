"""The README's Python tour runs as written, and prints the same figures on every run."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def tour() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python block"
    return blocks[0]


def test_readme_tour_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(tour(), "README.md", "exec"), {})
    assert (tmp_path / "cell.png").stat().st_size > 0


def test_readme_tour_prints_the_same_figures_on_every_run(tmp_path):
    """Two fresh interpreters run the tour up to its last ``print``, with its budgets cut to one
    epoch and two trials. Each starts torch's global generator from its own random seed and
    Python's hashing from its own hash seed, so a figure drawn from either differs."""
    lines = tour().splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("print("))
    code, cuts = re.subn(r"\b(epochs|trials)=\d+", lambda m: f"{m[1]}={1 if m[1] == 'epochs' else 2}",
                         "\n".join(lines[:last + 1]))
    assert cuts >= 5, "the tour's budgets are no longer 'epochs=N' / 'trials=N': cut them again here"
    outputs = []
    for run in ("first", "second"):
        folder = tmp_path / run
        folder.mkdir()
        (folder / "tour.py").write_text(code)
        done = subprocess.run([sys.executable, "tour.py"], cwd=folder, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    figures = outputs[0].splitlines()
    assert len(figures) == sum(line.startswith("print(") for line in code.splitlines())
    assert outputs[1] == outputs[0]
