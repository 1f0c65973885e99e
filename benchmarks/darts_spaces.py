"""DARTS and its robust variants on RobustDARTS' spaces S1–S5 (Zela et al. 2020, §3–5).

For each space and method (DARTS, DARTS-ES, DARTS-ADA, R-DARTS(L2), R-DARTS(DP), RS-ws, or any
of :data:`~archgraph.oneshot.methods.METHODS`), :func:`archgraph.oneshot.search_darts` searches
the DARTS supernet on ``--task``: digits (8×8 images, embedded) or MNIST-1D (``mnist1d:N``, N
samples generated offline, 1×40 signals; the supernet then runs the 1-d counterparts of the
ops). The search splits the task's training split in two seeded halves, one for the weights,
one for α; the found cells are then retrained from scratch on the whole training split
(:func:`~archgraph.oneshot.retrain`, same C, layers and batch) and tested on the test split.
Per space and method the first table lists λ_max of ∇²_α L_valid at the end of the search
(none for RS-ws, which has no α), the tracked λ_max at the first and last epoch per seed
(``--eigen-every k``: λ_max and the normal cell's parameter-free share — skip, pooling, none,
noise — every k epochs of every α search, on the batches DARTS-ES draws; RobustDARTS Fig. 4/5),
the test accuracy after retraining, the parameter-free share of the found normal cell, the
search and retrain wall times, DARTS-ES's stop epoch, DARTS-ADA's rollbacks or R-DARTS' chosen
L2 factor or drop-path probability, and the found cells (legend printed with the table). Then
the Pearson and Spearman correlation of the final λ_max with the test error, per space and
over all runs (their Fig. 6).

On S5 (one intermediate node, 3 ops on 2 edges per cell type: 81 architectures) all 81 are
retrained once (first seed, the same settings) for the ground truth, and the second table gives
each method's found architecture, its ground-truth accuracy, its rank among the 81 and its regret
(best ground-truth accuracy − found). The S5 retrains of found cells reuse those trainings.

A budget where α moves (issue 23). RobustDARTS' collapse shows after about 20,000 α steps (50
epochs of 25,000 CIFAR-10 images at batch 64); Adam moves α by at most about its learning rate,
3e-4, per step, so ``--epochs 10`` on digits (60 steps) leaves α near its start. On
``--task mnist1d:16000 --batch 32 --epochs 50`` each half of the 12,800 training signals
gives 200 steps an epoch, 10,000 α steps per search at the paper's 50 epochs (so that
DARTS-ES' k = 5 and its start at epoch 10 mean what they do there). Measured (2 cores shared
with 3–5 other processes, one torch thread, C = 4, 3 cells): a bi-level step (a weight and an α
forward and backward) costs 0.4 s of CPU on S2 (0.2 s a forward-backward: per-op overhead,
about 0.2 ms per tiny convolution, whatever the batch), 0.1 s on S5; λ_max 6 s on S2, 0.7 s on
S5; so one 10,000-step search is about an hour of one core here, and its wall time 3 hours
while the cores are shared.

The digits defaults. The paper's search (50 epochs, 16 channels, 8 cells, batch 64) is a GPU budget. Measured
here before choosing (2 cores, one torch thread, C = 4 and 3 cells, the fewest with a normal cell;
at this size per-op overhead dominates, so the cost follows the steps, not the channels): a search
epoch (a weight and an α step per batch) takes 2–3 s on S1–S4 and 0.7 s on S5 at batch 128, about
30 % less than at batch 64; one λ_max (Lanczos on Hessian-vector products) 4–6 s, which DARTS-ES
pays every epoch; retraining 1.1–1.6 s per epoch on S1–S4, 0.44 s on S5. A DARTS search costs the
others about 2× (DARTS-ES), 4–5× (R-DARTS: one search per L2 factor) and 0.3–0.5× (RS-ws), so the
search epochs set the bill. ``--epochs 10`` is the fewest at which DARTS-ES
(k = 5) can fire at all (it compares λ̄ over epochs 0–4 with λ̄ over 5–9; with fewer it is DARTS);
``--batch 128``; ``--retrain-epochs 5`` (60 steps: S5's 81 architectures then span 0.66–0.91 test
accuracy, while one epoch leaves a network at chance); R-DARTS trains each candidate for
``--rdarts-epochs 10`` on the half split, the same 60 steps, so that its scores are not all at
chance; RS-ws scores ``--samples 100`` random architectures (Li & Talwalkar: 1,000). Even so the
default run needs about 27 CPU-minutes (41 min wall while 3–5 other processes shared the 2 cores):
R-DARTS is half of it, DARTS-ES a fifth, the S5 ground truth a seventh. For about 15 CPU-minutes
leave R-DARTS out (``--methods darts es rsws``).

Results go to ``--out`` (JSON with the command and versions, rewritten after every search and
training, so a killed run keeps what it measured) and ``--figure``: per space, λ_max and the
parameter-free share over the α steps, a line per method and seed (DARTS-ES tracks λ_max itself,
on the same batches), and test error against the final λ_max. (Tracked and final λ_max are both
taken on batches of 64 validation samples, as search_darts does.) A search still running prints
its trajectory epoch by epoch.

    python benchmarks/darts_spaces.py [--task digits|mnist1d:N] [--train-samples N]
        [--spaces s1 s2 s3 s4 s5] [--methods darts es ada rdarts rdarts-dp rsws] [--seeds 0]
        [--epochs 10] [--retrain-epochs 5] [--C 4] [--layers 3] [--batch 128] [--rdarts-epochs 10]
        [--samples 100] [--eigen-every 0] [--es-window 5] [--l2-factors ...] [--drop-path-probs ...]
        [--threads 1] [--resume] [--out darts_spaces.json] [--figure darts_spaces.png]

``--resume`` keeps the runs (space, method, seed) ``--out`` already holds, refusing a file made
with other settings, and does the rest: a killed run loses only the search it was in.
``--merge FILE ...`` adds the runs of other results files (runs side by side, one per space or
seed), so that one call reports and plots them together.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Subset  # noqa: E402

from scipy.stats import pearsonr, spearmanr  # noqa: E402

from archgraph.data import load, train_val_split  # noqa: E402
from archgraph.graph import ArchGraph  # noqa: E402
from archgraph.oneshot.early_stop import EigenvalueTracker  # noqa: E402
from archgraph.oneshot.methods import EIGEN_BATCH, METHODS, retrain, search_darts  # noqa: E402
from archgraph.oneshot.select import magnitude  # noqa: E402
from archgraph.spaces import load as load_space  # noqa: E402
from baselines import mean_std  # noqa: E402  (benchmarks/baselines.py, next to this script)
from provenance import write_results  # noqa: E402

SPACES = ("s1", "s2", "s3", "s4", "s5")
#: one letter per op in the compact genotypes
CODES = {"sep_conv_3x3": "s", "sep_conv_5x5": "S", "dil_conv_3x3": "d", "dil_conv_5x5": "D",
         "skip_connect": "k", "max_pool_3x3": "m", "avg_pool_3x3": "a", "noise": "n", "none": "z"}
LEGEND = ("cells: normal / reduce, per node its inputs as <op><input>; " +
          ", ".join(f"{code}={op}" for op, code in CODES.items()))


def compact(cells) -> str:
    """``'s0+k1 ... / m0+m1 ...'``: per cell and intermediate node, its inputs' op codes and ids."""
    def cell(graph: ArchGraph) -> str:
        return " ".join("+".join(f"{CODES.get(graph.edge_op(u, v), graph.edge_op(u, v))}{u}"
                                 for u in graph.predecessors(v)) for v in range(2, graph.num_nodes))
    return " / ".join(cell(graph) for graph in cells)


#: the ops without weights (RobustDARTS §4.1: the ones DARTS' failure mode prefers; in the normal cell
#: skip_connect is the identity)
PARAM_FREE = ("none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "noise")
#: the settings a resumed run must share with the results file it extends
SAME_SETTINGS = ("task", "train_samples", "epochs", "retrain_epochs", "C", "layers", "batch", "rdarts_epochs",
                 "samples", "eigen_every", "es_window", "l2_factors", "drop_path_probs")
#: search_darts' options for some methods only, and those methods
LISTS = {"es_window": ("es", "ada"), "l2_factors": ("rdarts",), "drop_path_probs": ("rdarts-dp",)}


def normal_skips(cells) -> int:
    return sum(op == "skip_connect" for op in cells[0].edge_ops.values())


def param_free_share(cells) -> float:
    """The share of the normal cell's edges whose op has no weights."""
    edge_ops = list(cells[0].edge_ops.values())
    return sum(op in PARAM_FREE for op in edge_ops) / len(edge_ops)


class Trajectory:
    """``on_epoch`` callback: every ``every`` epochs, λ_max as DARTS-ES tracks it (same batches,
    skipped where DARTS-ES' tracker already wrote it into the row) and the parameter-free share of
    the normal cell the supernet's α point at (:func:`~archgraph.oneshot.select.magnitude`),
    written into the history row (``None`` in the other epochs)."""

    def __init__(self, arch_data, *, every: int, seed: int):
        self.tracker = EigenvalueTracker(arch_data, every=every, batch_size=EIGEN_BATCH, seed=seed)
        self.every = every

    def __call__(self, row: dict, model) -> bool:
        if row.get("eigenvalue") is None:
            self.tracker(row, model)
        row["param_free"] = param_free_share(magnitude(model)) if row["epoch"] % self.every == 0 else None
        if row["param_free"] is not None:  # the trajectory so far, in the log, for a search still running
            print(f"    epoch {row['epoch']}: λ_max {row['eigenvalue']:.4f}, parameter-free {row['param_free']:.0%}, "
                  f"α accuracy {row['arch_accuracy']:.3f}, {row['seconds']:.0f} s", flush=True)
        return False


def s5_architectures() -> list[tuple[ArchGraph, ArchGraph]]:
    """All 81 S5 architectures: an op for each of the edges 0→2 and 1→2, in each cell type."""
    ops = load_space("s5").ops
    cells = [ArchGraph([(0, 2, a), (1, 2, b)]) for a, b in itertools.product(ops, repeat=2)]
    return list(itertools.product(cells, repeat=2))


class Bench:
    """The task, the settings, a cache of retrainings, and the results file written as they come."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.task = args, load(args.task)
        if args.train_samples:  # a smaller training split: smoke tests
            self.task = dataclasses.replace(self.task, train=Subset(self.task.train, range(args.train_samples)))
        self.trained: dict[tuple, tuple[float, float]] = {}
        self.results = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                        "runs": [], "ground_truth": [], "seconds": 0.0}
        for path in ([args.out] if args.resume and args.out.exists() else []) + args.merge:
            self.resume(path, json.loads(path.read_text()))
        self.start = time.perf_counter() - self.results["seconds"]

    def resume(self, path: Path, old: dict) -> None:
        """Add the runs and trainings of an earlier run with the same settings (those not yet here)."""
        mine = self.results["settings"]
        # a setting the file lacks is one added since it was made, and that run had its default
        if differ := [k for k in SAME_SETTINGS if k in old["settings"] and old["settings"][k] != mine[k]]:
            raise SystemExit(f"{path} was made with other settings ({', '.join(differ)}); "
                             "give another --out or the same settings")
        known = {row["genotype"] for row in self.results["ground_truth"]}
        self.results["runs"] += [r for r in old["runs"] if not self.done(r["space"], r["method"], r["seed"])]
        self.results["ground_truth"] += [row for row in old["ground_truth"] if row["genotype"] not in known]
        self.results["seconds"] += old["seconds"]
        for run in old["runs"]:
            self.trained[(run["space"], run["genotype"], run["seed"])] = (run["test_accuracy"], run["retrain_seconds"])
        for row in old["ground_truth"]:
            self.trained[("s5", row["genotype"], self.args.seeds[0])] = (row["test_accuracy"], row["seconds"])

    def done(self, space: str, method: str, seed: int) -> bool:
        return any((r["space"], r["method"], r["seed"]) == (space, method, seed) for r in self.results["runs"])

    def shape(self) -> dict:
        a = self.args
        return {"input_shape": self.task.input_shape, "num_classes": self.task.num_classes, "C": a.C,
                "layers": a.layers, "batch_size": a.batch}

    def retrain(self, space: str, cells, seed: int) -> tuple[float, float]:
        """Test accuracy and seconds of ``cells`` retrained on the training split (cached)."""
        key = (space, compact(cells), seed)
        if key not in self.trained:
            start = time.perf_counter()
            accuracy = retrain(space, cells, self.task.train, self.task.test, epochs=self.args.retrain_epochs,
                               seed=seed, **self.shape())
            self.trained[key] = (accuracy, time.perf_counter() - start)
        return self.trained[key]

    def search(self, space: str, method: str, seed: int) -> dict:
        weight, arch = train_val_split(self.task.train, 0.5, seed=seed)
        every = self.args.eigen_every
        lists = {name: getattr(self.args, name) for name, owners in LISTS.items() if method in owners}
        found = search_darts(space, method, weight_data=weight, arch_data=arch, epochs=self.args.epochs,
                             retrain_epochs=self.args.rdarts_epochs, samples=self.args.samples, seed=seed, **lists,
                             progress=False, on_epoch=Trajectory(arch, every=every, seed=seed) if every else None,
                             **self.shape())
        accuracy, seconds = self.retrain(space, found.cells, seed)
        run = {"space": space, "method": method, "seed": seed, "genotype": compact(found.cells),
               "cells": [sorted(cell.edge_ops.items()) for cell in found.cells], "eigenvalue": found.eigenvalue,
               "test_accuracy": accuracy, "normal_skips": normal_skips(found.cells),
               "param_free": param_free_share(found.cells), "note": note(method, found.details),
               "search_seconds": found.seconds, "retrain_seconds": seconds, "details": found.details,
               "arch_steps_per_epoch": -(-len(weight) // self.args.batch), "history": found.history}
        self.log(f"[{space} {method} seed {seed}] search {found.seconds:.0f} s, λ_max {fmt(found.eigenvalue)}, "
                 f"{run['normal_skips']} skips ({run['param_free']:.0%} parameter-free), retrain {seconds:.0f} s, "
                 f"test {accuracy:.4f}  {run['genotype']}")
        self.add("runs", run)
        return run

    def ground_truth(self) -> list[dict]:
        seed, known = self.args.seeds[0], {row["genotype"] for row in self.results["ground_truth"]}
        for i, cells in enumerate(s5_architectures(), start=1):
            if compact(cells) in known:
                continue
            accuracy, seconds = self.retrain("s5", cells, seed)
            row = {"genotype": compact(cells), "test_accuracy": accuracy, "seconds": seconds}
            self.log(f"[s5 ground truth {i}/81] {row['genotype']}: {accuracy:.4f} ({seconds:.1f} s)")
            self.add("ground_truth", row)
        return self.results["ground_truth"]

    def add(self, key: str, item: dict) -> None:
        self.results[key].append(item)
        self.save()

    def save(self) -> None:
        """Rewrite ``--out`` (through a ``.part`` file, so that a killed run leaves a whole file)."""
        self.results["seconds"] = time.perf_counter() - self.start
        plain = json.loads(json.dumps(self.results, default=str))  # numpy numbers, tuples → JSON
        part = write_results(self.args.out.with_name(self.args.out.name + ".part"), **plain)
        part.replace(self.args.out)

    def log(self, line: str) -> None:
        print(f"{time.perf_counter() - self.start:6.0f} s  {line}", flush=True)


def note(method: str, details: dict) -> str:
    """DARTS-ES' stop epoch, DARTS-ADA's rollbacks, R-DARTS' chosen L2 factor or drop-path probability."""
    if "stop_epoch" in details:
        return f"stop@{details['stop_epoch']}"
    if "rollbacks" in details:
        return f"{len(details['rollbacks'])} rollbacks"
    if "scores" in details:
        best = max(details["scores"], key=details["scores"].get)
        return f"DP={best:g}" if method == "rdarts-dp" else f"L2={best:.1e}"
    return ""


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def mean_std_or_dash(values: list[float | None]) -> str:
    values = [v for v in values if v is not None]
    return mean_std(values) if values else "—"


def grouped(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["space"], run["method"]), []).append(run)
    return groups


def tracked(run: dict, key: str) -> list[tuple[int, float]]:
    """``(α steps taken, value)`` of every epoch where ``key`` was tracked (DARTS-ADA's steps
    count those it rolled back)."""
    per_epoch = run.get("arch_steps_per_epoch", 1)
    return [((i + 1) * per_epoch, row[key]) for i, row in enumerate(run["history"]) if row.get(key) is not None]


def start_end(run: dict) -> str:
    values = [v for _, v in tracked(run, "eigenvalue")]
    return f"{values[0]:.3f}→{values[-1]:.3f}" if values else "—"


def report_runs(runs: list[dict]) -> None:
    print(f"\n{'space':<5} {'method':<9} {'λ_max':>15} {'tracked λ_max':>27} {'test acc':>15} {'param-free':>10} "
          f"{'search s':>8} {'retrain s':>9} {'note':<11} cells")
    for (space, method), rs in grouped(runs).items():
        print(f"{space:<5} {method:<9} {mean_std_or_dash([r['eigenvalue'] for r in rs]):>15} "
              f"{' '.join(start_end(r) for r in rs):>27} {mean_std([r['test_accuracy'] for r in rs]):>15} "
              f"{statistics.mean(r.get('param_free', 0.0) for r in rs):>10.2f} "
              f"{statistics.mean(r['search_seconds'] for r in rs):>8.0f} "
              f"{statistics.mean(r['retrain_seconds'] for r in rs):>9.1f} {' '.join(r['note'] for r in rs):<11} "
              f"{' ; '.join(r['genotype'] for r in rs)}")
    print(LEGEND)


def correlations(runs: list[dict]) -> dict[str, dict]:
    """Per space and over all: Pearson and Spearman correlation of the final λ_max with the test
    error of the retrained cell (RobustDARTS Fig. 6), over every run that has a λ_max."""
    groups = {space: [r for r in runs if r["space"] == space] for space in dict.fromkeys(r["space"] for r in runs)}
    out = {}
    for name, rs in {**groups, "all": runs}.items():
        pairs = [(r["eigenvalue"], 1.0 - r["test_accuracy"]) for r in rs if r["eigenvalue"] is not None]
        if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
            continue
        x, y = zip(*pairs)
        out[name] = {"n": len(pairs), "pearson": float(pearsonr(x, y)[0]), "spearman": float(spearmanr(x, y)[0])}
    return out


def report_correlations(table: dict[str, dict]) -> None:
    print("\nfinal λ_max vs test error of the retrained cell:")
    for name, c in table.items():
        print(f"  {name:<4} n={c['n']:<3} Pearson {c['pearson']:+.2f}  Spearman {c['spearman']:+.2f}")


def report_s5(runs: list[dict], truth: list[dict]) -> None:
    accuracy = {t["genotype"]: t["test_accuracy"] for t in truth}
    best = max(accuracy.values())
    print(f"\nS5 ground truth: 81 architectures, best {best:.4f} "
          f"({', '.join(g for g, a in accuracy.items() if a == best)}), median "
          f"{statistics.median(accuracy.values()):.4f}, worst {min(accuracy.values()):.4f}")
    print(f"{'method':<7} {'ground-truth acc':>16} {'rank /81':>8} {'regret':>15}  found")
    for (space, method), rs in grouped(runs).items():
        if space != "s5":
            continue
        found = [accuracy[r["genotype"]] for r in rs if r["genotype"] in accuracy]
        cells = " ; ".join(r["genotype"] for r in rs)
        if not found:  # FairDARTS' threshold can drop an edge: a cell outside the 81
            print(f"{method:<7} {'—':>16} {'—':>8} {'—':>15}  {cells} (not among the 81)")
            continue
        ranks = [1 + sum(a > f for a in accuracy.values()) for f in found]
        print(f"{method:<7} {mean_std(found):>16} {statistics.mean(ranks):>8.1f} "
              f"{mean_std([best - f for f in found]):>15}  {cells}")


def plot(runs: list[dict], path: Path) -> None:
    """Per space (columns): λ_max and the normal cell's parameter-free share over the α steps, one
    colour per method, one line per seed (RobustDARTS Fig. 4/5); test error against the final λ_max
    (Fig. 6)."""
    spaces = list(dict.fromkeys(r["space"] for r in runs))
    colors = {method: f"C{i}" for i, method in enumerate(dict.fromkeys(r["method"] for r in runs))}
    fig, axes = plt.subplots(3, len(spaces), figsize=(4 * len(spaces), 9), squeeze=False)
    for column, space in zip(axes.T, spaces):
        labelled = set()
        for run in (r for r in runs if r["space"] == space):
            label = None if run["method"] in labelled else run["method"]
            labelled.add(run["method"])
            for ax, key in zip(column, ("eigenvalue", "param_free")):
                if points := tracked(run, key):
                    ax.plot(*zip(*points), "-", lw=1, color=colors[run["method"]], label=label)
            if run["eigenvalue"] is not None:
                column[2].plot(run["eigenvalue"], 1.0 - run["test_accuracy"], "o", color=colors[run["method"]],
                               label=label)
        column[0].set(title=space, xlabel="α steps", ylabel="λ_max")
        column[1].set(xlabel="α steps", ylabel="parameter-free share, normal cell", ylim=(-0.05, 1.05))
        column[2].set(xlabel="final λ_max", ylabel="test error after retraining")
        for ax in column:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    parser.add_argument("--methods", nargs="+", default=["darts", "es", "rdarts", "rsws"], choices=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--task", default="digits", help="dataset: digits (1×8×8) or mnist1d:N (1×40 signals, N made)")
    parser.add_argument("--eigen-every", type=int, default=0,
                        help="track λ_max and the parameter-free share every k epochs of every α search (0: off)")
    parser.add_argument("--resume", action="store_true", help="keep the runs --out holds and do the missing ones")
    parser.add_argument("--merge", type=Path, nargs="+", default=[],
                        help="results files of runs with the same settings (one per space or seed, run side by "
                             "side) to add to --out; with all the runs asked for there, it only reports")
    parser.add_argument("--train-samples", type=int, default=0, help="use the first N training samples (0: all)")
    parser.add_argument("--es-window", type=int, help="DARTS-ES / DARTS-ADA window k (default the paper's 5)")
    parser.add_argument("--l2-factors", type=float, nargs="+", help="R-DARTS(L2) factors (default the paper's)")
    parser.add_argument("--drop-path-probs", type=float, nargs="+", help="R-DARTS(DP) probabilities (default 0 .2 .4 .6)")
    parser.add_argument("--epochs", type=int, default=10, help="search epochs (DARTS-ES can fire from 10 on)")
    parser.add_argument("--retrain-epochs", type=int, default=5, help="epochs of retraining the found cells")
    parser.add_argument("--C", type=int, default=4, help="initial channels of supernet and retrained network")
    parser.add_argument("--layers", type=int, default=3, help="cells of supernet and retrained network")
    parser.add_argument("--batch", type=int, default=128, help="batch size of search and retraining")
    parser.add_argument("--rdarts-epochs", type=int, default=10, help="R-DARTS: training of each candidate")
    parser.add_argument("--samples", type=int, default=100, help="RS-ws: random architectures scored")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("darts_spaces.json"))
    parser.add_argument("--figure", type=Path, default=Path("darts_spaces.png"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    bench = Bench(args)
    print(f"{args.task}, search {args.epochs} epochs on halves of the training split, retrain {args.retrain_epochs} "
          f"epochs on all of it; C={args.C}, {args.layers} cells, batch {args.batch}, R-DARTS candidates "
          f"{args.rdarts_epochs} epochs, RS-ws {args.samples} samples, {args.threads} thread(s), seeds "
          f"{' '.join(map(str, args.seeds))}", flush=True)
    for space, seed, method in itertools.product(args.spaces, args.seeds, args.methods):
        if not bench.done(space, method, seed):
            bench.search(space, method, seed)
    runs = bench.results["runs"]
    truth = bench.ground_truth() if "s5" in args.spaces else []
    report_runs(runs)
    if truth:
        report_s5(runs, truth)
    table = correlations(runs)
    report_correlations(table)
    bench.results["correlations"] = table
    bench.save()
    plot(runs, args.figure)
    print(f"\ntotal {time.perf_counter() - bench.start:.0f} s wall, {time.process_time():.0f} s CPU; "
          f"results {args.out}, figure {args.figure}")


if __name__ == "__main__":
    main()
