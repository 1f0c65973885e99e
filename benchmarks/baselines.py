"""Random search, Bayesian optimisation and regularised evolution on the FaDE space, at equal budget.

Each strategy runs :func:`archgraph.search.session.search` on the FaDE space and the digits
task with the same budget: ``--trials`` trained architectures of ``--epochs`` epochs each,
once per seed. Random search and BO work in the cells' feature space and score a proposal by
the median validation accuracy of ``--draws`` architectures drawn from it (FaDE §3.2; 5 in
the paper), each draw being one trial; regularised evolution mutates one architecture per
trial (Real et al. 2019). The cells use 3×3 kernels (``kernel_size=3``): the paper's 5×5
kernels read mostly padding on the 2×2 and 1×1 maps the deep cells see on 8×8 digits, and
the signal fades (see the README); batches are of 32.

Prints, per strategy, the best validation accuracy of each seed, mean ± std over seeds of
that best and of the test accuracy of the trial it selects, the distinct architectures
trained per run (cells compared up to isomorphism) and the wall-clock seconds per run; then
the total time. Each run is kept in ``OUT/<strategy>-seed<seed>``, and ``OUT/baselines.png``
shows the best validation accuracy over trials (mean over seeds, one curve per strategy).

BO starts from ``--bo-initial-points`` random proposals (2 here; scikit-optimize's default
is 10), so that at 30 trials and 5 draws 4 of its 6 proposals are guided by its GP. Trials
train in 2 worker processes by default (one torch thread each; with two workers evolution
picks parents among the trials told so far).

    python benchmarks/baselines.py [--trials 30] [--epochs 2] [--seeds 0 1 2] [--draws 5]
        [--bo-initial-points 2] [--strategies random bo evolution] [--out runs/baselines/<time>]
        [--evaluator process] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from archgraph.generate import canonical_form
from archgraph.plot import best_over_time
from archgraph.search.session import Execution, SearchConfig, search

#: strategies scoring a feature-space point by the median of ``draws`` architectures (FaDE §3.2)
POINT_STRATEGIES = ("random", "bo")
#: the strategies compared here, one trained architecture per trial (FaDE itself: fade_vs_baselines.py)
BASELINES = (*POINT_STRATEGIES, "evolution")


@dataclass(frozen=True)
class Run:
    """What one (strategy, seed) search gave."""

    scores: list[float]       # validation accuracy of each trial, in trial order
    best_val: float
    best_test: float          # test accuracy of the trial with the best validation accuracy
    distinct: int             # architectures trained, up to isomorphism of each cell
    seconds: float


def strategy_params(strategy: str, args: argparse.Namespace) -> dict:
    if strategy == "bo":
        return {"draws": args.draws, "initial_points": args.bo_initial_points}
    return {"draws": args.draws} if strategy in POINT_STRATEGIES else {}


def run_one(strategy: str, seed: int, args: argparse.Namespace) -> Run:
    config = SearchConfig(space="fade", dataset="digits", strategy=strategy, epochs=args.epochs, trials=args.trials,
                          seed=seed, space_params={"kernel_size": 3}, training={"batch_size": 32},
                          strategy_params=strategy_params(strategy, args))
    start = time.perf_counter()
    outcome = search(config, args.out / f"{strategy}-seed{seed}", progress=False,
                     execution=Execution(evaluator=args.evaluator, workers=args.workers))
    seconds = time.perf_counter() - start
    _, best = outcome.best
    return Run(scores=[r.score for r in sorted(outcome.results, key=lambda r: r.trial_id)],
               best_val=best.score, best_test=best.metrics["test_accuracy"],
               distinct=len({tuple(canonical_form(cell) for cell in t.arch) for t in outcome.trials}),
               seconds=seconds)


def mean_std(values: list[float]) -> str:
    """``mean ± std`` to 4 places; ``-`` for no values (a budget that ended before any was scored)."""
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def report(runs: dict[str, list[Run]], trials: int) -> None:
    print(f"{'strategy':<10}  {'best val per seed':<24}  {'best val':<15}  {'test of best':<15}  "
          f"{'distinct/run':<12}  s/run")
    for strategy, rs in runs.items():
        per_seed = " ".join(f"{r.best_val:.4f}" for r in rs)
        distinct = f"{statistics.mean(r.distinct for r in rs):.1f} / {trials}"
        print(f"{strategy:<10}  {per_seed:<24}  {mean_std([r.best_val for r in rs]):<15}  "
              f"{mean_std([r.best_test for r in rs]):<15}  {distinct:<12}  "
              f"{statistics.mean(r.seconds for r in rs):.1f}")


def plot(runs: dict[str, list[Run]], path: Path) -> None:
    """Best validation accuracy after each trial, averaged over seeds (a mean of running
    maxima is non-decreasing, so best_over_time draws it as it is)."""
    curves = {}
    for strategy, rs in runs.items():
        mean_best = np.mean([np.maximum.accumulate(r.scores) for r in rs], axis=0)
        curves[strategy] = list(enumerate(mean_best.tolist(), start=1))
    fig = best_over_time(curves, xlabel="trials", ylabel="best validation accuracy (mean over seeds)")
    fig.axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.savefig(path, bbox_inches="tight", dpi=150)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30, help="architectures trained per run")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per trial")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--draws", type=int, default=5,
                        help="architectures per feature-space point for random and bo (FaDE §3.2: 5)")
    parser.add_argument("--strategies", nargs="+", default=list(BASELINES), choices=list(BASELINES))
    parser.add_argument("--out", type=Path, default=Path("runs/baselines") / time.strftime("%Y%m%d-%H%M%S"),
                        help="folder of the run directories and baselines.png")
    parser.add_argument("--bo-initial-points", type=int, default=2, help="random proposals before BO's GP guides")
    parser.add_argument("--evaluator", default="process", choices=("inprocess", "process"))
    parser.add_argument("--workers", type=int, default=2, help="worker processes of --evaluator process")
    args = parser.parse_args()

    print(f"FaDE space (kernel_size=3), digits, batch 32: {args.trials} trials × {args.epochs} epochs per run, "
          f"seeds {' '.join(map(str, args.seeds))}, draws {args.draws} (random, bo), {args.evaluator} evaluator"
          f"{f' × {args.workers}' if args.evaluator == 'process' else ''}; runs in {args.out}\n")
    start = time.perf_counter()
    runs = {strategy: [run_one(strategy, seed, args) for seed in args.seeds] for strategy in args.strategies}
    report(runs, args.trials)
    initial = args.bo_initial_points
    if "bo" in runs and args.trials <= initial * args.draws:
        print(f"note: bo proposes {-(-args.trials // args.draws)} points, within its {initial} random initial "
              f"points: its GP guides no proposal below {initial * args.draws + 1} trials at --draws {args.draws}")
    plot(runs, args.out / "baselines.png")
    print(f"\ntotal {time.perf_counter() - start:.1f} s; figure {args.out / 'baselines.png'}")


if __name__ == "__main__":
    main()
