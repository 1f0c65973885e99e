"""Which task ranks architectures steadily? The ground truth's ceiling, before any FaDE figure.

A rank correlation between a predictor (FaDE-ranks, a GNN, a proxy) and trained accuracy can
only be as high as trained accuracy agrees with itself. This script trains the same ``--archs``
architectures ``--repeats`` times each (different seeds) on each task and reports, at several
epoch counts (one training gives them all: the test accuracy is recorded after every epoch):

* ``spread``: the standard deviation, over architectures, of their mean accuracy;
* ``seed sd``: the seed-to-seed standard deviation of one architecture's accuracy (root mean
  of the per-architecture variances);
* ``split-half``: the Spearman correlation between the mean accuracies of two disjoint halves
  of the repeats, averaged over all ways of halving them — the ceiling of a predictor's
  Spearman against a mean of that many trainings;
* ``pairwise``: the Spearman between two single trainings, averaged over pairs.

A training's accuracy is its test accuracy after the last epoch (``window`` 1), or the mean of
its test accuracies over the last ``--windows`` epochs: at a constant learning rate the
accuracy of one network swings from epoch to epoch, and the mean over a few epochs measures the
architecture with less of that noise.

The architectures are those ``benchmarks/fade_correlation.py`` evaluates: paths through its
4 × 5 pool (one vertex, a 2-chain, a 4-chain, a diamond, the complete DAG on 5 vertices),
drawn uniformly without replacement (seed 12345), compiled with equal-size cells (FaDE §3.1,
``weights_per_cell``, see archgraph.embody.fade) and trained as in FaDE §3: Adam, lr 1e-3,
batch 128, weight decay 1e-4, gradient clipping 10, on the weight split of FaDE's 1-1-4 split
(seed 0) of train and test together; accuracy on its test split. Kernels: 5 on MNIST-1D's
signals (the paper's 5×5 in 1-d), 3 on digits' 8×8 images (see the README). Channels between
cells 4, 8, 16, 32 (``--channels``); weights per cell 9,000 on signals and 16,000 on images
(``--weights-per-cell``).

Measured (``--tasks mnist1d:5000 digits --epochs 40``, results/task_ceiling.json; mean, spread
and seed sd of the last-5-epochs score):

    task           epochs   mean  spread  seed sd  split-half (last epoch, last 5)
    digits             10  0.667   0.198    0.069   0.91, 0.93
    digits             20  0.865   0.116    0.064   0.93, 0.94
    digits             30  0.913   0.080    0.045   0.77, 0.90
    digits             40  0.930   0.068    0.042   0.87, 0.87
    mnist1d:5000       10  0.567   0.084    0.085   0.63, 0.54
    mnist1d:5000       20  0.741   0.085    0.104   0.52, 0.41
    mnist1d:5000       30  0.804   0.081    0.089   0.36, 0.44
    mnist1d:5000       40  0.834   0.080    0.078   0.26, 0.32
    mnist1d:10000      10  0.767   0.090    0.105   0.35, 0.46   (results/task_ceiling_mnist1d_10000.json)
    mnist1d:10000      20  0.881   0.077    0.067   0.50, 0.52

The benchmarks' task is therefore digits, architectures trained 30 epochs and scored over epochs
26–30 (split-half 0.90; FaDE §3.2 trains its validation architectures 30 epochs). On MNIST-1D
with 5,000 samples the seed-to-seed noise is as large as the differences between architectures
(8 of the 64 trainings stall below 0.75). With 10,000 samples the mean rises (0.881 at 20 epochs) but the
ranking does not (split-half 0.50 / 0.52).

Tasks are ``digits`` or ``mnist1d:N`` (MNIST-1D generated with N samples, train and test
together). Every training is appended to ``--runs`` (JSON lines) as soon as it ends, so a killed
run continues where it stopped; the table goes to ``--out`` (JSON, with the command, versions
and seeds) and is printed.

    python benchmarks/task_ceiling.py [--tasks digits mnist1d:5000 mnist1d:10000] [--archs 16]
        [--repeats 4] [--epochs 40] [--report 10 20 30 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch.utils.data import ConcatDataset

from archgraph import ArchGraph
from archgraph.data import fade_split, load
from archgraph.embody import build_fade
from archgraph.train import train
from provenance import write_results  # benchmarks/provenance.py, next to this script

POOL = (
    ArchGraph([], num_nodes=1),
    ArchGraph([(0, 1)]),
    ArchGraph([(0, 1), (1, 2), (2, 3)]),
    ArchGraph([(0, 1), (0, 2), (1, 3), (2, 3)]),
    ArchGraph([(u, v) for v in range(5) for u in range(v)]),
)
ROWS = 4
#: channels passed between the cells (FaDE §3: doubling, 32 in the deepest); ``--channels`` changes them
CHANNELS = [4, 8, 16, 32]
#: per input kind: kernel size and weights per cell (the smallest size at which every pool DAG
#: of every row fits within ±5 %, rounded up; see archgraph.embody.fade.equal_size_width)
SETTINGS = {1: {"kernel_size": 5, "weights_per_cell": 9000}, 2: {"kernel_size": 3, "weights_per_cell": 16000}}
PICK_SEED = 12345
SPLIT_SEED = 0
RESULTS = Path(__file__).resolve().parent / "results"


def paths(archs: int) -> list[tuple[int, ...]]:
    """``archs`` distinct paths through the pool, drawn uniformly (seed ``PICK_SEED``)."""
    flat = np.random.default_rng(PICK_SEED).choice(len(POOL) ** ROWS, size=archs, replace=False)
    return [tuple(int(k) for k in np.unravel_index(i, (len(POOL),) * ROWS)) for i in flat]


def task_data(spec: str):
    """The task of a ``digits`` / ``mnist1d:N`` spec and FaDE's 1-1-4 split (seed ``SPLIT_SEED``)
    of its train and test data together: ``task, (test, arch, weight)``."""
    task = load(spec)
    return task, fade_split(ConcatDataset([task.train, task.test]), seed=SPLIT_SEED)


def settings_for(spec: str, weights_per_cell: int | None = None) -> dict:
    """Kernel size and weights per cell on a task: ``SETTINGS`` of its input kind, with
    ``weights_per_cell`` in place of the default where given."""
    settings = dict(SETTINGS[len(load(spec).input_shape) - 1])
    if weights_per_cell is not None:
        settings["weights_per_cell"] = weights_per_cell
    return settings


def train_one(spec: str, path: tuple[int, ...], seed: int, args: dict) -> dict:
    """One training from scratch; its test accuracy after every epoch."""
    torch.set_num_threads(1)
    task, (test, _, weight) = task_data(spec)
    settings = settings_for(spec, args["weights_per_cell"])
    torch.manual_seed(seed)
    model = build_fade([POOL[k] for k in path], input_shape=task.input_shape, num_classes=task.num_classes,
                       channels=args["channels"], **settings)
    start = time.perf_counter()
    fit = train(model, weight, val_data=test, epochs=args["epochs"], batch_size=args["batch"], lr=args["lr"],
                weight_decay=1e-4, grad_clip=10.0, schedule=args["schedule"], seed=seed, progress=False)
    return {"task": spec, "path": list(path), "seed": seed, **args, **settings,
            "curve": [round(row["val_accuracy"], 5) for row in fit.history],
            "seconds": round(time.perf_counter() - start, 1)}


def ground_truth(tasks: list[str], chosen: list[tuple[int, ...]], repeats: int, training: dict, runs: Path,
                 workers: int) -> dict[str, list[list[dict]]]:
    """Per task, the records (architectures × repeats) of ``chosen`` trained ``repeats`` times
    with seeds ``1000 · repeat + index``: read from ``runs`` where there, else trained on
    ``workers`` processes and appended to ``runs`` as each ends."""
    expected = {spec: {**training, **settings_for(spec, training["weights_per_cell"])} for spec in tasks}
    done = {}
    if runs.is_file():
        for line in runs.read_text().splitlines():
            record = {"channels": CHANNELS, **json.loads(line)}  # trainings stored before --channels had these
            if record["task"] in expected and all(record[k] == v for k, v in expected[record["task"]].items()):
                done[record["task"], tuple(record["path"]), record["seed"]] = record
    jobs = [(spec, path, 1000 * r + a) for spec in tasks for a, path in enumerate(chosen) for r in range(repeats)]
    todo = [job for job in jobs if job not in done]
    print(f"{len(jobs)} trainings, {len(jobs) - len(todo)} already in {runs}", flush=True)
    if todo:
        for spec in dict.fromkeys(spec for spec, _, _ in todo):
            task_data(spec)  # generate MNIST-1D once, before the workers read the cache
        runs.parent.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(workers) as pool, runs.open("a") as log:
            futures = {pool.submit(train_one, *job, training): job for job in todo}
            for i, future in enumerate(as_completed(futures), 1):
                record = future.result()
                log.write(json.dumps(record) + "\n")
                log.flush()
                done[futures[future]] = record
                print(f"[{i}/{len(todo)}] {record['task']} path {record['path']} seed {record['seed']}: "
                      f"{record['curve'][-1]:.4f} in {record['seconds']} s", flush=True)
    return {spec: [[done[spec, path, 1000 * r + a] for r in range(repeats)] for a, path in enumerate(chosen)]
            for spec in tasks}


def accuracy(record: dict, epochs: int, window: int = 1) -> float:
    """A training's mean test accuracy over the ``window`` epochs ending with epoch ``epochs``."""
    return float(np.mean(record["curve"][epochs - window:epochs]))


def ceiling_figures(acc: np.ndarray) -> dict:
    """Spread, seed sd, split-half and pairwise ceilings of an (architectures × repeats) array."""
    repeats = acc.shape[1]
    halves = [h for h in itertools.combinations(range(repeats), repeats // 2) if 0 in h]
    split_half = [spearmanr(acc[:, list(h)].mean(1), np.delete(acc, list(h), 1).mean(1)).statistic for h in halves]
    pairwise = [spearmanr(acc[:, a], acc[:, b]).statistic for a, b in itertools.combinations(range(repeats), 2)]
    return {"mean": float(acc.mean()), "spread": float(acc.mean(1).std(ddof=1)),
            "seed_sd": float(np.sqrt(acc.var(1, ddof=1).mean())),
            "split_half": float(np.mean(split_half)), "pairwise": float(np.mean(pairwise))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["digits", "mnist1d:5000", "mnist1d:10000"])
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=4, help="trainings per architecture (≥ 4 for split-half)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--report", type=int, nargs="+", default=[10, 20, 30, 40], help="epoch counts in the table")
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 5],
                        help="accuracy: the mean test accuracy over this many last epochs")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--schedule", choices=["cosine"], default=None, help="default: constant lr (FaDE §3)")
    parser.add_argument("--channels", type=int, nargs=4, default=CHANNELS, help="channels between the 4 cells")
    parser.add_argument("--weights-per-cell", type=int, default=None,
                        help="weights of every cell (default: SETTINGS, by the task's input kind)")
    parser.add_argument("--workers", type=int, default=2, help="trainings run side by side, one thread each")
    parser.add_argument("--runs", type=Path, default=RESULTS / "task_ceiling.runs.jsonl")
    parser.add_argument("--out", type=Path, default=RESULTS / "task_ceiling.json")
    args = parser.parse_args()
    if args.repeats < 2 or max(args.report) > args.epochs or max(args.windows) > min(args.report):
        parser.error("--repeats needs at least 2, --report epochs at most --epochs, --windows at most the "
                     "smallest --report epoch")
    training = {"epochs": args.epochs, "batch": args.batch, "lr": args.lr, "schedule": args.schedule,
                "channels": args.channels, "weights_per_cell": args.weights_per_cell}
    chosen = paths(args.archs)
    done = ground_truth(args.tasks, chosen, args.repeats, training, args.runs, args.workers)

    table = []
    print(f"\n{'task':<14} {'epochs':>6} {'window':>6} {'mean':>6} {'spread':>7} {'seed sd':>8} {'split-half':>10} "
          f"{'pairwise':>8} {'s/train':>8}")
    for spec in args.tasks:
        records = done[spec]
        seconds = float(np.mean([rec["seconds"] for row in records for rec in row]))
        for epochs, window in itertools.product(args.report, args.windows):
            acc = np.array([[accuracy(rec, epochs, window) for rec in row] for row in records])
            row = {"task": spec, "epochs": epochs, "window": window, **ceiling_figures(acc),
                   "seconds_per_training": seconds * epochs / args.epochs}
            table.append(row)
            print(f"{spec:<14} {epochs:>6} {window:>6} {row['mean']:>6.3f} {row['spread']:>7.4f} "
                  f"{row['seed_sd']:>8.4f} {row['split_half']:>10.3f} {row['pairwise']:>8.3f} "
                  f"{row['seconds_per_training']:>8.1f}")
    write_results(args.out, training=training, archs=[list(p) for p in chosen], pick_seed=PICK_SEED,
                  split_seed=SPLIT_SEED, training_seeds="1000 * repeat + architecture index", settings=SETTINGS,
                  table=table)
    print(f"\n{args.out}; for the README:\n")
    print(markdown(table))


def markdown(table: list[dict]) -> str:
    """The README's table: one row per task, epoch count and window."""
    lines = ["| task | epochs | window | mean acc | spread | seed sd | split-half | pairwise | s / training |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['task']} | {r['epochs']} | {r['window']} | {r['mean']:.3f} | {r['spread']:.3f} | "
              f"{r['seed_sd']:.3f} | {r['split_half']:.2f} | {r['pairwise']:.2f} | {r['seconds_per_training']:.0f} |"
              for r in table]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
