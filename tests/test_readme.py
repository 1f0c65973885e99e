"""The README's Python tour runs as written and prints the same figures on every run; every
shell line of the README runs."""

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from archgraph.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def tour() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python block"
    return blocks[0]


def test_readme_tour_runs_as_written_and_prints_the_same_figures_on_every_run(tmp_path, monkeypatch, capsys):
    """The tour runs as written here and in a fresh interpreter. Each has its own state of torch's
    global generator (here: whatever the tests before left) and its own hash seed, so a figure
    drawn from either would differ."""
    here, fresh = tmp_path / "here", tmp_path / "fresh"
    for folder in (here, fresh):
        folder.mkdir()
    monkeypatch.chdir(here)
    exec(compile(tour(), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    (fresh / "tour.py").write_text(tour())
    done = subprocess.run([sys.executable, "tour.py"], cwd=fresh, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONHASHSEED": "random"})
    assert done.returncode == 0, done.stderr
    assert (here / "cell.png").stat().st_size > 0 and (fresh / "cell.png").stat().st_size > 0
    assert len(printed.splitlines()) == tour().count("\nprint(")
    assert done.stdout == printed


# The README's shell lines. Each runs as written with small budgets appended (argparse keeps an
# option's last value): a search gets --trials 2 and --epochs 1, but for NOSH, which keeps its own
# --epochs so that its budget rule (the halvings) is checked as written; `archgraph darts`, whose
# DARTS-PT selection passes over the validation split after every decision, also gets a smaller
# supernet and larger batches. Commands that train nothing, and a resumed search, run as written.
SMALL = {
    "search": ["--trials", "2", "--epochs", "1"],
    "darts": ["--epochs", "1", "--retrain-epochs", "1", "--C", "4", "--layers", "3", "--batch-size", "256"],
    "train": ["--epochs", "1"],
    "predict": ["--epochs", "5"],   # the predictor's training, with --fit
}
CI_RUN = README.parent / ".ci" / "run"


def section_lines(title: str) -> list[str]:
    """The lines of the fenced blocks (```bash or ```) of the README's section ``## title``."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", text[start:end if end != -1 else None], flags=re.S)
    assert blocks, f"the README's section {title!r} has no shell block"
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def small(line: str) -> list[str]:
    """``archgraph COMMAND ...`` of a README line, as argv for ``main`` with the small budget appended."""
    argv = shlex.split(line, comments=True)
    assert argv[0] == "archgraph", f"not an archgraph command: {line}"
    command = argv[1]
    resumed = "--resume" in argv
    fitted = command != "predict" or "--fit" in argv
    nosh = any(a == "--strategy" and b == "nosh" for a, b in zip(argv, argv[1:]))
    budget = [] if resumed or not fitted else SMALL.get(command, [])
    return [*argv[1:], *(budget[:2] if nosh else budget)]


def test_the_two_commands_at_the_top_install_what_ci_installs():
    """Their setup steps need the network and minutes, so they are checked, not run: the test
    command is the one CI runs, the torch pinned is the one installed, the extras named exist;
    tests/test_package.py installs the wheel into a fresh virtual environment, and the first
    command's search runs in the test below."""
    install, test = section_lines("Two commands")
    assert test == CI_RUN.read_text().strip().splitlines()[-1]
    assert test.endswith(" && pytest -q -n auto") and install.split(" && ")[-1].startswith("archgraph search ")
    extras = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for line in (install, test):
        for step in line.split(" && ")[:-1]:
            if pinned := re.search(r"torch==(\S+)", step):
                assert pinned[1] == torch.__version__.split("+")[0], f"the README pins torch {pinned[1]}"
            if project := re.search(r"pip install (?:-q )?-e (\S+)", step):
                named = re.fullmatch(r'"?\.(?:\[(.*)\])?"?', project[1])
                assert named and set(filter(None, (named[1] or "").split(","))) <= set(extras), step


def readme_lines() -> list[str]:
    """The first command's search, then every line of "The command line", "What the defaults
    reach" and "How to look at, compare and ship results", in order."""
    return [section_lines("Two commands")[0].split(" && ")[-1], *section_lines("The command line"),
            *section_lines("What the defaults reach"), *section_lines("How to look at, compare and ship results")]


def run_paths(line: str) -> set[Path]:
    """The paths under ``runs/`` a line writes or reads."""
    return {Path(arg) for arg in shlex.split(line, comments=True) if arg.startswith("runs/")}


def line_groups(lines: list[str]) -> list[list[str]]:
    """``lines`` in groups that share no run, each in README order: a line joins every group
    that holds one of its paths or a folder above one; one that names only the folder of all
    runs (``runs``) joins the group of the line before it."""
    def shared(ours: set[Path], theirs: set[Path]) -> bool:
        return any(a.is_relative_to(b) or b.is_relative_to(a) for a in ours for b in theirs)

    groups: list[tuple[set[Path], list[str]]] = []
    for line in lines:
        paths = run_paths(line)
        joined = [g for g in groups if shared(g[0], paths)] or (
            groups[-1:] if "runs" in shlex.split(line, comments=True) else [])
        merged = (paths.union(*(g[0] for g in joined)), [x for g in joined for x in g[1]] + [line])
        groups = [g for g in groups if g not in joined] + [merged]
    return [sorted(g[1], key=lines.index) for g in groups]


def test_line_groups_keep_a_run_with_its_readers_in_order():
    lines = ["archgraph search --out runs/a", "archgraph show x.json", "archgraph search --out runs/b",
             "archgraph report runs/a/trial-0.json runs/b", "archgraph runs list runs", "archgraph search --out runs/c",
             "archgraph train --out runs/d/one", "archgraph train --out runs/d/two"]
    assert line_groups(lines) == [["archgraph show x.json"], [lines[0], lines[2], lines[3], lines[4]], [lines[5]],
                                  [lines[6]], [lines[7]]]


GROUPS = line_groups(readme_lines())


@pytest.mark.parametrize("lines", GROUPS, ids=[f"{i:02d}-{g[0].split()[1]}" for i, g in enumerate(GROUPS)])
def test_every_command_line_of_the_readme_runs_with_a_small_budget(lines, tmp_path, monkeypatch, capsys):
    """Each group of README lines (a run and the lines that read it) in a folder of its own where
    examples/ is the repository's; the groups run apart, in parallel under pytest -n."""
    (tmp_path / "examples").symlink_to(README.parent / "examples", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for line in lines:
        try:
            code = main(small(line))
        except SystemExit as stop:   # argparse refused the line
            code = stop.code
        out = capsys.readouterr()
        assert code == 0, f"README line `{line}` failed ({code}): {out.err.strip()[-2000:]}"
