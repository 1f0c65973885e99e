"""DARTS vs DARTS-ES vs R-DARTS(L2) vs RS-ws on RobustDARTS' spaces S1–S5 (Zela et al. 2020, §3–5).

For each space and method, :func:`archgraph.oneshot.search_darts` searches the DARTS supernet
on digits (8×8 images, the embedded dataset; the DARTS supernet takes images only, so the 1-D
MNIST-1D is out). The search splits digits' training split in two seeded halves, one for the
weights, one for α; the found cells are then retrained from scratch on the whole training split
(:func:`~archgraph.oneshot.retrain`, same C, layers and batch) and tested on digits' test split.
Per space and method the first table lists λ_max of ∇²_α L_valid at the end of the search
(none for R-DARTS, whose winning supernet search_darts does not keep; none for RS-ws, which has
no α), the test accuracy after retraining, the skip connections in the normal cell (the collapse
RobustDARTS studies), the search and retrain wall times, DARTS-ES's stop epoch or R-DARTS'
chosen L2 factor, and the found cells (legend printed with the table).

On S5 (one intermediate node, 3 ops on 2 edges per cell type: 81 architectures) all 81 are
retrained once (first seed, the same settings) for the ground truth, and the second table gives
each method's found architecture, its ground-truth accuracy, its rank among the 81 and its regret
(best ground-truth accuracy − found). The S5 retrains of found cells reuse those trainings.

Budget. The paper's search (50 epochs, 16 channels, 8 cells, batch 64) is a GPU budget. Measured
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

Results go to ``--out`` (JSON, rewritten after every search and training, so a killed run keeps
what it measured) and ``--figure``: λ_max over the epochs DARTS-ES tracked (with the same seed
DARTS follows the same trajectory up to the stop) with DARTS' final λ_max as a cross, and the
test accuracies as grouped bars. (The final λ_max is taken on a batch of ``--batch`` validation
samples, the tracked ones on batches of 64, as search_darts does.)

    python benchmarks/darts_spaces.py [--spaces s1 s2 s3 s4 s5] [--methods darts es rdarts rsws]
        [--seeds 0] [--epochs 10] [--retrain-epochs 5] [--C 4] [--layers 3] [--batch 128]
        [--rdarts-epochs 10] [--samples 100] [--threads 1] [--out darts_spaces.json]
        [--figure darts_spaces.png]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from archgraph.data import load, train_val_split  # noqa: E402
from archgraph.graph import ArchGraph  # noqa: E402
from archgraph.oneshot.methods import METHODS, retrain, search_darts  # noqa: E402
from archgraph.spaces import load as load_space  # noqa: E402
from baselines import mean_std  # noqa: E402  (benchmarks/baselines.py, next to this script)

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


def normal_skips(cells) -> int:
    return sum(op == "skip_connect" for op in cells[0].edge_ops.values())


def s5_architectures() -> list[tuple[ArchGraph, ArchGraph]]:
    """All 81 S5 architectures: an op for each of the edges 0→2 and 1→2, in each cell type."""
    ops = load_space("s5").ops
    cells = [ArchGraph([(0, 2, a), (1, 2, b)]) for a, b in itertools.product(ops, repeat=2)]
    return list(itertools.product(cells, repeat=2))


class Bench:
    """The task, the settings, a cache of retrainings, and the results file written as they come."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.task = args, load("digits")
        self.trained: dict[tuple, tuple[float, float]] = {}
        self.results = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                        "runs": [], "ground_truth": [], "seconds": 0.0}
        self.start = time.perf_counter()

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
        found = search_darts(space, method, weight_data=weight, arch_data=arch, epochs=self.args.epochs,
                             retrain_epochs=self.args.rdarts_epochs, samples=self.args.samples, seed=seed,
                             progress=False, **self.shape())
        accuracy, seconds = self.retrain(space, found.cells, seed)
        run = {"space": space, "method": method, "seed": seed, "genotype": compact(found.cells),
               "cells": [sorted(cell.edge_ops.items()) for cell in found.cells], "eigenvalue": found.eigenvalue,
               "test_accuracy": accuracy, "normal_skips": normal_skips(found.cells), "note": note(found.details),
               "search_seconds": found.seconds, "retrain_seconds": seconds, "details": found.details,
               "history": found.history}
        self.log(f"[{space} {method} seed {seed}] search {found.seconds:.0f} s, λ_max {fmt(found.eigenvalue)}, "
                 f"{run['normal_skips']} skips, retrain {seconds:.0f} s, test {accuracy:.4f}  {run['genotype']}")
        self.add("runs", run)
        return run

    def ground_truth(self) -> list[dict]:
        seed, truth = self.args.seeds[0], []
        for i, cells in enumerate(s5_architectures(), start=1):
            accuracy, seconds = self.retrain("s5", cells, seed)
            truth.append({"genotype": compact(cells), "test_accuracy": accuracy, "seconds": seconds})
            self.log(f"[s5 ground truth {i}/81] {truth[-1]['genotype']}: {accuracy:.4f} ({seconds:.1f} s)")
            self.add("ground_truth", truth[-1])
        return truth

    def add(self, key: str, item: dict) -> None:
        self.results[key].append(item)
        self.results["seconds"] = time.perf_counter() - self.start
        part = self.args.out.with_name(self.args.out.name + ".part")
        part.write_text(json.dumps(self.results, indent=1, default=str))
        part.replace(self.args.out)

    def log(self, line: str) -> None:
        print(f"{time.perf_counter() - self.start:6.0f} s  {line}", flush=True)


def note(details: dict) -> str:
    if "stop_epoch" in details:
        return f"stop@{details['stop_epoch']}"
    if "scores" in details:
        return f"L2={max(details['scores'], key=details['scores'].get):.1e}"
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


def report_runs(runs: list[dict]) -> None:
    print(f"\n{'space':<5} {'method':<7} {'λ_max':>15} {'test acc':>15} {'skips':>5} {'search s':>8} "
          f"{'retrain s':>9} {'note':<11} cells")
    for (space, method), rs in grouped(runs).items():
        print(f"{space:<5} {method:<7} {mean_std_or_dash([r['eigenvalue'] for r in rs]):>15} "
              f"{mean_std([r['test_accuracy'] for r in rs]):>15} "
              f"{statistics.mean(r['normal_skips'] for r in rs):>5.1f} "
              f"{statistics.mean(r['search_seconds'] for r in rs):>8.0f} "
              f"{statistics.mean(r['retrain_seconds'] for r in rs):>9.1f} {' '.join(r['note'] for r in rs):<11} "
              f"{' ; '.join(r['genotype'] for r in rs)}")
    print(LEGEND)


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
    fig, (curves, bars) = plt.subplots(1, 2, figsize=(12, 4))
    spaces = list(dict.fromkeys(r["space"] for r in runs))
    methods = list(dict.fromkeys(r["method"] for r in runs))
    colors = {space: f"C{i}" for i, space in enumerate(spaces)}
    labelled = set()  # one legend entry per space, whatever the seeds
    for run in runs:
        tracked = [(row["epoch"], row["eigenvalue"]) for row in run["history"] if row.get("eigenvalue") is not None]
        if run["method"] == "es" and tracked:
            label = None if run["space"] in labelled else run["space"]
            labelled.add(run["space"])
            curves.plot(*zip(*tracked), "o-", markersize=3, color=colors[run["space"]], label=label)
        elif run["method"] == "darts" and run["eigenvalue"] is not None:
            curves.plot(len(run["history"]) - 1, run["eigenvalue"], "x", color=colors[run["space"]])
    curves.set(xlabel="epoch", ylabel="λ_max", title="λ_max tracked by DARTS-ES (×: DARTS at the end)")
    if labelled:
        curves.legend()
    groups, width = grouped(runs), 0.8 / len(methods)
    for j, method in enumerate(methods):
        accs = [[r["test_accuracy"] for r in groups.get((space, method), [])] or [0.0] for space in spaces]
        bars.bar([i + j * width for i in range(len(spaces))], [statistics.mean(a) for a in accs], width,
                 yerr=[statistics.stdev(a) if len(a) > 1 else 0.0 for a in accs], label=method)
    bars.set_xticks([i + 0.4 - width / 2 for i in range(len(spaces))], spaces)
    low = min(r["test_accuracy"] for r in runs)
    bars.set(ylabel="test accuracy after retraining", ylim=(max(0.0, low - 0.05), 1.05))
    bars.legend(ncol=len(methods), fontsize="small", loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    parser.add_argument("--methods", nargs="+", default=["darts", "es", "rdarts", "rsws"], choices=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
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
    print(f"digits, search {args.epochs} epochs on halves of the training split, retrain {args.retrain_epochs} "
          f"epochs on all of it; C={args.C}, {args.layers} cells, batch {args.batch}, R-DARTS candidates "
          f"{args.rdarts_epochs} epochs, RS-ws {args.samples} samples, {args.threads} thread(s), seeds "
          f"{' '.join(map(str, args.seeds))}", flush=True)
    for space, seed, method in itertools.product(args.spaces, args.seeds, args.methods):
        bench.search(space, method, seed)
    runs = bench.results["runs"]
    truth = bench.ground_truth() if "s5" in args.spaces else []
    report_runs(runs)
    if truth:
        report_s5(runs, truth)
    plot(runs, args.figure)
    print(f"\ntotal {time.perf_counter() - bench.start:.0f} s wall, {time.process_time():.0f} s CPU; "
          f"results {args.out}, figure {args.figure}")


if __name__ == "__main__":
    main()
