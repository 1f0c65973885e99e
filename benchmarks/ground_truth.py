"""A tabular ground truth: random ``fade`` architectures trained on digits, several seeds each, with learning curves.

Draws ``--n`` distinct architectures of the ``fade`` space with a fixed seed — each of the four
cells uniform over the DAGs of 1 to 5 vertices up to isomorphism, as NOSH's sampler draws them
(``archgraph.search.nosh``) — and trains each ``--seeds`` times from scratch on the digits
training split less a validation fifth (``train_val_split``), recording per architecture its
cells (``ArchGraph.to_dict``) and, per training, the validation accuracy after every epoch
(rounded to 4 decimals: the validation fifth has 288 samples, 1/288 ≈ 0.0035), the final test
accuracy on the digits test split and the seconds it took. Training ``r`` of architecture ``i``
has its own initialisation and shuffling seed, ``SeedSequence([--seed, i, r])``.

Training follows the steady task of the FaDE validation (``benchmarks/task_ceiling.py``: digits
ranks architectures with a split-half ceiling of 0.91–0.93 after 10 or 20 epochs): Adam at lr
1e-3, batch 128, weight decay 1e-4, gradient clipping 10 (FaDE §3), for 16 epochs (2^4: budgets
1, 2, 4, 8, 16 for successive halving and NOSH with η = 2); 3×3 kernels (5×5 ones fade on the
2×2 and 1×1 maps of 8×8 digits), channels 4, 8, 16, 32 between the cells.

Writes ``--out`` (default ``benchmarks/data/fade_digits_seeds.json.gz``; gzip'd JSON, the second
format of ``archgraph.bench``, which reads it as a ``TabularObjective``) after every training,
with the command line and versions that made it (``provenance``)::

    {"format": 2, "space": "fade", "dataset": "digits", "seed": 0, "seeds": 2, "settings": {...},
     "command": "python benchmarks/ground_truth.py ...", "versions": {...},
     "architectures": [{"cells": [...], "val_accuracy": [[...], [...]], "test_accuracy": [0.9, 0.91],
                        "seconds": [20.1, 19.8]}, ...]}

A killed build keeps what it trained: run again with the same settings and it goes on where it
stopped (the draw is deterministic), adds architectures when ``--n`` is larger and trainings
when ``--seeds`` is larger. Settings that differ from the file's are refused (use another
``--out``). The table of the first build (``fade_digits.json``: 154 architectures, one training
of 8 epochs at lr 3e-3 each) is the first format, which ``archgraph.bench`` reads as one seed.

Prints the table's size, the spread of its test accuracies, the seconds per training and the
*split-half ceiling*: the Spearman correlation between the per-architecture means of two
disjoint halves of the seeds (with 2 seeds, seed 0 against seed 1; ``task_ceiling.ceiling_figures``),
of the final validation and of the test accuracy, over the architectures trained with every seed.

Measured (``fade_digits_seeds.json.gz``): 300 architectures × 4 seeds, built as ``--seeds 2``
(2,112 s on one thread of the 2-core CPU, 3.5 s a training) then extended by ``--n 300 --seeds 4``
(4,162 s of wall time beside other work); 1,200 trainings, 5.2 s each on average, 1.73 CPU-hours.
Mean test accuracy 0.302–0.912 (median 0.815). Split-half ceiling (the means of seeds 0–1 against
those of 2–3): 0.644 on the final validation accuracy and 0.657 on the test accuracy; seed-to-seed
sd 0.065 / 0.063 against a spread between architectures of 0.085 / 0.084. With 2 seeds it was
0.42 / 0.49 (one training against the other): at 16 epochs one training of these random
architectures ranks them poorly, the mean of four (Spearman–Brown: reliability ≈ 0.78) steadily
enough for the strategies and predictors that query it.

    python benchmarks/ground_truth.py [--n 300] [--seeds 2] [--seed 0] [--epochs 16] [--batch 128] [--lr 1e-3]
        [--weight-decay 1e-4] [--grad-clip 10] [--kernel-size 3] [--channels 4 8 16 32] [--threads 1]
        [--out benchmarks/data/fade_digits_seeds.json.gz]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from provenance import provenance  # benchmarks/provenance.py, next to this script
from task_ceiling import ceiling_figures

from archgraph import spaces
from archgraph.bench import read_table, write_table
from archgraph.data import load, train_val_split
from archgraph.search.feature_search import cell_feature_space
from archgraph.train import evaluate, train

DEFAULT_OUT = Path(__file__).parent / "data" / "fade_digits_seeds.json.gz"


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


def training_seed(seed: int, index: int, repeat: int) -> int:
    """The seed of training ``repeat`` of architecture ``index`` in a build seeded ``seed``."""
    return int(np.random.SeedSequence([seed, index, repeat]).generate_state(1)[0])


def summary(rows: list[dict], seeds: int) -> str:
    """The table's size, test accuracies, seconds per training and split-half ceilings."""
    full = [r for r in rows if len(r["test_accuracy"]) >= seeds]
    tests = [float(np.mean(r["test_accuracy"])) for r in rows if r["test_accuracy"]]
    seconds = [s for r in rows for s in r["seconds"]]
    lines = [(f"{len(rows)} architectures, {len(seconds)} trainings ({len(full)} architectures with all {seeds} "
              f"seeds); mean test accuracy min {min(tests):.3f} median {statistics.median(tests):.3f} max "
              f"{max(tests):.3f}; {np.mean(seconds):.1f} s per training ({sum(seconds) / 3600:.2f} CPU-hours in all)")]
    if seeds >= 2 and len(full) >= 3:
        val = ceiling_figures(np.array([[curve[-1] for curve in r["val_accuracy"][:seeds]] for r in full]))
        test = ceiling_figures(np.array([r["test_accuracy"][:seeds] for r in full]))
        lines.append(f"split-half ceiling over {len(full)} architectures (Spearman of the means of two disjoint "
                     f"halves of the {seeds} seeds): final validation {val['split_half']:.3f}, test "
                     f"{test['split_half']:.3f}; seed sd {val['seed_sd']:.4f} / {test['seed_sd']:.4f} against a "
                     f"spread of {val['spread']:.4f} / {test['spread']:.4f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="architectures")
    parser.add_argument("--seeds", type=int, default=2, help="trainings per architecture")
    parser.add_argument("--seed", type=int, default=0, help="the draw, the validation split and the trainings")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--grad-clip", type=float, default=10.0)
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--channels", type=int, nargs="+", default=[4, 8, 16, 32])
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    settings = {"epochs": args.epochs, "batch_size": args.batch, "optimizer": "adam", "lr": args.lr,
                "weight_decay": args.weight_decay, "grad_clip": args.grad_clip, "kernel_size": args.kernel_size,
                "channels": args.channels, "val_fraction": args.val_fraction, "split_seed": args.seed,
                "sampler": "uniform cells (1-5 vertices, up to isomorphism)",
                "training_seeds": "SeedSequence([seed, architecture index, repeat])"}
    table = {"format": 2, "space": "fade", "dataset": "digits", "seed": args.seed, "settings": settings,
             "architectures": []}
    if args.out.exists():
        old = read_table(args.out)
        if (old.get("format"), old["seed"], old["settings"]) != (2, args.seed, settings):
            raise SystemExit(f"{args.out} was built with seed {old['seed']} and settings {old['settings']}, "
                             f"not seed {args.seed} and {settings}; pass another --out")
        table = old
    rows = table["architectures"]

    space = spaces.load("fade")
    task = load("digits")
    train_data, val_data = train_val_split(task.train, args.val_fraction, seed=args.seed)
    archs = draw(args.n, args.seed)
    todo = [(i, r) for i in range(args.n) for r in range(args.seeds)
            if i >= len(rows) or r >= len(rows[i]["test_accuracy"])]
    print(f"{args.out}: {args.n * args.seeds - len(todo)} of {args.n} × {args.seeds} trainings already done", flush=True)
    start = time.perf_counter()
    for done, (i, r) in enumerate(todo, 1):
        t0 = time.perf_counter()
        seed = training_seed(args.seed, i, r)
        torch.manual_seed(seed)
        model = space.compile(archs[i], input_shape=task.input_shape, num_classes=task.num_classes,
                              kernel_size=args.kernel_size, channels=args.channels)
        result = train(model, train_data, val_data=val_data, epochs=args.epochs, batch_size=args.batch, lr=args.lr,
                       weight_decay=args.weight_decay, grad_clip=args.grad_clip, seed=seed, progress=False)
        test = float(evaluate(model, task.test)["accuracy"])
        if i == len(rows):
            rows.append({"cells": [c.to_dict() for c in archs[i]], "val_accuracy": [], "test_accuracy": [],
                         "seconds": []})
        rows[i]["val_accuracy"].append([round(h["val_accuracy"], 4) for h in result.history])
        rows[i]["test_accuracy"].append(round(test, 4))
        rows[i]["seconds"].append(round(time.perf_counter() - t0, 2))
        table.update(seeds=max(table.get("seeds", 0), args.seeds), **provenance())
        write_table(table, args.out)
        print(f"{done:4d}/{len(todo)}  architecture {i} seed {r}: val {rows[i]['val_accuracy'][-1][-1]:.3f}  test "
              f"{test:.3f}  {rows[i]['seconds'][-1]:5.1f} s", flush=True)

    print(f"\n{summary(rows, args.seeds)}")
    print(f"wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
