"""A tabular ground truth: random ``fade`` architectures trained on digits, with learning curves.

Draws ``--n`` distinct architectures of the ``fade`` space with a fixed seed — each of the four
cells uniform over the DAGs of 1 to 5 vertices up to isomorphism, as NOSH's sampler draws them
(``archgraph.search.nosh``) — and trains each from scratch on the digits training split less a
validation fifth (``train_val_split``), recording per architecture its cells
(``ArchGraph.to_dict``), the validation accuracy after every epoch, the final test accuracy on
the digits test split and the seconds it took. Every architecture has its own initialisation and
shuffling seed, derived from ``--seed`` and its index.

Writes ``--out`` (default ``benchmarks/data/fade_digits.json``) after every architecture::

    {"space": "fade", "dataset": "digits", "seed": 0, "settings": {...},
     "architectures": [{"cells": [...], "val_accuracy": [...], "test_accuracy": 0.9, "seconds": 3.1}, ...]}

A killed build keeps what it trained: run again with the same settings and it skips the finished
architectures (the draw is deterministic), and adds more when ``--n`` is larger. Settings that
differ from the file's are refused (use another ``--out``). Other benchmarks (predictor quality,
NOSH budgets) read the file as a tabular benchmark.

Defaults are small, for a busy 2-core machine: 3×3 kernels (5×5 ones fade on the 2×2 and
1×1 maps of 8×8 digits), channels 4, 8, 16, 32, 8 epochs (2^3: budgets 1, 2, 4, 8 for
successive halving with eta 2) of Adam at lr 3e-3 on batches of 128 (9 steps per epoch; a step
of these cells costs about 1.6× as much at 128 samples as at 32, so the larger batch trains on
2.5× the samples per second). One architecture then takes about 10 s on one torch thread (8 to
20 s, with the cells' sizes and the machine's load); 150 take about 25 minutes.

    python benchmarks/ground_truth.py [--n 150] [--seed 0] [--epochs 8] [--batch 128] [--lr 3e-3]
        [--kernel-size 3] [--channels 4 8 16 32] [--threads 1] [--out benchmarks/data/fade_digits.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from archgraph import spaces
from archgraph.data import load, train_val_split
from archgraph.search.feature_search import cell_feature_space
from archgraph.train import evaluate, train

DEFAULT_OUT = Path(__file__).parent / "data" / "fade_digits.json"


def draw(n: int, seed: int) -> list[tuple]:
    """``n`` distinct architectures of ``fade``: each cell uniform over the enumerated DAGs."""
    space = spaces.load("fade")
    cells = cell_feature_space(space).graphs
    rng = np.random.default_rng(seed)
    seen, archs = set(), []
    while len(archs) < n:
        arch = tuple(cells[i] for i in rng.integers(len(cells), size=len(space.cells)))
        key = json.dumps([c.to_dict() for c in arch], sort_keys=True)
        if key not in seen:
            seen.add(key)
            archs.append(arch)
    return archs


def arch_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def save(table: dict, path: Path) -> None:
    """Write ``table`` atomically, so that a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table, indent=1))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--channels", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    settings = {"epochs": args.epochs, "batch_size": args.batch, "optimizer": "adam", "lr": args.lr,
                "kernel_size": args.kernel_size, "channels": args.channels, "val_fraction": args.val_fraction,
                "split_seed": args.seed, "sampler": "uniform cells (1-5 vertices, up to isomorphism)"}
    table = {"space": "fade", "dataset": "digits", "seed": args.seed, "settings": settings, "architectures": []}
    if args.out.exists():
        old = json.loads(args.out.read_text())
        if (old["seed"], old["settings"]) != (args.seed, settings):
            raise SystemExit(f"{args.out} was built with seed {old['seed']} and settings {old['settings']}, "
                             f"not seed {args.seed} and {settings}; pass another --out")
        table = old

    space = spaces.load("fade")
    task = load("digits")
    train_data, val_data = train_val_split(task.train, args.val_fraction, seed=args.seed)
    archs = draw(args.n, args.seed)
    done = len(table["architectures"])
    print(f"{args.out}: {done} of {args.n} architectures already trained")
    start = time.perf_counter()
    for i in range(done, args.n):
        t0 = time.perf_counter()
        seed = arch_seed(args.seed, i)
        torch.manual_seed(seed)
        model = space.compile(archs[i], input_shape=task.input_shape, num_classes=task.num_classes,
                              kernel_size=args.kernel_size, channels=args.channels)
        result = train(model, train_data, val_data=val_data, epochs=args.epochs, batch_size=args.batch,
                       lr=args.lr, seed=seed, progress=False)
        test = evaluate(model, task.test)["accuracy"]
        row = {"cells": [c.to_dict() for c in archs[i]],
               "val_accuracy": [h["val_accuracy"] for h in result.history],
               "test_accuracy": float(test), "seconds": time.perf_counter() - t0}
        table["architectures"].append(row)
        save(table, args.out)
        print(f"{i + 1:4d}/{args.n}  val {row['val_accuracy'][-1]:.3f}  test {test:.3f}  {row['seconds']:5.1f} s",
              flush=True)

    rows = table["architectures"]
    tests = [r["test_accuracy"] for r in rows]
    print(f"\n{'architectures':>14} {'test min':>9} {'median':>7} {'max':>6} {'s/arch':>7}")
    print(f"{len(rows):>14} {min(tests):>9.3f} {statistics.median(tests):>7.3f} {max(tests):>6.3f} "
          f"{statistics.mean(r['seconds'] for r in rows):>7.2f}")
    print(f"wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
