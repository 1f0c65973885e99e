"""Controller NAS against scikit-learn's MLPClassifier and random search, on three small tasks.

The comparison of the controller-NAS seed (Minutoli & Ciranni, NAS overview §5): on
``digits``, ``wine`` and ``breast_cancer``, per seed,

* ``controller``: :class:`~archgraph.search.controller.ControllerSearch` on the ``mlp`` space
  (LSTM 128, REINFORCE, accuracy predictor, bigram weight sharing), ``--rounds`` controller
  epochs of ``--batch`` architectures, each trained ``--epochs`` epochs (Adam 1e-3, batch 128),
  with its ``uniform_prior`` (``--no-uniform-prior``: without) and ``--entropy-weight``;
* ``random``: random search on the same space at the same budget (as many architectures,
  as many epochs each, the same trainer): a depth uniform in 1..10, then uniform layer
  tokens, no duplicates, no weight sharing;
* ``sklearn``: ``MLPClassifier()`` with its defaults (one hidden layer of 100 ReLU units,
  Adam, up to 200 iterations), ``random_state=seed``, fitted on the same training part.

The searches select their best architecture by validation accuracy (the split
:class:`~archgraph.evaluate.TrialEvaluator` makes with ``split_seed=seed``: 20 % of the
task's train set) and report that trial's test accuracy; the searched architectures are not
retrained. The seed reports on MNIST-like digits a test accuracy of 0.91–0.93 for
MLPClassifier and 0.72–0.86 for the controller's best (10 controller epochs × 10
architectures × 10 epochs with early stopping).

Prints, per task and method, mean ± std over seeds of the best validation accuracy and of
the test accuracy, and the wall-clock seconds per run; then the total time. Writes
``--results`` (JSON: the command, versions, seeds, and per run the best validation and test
accuracy and, per controller epoch, the mean reward (validation accuracy) and mean depth of
its architectures; random search's in batches of the same size) and a PNG beside it: the
mean reward per controller epoch, the mean over seeds and its range (min to max), one panel per
task. Trials train in ``--workers`` processes (one torch thread each); runs are kept in
``OUT/<task>/<method>-seed<seed>``. Every finished run is appended to ``--runs`` (JSON lines,
keyed by task, method, seed and the search settings; default beside ``--results``), so a killed
benchmark goes on where it stopped.

    python benchmarks/controller_vs_sklearn.py [--datasets digits wine breast_cancer]
        [--seeds 0 1 2 3 4] [--rounds 10] [--batch 10] [--epochs 10] [--workers 1] [--runs FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import torch
from threadpoolctl import threadpool_limits

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from archgraph import spaces
from archgraph.embody import mlp_graph, mlp_layers
from archgraph.data import load, train_val_split
from archgraph.evaluate import InProcessEvaluator, ProcessPoolEvaluator, TrialEvaluator
from archgraph.search.controller import ControllerSearch
from archgraph.search.runner import Budget, Runner
from archgraph.store import MemoryStore
from archgraph.trial import Result, Trial
from provenance import finished_runs, log_run, write_results  # noqa: E402  (benchmarks/provenance.py, next to this script)

METHODS = ("controller", "random", "sklearn")
#: the settings that shape a search run
SETTINGS = ("rounds", "batch", "epochs", "uniform_prior", "entropy_weight")


class RandomChains:
    """Random search on an ``mlp`` space: a uniform depth, then uniform layer tokens, no duplicates."""

    def __init__(self, space, *, epochs: int, seed: int = 0):
        self.ops, self.epochs = space.ops, epochs
        self.depths = (space.min_vertices, space.max_vertices)
        self.rng = np.random.default_rng(seed)
        self.seen: set[tuple[str, ...]] = set()

    def ask(self) -> Trial:
        layers = None
        while layers is None or layers in self.seen:
            depth = int(self.rng.integers(self.depths[0], self.depths[1] + 1))
            layers = tuple(self.ops[i] for i in self.rng.integers(len(self.ops), size=depth))
        self.seen.add(layers)
        return Trial.propose(mlp_graph(list(layers)), self.epochs)

    def tell(self, trial: Trial, result: Result) -> None:
        pass


def run_search(method: str, dataset: str, seed: int, args, evaluator) -> dict:
    """One search run: best validation accuracy, its test accuracy, seconds, and per batch of
    ``args.batch`` trials in id order (the controller's epochs) the mean reward and depth."""
    space = spaces.load("mlp")
    run_dir = args.out / dataset / f"{method}-seed{seed}"
    objective = TrialEvaluator("mlp", dataset, str(run_dir), split_seed=seed)
    strategy = (ControllerSearch(space, epochs=args.epochs, seed=seed, batch=args.batch,
                                 uniform_prior=args.uniform_prior, entropy_weight=args.entropy_weight)
                if method == "controller" else RandomChains(space, epochs=args.epochs, seed=seed))
    store = MemoryStore()
    start = time.perf_counter()
    results = Runner(strategy, objective, store=store, evaluator=evaluator,
                     budget=Budget(trials=args.rounds * args.batch), seed=seed, progress=False).run()
    seconds = time.perf_counter() - start
    scored = [r for r in results if r.scored]
    best = max(scored, key=lambda r: (r.score, -r.trial_id))
    depth = {t.id: len(mlp_layers(t.arch[0])) for t in store.trials()}
    rounds = [[r for r in scored if r.trial_id // args.batch == k] for k in range(args.rounds)]
    return {"val": best.score, "test": best.metrics["test_accuracy"], "seconds": seconds,
            "best_layers": mlp_layers(next(t for t in store.trials() if t.id == best.trial_id).arch[0]),
            "reward_per_round": [statistics.mean(r.score for r in rs) for rs in rounds],
            "depth_per_round": [statistics.mean(depth[r.trial_id] for r in rs) for rs in rounds]}


def run_sklearn(dataset: str, seed: int) -> dict:
    """Validation and test accuracy and seconds of MLPClassifier() on the searches' training part."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    task = load(dataset)
    train_part, val_part = train_val_split(task.train, 0.2, seed=seed)  # the TrialEvaluator's split
    arrays = [_numpy(part) for part in (train_part, val_part, task.test)]
    start = time.perf_counter()
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the defaults' 200 iterations, as they are
        model = MLPClassifier(random_state=seed).fit(*arrays[0])
        val, test = (model.score(*part) for part in arrays[1:])
    return {"val": val, "test": test, "seconds": time.perf_counter() - start}


def _numpy(dataset) -> tuple[np.ndarray, np.ndarray]:
    x, y = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(x).flatten(1).numpy(), torch.stack(y).numpy()


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def plot(runs: dict, path: Path) -> None:
    """Mean reward per controller epoch, the mean over seeds and their range (min to max: an sd band
    would pass accuracy 1), controller and random, one panel per task."""
    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3.4), squeeze=False)
    for ax, (dataset, methods) in zip(axes[0], runs.items()):
        for method, colour in (("controller", "C0"), ("random", "C1")):
            if method not in methods:
                continue
            curves = np.array([run["reward_per_round"] for run in methods[method]])
            mean = curves.mean(0)
            rounds = np.arange(1, len(mean) + 1)
            ax.plot(rounds, mean, color=colour, marker="o", ms=3, label=f"{method} ({len(curves)} seeds)")
            ax.fill_between(rounds, curves.min(0), curves.max(0), color=colour, alpha=0.2)
        ax.set_title(dataset)
        ax.set_xlabel("controller epoch (batch of trials)")
        ax.set_ylabel("mean validation accuracy of the batch")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def run_key(dataset: str, method: str, seed: int, args: argparse.Namespace) -> str:
    """What identifies a finished run in ``--runs``: the task, method, seed and every search setting."""
    settings = {} if method == "sklearn" else {k: getattr(args, k) for k in SETTINGS}
    return json.dumps({"dataset": dataset, "method": method, "seed": seed, **settings}, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["digits", "wine", "breast_cancer"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--rounds", type=int, default=10, help="controller epochs (the seed: 10)")
    parser.add_argument("--batch", type=int, default=10, help="architectures per controller epoch (the seed: 10)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per architecture (the seed: 10)")
    parser.add_argument("--uniform-prior", action=argparse.BooleanOptionalAction, default=True,
                        help="the controller starts as random search (ControllerSearch's uniform_prior)")
    parser.add_argument("--entropy-weight", type=float, default=1e-4, help="the controller's entropy bonus (ENAS: 1e-4)")
    parser.add_argument("--workers", type=int, default=1, help="training processes (1: in this process)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", type=Path, default=Path("runs/controller") / time.strftime("%Y%m%d-%H%M%S"))
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "controller_vs_sklearn.json")
    parser.add_argument("--runs", type=Path, default=None,
                        help="finished runs, one JSON line each, not made again (default: --results' name, .runs.jsonl)")
    args = parser.parse_args()
    args.runs = args.runs or args.results.with_suffix(".runs.jsonl")
    torch.set_num_threads(1)

    print(f"mlp space; searches: {args.rounds} rounds × {args.batch} architectures × {args.epochs} epochs per run; "
          f"controller uniform_prior={args.uniform_prior}, entropy_weight={args.entropy_weight}; "
          f"seeds {' '.join(map(str, args.seeds))}; {args.workers} worker(s), 1 torch thread each; runs in {args.out}\n")
    start = time.perf_counter()
    evaluator = ProcessPoolEvaluator(args.workers) if args.workers > 1 else InProcessEvaluator()
    runs = {dataset: {method: [] for method in args.methods} for dataset in args.datasets}
    done = finished_runs(args.runs)
    with evaluator:
        for dataset in args.datasets:
            for seed in args.seeds:  # seed-major: a change of the machine's load falls on every method alike
                for method in args.methods:
                    key = run_key(dataset, method, seed, args)
                    if key not in done:
                        done[key] = (run_sklearn(dataset, seed) if method == "sklearn" else
                                     run_search(method, dataset, seed, args, evaluator))
                        log_run(args.runs, key, done[key])
                    run = done[key]
                    runs[dataset][method].append({"seed": seed, **run})
                    print(f"  {dataset} {method} seed {seed}: val {run['val']:.4f} test {run['test']:.4f} "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\n{'task':<14}  {'method':<10}  {'best val':<15}  {'test (of best)':<15}  s/run")
    for dataset, methods in runs.items():
        for method, rs in methods.items():
            print(f"{dataset:<14}  {method:<10}  {mean_std([r['val'] for r in rs]):<15}  "
                  f"{mean_std([r['test'] for r in rs]):<15}  {statistics.mean(r['seconds'] for r in rs):.1f}")
    searches = [m for m in ("controller", "random") if m in args.methods]
    if searches:
        plot({d: {m: methods[m] for m in searches} for d, methods in runs.items()}, args.results.with_suffix(".png"))
    write_results(args.results, seeds=args.seeds,
                  settings={k: getattr(args, k) for k in (*SETTINGS, "workers")},
                  runs=runs, seconds=time.perf_counter() - start)
    print(f"\ntotal {time.perf_counter() - start:.1f} s; {args.results} and its .png")


if __name__ == "__main__":
    main()
