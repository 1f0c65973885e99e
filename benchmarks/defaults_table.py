"""What `archgraph train` and a 20-trial random search reach with their defaults, beside scikit-learn.

Runs every line of the README's section "What the defaults reach" as written (in this process,
through :func:`archgraph.cli.main`, from the repository root, one torch thread), so each figure
of the README's table comes from a command printed there: `archgraph train` of an example
architecture (``fade`` on the image and signal tasks, ``mlp`` on the tables) and a 20-trial
search (``random`` in the fade space's feature space, ``predictor`` without a predictor — random
MLPs, each trained in full — in the mlp space, where random search does not go), every setting
at its default (seed 0; the task's training defaults of :data:`archgraph.train.TASK_DEFAULTS`, the
space's parameters fitted to the input). Beside them scikit-learn's ``LogisticRegression`` and
``MLPClassifier`` (their defaults, ``max_iter=2000``, ``random_state=0``) fitted on the same
training part (``train_val_split(task.train, val_fraction=0.2, seed=0)``, what `train` fits on)
and scored on the same test split.

Reports test accuracy: of the trained architecture, and of the search's best trial by validation
accuracy. Resumable: a command whose run folder is complete is read, not run again; a search
stopped midway continues with ``--resume``. Writes ``benchmarks/results/defaults_table.json``
and prints the README's table.

    OMP_NUM_THREADS=1 python benchmarks/defaults_table.py
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import torch

from archgraph import data
from archgraph.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTION = "What the defaults reach"
RESULTS = ROOT / "benchmarks" / "results" / "defaults_table.json"


def readme_lines() -> list[str]:
    """The shell lines of the README's section ``SECTION``."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {SECTION}\n")
    section = text[start:text.find("\n## ", start + 1)]
    return [line for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
            for line in block.splitlines() if line.strip()]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def run(line: str) -> dict:
    """Run a README line unless its run folder is complete; its figures."""
    argv = shlex.split(line, comments=True)[1:]
    out = ROOT / option(argv, "--out")
    done = out / ("metrics.json" if argv[0] == "train" else "best.json")
    status = out / "status.json"
    start = time.perf_counter()
    if argv[0] == "train" and not (done.exists() and "test" in json.loads(done.read_text())):
        shutil.rmtree(out, ignore_errors=True)
        assert main([*argv, "--no-progress"]) == 0, line
    elif argv[0] == "search" and not (status.exists() and json.loads(status.read_text()).get("state") == "finished"):
        resumed = (out / "store.sqlite").exists()
        assert main(["search", "--resume", str(out), "--no-progress"] if resumed else [*argv, "--no-progress"]) == 0
    seconds = time.perf_counter() - start
    record = {"command": line, "kind": argv[0], "space": option(argv, "--space"), "dataset": option(argv, "--dataset")}
    if argv[0] == "train":
        metrics = json.loads(done.read_text())
        return {**record, "test_accuracy": metrics["test"]["accuracy"], "val_accuracy": metrics["history"][-1]["val_accuracy"],
                "epochs": len(metrics["history"]), "params": metrics["params"], "seconds_this_call": seconds}
    best = json.loads(done.read_text())
    return {**record, "test_accuracy": best["test_accuracy"], "val_accuracy": best["val_accuracy"],
            "best_trial": best["trial"], "seconds_this_call": seconds}


def sklearn_baselines(dataset: str) -> dict:
    """LogisticRegression and MLPClassifier on the training part `archgraph train` fits on."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    task = data.load(dataset)
    fit, _ = data.train_val_split(task.train, val_fraction=0.2, seed=0)

    def arrays(ds):
        x, y = zip(*(ds[i] for i in range(len(ds))))
        return torch.stack(x).flatten(1).numpy(), torch.stack(y).numpy()

    (x, y), (x_test, y_test) = arrays(fit), arrays(task.test)
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, model in (("LogisticRegression", LogisticRegression(max_iter=2000, random_state=0)),
                            ("MLPClassifier", MLPClassifier(max_iter=2000, random_state=0))):
            scores[name] = float(model.fit(x, y).score(x_test, y_test))
    return scores


def table(rows: list[dict], baselines: dict) -> str:
    lines = ["| dataset | space | `archgraph train` (example) | search, 20 trials (best by val.) | LogisticRegression "
             "| MLPClassifier |", "| --- | --- | --- | --- | --- | --- |"]
    for dataset, scores in baselines.items():
        trained, searched = (next(r for r in rows if r["dataset"] == dataset and r["kind"] == kind)
                             for kind in ("train", "search"))
        lines.append(f"| {dataset} | {trained['space']} | {trained['test_accuracy']:.3f} | "
                     f"{searched['test_accuracy']:.3f} | {scores['LogisticRegression']:.3f} | "
                     f"{scores['MLPClassifier']:.3f} |")
    return "\n".join(lines)


def measure() -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = []
    for line in readme_lines():
        rows.append(run(line))
        print(f"{rows[-1]['test_accuracy']:.3f} test  {line}", flush=True)
    baselines = {d: sklearn_baselines(d) for d in dict.fromkeys(r["dataset"] for r in rows)}
    write_results(RESULTS, seed=0, sklearn=version("scikit-learn"), commands=[r["command"] for r in rows],
                  runs=rows, baselines=baselines, seconds=time.perf_counter() - start)
    print(table(rows, baselines))


if __name__ == "__main__":
    measure()
