"""FaDE's pseudo-gradient search vs random search vs Bayesian optimisation at equal wall-clock time.

FaDE §3.2, Fig. 8: each method searches the FaDE space (4 chained DAG cells of < 6 vertices)
for the same ``--seconds`` of wall-clock time per run (the runner stops asking new trials then;
trials in flight finish), once per seed, on digits by default (the task benchmarks/task_ceiling.py
chooses: its ranking over 16 architectures is steady from 10 epochs of training, split-half 0.91).
Runs are made seed by seed, the three methods in turn, so that a change of the machine's load
falls on every method alike.

* ``random`` and ``bo``: points of the cells' feature spaces, each scored by the median
  validation accuracy of ``--draws`` architectures drawn from it (§3.2: 5); BO is GP-UCB,
  κ = 2.5, ξ = 0, one optimiser per cell.
* ``fade``: every outer step trains the 4 × 7 hyper-architecture of the anchors' pools for
  ``--hyper-epochs`` epochs (§3.2: 5), moves the anchors by the pseudo-gradient (eq. 5) and
  trains ``--fade-draws`` architectures drawn from the anchors. Its hyper-architecture
  trainings count against its time like every other training.

All trained architectures are scored by validation accuracy. For each method the table lists
the architectures trained per run, the mean ± std test accuracy of the top 10 by validation
accuracy (pooled over seeds: Fig. 8's "top-10 accuracies"), the best validation accuracy and
the test accuracy of that architecture. The PNG beside ``--results`` box-plots the top-10 test
accuracies, one panel per dataset; ``--results`` (JSON) keeps every run's accuracies with the
command, versions and seeds; ``--runs`` keeps each finished run as it ends, so a killed benchmark
goes on where it stopped. Datasets are names of :func:`archgraph.data.load` (``mnist1d:N`` for
MNIST-1D of N samples). Kernels
as there: 5 on 1-d signals (the paper's), 3 on 8×8 digits (5×5 ones fade there, see the README);
batch ``--batch`` (FaDE §3: 128).

Measured at the defaults (2-core CPU with other work beside it; results/fade_vs_baselines.json):
top-10 test accuracy FaDE 0.858 ± 0.023 (80 architectures and 41 hyper-architectures per run),
random search 0.881 ± 0.024 (145), BO 0.886 ± 0.015 (187).

    python benchmarks/fade_vs_baselines.py [--seconds 480] [--datasets digits] [--seeds 0 1 2]
        [--epochs 10] [--batch 128] [--draws 5] [--hyper-epochs 5] [--fade-draws 2] [--fade-max-norm 1] [--top 10]
        [--out runs/fade_vs/<time>] [--results benchmarks/results/fade_vs_baselines.json]
        [--runs benchmarks/results/fade_vs_baselines.runs.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from archgraph.data import load  # noqa: E402
from archgraph.search.session import SearchConfig, search  # noqa: E402
from baselines import mean_std  # noqa: E402  (benchmarks/baselines.py, next to this script)
from provenance import write_results  # noqa: E402  (benchmarks/provenance.py, next to this script)

METHODS = ("fade", "random", "bo")


@dataclass(frozen=True)
class Run:
    """One (dataset, method, seed) search: its scored trials as (val, test) accuracy pairs."""

    accuracies: list[tuple[float, float]]
    hyper_trials: int
    seconds: float

    def best(self) -> tuple[float, float]:
        """(val, test) of the best architecture; NaNs where the budget ended before any was scored."""
        return max(self.accuracies, default=(float("nan"), float("nan")))


def strategy_params(method: str, args: argparse.Namespace) -> dict:
    if method == "fade":  # max_norm only where it departs from the paper's, so earlier runs keep their keys
        return {"hyper_epochs": args.hyper_epochs, "draws": args.fade_draws,
                **({"max_norm": args.fade_max_norm} if args.fade_max_norm != 1.0 else {})}
    return {"draws": args.draws}


def run_one(dataset: str, method: str, seed: int, args: argparse.Namespace) -> Run:
    kernel_size = 5 if len(load(dataset).input_shape) == 2 else 3  # 1-d signals: the paper's 5; 8×8 images: 3
    config = SearchConfig(space="fade", dataset=dataset, strategy=method, epochs=args.epochs, trials=None,
                          seconds=args.seconds, seed=seed, space_params={"kernel_size": kernel_size},
                          training={"batch_size": args.batch}, strategy_params=strategy_params(method, args))
    start = time.perf_counter()
    outcome = search(config, args.out / f"{dataset.replace(':', '-')}-{method}-seed{seed}", progress=False)
    scored = [r for r in outcome.results if r.scored]
    return Run(accuracies=[(r.score, r.metrics["test_accuracy"]) for r in scored],
               hyper_trials=len(outcome.results) - len(scored), seconds=time.perf_counter() - start)


def run_key(dataset: str, method: str, seed: int, args: argparse.Namespace) -> str:
    """What identifies one finished run in ``--runs``: every setting that shapes it."""
    return json.dumps({"dataset": dataset, "method": method, "seed": seed, "seconds": args.seconds,
                       "epochs": args.epochs, "batch": args.batch, **strategy_params(method, args)}, sort_keys=True)


def finished_runs(args: argparse.Namespace) -> dict[str, Run]:
    """The runs ``--runs`` holds (JSON lines), so a killed benchmark goes on where it stopped."""
    if not args.runs.is_file():
        return {}
    records = [json.loads(line) for line in args.runs.read_text().splitlines() if line.strip()]
    return {r.pop("key"): Run(accuracies=[tuple(a) for a in r["accuracies"]], hyper_trials=r["hyper_trials"],
                              seconds=r["seconds"]) for r in records}


def top_tests(runs: list[Run], k: int) -> list[float]:
    """Test accuracies of the ``k`` best architectures by validation accuracy, over all runs."""
    pooled = sorted((acc for run in runs for acc in run.accuracies), reverse=True)
    return [test for _, test in pooled[:k]]


def report(dataset: str, runs: dict[str, list[Run]], k: int) -> None:
    print(f"\n{dataset}")
    print(f"{'method':<8} {'archs/run':>9} {'hyper/run':>9} {f'top-{k} test acc':>17} "
          f"{'best val':>15} {'test of best':>15} {'s/run':>6}")
    for method, rs in runs.items():
        best = [r.best() for r in rs]
        print(f"{method:<8} {statistics.mean(len(r.accuracies) for r in rs):>9.1f} "
              f"{statistics.mean(r.hyper_trials for r in rs):>9.1f} {mean_std(top_tests(rs, k)):>17} "
              f"{mean_std([v for v, _ in best]):>15} {mean_std([t for _, t in best]):>15} "
              f"{statistics.mean(r.seconds for r in rs):>6.0f}")


def plot(results: dict[str, dict[str, list[Run]]], k: int, path: Path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.5), squeeze=False)
    for ax, (dataset, runs) in zip(axes[0], results.items()):
        ax.boxplot([top_tests(rs, k) for rs in runs.values()], tick_labels=list(runs))
        ax.set_title(dataset)
        ax.set_ylabel(f"test accuracy of the top {k}")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=480.0, help="wall-clock budget of each run")
    parser.add_argument("--datasets", nargs="+", default=["digits"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=128, help="batch size of every training (FaDE §3: 128)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--epochs", type=int, default=10,
                        help="training epochs of every architecture (digits ranks steadily from 10: task_ceiling.py)")
    parser.add_argument("--draws", type=int, default=5, help="architectures per point of random and bo (§3.2: 5)")
    parser.add_argument("--hyper-epochs", type=int, default=5, help="epochs per FaDE hyper-architecture (§3.2: 5)")
    parser.add_argument("--fade-draws", type=int, default=2, help="architectures FaDE trains per outer step")
    parser.add_argument("--fade-max-norm", type=float, default=1.0,
                        help="FaDE's max-norm scale (§2.2: 1; 0.01 ranks better on digits, see the README)")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("runs/fade_vs") / time.strftime("%Y%m%d-%H%M%S"))
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "fade_vs_baselines.json")
    parser.add_argument("--runs", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "fade_vs_baselines.runs.jsonl",
                        help="finished runs, one JSON line each; a run found there is not made again")
    args = parser.parse_args()

    print(f"FaDE space (batch {args.batch}), {args.seconds:.0f} s per run, {args.epochs} epochs per "
          f"architecture, seeds {' '.join(map(str, args.seeds))}; runs in {args.out}")
    for dataset in args.datasets:
        load(dataset)  # generated or cached once here, not on the first run's clock
    start = time.perf_counter()
    finished = finished_runs(args)
    results = {dataset: {method: [] for method in args.methods} for dataset in args.datasets}
    for dataset in args.datasets:
        for seed in args.seeds:  # seed-major: a change of the machine's load falls on every method alike
            for method in args.methods:
                key = run_key(dataset, method, seed, args)
                if key not in finished:
                    finished[key] = run_one(dataset, method, seed, args)
                    with args.runs.open("a") as f:
                        f.write(json.dumps({"key": key, **asdict(finished[key])}) + "\n")
                    print(f"{dataset} {method} seed {seed}: {len(finished[key].accuracies)} architectures, "
                          f"best val/test {finished[key].best()}", flush=True)
                results[dataset][method].append(finished[key])
    for dataset, runs in results.items():
        report(dataset, runs, args.top)
    plot(results, args.top, args.results.with_suffix(".png"))
    write_results(args.results, seeds=args.seeds, top=args.top,
                  runs={dataset: {method: [asdict(run) for run in rs] for method, rs in runs.items()}
                        for dataset, runs in results.items()},
                  top_test_accuracies={dataset: {method: top_tests(rs, args.top) for method, rs in runs.items()}
                                       for dataset, runs in results.items()})
    print(f"\ntotal {time.perf_counter() - start:.0f} s; figure {args.results.with_suffix('.png')}")


if __name__ == "__main__":
    main()
