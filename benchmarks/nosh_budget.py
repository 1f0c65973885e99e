"""How many training epochs does each search need to find a top architecture? RANK-NOSH's
budget claim (Wang's thesis, ch. 4: > 5× less search budget than full-training predictor search
on the DARTS space), replayed on a tabular benchmark.

The table (``--table``, default ``benchmarks/data/fade_digits_seeds.json.gz``;
``benchmarks/ground_truth.py`` builds them) holds architectures of the ``fade`` space with their
per-epoch validation accuracy and final test accuracy, per seed. A trial is answered by
:class:`archgraph.bench.TabularObjective`: its architecture looked up in the table (by the
canonical hash of every cell, so isomorphic cells match), the validation accuracy after
``trial.budget`` epochs. What a strategy observes (``--observe``): ``mean``, the mean curve over
the table's seeds (the default: the ground truth itself, noise averaged out), or ``trial``, one
training's curve (the trial's seed modulo the table's seeds; a promoted candidate continues its
own), as a search that trains sees one noisy training. Every strategy draws its candidates from
the table only (the table as NOSH's finite pool, :meth:`~archgraph.bench.TabularObjective.strategy`;
the predictors rank every architecture of the table not yet proposed).

Methods (all over the same pyramid, ``--levels`` budgets e, 2e, …, E with E the largest
e·2^(levels−1) ≤ the curves' length):

- ``rank-nosh``: :class:`~archgraph.search.nosh.NOSH` with ``predictor="gnn"`` (the pairwise
  ranking GIN, fitted every round on all observations);
- ``nosh``: NOSH with random proposals;
- ``predictor``: :class:`~archgraph.search.nosh.PredictorSearch` with the GNN: every candidate
  trained E epochs from scratch;
- ``sh``: :class:`~archgraph.search.nosh.SuccessiveHalving`, brackets of ``--sh-candidates``
  run one after another (a new bracket draws architectures no earlier bracket drew, until the
  table runs out), the best over brackets;
- ``random``: every candidate trained E epochs, in random order (PredictorSearch without a
  predictor).

The budget axis: *epochs trained*, the sum over the trials told so far of their epochs, where a
trial that resumes a checkpoint (a promotion) counts only the epochs it adds, ``budget −
resumed trial's budget`` (the strategies' ``epochs_trained``; checked against a ledger kept by
the objective, :attr:`~archgraph.bench.TabularObjective.epochs_spent`). After every tell, the
architecture the search has *found* is its best at the top level by the validation accuracy it
observed after E epochs (the strategy's ``best``). The *truth* is the mean over the table's
seeds (``--metric``: ``val``, validation accuracy after E epochs, the default, or ``test``, the
test accuracy); a run reaches the target when the found architecture is among the ``--top-k``
(10) best of the table by the truth (ties at the k-th included), so that several architectures
qualify. Its epochs-to-target are the epochs trained at that tell. A run that has not reached the
target when its epochs reach ``--cap`` (default E × the table's size: enough to train every
architecture fully), or whose strategy is exhausted first (NOSH and successive halving need not
train every architecture to E; with ``--observe trial`` a search may also settle on a noisy
winner), is *censored*.

Prints, per method, the runs that reached the target, the median and quartiles of
epochs-to-target over seeds (censored runs counted as infinitely long: a quantile that falls on
one prints as "cens."), the mean ± std over the runs that reached it, and the budget-reduction
ratios of RANK-NOSH: median epochs of full-training predictor search / median of RANK-NOSH, and
the same for random search, each with a 95 % percentile bootstrap interval over seeds
(:func:`archgraph.bench.bootstrap_interval`: each method's seeds resampled independently,
censored runs kept as ∞, so a resample whose numerator median is censored gives ∞ and one whose
denominator median is censored gives 0; ∞/∞ resamples are left out). The GNN is
smaller and trained for fewer epochs than the library's default (``--gnn-hidden 32 --gnn-epochs
50``) so that a run of all methods takes minutes on one CPU thread per process.

Every finished run is appended to ``--runs`` (JSON lines, keyed by its settings and the table's
checksum), so a killed benchmark goes on where it stopped; the summary and every run go to
``--results`` with the command and versions (``provenance.write_results``).

    python benchmarks/nosh_budget.py [--table benchmarks/data/fade_digits_seeds.json.gz] [--seeds 0 … 19]
        [--methods rank-nosh nosh predictor sh random] [--levels 4] [--n-new 8] [--sh-candidates 16]
        [--metric val] [--top-k 10] [--observe mean] [--cap EPOCHS] [--gnn-epochs 50] [--gnn-hidden 32]
        [--jobs 1] [--threads 1] [--results benchmarks/results/nosh_budget.json]
        [--runs benchmarks/results/nosh_budget.runs.jsonl]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from provenance import finished_runs, log_run, write_results  # benchmarks/provenance.py, next to this script
from scipy.stats import spearmanr

from archgraph import spaces
from archgraph.bench import TabularObjective, bootstrap_interval
from archgraph.search.base import asking
from archgraph.search.nosh import SuccessiveHalving
from archgraph.trial import Result, Trial

METHODS = ("rank-nosh", "nosh", "predictor", "sh", "random")
HERE = Path(__file__).resolve().parent


def qualities(table: TabularObjective, epochs: int, metric: str) -> np.ndarray:
    """The truth per architecture of the table: its validation accuracy after ``epochs`` epochs
    or its test accuracy, the mean over the table's seeds."""
    if metric == "val":
        return np.array([table.curve(a)[epochs - 1] for a in table.archs])
    return np.array([table.test_accuracy(a) for a in table.archs])


def top_k(values: np.ndarray, k: int) -> float:
    """The target: the k-th best of ``values`` (an architecture at least as good is in the top k)."""
    return float(np.sort(values)[::-1][min(k, len(values)) - 1])


class Brackets:
    """Successive-halving brackets one after another, as one ask/tell strategy: a bracket starts
    when the previous one is exhausted and draws architectures no earlier bracket drew."""

    def __init__(self, table: TabularObjective, *, epochs: int, levels: int, seed: int, candidates: int):
        self.table, self.epochs, self.levels, self.seed, self.candidates = table, epochs, levels, seed, candidates
        self.used: set[int] = set()
        self.done_epochs, self.found, self.k = 0, None, 0
        self.exhausted = False
        self._new_bracket()

    def _new_bracket(self) -> None:
        if len(self.used) >= len(self.table):
            self.exhausted = True
            return
        self.sh = SuccessiveHalving(spaces.load("fade"), epochs=self.epochs, levels=self.levels,
                                    seed=self.seed * 1000 + self.k,
                                    sampler=[a for i, a in enumerate(self.table.archs) if i not in self.used],
                                    candidates=min(self.candidates, len(self.table) - len(self.used)))
        self.k += 1

    def ask(self) -> Trial | None:
        while not self.exhausted:
            trial = self.sh.ask()
            if trial is not None:
                self.used.add(self.table.lookup(trial.arch))
                return trial
            self.done_epochs += self.sh.epochs_trained
            self._consider(self.sh.best)
            self._new_bracket()
        return None

    def tell(self, trial: Trial, result: Result) -> None:
        self.sh.tell(trial, result)

    def _consider(self, best) -> None:
        if best is not None and (self.found is None or best[1] > self.found[1]):
            self.found = best

    @property
    def epochs_trained(self) -> int:
        return self.done_epochs + (0 if self.exhausted else self.sh.epochs_trained)

    @property
    def best(self):
        candidates = [self.found] + ([] if self.exhausted else [self.sh.best])
        candidates = [b for b in candidates if b is not None]
        return max(candidates, key=lambda b: b[1]) if candidates else None


def make(method: str, table: TabularObjective, seed: int, args) -> object:
    """The strategy of ``method``, drawing from ``table``."""
    gnn = {"predictor": "gnn", "predictor_params": {"epochs": args.gnn_epochs, "hidden": args.gnn_hidden}}
    if method in ("rank-nosh", "nosh"):
        return table.strategy("nosh", seed=seed, epochs=args.epochs, levels=args.levels, n_new=args.n_new,
                              **(gnn if method == "rank-nosh" else {}))
    if method in ("predictor", "random"):
        return table.strategy("predictor", seed=seed, epochs=args.epochs, n_new=args.n_new,
                              **(gnn if method == "predictor" else {}))
    return Brackets(table, epochs=args.epochs, levels=args.levels, seed=seed, candidates=args.sh_candidates)


def run(job: tuple[str, int, argparse.Namespace]) -> dict:
    """One search: ask/tell until the target, the cap or exhaustion; its epochs-to-target (or None)."""
    method, seed, args = job
    torch.set_num_threads(args.threads)
    table = TabularObjective(args.table, seeds=args.observe)   # checks resumed trials, counts the epochs trained
    truth = qualities(table, args.epochs, args.metric)
    target = top_k(truth, args.top_k)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy = make(method, table, seed, args)
        ask = asking(strategy, seed)   # the run's trial ids and seeds, as a Runner numbers them
        trials, reached = 0, None
        while table.epochs_spent < args.cap and (trial := ask()) is not None:
            strategy.tell(trial, table(trial))
            trials += 1
            assert strategy.epochs_trained == table.epochs_spent, (method, strategy.epochs_trained, table.epochs_spent)
            best = strategy.best
            if best is not None and truth[table.lookup(best[0])] >= target:
                reached = table.epochs_spent
                break
    fallbacks = sum("cannot be fitted" in str(w.message) for w in caught)   # random rounds of a predictor search
    return {"method": method, "seed": seed, "reached": reached, "epochs": table.epochs_spent, "trials": trials,
            "seconds": time.perf_counter() - start, "fallbacks": fallbacks}


def quantile(values: list[float], q: float) -> float:
    """The q-quantile, censored runs (inf) included: inf when it falls on or next to one."""
    finite = np.where(np.isinf(values), 1e30, values)
    value = float(np.quantile(finite, q))
    return np.inf if value > 1e29 else value


def median_ratio(numerator: np.ndarray, denominator: np.ndarray) -> float:
    """median(numerator) / median(denominator), censored runs (inf) included: ∞/∞ is NaN."""
    a, b = quantile(numerator, 0.5), quantile(denominator, 0.5)
    return np.nan if np.isinf(a) and np.isinf(b) else np.inf if np.isinf(a) else a / b


def ratio_figures(numerator: list[float], denominator: list[float], resamples: int) -> dict:
    """The ratio of medians and its 95 % bootstrap interval over seeds."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    low, high = bootstrap_interval(median_ratio, a, b, resamples=resamples)
    return {"ratio": median_ratio(a, b), "low": low, "high": high}


def fmt(value: float, digits: int = 0) -> str:
    return "cens." if np.isinf(value) else "n/a" if np.isnan(value) else f"{value:.{digits}f}"


def run_key(method: str, seed: int, args: argparse.Namespace) -> str:
    """What identifies a finished run in ``--runs``: every setting that shapes it and the table's checksum."""
    return json.dumps({"method": method, "seed": seed, "table": args.checksum, "levels": args.levels,
                       "n_new": args.n_new, "sh_candidates": args.sh_candidates, "metric": args.metric,
                       "top_k": args.top_k, "observe": args.observe, "cap": args.cap, "gnn_epochs": args.gnn_epochs,
                       "gnn_hidden": args.gnn_hidden}, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=HERE / "data" / "fade_digits_seeds.json.gz")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--levels", type=int, default=4, help="pyramid levels, budgets e, 2e, 4e, …, E")
    parser.add_argument("--n-new", type=int, default=8, help="candidates added per round (the thesis's K)")
    parser.add_argument("--sh-candidates", type=int, default=16, help="candidates per successive-halving bracket")
    parser.add_argument("--metric", choices=("val", "test"), default="val",
                        help="the truth: seed-mean validation after E epochs, or seed-mean test accuracy")
    parser.add_argument("--top-k", type=int, default=10, help="target: the found architecture is in the table's top k")
    parser.add_argument("--observe", choices=("mean", "trial"), default="mean",
                        help="what a strategy sees: the seed-mean curve, or one training's (the trial's seed)")
    parser.add_argument("--cap", type=int, default=None, help="epochs after which a run is censored "
                        "(default E × the table's architectures)")
    parser.add_argument("--gnn-epochs", type=int, default=50, help="Adam steps of each GNN fit (library: 200)")
    parser.add_argument("--gnn-hidden", type=int, default=32, help="GNN width (library: 64)")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    parser.add_argument("--jobs", type=int, default=1, help="searches run in parallel processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "nosh_budget.json")
    parser.add_argument("--runs", type=Path, default=HERE / "results" / "nosh_budget.runs.jsonl",
                        help="finished runs, one JSON line each; a run found there is not made again")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    table = TabularObjective(args.table)
    args.checksum = hashlib.sha256(args.table.read_bytes()).hexdigest()[:16]
    e = table.epochs // 2 ** (args.levels - 1)
    if e < 1:
        raise SystemExit(f"curves of {table.epochs} epochs are too short for {args.levels} levels")
    args.epochs = e * 2 ** (args.levels - 1)
    args.cap = args.cap or args.epochs * len(table)
    truth = qualities(table, args.epochs, args.metric)
    target = top_k(truth, args.top_k)
    near = int((truth >= target).sum())
    what = f"validation after {args.epochs} epochs" if args.metric == "val" else "test accuracy"
    seen = "the mean over each architecture's seeds" if args.observe == "mean" else "one training (the trial's seed)"
    print(f"table {args.table}: {table.space}/{table.dataset}, {len(table)} distinct architectures, curves of "
          f"{table.epochs} epochs; strategies observe {seen}")
    print(f"budgets {[e * 2 ** i for i in range(args.levels)]} (E = {args.epochs}); target: seed-mean {what} ≥ "
          f"{target:.4f} (top {args.top_k}; best {truth.max():.4f}), met by {near} of {len(table)} architectures "
          f"(random search needs ≈ E·(N+1)/(k+1) = {args.epochs * (len(table) + 1) / (near + 1):.0f} epochs on "
          f"average); cap {args.cap} epochs; n_new {args.n_new}; GNN {args.gnn_hidden} wide, {args.gnn_epochs} "
          f"epochs per fit; seeds {args.seeds}")
    curves = [table.curve(a) for a in table.archs]
    final = [c[args.epochs - 1] for c in curves]
    print("Spearman of validation after e epochs with after E (how well the lower levels rank): " + ", ".join(
        f"{e * 2 ** i}: {spearmanr([c[e * 2 ** i - 1] for c in curves], final).statistic:.2f}"
        for i in range(args.levels - 1)))

    done = finished_runs(args.runs)
    jobs = [(m, s, args) for m in args.methods for s in args.seeds if run_key(m, s, args) not in done]
    print(f"{len(args.methods) * len(args.seeds) - len(jobs)} runs already in {args.runs}, {len(jobs)} to make",
          flush=True)
    with multiprocessing.get_context("spawn").Pool(args.jobs) if args.jobs > 1 else contextlib.nullcontext() as pool:
        for result in (pool.imap_unordered(run, jobs) if pool else map(run, jobs)):
            done[run_key(result["method"], result["seed"], args)] = result
            log_run(args.runs, run_key(result["method"], result["seed"], args), result)
    results = [done[run_key(m, s, args)] for m in args.methods for s in args.seeds]

    summary, values = {}, {}
    print(f"\n{'method':<10} {'reached':>8} {'median':>7} {'Q1':>6} {'Q3':>6} {'mean ± std (reached)':>21} "
          f"{'trials':>7} {'s/run':>6}")
    for method in args.methods:
        rows = [r for r in results if r["method"] == method]
        values[method] = [np.inf if r["reached"] is None else r["reached"] for r in rows]
        reached = [v for v in values[method] if np.isfinite(v)]
        summary[method] = {"reached": len(reached), "runs": len(rows), "median": quantile(values[method], 0.5),
                           "q1": quantile(values[method], 0.25), "q3": quantile(values[method], 0.75)}
        spread = f"{np.mean(reached):.0f} ± {np.std(reached):.0f}" if reached else "–"
        print(f"{method:<10} {len(reached):>4}/{len(rows):<3} {fmt(summary[method]['median']):>7} "
              f"{fmt(summary[method]['q1']):>6} {fmt(summary[method]['q3']):>6} {spread:>21} "
              f"{np.mean([r['trials'] for r in rows]):>7.0f} {np.mean([r['seconds'] for r in rows]):>6.1f}")
    print("\nper seed (epochs to target; 'cens.@N': not reached, stopped after N epochs):")
    for method in args.methods:
        cells = [f"{r['reached']}" if r["reached"] is not None else f"cens.@{r['epochs']}"
                 for r in results if r["method"] == method]
        print(f"  {method:<10} " + " ".join(cells))
    ratios = {}
    if "rank-nosh" in values:
        for other in ("predictor", "random", "nosh", "sh"):
            if other in values:
                ratios[other] = r = ratio_figures(values[other], values["rank-nosh"], args.resamples)
                print(f"budget reduction, RANK-NOSH vs {other}: median {fmt(summary[other]['median'])} / "
                      f"{fmt(summary['rank-nosh']['median'])} = {fmt(r['ratio'], 2)}×, 95 % bootstrap interval "
                      f"[{fmt(r['low'], 2)}, {fmt(r['high'], 2)}]")
    fallbacks = sum(r["fallbacks"] for r in results)
    if fallbacks:
        print(f"({fallbacks} rounds proposed random architectures: their predictor could not be fitted)")
    seconds = time.perf_counter() - t0
    print(f"\ntotal {seconds:.0f} s ({args.jobs} process(es), {args.threads} torch thread(s) each)")
    write_results(args.results, table=str(args.table), table_checksum=args.checksum, architectures=len(table),
                  epochs=args.epochs, metric=args.metric, top_k=args.top_k, target=target, qualifying=near,
                  observe=args.observe, cap=args.cap, seeds=args.seeds,
                  summary={m: {k: _json(v) for k, v in s.items()} for m, s in summary.items()},
                  ratios_vs_rank_nosh={m: {k: _json(v) for k, v in r.items()} for m, r in ratios.items()},
                  runs=results, seconds=round(seconds, 1))


def _json(value):
    """A figure for JSON: ∞ (censored) as the string "inf", NaN as None."""
    return "inf" if value == np.inf else None if isinstance(value, float) and np.isnan(value) else value


if __name__ == "__main__":
    main()
