"""Adam vs Adam + DSCD vs random sampling vs CMA-ES on Styblinski–Tang and Schwefel (Bodin et al., App. B, Fig. 3).

Functions (REFERENCES.md): Styblinski–Tang ``½ Σ (x_i⁴ − 16 x_i² + 5 x_i)`` on ``[-5, 5]^d``,
minimum ``−39.16617·d``; Schwefel ``418.9829·d − Σ x_i sin(√|x_i|)`` on ``[-500, 500]^d``,
minimum 0. Both are minimised in normalised coordinates ``z ∈ [-3, 3]^d``, ``x = z·w/3`` with
``w`` the domain's half-width: the paper maps each domain onto DSCD's ``[-3, 3]`` (App. C), so
DSCD keeps its default ``bounds`` and a learning rate means the same step, relative to the
domain, on both functions. Every method stays in the domain: gradient methods are projected
(``z`` clamped to ``[-3, 3]`` after each step; Schwefel is unbounded below outside it).

Per function and dimension (``--dims``), ``--runs`` runs start from the same uniform random
points for every method, and every method gets ``--budget`` evaluations of ``f``:

* ``adam lr=…`` — Adam, one value-and-gradient evaluation per step, at each ``--lrs``, and
  ``adam linear``: the paper's learning rate rising linearly from 0.001 to 0.1 over the budget;
* ``adam+dscd …`` — the same Adam settings wrapped in :class:`archgraph.oneshot.dscd.DSCD`
  (``total_steps`` = budget, T = 50, K = 1000; one evaluation per step, local or global);
* ``random`` — the best of ``budget`` uniform samples of the domain;
* ``cma-es`` — ``cma.CMAEvolutionStrategy`` ask/tell from the run's start, σ0 = 1.5 (a quarter
  of the normalised width), the domain as bounds, stopped at the budget (``pip install cma``:
  the ``bench`` extra). If it stops early (converged) its best value stands for the rest.

Everything runs in float32, torch's default. This matters for DSCD: a local phase ends after
T = 50 steps that set no new record, and Adam at a constant learning rate keeps shaving digits
off its loss long after it has found its minimum: in float64 its local phases last hundreds of
steps longer. For the same reason ``--lrs`` defaults to 0.01 and 0.1: with lr = 0.001 Adam moves
at most 0.001 per step, is still descending at the end of 1000 evaluations, and DSCD never takes
a global step (Adam + DSCD is then Adam, run for run); give it ``--budget 5000`` or more.
Likewise DSCD runs with ``--tol 1e-3``: a step counts as an improvement for the switching rule
only if it lowers the best loss by 0.1%. With the paper's strict rule (``--tol 0``) Adam at
lr = 0.01 in 50 dimensions keeps setting tiny records, hands over to global steps only when the
proposals have nearly collapsed onto the current point, and Adam + DSCD merely ties Adam there
(−1604.89 both; measured 2026-11-23), while it wins in the 8 other Styblinski–Tang cells.

A run's value is the lowest ``f`` it evaluated (for Adam, the last iterates). Printed per
method and dimension: the median over runs and a distribution-free 95% confidence interval for
the median from order statistics (the ranks ``j`` and ``n + 1 − j`` with ``P(Bin(n, ½) < j) ≤
0.025``: the 6th and 15th of 20 runs, coverage 95.9%), then whether Adam + DSCD's median is
below Adam's at every learning rate on Styblinski–Tang. The figure (``--out``) shows the median
gap ``f − f*`` of the best value so far against evaluations, with the confidence band
(clipped at 10⁻³ for the log scale).

Cells (function, dimension, method) run in ``--workers`` processes of ``--threads`` torch and
BLAS threads each; results do not depend on either. The defaults take about 280 s of CPU, about
2.5 minutes on two otherwise idle cores.

    python benchmarks/dscd_synthetic.py [--dims 2 10 50] [--runs 20] [--budget 1000]
        [--lrs 0.01 0.1] [--tol 1e-3] [--functions styblinski-tang schwefel] [--seed 0] [--workers 2]
        [--threads 1] [--out dscd_synthetic.png]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import binom  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from archgraph.oneshot.dscd import DSCD  # noqa: E402

BOX = 3.0  # the normalised domain [-BOX, BOX] (App. C)
LINEAR = (0.001, 0.1)  # the paper's linear learning-rate schedule


def styblinski_tang(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x**4 - 16 * x**2 + 5 * x).sum(-1)


def schwefel(x: torch.Tensor) -> torch.Tensor:
    return 418.9829 * x.shape[-1] - (x * torch.sin(torch.sqrt(x.abs()))).sum(-1)


# name: (f, half-width of the domain, minimum per dimension)
FUNCTIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], float, float]] = {
    "styblinski-tang": (styblinski_tang, 5.0, -39.16617),
    "schwefel": (schwefel, 500.0, 0.0),
}


class Problem:
    """One function in one dimension, in normalised coordinates: ``f(z·w/3)`` on ``[-3, 3]^d``."""

    def __init__(self, name: str, dim: int):
        self.f, self.scale, per_dim = FUNCTIONS[name]
        self.scale /= BOX
        self.name, self.dim, self.minimum = name, dim, per_dim * dim

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.f(z * self.scale)

    def numpy(self, z: np.ndarray) -> np.ndarray:
        return self(torch.from_numpy(np.asarray(z, dtype=np.float32))).numpy()


def learning_rate(lr: float | None, step: int, budget: int) -> float:
    """A constant ``lr``, or (``None``) the linear schedule 0.001 → 0.1 over the budget."""
    if lr is not None:
        return lr
    return LINEAR[0] + (LINEAR[1] - LINEAR[0]) * step / max(budget - 1, 1)


def run_adam(problem: Problem, starts: np.ndarray, lr: float | None, budget: int, **_) -> np.ndarray:
    """Projected Adam on all runs at once: Adam is elementwise, so one tensor of shape
    (runs, d) with the summed loss is exactly ``runs`` independent Adams."""
    z = torch.nn.Parameter(torch.from_numpy(starts.copy()))
    adam = torch.optim.Adam([z], lr=learning_rate(lr, 0, budget))
    trace = np.empty((len(starts), budget))
    for t in range(budget):
        adam.param_groups[0]["lr"] = learning_rate(lr, t, budget)
        adam.zero_grad()
        values = problem(z)
        values.sum().backward()
        adam.step()
        with torch.no_grad():
            z.clamp_(-BOX, BOX)
        trace[:, t] = values.detach().numpy()
    return trace


def run_dscd(problem: Problem, starts: np.ndarray, lr: float | None, budget: int,
             seeds: list[np.random.SeedSequence], tol: float = 0.0) -> np.ndarray:
    """Projected Adam wrapped in DSCD, one run at a time (a global step must see one run's loss)."""
    trace = np.empty((len(starts), budget))
    for run, (start, seed) in enumerate(zip(starts, seeds)):
        z = torch.nn.Parameter(torch.from_numpy(start.copy()))
        adam = torch.optim.Adam([z], lr=learning_rate(lr, 0, budget))
        dscd = DSCD([z], adam, total_steps=budget, bounds=(-BOX, BOX), tol=tol, generator=np.random.default_rng(seed))
        for t in range(budget):
            adam.param_groups[0]["lr"] = learning_rate(lr, t, budget)
            trace[run, t] = float(dscd.step(partial(problem, z)))
            with torch.no_grad():
                z.clamp_(-BOX, BOX)
    return trace


def run_random(problem: Problem, starts: np.ndarray, budget: int, seeds: list[np.random.SeedSequence],
               **_) -> np.ndarray:
    return np.stack([problem.numpy(np.random.default_rng(seed).uniform(-BOX, BOX, (budget, problem.dim)))
                     for seed in seeds])


def run_cma(problem: Problem, starts: np.ndarray, budget: int, seeds: list[np.random.SeedSequence],
            **_) -> np.ndarray:
    import cma  # the optional `bench` extra

    trace = np.empty((len(starts), budget))
    for run, (start, seed) in enumerate(zip(starts, seeds)):
        options = {"bounds": [-BOX, BOX], "maxfevals": budget, "verbose": -9,
                   "seed": int(seed.generate_state(1)[0]) + 1}  # cma seeds numpy's global RNG; 0 means "unseeded"
        es = cma.CMAEvolutionStrategy(start, BOX / 2, options)
        values: list[float] = []
        while not es.stop() and len(values) < budget:
            points = es.ask()
            fitness = problem.numpy(np.array(points))
            es.tell(points, fitness.tolist())
            values.extend(fitness)
        values = values[:budget]
        trace[run] = values + [min(values)] * (budget - len(values))
    return trace


def methods(lrs: list[float], tol: float = 0.0) -> dict[str, tuple[Callable[..., np.ndarray], str, str]]:
    """Every method by name, with its colour and line style in the figure (one colour per Adam setting)."""
    settings = [(f"lr={lr:g}", lr) for lr in lrs] + [("linear", None)]
    table = {f"adam {label}": (partial(run_adam, lr=lr), f"C{k}", "--") for k, (label, lr) in enumerate(settings)}
    table |= {f"adam+dscd {label}": (partial(run_dscd, lr=lr, tol=tol), f"C{k}", "-") for k, (label, lr) in enumerate(settings)}
    table["random"] = (run_random, "0.5", ":")
    table["cma-es"] = (run_cma, "k", ":")
    return table


def median_ci(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median over axis 0 and the order-statistic confidence interval ``[x_(j), x_(n+1−j)]`` for it,
    ``j`` the largest rank with ``P(Bin(n, ½) < j) ≤ (1 − level)/2`` (for n < 6 at 95%: the range)."""
    x, n = np.sort(values, axis=0), len(values)
    j = max(int(binom.ppf((1 - level) / 2, n, 0.5)), 1)
    return np.median(x, axis=0), x[j - 1], x[n - j]


def limit_threads(threads: int) -> None:
    """Each process uses ``threads`` threads in torch and in BLAS (numpy's eigh inside CMA-ES runs
    several times slower with one BLAS thread per core on a busy machine)."""
    torch.set_num_threads(threads)
    threadpool_limits(threads)


def trace(name: str, dim: int, method: str, args: argparse.Namespace) -> np.ndarray:
    """The values ``f`` one method evaluated, shape (runs, budget); the starts and the seeds depend on
    (seed, function, dimension) only, so every method starts from the same points in any process."""
    root = np.random.SeedSequence([args.seed, list(FUNCTIONS).index(name), dim])
    starts = np.random.default_rng(root).uniform(-BOX, BOX, (args.runs, dim)).astype(np.float32)
    run = methods(args.lrs, args.tol)[method][0]
    return run(Problem(name, dim), starts, budget=args.budget, seeds=root.spawn(args.runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 10, 50])
    parser.add_argument("--runs", type=int, default=20, help="runs from uniform random starts (App. B: 20)")
    parser.add_argument("--budget", type=int, default=1000, help="evaluations of f per run, every method")
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.1],
                        help="Adam's constant learning rates (the linear 0.001→0.1 schedule is always added)")
    parser.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    parser.add_argument("--tol", type=float, default=1e-3,
                        help="DSCD's relative improvement threshold for switching phases (default 1e-3; the "
                             "paper's strict rule is 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes, each running whole (function, dim, "
                        "method) cells; results do not depend on it")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads per process")
    parser.add_argument("--out", type=Path, default=Path("dscd_synthetic.png"))
    args = parser.parse_args()
    table = methods(args.lrs)
    start = time.perf_counter()
    cells = [(name, dim, method) for name in args.functions for dim in args.dims for method in table]
    with ProcessPoolExecutor(args.workers, initializer=limit_threads, initargs=(args.threads,)) as pool:
        traces = dict(zip(cells, pool.map(trace, *zip(*cells), [args] * len(cells))))
    print(f"{args.runs} runs × {args.budget} evaluations per method; in each cell the median of the runs' best "
          f"values [95% CI of the median, order statistics]")
    medians: dict[tuple[str, int, str], float] = {}
    fig, axes = plt.subplots(len(args.functions), len(args.dims), squeeze=False,
                             figsize=(4.5 * len(args.dims), 3.6 * len(args.functions)))
    evaluations = np.arange(1, args.budget + 1)
    for row, name in enumerate(args.functions):
        print(f"\n{name} (minimum {FUNCTIONS[name][2]}·d)")
        print(f"{'method':<20}" + "".join(f"{f'd = {d}':>30}" for d in args.dims))
        for method, (_, colour, style) in table.items():
            texts = []
            for col, dim in enumerate(args.dims):
                best = np.minimum.accumulate(traces[name, dim, method], axis=1)
                median, lo, hi = median_ci(best[:, -1])
                medians[name, dim, method] = float(median)
                texts.append(f"{median:.2f} [{lo:.2f}, {hi:.2f}]")
                gap = [curve.clip(1e-3) for curve in median_ci(best - Problem(name, dim).minimum)]
                axes[row][col].plot(evaluations, gap[0], style, color=colour, label=method)
                axes[row][col].fill_between(evaluations, gap[1], gap[2], color=colour, alpha=0.1)
                axes[row][col].set(title=f"{name}, d = {dim}", xlabel="evaluations", ylabel="best f − f*",
                                   yscale="log")
            print(f"{method:<20}" + "".join(f"{text:>30}" for text in texts))
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    if "styblinski-tang" in args.functions:
        print("\nAdam + DSCD's median below Adam's on Styblinski–Tang?")
        labels = [m.removeprefix("adam ") for m in table if m.startswith("adam ")]
        wins = {(label, dim): medians["styblinski-tang", dim, f"adam+dscd {label}"]
                < medians["styblinski-tang", dim, f"adam {label}"] for label in labels for dim in args.dims}
        for label in labels:
            print(f"  {label:<10}" + "".join(f"  d={dim}: {'yes' if wins[label, dim] else 'NO'}" for dim in args.dims))
        print(f"  at every learning rate and dimension: {'yes' if all(wins.values()) else 'no'}")
    print(f"\nwall time {time.perf_counter() - start:.0f} s ({args.workers} processes); figure {args.out}")


if __name__ == "__main__":
    main()
