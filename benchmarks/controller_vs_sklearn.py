"""Controller NAS against scikit-learn's MLPClassifier and random search, on three small tasks.

The comparison of the controller-NAS seed (Minutoli & Ciranni, NAS overview §5): on
``digits``, ``wine`` and ``breast_cancer``, per seed,

* ``controller``: :class:`~archgraph.search.controller.ControllerSearch` on the ``mlp`` space
  (LSTM 128, REINFORCE, accuracy predictor, bigram weight sharing), ``--rounds`` controller
  epochs of ``--batch`` architectures, each trained ``--epochs`` epochs (Adam 1e-3, batch 128);
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
the test accuracy, and the wall-clock seconds per run; then the total time. Trials train in
``--workers`` processes (one torch thread each); runs are kept in ``OUT/<task>/<method>-seed<seed>``.

    python benchmarks/controller_vs_sklearn.py [--datasets digits wine breast_cancer]
        [--seeds 0 1 2] [--rounds 4] [--batch 4] [--epochs 10] [--workers 2] [--out runs/controller/<time>]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from archgraph import spaces
from archgraph.embody import mlp_graph
from archgraph.data import load, train_val_split
from archgraph.evaluate import InProcessEvaluator, ProcessPoolEvaluator, TrialEvaluator
from archgraph.search.controller import ControllerSearch
from archgraph.search.runner import Budget, Runner
from archgraph.store import MemoryStore
from archgraph.trial import Result, Trial

METHODS = ("controller", "random", "sklearn")


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


def run_search(method: str, dataset: str, seed: int, args, evaluator) -> tuple[float, float, float]:
    """(best validation accuracy, its test accuracy, seconds) of one search run."""
    space = spaces.load("mlp")
    run_dir = args.out / dataset / f"{method}-seed{seed}"
    objective = TrialEvaluator("mlp", dataset, str(run_dir), split_seed=seed)
    strategy = (ControllerSearch(space, epochs=args.epochs, seed=seed, batch=args.batch) if method == "controller"
                else RandomChains(space, epochs=args.epochs, seed=seed))
    start = time.perf_counter()
    results = Runner(strategy, objective, store=MemoryStore(), evaluator=evaluator,
                     budget=Budget(trials=args.rounds * args.batch), seed=seed, progress=False).run()
    seconds = time.perf_counter() - start
    best = max(results, key=lambda r: (r.score, -r.trial_id))
    return best.score, best.metrics["test_accuracy"], seconds


def run_sklearn(dataset: str, seed: int) -> tuple[float, float, float]:
    """(validation accuracy, test accuracy, seconds) of MLPClassifier() on the searches' training part."""
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
    return val, test, time.perf_counter() - start


def _numpy(dataset) -> tuple[np.ndarray, np.ndarray]:
    x, y = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(x).flatten(1).numpy(), torch.stack(y).numpy()


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["digits", "wine", "breast_cancer"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=4, help="controller epochs (the seed: 10)")
    parser.add_argument("--batch", type=int, default=4, help="architectures per controller epoch (the seed: 10)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per architecture (the seed: 10)")
    parser.add_argument("--workers", type=int, default=2, help="training processes (1: in this process)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", type=Path, default=Path("runs/controller") / time.strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(f"mlp space; searches: {args.rounds} rounds × {args.batch} architectures × {args.epochs} epochs per run; "
          f"seeds {' '.join(map(str, args.seeds))}; {args.workers} worker(s), 1 torch thread each; runs in {args.out}\n")
    start = time.perf_counter()
    evaluator = ProcessPoolEvaluator(args.workers) if args.workers > 1 else InProcessEvaluator()
    rows = []
    with evaluator:
        for dataset in args.datasets:
            for method in args.methods:
                runs = [run_sklearn(dataset, seed) if method == "sklearn" else
                        run_search(method, dataset, seed, args, evaluator) for seed in args.seeds]
                rows.append((dataset, method, *zip(*runs)))
                print(f"  {dataset} {method}: done ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\n{'task':<14}  {'method':<10}  {'best val':<15}  {'test (of best)':<15}  s/run")
    for dataset, method, val, test, seconds in rows:
        print(f"{dataset:<14}  {method:<10}  {mean_std(list(val)):<15}  {mean_std(list(test)):<15}  "
              f"{statistics.mean(seconds):.1f}")
    print(f"\ntotal {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
