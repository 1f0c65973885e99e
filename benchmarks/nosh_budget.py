"""How many training epochs does each search need to find a near-best architecture? RANK-NOSH's
budget claim (Wang's thesis, ch. 4: > 5× less search budget than full-training predictor search
on the DARTS space), replayed on a tabular benchmark.

The table (``--table``, default ``benchmarks/data/fade_digits.json``; ``benchmarks/ground_truth.py``
builds them) holds architectures of the ``fade`` space with their per-epoch validation accuracy
and final test accuracy, per seed. A trial is answered by :class:`archgraph.bench.TabularObjective`:
its architecture looked up in the table (by the canonical hash of every cell, so isomorphic
cells match), the validation accuracy after ``trial.budget`` epochs, the mean over the table's
seeds; every strategy draws its candidates from the table only (the table as NOSH's finite
pool, :meth:`~archgraph.bench.TabularObjective.strategy`; the predictors rank every
architecture of the table not yet proposed).

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
resumed trial's budget`` (the strategies' ``epochs_trained``; checked against a ledger kept
by the objective, :attr:`~archgraph.bench.TabularObjective.epochs_spent`). After every tell, the architecture the search has *found* is its best at the top level
by validation accuracy after E epochs (the strategy's ``best``); a run reaches the target when
the found architecture's quality (``--metric``: ``val``, its validation accuracy after E
epochs, the default, or ``test``, its test accuracy in the table) is within ``--tolerance``
(0.005, half a point) of the best quality in the table. Its epochs-to-target are the epochs
trained at that tell. A run that has not reached the target when its epochs reach ``--cap``
(default E × the table's size: enough to train every architecture fully), or whose strategy is
exhausted first (NOSH and successive halving need not train every architecture to E), is
*censored*.

Prints, per method, the runs that reached the target, the median and quartiles of
epochs-to-target over seeds (censored runs counted as infinitely long: a quantile that falls on
one prints as "cens."), the mean ± std over the runs that reached it, and the budget-reduction
ratios of RANK-NOSH: median epochs of full-training predictor search / median of RANK-NOSH, and
the same for random search. The GNN is smaller and trained for fewer epochs than the library's
default (``--gnn-hidden 32 --gnn-epochs 50``) so that a run of all methods takes minutes on one
CPU thread per process.

    python benchmarks/nosh_budget.py [--table benchmarks/data/fade_digits.json] [--seeds 0 … 19]
        [--methods rank-nosh nosh predictor sh random] [--levels 4] [--n-new 8] [--sh-candidates 16]
        [--metric val] [--tolerance 0.005] [--cap EPOCHS] [--gnn-epochs 50] [--gnn-hidden 32]
        [--jobs 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from archgraph import spaces
from archgraph.bench import TabularObjective
from archgraph.search.nosh import SuccessiveHalving
from archgraph.trial import Result, Trial

METHODS = ("rank-nosh", "nosh", "predictor", "sh", "random")


def quality(table: TabularObjective, i: int, epochs: int, metric: str) -> float:
    """What the target is measured on: architecture ``i``'s validation accuracy after ``epochs``
    epochs (its mean over the table's seeds), or its test accuracy."""
    arch = table.archs[i]
    return float(table.curve(arch)[epochs - 1]) if metric == "val" else table.test_accuracy(arch)


class Brackets:
    """Successive-halving brackets one after another, as one ask/tell strategy: a bracket starts
    when the previous one is exhausted and draws architectures no earlier bracket drew."""

    def __init__(self, table: TabularObjective, *, epochs: int, levels: int, seed: int, candidates: int):
        self.table, self.epochs, self.levels, self.seed, self.candidates = table, epochs, levels, seed, candidates
        self.used: set[int] = set()
        self.done_epochs, self.found, self.offset, self.k = 0, None, 0, 0
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
                resume = None if trial.resume_from is None else trial.resume_from + self.offset
                return dataclasses.replace(trial, id=trial.id + self.offset, resume_from=resume)
            self.done_epochs += self.sh.epochs_trained
            self.offset += self.sh.next_id
            self._consider(self.sh.best)
            self._new_bracket()
        return None

    def tell(self, trial: Trial, result: Result) -> None:
        resume = None if trial.resume_from is None else trial.resume_from - self.offset
        self.sh.tell(dataclasses.replace(trial, id=trial.id - self.offset, resume_from=resume),
                     dataclasses.replace(result, trial_id=trial.id - self.offset))

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
    table = TabularObjective(args.table)   # checks each resumed trial and counts the epochs trained
    target = max(quality(table, i, args.epochs, args.metric) for i in range(len(table))) - args.tolerance
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strategy = make(method, table, seed, args)
        trials, reached = 0, None
        while table.epochs_spent < args.cap and (trial := strategy.ask()) is not None:
            strategy.tell(trial, table(trial))
            trials += 1
            assert strategy.epochs_trained == table.epochs_spent, (method, strategy.epochs_trained, table.epochs_spent)
            best = strategy.best
            if best is not None and quality(table, table.lookup(best[0]), args.epochs, args.metric) >= target:
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


def fmt(value: float) -> str:
    return "cens." if np.isinf(value) else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=Path(__file__).parent / "data" / "fade_digits.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(20)))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--levels", type=int, default=4, help="pyramid levels, budgets e, 2e, 4e, …, E")
    parser.add_argument("--n-new", type=int, default=8, help="candidates added per round (the thesis's K)")
    parser.add_argument("--sh-candidates", type=int, default=16, help="candidates per successive-halving bracket")
    parser.add_argument("--metric", choices=("val", "test"), default="val",
                        help="quality the target compares: validation after E epochs, or the table's test accuracy")
    parser.add_argument("--tolerance", type=float, default=0.005, help="target: within this of the table's best")
    parser.add_argument("--cap", type=int, default=None, help="epochs after which a run is censored "
                        "(default E × the table's architectures)")
    parser.add_argument("--gnn-epochs", type=int, default=50, help="Adam steps of each GNN fit (library: 200)")
    parser.add_argument("--gnn-hidden", type=int, default=32, help="GNN width (library: 64)")
    parser.add_argument("--jobs", type=int, default=1, help="searches run in parallel processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    table = TabularObjective(args.table)
    e = table.epochs // 2 ** (args.levels - 1)
    if e < 1:
        raise SystemExit(f"curves of {table.epochs} epochs are too short for {args.levels} levels")
    args.epochs = e * 2 ** (args.levels - 1)
    args.cap = args.cap or args.epochs * len(table)
    qualities = np.array([quality(table, i, args.epochs, args.metric) for i in range(len(table))])
    target = qualities.max() - args.tolerance
    near = int((qualities >= target).sum())
    what = f"validation after {args.epochs} epochs" if args.metric == "val" else "test accuracy"
    print(f"table {args.table}: {table.space}/{table.dataset}, {len(table)} distinct architectures, curves of "
          f"{table.epochs} epochs (the mean over each architecture's seeds)")
    print(f"budgets {[e * 2 ** i for i in range(args.levels)]} (E = {args.epochs}); target: {what} ≥ "
          f"{qualities.max():.4f} − {args.tolerance} = {target:.4f}, met by {near} of {len(table)} architectures "
          f"(random search needs ≈ E·(N+1)/(k+1) = {args.epochs * (len(table) + 1) / (near + 1):.0f} epochs on "
          f"average); cap {args.cap} epochs; n_new {args.n_new}; GNN {args.gnn_hidden} wide, {args.gnn_epochs} "
          f"epochs per fit; seeds {args.seeds}")
    curves = [table.curve(a) for a in table.archs]
    final = [c[args.epochs - 1] for c in curves]
    print("Spearman of validation after e epochs with after E (how well the lower levels rank): " + ", ".join(
        f"{e * 2 ** i}: {spearmanr([c[e * 2 ** i - 1] for c in curves], final).statistic:.2f}"
        for i in range(args.levels - 1)))

    jobs = [(m, s, args) for m in args.methods for s in args.seeds]
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(run, jobs, chunksize=1)
    else:
        results = [run(job) for job in jobs]

    medians = {}
    print(f"\n{'method':<10} {'reached':>8} {'median':>7} {'Q1':>6} {'Q3':>6} {'mean ± std (reached)':>21} "
          f"{'trials':>7} {'s/run':>6}")
    for method in args.methods:
        rows = [r for r in results if r["method"] == method]
        values = [np.inf if r["reached"] is None else r["reached"] for r in rows]
        done = [v for v in values if np.isfinite(v)]
        medians[method] = quantile(values, 0.5)
        spread = f"{np.mean(done):.0f} ± {np.std(done):.0f}" if done else "–"
        print(f"{method:<10} {len(done):>4}/{len(rows):<3} {fmt(medians[method]):>7} {fmt(quantile(values, 0.25)):>6} "
              f"{fmt(quantile(values, 0.75)):>6} {spread:>21} {np.mean([r['trials'] for r in rows]):>7.0f} "
              f"{np.mean([r['seconds'] for r in rows]):>6.1f}")
    print("\nper seed (epochs to target; 'cens.@N': not reached, stopped after N epochs):")
    for method in args.methods:
        cells = [f"{r['reached']}" if r["reached"] is not None else f"cens.@{r['epochs']}"
                 for r in results if r["method"] == method]
        print(f"  {method:<10} " + " ".join(cells))
    if "rank-nosh" in medians:
        for other in ("predictor", "random"):
            if other in medians:
                a, b = medians[other], medians["rank-nosh"]
                ratio = "n/a (a median is censored)" if np.isinf(a) or np.isinf(b) else f"{a / b:.2f}×"
                print(f"budget reduction, RANK-NOSH vs {other}: median {fmt(a)} / {fmt(b)} = {ratio}")
    fallbacks = sum(r["fallbacks"] for r in results)
    if fallbacks:
        print(f"({fallbacks} rounds proposed random architectures: their predictor could not be fitted)")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s ({args.jobs} process(es), {args.threads} torch thread(s) each)")


if __name__ == "__main__":
    main()
