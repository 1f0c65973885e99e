"""How well do performance predictors rank unseen architectures? GNN vs random forest vs zero-cost proxies.

Reads the tabular ground truth written by ``benchmarks/ground_truth.py`` (``fade`` architectures
trained on digits, one or more seeds each; read by :class:`archgraph.bench.TabularObjective`, which
also keeps one of isomorphic duplicates). Per seed, the architectures are shuffled; the first
``max(--sizes)`` form the training pool (a training set of size n is its first n) and all the
others are held out. Predictors train on the final validation accuracy (what a search sees), the
mean over the table's seeds, and are judged on the held-out architectures ranked by their **test
accuracy**, the mean over the table's seeds (the default table's 4: split-half ceiling 0.66, the
means of two trainings against those of the other two; the 4-training mean is steadier, but a
predictor's Spearman against it cannot be far above about 0.8). It measures:

- ``gnn``: ``archgraph.predict.RankingPredictor`` (GIN, pairwise hinge loss) fitted on
  ``(arch, epochs, final validation accuracy)`` of the training set, at its defaults and at each of
  ``--variants`` (``gnn[epochs=50]``: the default with that setting changed; ``gnn[extras]``: the
  forest's graph features joined to the GNN as extra inputs), which say why the GNN trails the
  forest (issue 22 item 3: its features, its loss or its size);
- ``forest``: scikit-learn's ``RandomForestRegressor`` (``--trees``) on graph features — every
  feature of ``archgraph.features.FEATURES`` per cell, the four cells' vectors concatenated —
  regressing the final validation accuracy;
- each zero-cost proxy of ``archgraph.predict.proxies`` and the parameter count, computed once per
  architecture on the freshly initialised compiled model (``torch.manual_seed(0)``) and one batch
  of 64 digits training samples; they need no training set, so they get one row each, judged on
  the same held-out sets.

Prints Kendall τ, Spearman ρ and top-10 precision (``--top``: the share of the predicted ten best
that are among the true ten best) as mean ± std over seeds, per method and training-set size, with
the Kendall τ of each trained predictor on its own training architectures (against the validation
accuracy it was fitted to: how closely it fits them); then the graph features that rank the
held-out architectures best alone (chosen on the held-out sets themselves, so an upper bound for
a one-feature rule) and the forest's largest feature importances; and the wall time. Runs on
``--threads`` torch threads (default 1).

Everything goes to ``--results`` with the command and versions (``provenance.write_results``).

    python benchmarks/predictor_quality.py [--table benchmarks/data/fade_digits_seeds.json.gz]
        [--sizes 25 50 100 200] [--seeds 0 1 2 3 4] [--gnn-epochs 200] [--trees 200] [--top 10] [--threads 1]
        [--variants epochs=50 hidden=16 layers=6 loss=logistic validation_fraction=0.2 extras]
        [--results benchmarks/results/predictor_quality.json]
"""

from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import numpy as np
import torch
from provenance import write_results  # benchmarks/provenance.py, next to this script
from scipy.stats import kendalltau, spearmanr
from sklearn.ensemble import RandomForestRegressor

from archgraph import spaces
from archgraph.bench import TabularObjective, read_table
from archgraph.data import load
from archgraph.features import FEATURES, feature_vector
from archgraph.predict import proxies
from archgraph.predict.gnn import RankingPredictor

HERE = Path(__file__).resolve().parent
DEFAULT_TABLE = HERE / "data" / "fade_digits_seeds.json.gz"

def metrics(pred: np.ndarray, true: np.ndarray, top: int) -> tuple[float, float, float]:
    """Kendall τ, Spearman ρ and top-``top`` precision of ``pred`` against ``true``."""
    pred = np.nan_to_num(pred, nan=-np.inf)  # a proxy that fails ranks last
    top_pred = set(np.argsort(-pred, kind="stable")[:top])
    top_true = set(np.argsort(-true, kind="stable")[:top])
    return kendalltau(pred, true)[0], spearmanr(pred, true)[0], len(top_pred & top_true) / top


def zero_cost(space, archs, table: dict, batch: int = 64) -> dict[str, np.ndarray]:
    """Every proxy and the parameter count of every architecture, at initialisation, on one batch."""
    task = load("digits")
    idx = torch.randperm(len(task.train), generator=torch.Generator().manual_seed(0))[:batch]
    x = torch.stack([task.train[int(i)][0] for i in idx])
    y = torch.stack([torch.as_tensor(task.train[int(i)][1]) for i in idx])
    settings = table["settings"]
    out: dict[str, list[float]] = {}
    for arch in archs:
        torch.manual_seed(0)
        model = space.compile(arch, input_shape=task.input_shape, num_classes=task.num_classes,
                              kernel_size=settings["kernel_size"], channels=settings["channels"])
        for name, value in {**proxies.score(model, x, y), "params": sum(p.numel() for p in model.parameters())}.items():
            out.setdefault(name, []).append(float(value))
    return {name: np.array(values) for name, values in out.items()}


def features(arch) -> np.ndarray:
    return np.concatenate([feature_vector(cell, tuple(FEATURES)) for cell in arch])


#: the columns of :func:`features`, ``c<cell>:<feature>``
FEATURE_NAMES = [f"c{cell}:{name}" for cell in range(4) for name in FEATURES]
#: the GNN settings compared with its defaults: fewer steps, a narrower or deeper GIN, the other loss,
#: early stopping on held-out pairs, the forest's features as extra inputs
VARIANTS = ("epochs=50", "hidden=16", "layers=6", "loss=logistic", "validation_fraction=0.2", "extras")


def variant_settings(variant: str) -> tuple[dict, bool]:
    """``"epochs=50"`` → ``({"epochs": 50}, False)``; ``"extras"`` → ``({}, True)``."""
    if variant == "extras":
        return {}, True
    key, _, value = variant.partition("=")
    try:
        return {key: ast.literal_eval(value)}, False
    except (ValueError, SyntaxError):
        return {key: value}, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--gnn-epochs", type=int, default=200)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS),
                        help="GNN settings to compare with its defaults, KEY=VALUE of RankingPredictor, or extras")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "predictor_quality.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    table = read_table(args.table)
    bench = TabularObjective(table)
    space = spaces.load(bench.space)
    archs = bench.archs
    epochs = bench.epochs
    val = np.array([bench.curve(a)[epochs - 1] for a in archs])
    test = np.array([bench.test_accuracy(a) for a in archs])
    pool = max(args.sizes)
    if len(archs) - pool < args.top:
        raise SystemExit(f"{args.table} holds {len(archs)} architectures; training sets up to {pool} need at least "
                         f"{pool + args.top} (held-out ones to rank); build more or pass smaller --sizes")
    print(f"{args.table}: {len(archs)} architectures, {len(archs) - pool} held out per seed; "
          f"test accuracy {test.min():.3f} .. {test.max():.3f}")

    t0 = time.perf_counter()
    zc = zero_cost(space, archs, table)
    print(f"zero-cost proxies: {time.perf_counter() - t0:.1f} s")
    x = np.stack([features(a) for a in archs])

    results: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    timing: dict[str, float] = {}
    feature_tau, importances = [], []
    gnns = {"gnn": ({}, False), **{f"gnn[{v}]": variant_settings(v) for v in args.variants}}

    def record(name: str, n: int, train, held, fitted: np.ndarray, predicted: np.ndarray) -> None:
        """Held-out metrics against the test truth, and the fit to the training architectures."""
        train_tau = kendalltau(fitted, val[train])[0]
        results.setdefault((name, str(n)), []).append((*metrics(predicted, test[held], args.top), train_tau))

    for seed in args.seeds:
        order = np.random.default_rng(seed).permutation(len(archs))
        held = order[pool:]
        for name, values in zc.items():
            results.setdefault((name, "-"), []).append(metrics(values[held], test[held], args.top))
        feature_tau.append([kendalltau(x[held, j], test[held])[0] for j in range(x.shape[1])])
        for n in args.sizes:
            train = order[:n]
            for name, (settings, extras) in gnns.items():
                t0 = time.perf_counter()
                gnn = RankingPredictor(space, **{"epochs": args.gnn_epochs, "seed": seed, **settings},
                                       extra_features=x.shape[1] if extras else 0)
                gnn.fit([(archs[i], epochs, val[i], *([x[i]] if extras else [])) for i in train])
                record(name, n, train, held, gnn.score([archs[i] for i in train], x[train] if extras else None),
                       gnn.score([archs[i] for i in held], x[held] if extras else None))
                timing[name] = timing.get(name, 0.0) + time.perf_counter() - t0
            t0 = time.perf_counter()
            forest = RandomForestRegressor(n_estimators=args.trees, random_state=seed).fit(x[train], val[train])
            record("forest", n, train, held, forest.predict(x[train]), forest.predict(x[held]))
            timing["forest"] = timing.get("forest", 0.0) + time.perf_counter() - t0
            if n == pool:
                importances.append(forest.feature_importances_)

    held_out = len(archs) - pool
    print(f"\nheld-out ranking ({held_out} architectures) by test accuracy, mean ± std over seeds {args.seeds}; "
          f"chance top-{args.top} precision {args.top / held_out:.2f}")
    width = max(len(name) for name, _ in results)
    print(f"{'method':<{width}} {'train':>5} {'kendall tau':>15} {'spearman rho':>15} {f'top-{args.top} prec':>15} "
          f"{'tau on train':>15}")
    for (name, n), values in sorted(results.items(), key=lambda kv: (kv[0][1] == "-", kv[0][0], len(kv[0][1]), kv[0][1])):
        cols = np.array(values)
        cells = [f"{m:+.3f} ± {s:.3f}" for m, s in zip(np.nanmean(cols, 0), np.nanstd(cols, 0))]
        print(f"{name:<{width}} {n:>5} " + " ".join(f"{c:>15}" for c in cells))
    feature_tau = np.nanmean(feature_tau, 0)
    best_features = {FEATURE_NAMES[j]: round(float(feature_tau[j]), 4) for j in np.argsort(-np.abs(feature_tau))[:5]}
    mean_importance = np.mean(importances, 0)
    top_importances = {FEATURE_NAMES[j]: round(float(mean_importance[j]), 4) for j in np.argsort(-mean_importance)[:5]}
    print(f"\nsingle graph features, Kendall tau on the held-out sets (mean over seeds): {best_features}")
    print(f"forest feature importances at {pool} training architectures: {top_importances}")
    print("\nfitting (all seeds and sizes): " + ", ".join(f"{name} {s:.1f} s" for name, s in timing.items()))
    print(f"wall time {time.perf_counter() - start:.1f} s")
    columns = ("kendall_tau", "spearman_rho", f"top{args.top}_precision", "train_kendall_tau")
    write_results(args.results, table=str(args.table), architectures=len(archs), held_out=held_out, seeds=args.seeds,
                  top=args.top, gnn_epochs=args.gnn_epochs, trees=args.trees, variants=args.variants,
                  metrics={f"{name} {n}": dict(zip(columns, np.array(values).T.tolist()))
                           for (name, n), values in results.items()},
                  single_features=best_features, forest_importances=top_importances,
                  fitting_seconds={name: round(s, 1) for name, s in timing.items()},
                  seconds=round(time.perf_counter() - start, 1))


if __name__ == "__main__":
    main()
