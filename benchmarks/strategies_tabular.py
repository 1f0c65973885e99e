"""Random search vs Bayesian optimisation vs regularised evolution on a tabular benchmark.

The table (``--table``, default ``benchmarks/data/fade_digits_seeds.json.gz``;
``benchmarks/ground_truth.py`` builds them) holds ``fade`` architectures trained on digits with
several seeds each. Every trial trains its architecture fully (the table's epochs E) and is
answered by :class:`archgraph.bench.TabularObjective`; what a strategy observes (``--observe``):
``mean``, the validation accuracy after E epochs averaged over the table's seeds (the default:
the ground truth itself), or ``trial``, one training's (the trial's seed modulo the table's
seeds), as a search that trains sees one noisy training.

Methods, each drawing only the table's architectures and never one twice
(:meth:`archgraph.bench.TabularObjective.strategy`):

- ``random``: the table's architectures in a random order (uniform without replacement);
- ``random-features``: FaDE's random search (uniform points of each cell's feature space, §3.2)
  with every proposal moved to the nearest architecture of the table not yet proposed
  (:class:`archgraph.bench.OnTable`) — the control for the bias of that projection;
- ``bo-pool``: GP-UCB BO (κ = 2.5, FaDE §3.2) choosing among the table's unproposed
  architectures in the cells' concatenated feature coordinates (:class:`archgraph.bench.PoolBO`);
- ``evolution``: regularised evolution (Real et al. 2019, Algorithm 1; ``--population``,
  ``--sample-size``), mutations projected the same way (its population holds table members);
- ``bo`` (not run unless named): FaDE's GP-UCB BO as the library runs it (scikit-optimize, κ =
  2.5, ξ = 0, one optimiser per cell, §3.2), one architecture drawn per point (``--draws``),
  projected the same way; its four GP fits per trial take ≈ 5 s, so 20 seeds × 100 trials take hours.

After each trial, the architecture a search has *found* is the best it has observed; its quality
is its *truth*, the mean over the table's seeds of its validation accuracy after E epochs
(``--metric val``, the default) or of its test accuracy (``--metric test``). Prints, at every
trial count of ``--at`` (25, 50, 100), each method's mean truth of the found architecture over
the search seeds with a 95 % percentile bootstrap interval (:func:`archgraph.bench.bootstrap_interval`,
seeds resampled), and every pair's difference of means with its interval (independent
resampling of the two methods' seeds): a method *wins* a pair where the interval excludes 0.
Writes the curves with bands to ``--png`` and everything to ``--results`` (with the command and
versions, ``provenance.write_results``).

    python benchmarks/strategies_tabular.py [--table benchmarks/data/fade_digits_seeds.json.gz]
        [--seeds 0 … 19] [--trials 100] [--methods random random-features bo evolution] [--at 25 50 100]
        [--metric val] [--observe mean] [--draws 1] [--population 10] [--sample-size 3] [--jobs 1]
        [--results benchmarks/results/strategies_tabular.json] [--png benchmarks/results/strategies_tabular.png]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from nosh_budget import qualities  # noqa: E402  (benchmarks/, next to this script)
from provenance import write_results  # noqa: E402

from archgraph.bench import TabularObjective, bootstrap_interval  # noqa: E402
from archgraph.search.base import asking  # noqa: E402

METHODS = ("random", "random-features", "bo-pool", "evolution", "bo")
DEFAULT_METHODS = METHODS[:4]   # "bo", FaDE's per-cell BO projected, takes ≈ 5 s per trial (four GP fits)
HERE = Path(__file__).resolve().parent


def make(method: str, table: TabularObjective, seed: int, args: argparse.Namespace):
    """The strategy of ``method``, drawing only the table's architectures."""
    params = {"bo": {"draws": args.draws}, "random-features": {"draws": args.draws},
              "evolution": {"population_size": args.population, "sample_size": args.sample_size}}.get(method, {})
    return table.strategy(method, seed=seed, **params)


def search(method: str, seed: int, args: argparse.Namespace) -> np.ndarray:
    """One search of ``args.trials`` trials: the truth of the architecture found after each."""
    table = TabularObjective(args.table, seeds=args.observe)
    truth = qualities(table, table.epochs, args.metric)
    strategy = make(method, table, seed, args)
    ask = asking(strategy, seed)   # the run's trial ids and seeds, as a Runner numbers them
    found, best, curve = None, -np.inf, []
    for _ in range(args.trials):
        trial = ask()
        result = table(trial)
        strategy.tell(trial, result)
        if result.score > best:
            best, found = result.score, table.lookup(trial.arch)
        curve.append(truth[found])
    return np.array(curve)


def mean_interval(curves: np.ndarray, resamples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean over seeds (rows) at each trial count and its 95 % bootstrap interval."""
    low, high = bootstrap_interval(lambda c: c.mean(0), curves, resamples=resamples)
    return curves.mean(0), np.atleast_1d(low), np.atleast_1d(high)


def plot(curves: dict[str, np.ndarray], bands: dict, best: float, args: argparse.Namespace) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(1, args.trials + 1)
    for method, (mean, low, high) in bands.items():
        (line,) = ax.plot(x, mean, label=f"{method} ({len(curves[method])} seeds)")
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    ax.axhline(best, color="grey", ls=":", label="best in the table")
    ax.set_xlabel("trials (architectures trained fully)")
    ax.set_ylabel(f"seed-mean {'validation' if args.metric == 'val' else 'test'} accuracy of the found architecture")
    ax.set_title(f"{args.table.name}: mean over search seeds, 95 % bootstrap band", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.png, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=HERE / "data" / "fade_digits_seeds.json.gz")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--at", type=int, nargs="+", default=[25, 50, 100], help="trial counts compared")
    parser.add_argument("--metric", choices=("val", "test"), default="val",
                        help="the truth: seed-mean validation after E epochs, or seed-mean test accuracy")
    parser.add_argument("--observe", choices=("mean", "trial"), default="mean",
                        help="what a strategy sees: the seed-mean curve, or one training's (the trial's seed)")
    parser.add_argument("--draws", type=int, default=1, help="architectures per point of BO / random-features")
    parser.add_argument("--population", type=int, default=10, help="evolution's population (Real et al.'s P)")
    parser.add_argument("--sample-size", type=int, default=3, help="evolution's tournament (Real et al.'s S)")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    parser.add_argument("--jobs", type=int, default=1, help="searches run in parallel processes")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "strategies_tabular.json")
    parser.add_argument("--png", type=Path, default=HERE / "results" / "strategies_tabular.png")
    args = parser.parse_args()
    start = time.perf_counter()

    table = TabularObjective(args.table)
    if args.trials > len(table):
        raise SystemExit(f"{args.table} holds {len(table)} architectures; pass --trials <= {len(table)}")
    at = [t for t in args.at if t <= args.trials]
    truth = qualities(table, table.epochs, args.metric)
    print(f"table {args.table}: {len(table)} architectures, {table.epochs} epochs; truth: seed-mean "
          f"{args.metric} accuracy, best {truth.max():.4f}, median {np.median(truth):.4f}; strategies observe "
          f"{'the seed-mean' if args.observe == 'mean' else 'one training'}; seeds {args.seeds}", flush=True)

    curves, seconds = {}, {}
    with multiprocessing.get_context("spawn").Pool(args.jobs) if args.jobs > 1 else contextlib.nullcontext() as pool:
        for method in args.methods:
            t0 = time.perf_counter()
            jobs = [(method, seed, args) for seed in args.seeds]
            curves[method] = np.stack(pool.starmap(search, jobs) if pool else [search(*job) for job in jobs])
            seconds[method] = time.perf_counter() - t0
            print(f"  {method}: {seconds[method]:.1f} s", flush=True)
    bands = {m: mean_interval(c, args.resamples) for m, c in curves.items()}

    print("\nseed-mean truth of the found architecture: mean over search seeds [95 % bootstrap interval]")
    print(f"{'method':<16}" + "".join(f"{f'trial {t}':>26}" for t in at))
    for method, (mean, low, high) in bands.items():
        print(f"{method:<16}" + "".join(f"{f'{mean[t - 1]:.4f} [{low[t - 1]:.4f}, {high[t - 1]:.4f}]':>26}"
                                        for t in at))
    print("\ndifference of means [95 % bootstrap interval]; '<' / '>' where the interval excludes 0")
    print(f"{'pair':<28}" + "".join(f"{f'trial {t}':>30}" for t in at))
    pairs = {}
    for a, b in itertools.combinations(args.methods, 2):
        diff = [float((curves[a][:, t - 1]).mean() - curves[b][:, t - 1].mean()) for t in at]
        low, high = bootstrap_interval(lambda x, y: x.mean(0) - y.mean(0), curves[a][:, [t - 1 for t in at]],
                                       curves[b][:, [t - 1 for t in at]], resamples=args.resamples)
        low, high = np.atleast_1d(low), np.atleast_1d(high)
        pairs[f"{a} - {b}"] = {t: {"difference": d, "low": float(lo), "high": float(hi)}
                               for t, d, lo, hi in zip(at, diff, low, high)}
        cells = [f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}] {'>' if lo > 0 else '<' if hi < 0 else '='}"
                 for d, lo, hi in zip(diff, low, high)]
        print(f"{a + ' - ' + b:<28}" + "".join(f"{c:>30}" for c in cells))
    plot(curves, bands, truth.max(), args)
    total = time.perf_counter() - start
    print(f"\n{args.png}; total {total:.0f} s")
    write_results(args.results, table=str(args.table), architectures=len(table), metric=args.metric,
                  observe=args.observe, seeds=args.seeds, trials=args.trials, best_in_table=float(truth.max()),
                  at={m: {t: {"mean": float(mean[t - 1]), "low": float(low[t - 1]), "high": float(high[t - 1])}
                          for t in at} for m, (mean, low, high) in bands.items()},
                  differences=pairs, curves={m: c.round(4).tolist() for m, c in curves.items()},
                  seconds={m: round(s, 1) for m, s in seconds.items()})


if __name__ == "__main__":
    main()
