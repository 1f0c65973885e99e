"""The ``archgraph`` command.

``archgraph train`` compiles an architecture of a space and trains it on a dataset, writing
the weights, the architecture and the learning curve to a run folder; ``archgraph show``
summarises an architecture file and draws it; ``archgraph search`` runs a resumable search;
``archgraph darts`` runs DARTS or one of its robust variants on a DARTS space;
``archgraph ranks`` prints FaDE-ranks; ``archgraph spaces`` lists the spaces, ``archgraph strategies``
the search strategies and their parameters; ``archgraph runs
list|export|pareto`` summarises run folders, writes a run's trials as CSV or JSON and lists its Pareto
front; ``archgraph report`` writes runs as one self-contained HTML page; ``archgraph export`` writes a
trial's trained model as ONNX or TorchScript.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
import tomllib
from pathlib import Path

from . import __version__
from .errors import ArchGraphError

EPILOG = """examples:
  archgraph search --space fade --strategy bo --dataset digits --trials 30 --epochs 3 --out runs/bo
  archgraph search --resume runs/bo
  archgraph train --space fade --arch examples/fade_arch.json --dataset digits --epochs 10
  archgraph train --space mlp --arch examples/mlp_arch.json --dataset wine
  archgraph show examples/fade_arch.json --space fade --picture fade_arch.png
  archgraph search --strategy fade --trials 12 --epochs 3 --out runs/fade
  archgraph ranks runs/fade/hyper/trial-0.json
  archgraph darts --space s2 --method es --select pt --epochs 10 --out runs/darts-es
  archgraph predict --fit runs/nosh --model runs/nosh/predictor.pt
  archgraph predict --pool pool.json --model runs/nosh/predictor.pt --top 5
  archgraph spaces
  archgraph strategies evolution bo
  archgraph runs list runs
  archgraph runs export runs/bo --format csv --out bo.csv
  archgraph runs pareto runs/bo --objective val_accuracy:max --objective flops:min
  archgraph report runs/bo runs/fade --out report.html
  archgraph export runs/bo --format onnx --out bo.onnx
"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ArchGraphError as e:
        print(f"archgraph: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archgraph: interrupted; what finished is in the run folder", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archgraph", description="Graph-centric neural architecture search on PyTorch.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"archgraph {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="compile an architecture and train it on a dataset",
                       description="Compile ARCH (a JSON architecture file) in SPACE and train it; "
                                   "the run folder gets model.pt, arch.json and metrics.json.")
    t.add_argument("--space", required=True, help="space name (fade, darts, nb201, mlp) or a .toml path")
    t.add_argument("--arch", required=True, type=Path, help="architecture JSON file (see archgraph.spaces.save_architecture)")
    _add_data_args(t)
    t.add_argument("--epochs", type=int, default=None, help=f"training epochs (default: {_TASK_DEFAULT})")
    t.add_argument("--batch-size", type=int, default=None, help=f"(default: {_TASK_DEFAULT})")
    t.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    t.add_argument("--lr", type=float, default=None, help=f"learning rate (default: {_TASK_DEFAULT})")
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--grad-clip", type=float, default=10.0, help="max gradient norm (FaDE §3 used 10)")
    t.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    t.add_argument("--early-stop", type=int, default=None, metavar="PATIENCE")
    t.add_argument("--val-fraction", type=float, default=0.2, help="share of the training set held out for validation")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda:0 (default: cuda if available)")
    _add_param_arg(t)
    t.add_argument("--out", type=Path, default=None, help="run folder (default: runs/train-<time>)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(run=_train)

    se = sub.add_parser("search", help="search a space with a strategy; resumable",
                        description="Search SPACE with STRATEGY, training every trial on DATASET. The run folder "
                                    "gets store.sqlite (every trial), checkpoints/, best_arch.json and progress.png; "
                                    "a killed run continues with --resume RUN_DIR.")
    se.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR")
    se.add_argument("--space", default="fade", help="space name or .toml path (default: fade)")
    se.add_argument("--strategy", default="random",
                    help="random, bo, evolution, fade, nosh, sh (successive halving), predictor or controller "
                         "(default: random); `archgraph strategies` lists each one's parameters")
    _add_data_args(se)
    se.add_argument("--epochs", type=int, default=None, help=f"training epochs per trial (default: {_TASK_DEFAULT})")
    se.add_argument("--trials", type=int, default=None, help="budget: number of trials (default: 20 for a new run)")
    se.add_argument("--max-epochs", type=int, default=None, help="budget: training epochs over all trials")
    se.add_argument("--seconds", type=float, default=None, help="budget: wall-clock seconds of this call")
    se.add_argument("--seed", type=int, default=0)
    se.add_argument("--evaluator", choices=["inprocess", "process", "ray"], default=None,
                    help="where trials train: this process (default), a local process pool, or Ray; with --resume, "
                         "this and --workers, --ray-address and --device change where the run goes on (default: "
                         "where it last ran)")
    se.add_argument("--workers", type=int, default=None, help="process-pool workers / local Ray CPUs (default: 2)")
    se.add_argument("--ray-address", default=None, help="address of a Ray cluster (default: a local instance)")
    se.add_argument("--batch-size", type=int, default=None, help=f"(default: {_TASK_DEFAULT})")
    se.add_argument("--lr", type=float, default=None, help=f"learning rate (default: {_TASK_DEFAULT})")
    se.add_argument("--device", default=None, help="torch device of the trials (default: cuda if available)")
    _add_param_arg(se)
    se.add_argument("--strategy-param", action="append", default=[], metavar="KEY=VALUE",
                    help="strategy option, e.g. draws=5, per_cell=false, population_size=10 (`archgraph "
                         "strategies STRATEGY` lists them with their defaults)")
    se.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<strategy>-<time>)")
    se.add_argument("--no-progress", action="store_true",
                    help="no progress bar (nor, when the output is not a terminal, a log line per trial)")
    se.add_argument("--log", action="append", default=[], choices=["csv", "tensorboard", "mlflow"],
                    help="also write per-epoch and per-trial metrics: csv (RUN_DIR/logs/), tensorboard "
                         "(RUN_DIR/tensorboard/; needs tensorboard), mlflow (needs mlflow); repeatable")
    se.add_argument("--objective", action="append", default=None, metavar="METRIC:max|min",
                    help="what the strategy pursues, repeatable: val_accuracy:max (default), parameters:min, "
                         "flops:min, latency:min, ...; other or several objectives take random or evolution, and the "
                         "run keeps their Pareto front (front.json)")
    se.add_argument("--pruner", choices=["none", "median"], default="none",
                    help="stop trials early: median (best val acc below the median of the completed trials at the "
                         "same epoch) or none (default)")
    se.add_argument("--pruner-param", action="append", default=[], metavar="KEY=VALUE",
                    help="pruner option, e.g. warmup_epochs=1, min_trials=5 (the defaults)")
    se.add_argument("--max-failures", type=int, default=5, metavar="N",
                    help="stop after N trials failed in a row (default: 5; 0: never)")
    se.add_argument("--retry-failed", action="store_true",
                    help="with --resume: train the run's failed trials again (by default they stay failed)")
    se.set_defaults(run=_search)

    s = sub.add_parser("show", help="summarise and draw an architecture file or a pasted genotype",
                       description="Summarise ARCH (a JSON architecture file), or an architecture in a notation "
                                   "papers and logs print, which is also written back as archgraph reads it; "
                                   "--genotype and --nb201 count the parameters of the CIFAR-10 network (3x32x32, "
                                   "10 classes) with the space's parameters, --param overriding them.")
    s.add_argument("arch", type=Path, nargs="?", help="architecture JSON file")
    s.add_argument("--genotype", default=None, metavar="TEXT",
                   help="a DARTS Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...) as DARTS "
                        "logs print it, or a published one: DARTS_V1, DARTS_V2, NASNet, AmoebaNet, ENAS, PNAS")
    s.add_argument("--nb201", default=None, metavar="TEXT", help="a NAS-Bench-201 string |op~0|+|op~0|op~1|+|...|")
    s.add_argument("--nb101", nargs=2, default=None, metavar=("MATRIX", "OPS"),
                   help="a NAS-Bench-101 spec: the adjacency matrix and the op list as Python lists, e.g. "
                        "'[[0, 1], [0, 0]]' \"['input', 'output']\"")
    s.add_argument("--space", default=None, help="space to compile it in, for the parameter count "
                                                 "(default: the space the file names)")
    _add_data_args(s)
    _add_param_arg(s)
    s.add_argument("--picture", type=Path, default=None, help="write a drawing (.png or .svg)")
    s.set_defaults(run=_show)

    r = sub.add_parser("ranks", help="FaDE-ranks of a trained hyper-architecture",
                       description="Print the best paths of a trained hyper-architecture (its hyper/trial-<id>.json "
                                   "file of a FaDE search run) by FaDE-rank, the product of the rows' architecture "
                                   "weights along the path (FaDE §2.3), and each row's weights.")
    r.add_argument("hyper", type=Path, help="hyper-architecture JSON file (RUN_DIR/hyper/trial-<id>.json)")
    r.add_argument("--top", type=int, default=10, help="paths to list (default: 10)")
    r.add_argument("--picture", type=Path, default=None, help="draw each row's weights over the epochs (.png)")
    r.set_defaults(run=_ranks)

    d = sub.add_parser("darts", help="DARTS or a robust variant on a DARTS space (s1..s5, darts) or NAS-Bench-201",
                       description="Search SPACE with a DARTS supernet trained bi-level by METHOD, discretise it by "
                                   "SELECT, then retrain the found cells from scratch and report test accuracy. "
                                   "The training split is halved: weights learn on one half, α on the other.")
    d.add_argument("--space", default="s2", help="s1..s5 (RobustDARTS), darts, or nb201 (the NAS-Bench-201 "
                                                 "supernet; not with --method fair or rsws) (default: s2)")
    d.add_argument("--method", default="darts", choices=["darts", "es", "ada", "rdarts", "fair", "drnas", "gdas",
                                                         "rsws", "rdarts-dp", "drnas-progressive"],
                   help="rdarts: R-DARTS(L2), one search per --l2-factors; rdarts-dp: R-DARTS(DP), one per "
                        "--drop-path-probs (RobustDARTS §5.1); drnas-progressive: DrNAS' two stages on partial "
                        "channels K = 6 then 4, ops pruned to 4 per edge in between (needs --C a multiple of 12) "
                        "(default: darts)")
    d.add_argument("--select", default="magnitude", choices=["magnitude", "pt"],
                   help="magnitude (DARTS §2.4) or pt (DARTS-PT perturbation; default: magnitude)")
    _add_data_args(d)
    d.add_argument("--epochs", type=int, default=10, help="search epochs (DARTS: 50; default: 10)")
    d.add_argument("--C", type=int, default=8, help="initial channels of the supernet (DARTS: 16; default: 8)")
    d.add_argument("--layers", type=int, default=5, help="cells of the supernet (DARTS: 8), on nb201 the cells per "
                                                         "stage N (NAS-Bench-201: 5) (default: 5)")
    d.add_argument("--batch-size", type=int, default=64)
    d.add_argument("--order", type=int, choices=[1, 2], default=1, help="first or second order α gradient")
    d.add_argument("--arch-optimizer", default="adam", choices=["adam", "dscd"],
                   help="what steps α: adam (DARTS: Adam 3e-4, betas 0.5/0.999, weight decay 1e-3) or dscd (that "
                        "Adam alternated with DSCD's doubly stochastic global coordinate steps, Bodin et al.: "
                        "domain [-3, 3], T = 50, K = 1000) (default: adam)")
    d.add_argument("--es-window", type=int, default=None, metavar="K",
                   help="--method es or ada: DARTS-ES' window, λ_max averaged over K epochs and compared with the "
                        "average K epochs before (RobustDARTS §4.3; default: 5)")
    d.add_argument("--l2-factors", type=float, nargs="+", default=None, metavar="L2",
                   help="--method rdarts: the weights' L2 factors, one search each (RobustDARTS §5.1; default: 3e-4 "
                        "9e-4 2.7e-3 8.1e-3 2.43e-2)")
    d.add_argument("--drop-path-probs", type=float, nargs="+", default=None, metavar="P",
                   help="--method rdarts-dp: the largest ScheduledDropPath probabilities, raised linearly over the "
                        "search, one search each, in [0, 1) (RobustDARTS §5.1; default: 0 0.2 0.4 0.6)")
    d.add_argument("--retrain-epochs", type=int, default=10, help="retraining of the found cells (0: skip)")
    d.add_argument("--pt-tune-epochs", type=int, default=None, metavar="E",
                   help="--select pt: bi-level epochs of each tuning between projections (DARTS-PT: 5; default: 1)")
    d.add_argument("--pt-tune-rounds", type=int, default=None, metavar="R",
                   help="--select pt: tune after R of the projection rounds, spread evenly (DARTS-PT: after each, "
                        "13 in a DARTS cell; default: as many as fit). E × R may not exceed --epochs")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    d.add_argument("--out", type=Path, default=None, help="run folder (default: runs/darts-<method>-<time>)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(run=_darts)

    pr = sub.add_parser("predict", help="fit a GNN ranking predictor to a search run, or rank a pool with one",
                        description="With --fit RUN_DIR: fit the pairwise-ranking GNN (RANK-NOSH) to every told "
                                    "trial of the run (architecture, epochs trained, validation accuracy) and save it "
                                    "to MODEL. With --pool POOL.json: rank the pool's architectures with MODEL.")
    pr.add_argument("--model", required=True, type=Path, help="predictor file (.pt)")
    pr.add_argument("--fit", type=Path, default=None, metavar="RUN_DIR", help="a search run folder to learn from")
    pr.add_argument("--pool", type=Path, default=None,
                    help='architectures to rank: {"space": NAME, "architectures": [[cell, ...], ...]}')
    pr.add_argument("--space", default=None, help="the pool's space (default: the one the file names)")
    pr.add_argument("--top", type=int, default=10, help="architectures to list (default: 10)")
    pr.add_argument("--epochs", type=int, default=200, help="training epochs of the predictor (default: 200)")
    pr.set_defaults(run=_predict)

    _add_results_commands(sub)

    sp = sub.add_parser("spaces", help="list the available search spaces")
    sp.set_defaults(run=_spaces)
    st = sub.add_parser("strategies", help="list the search strategies and their parameters",
                        description="List the strategies of `archgraph search --strategy`, each with its parameters, "
                                    "their defaults and a line on each, as the strategy's own docstring gives them; "
                                    "set one with --strategy-param NAME=VALUE.")
    st.add_argument("names", nargs="*", metavar="STRATEGY", help="only these strategies (default: all)")
    st.set_defaults(run=_strategies)
    return parser


def _add_results_commands(sub) -> None:
    """``archgraph runs list|export`` and ``archgraph export``."""
    ru = sub.add_parser("runs", help="list run folders, or export a run's trials as CSV or JSON",
                        description="Look at search runs without touching them (their stores are read read-only, "
                                    "so a run in progress goes on undisturbed).")
    rsub = ru.add_subparsers(required=True, metavar="ACTION")
    rl = rsub.add_parser("list", help="one line per run folder under DIR: strategy, space, trials, best, state",
                         description="Find the run folders (those holding store.sqlite) under DIR and print one line "
                                     "for each: strategy, space, trials told (of the budget), the best validation "
                                     "accuracy and its trial, and the state: finished, in progress, killed, failed "
                                     "(with its error) or interrupted.")
    rl.add_argument("dir", type=Path, metavar="DIR", help="a folder of run folders, or a run folder")
    rl.set_defaults(run=_runs_list)
    re_ = rsub.add_parser("export", help="write a run's trials as a CSV table or JSON records",
                          description="Write every trial of RUN_DIR: --format csv, one row per trial (state, "
                                      "seconds, hash, one column per metric, the architecture as JSON); --format "
                                      "json, the run's config and one record per trial, with its learning curve.")
    re_.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    re_.add_argument("--format", choices=["csv", "json"], required=True)
    re_.add_argument("--out", type=Path, default=None, help="file to write (default: standard output)")
    re_.set_defaults(run=_runs_export)
    rp = rsub.add_parser("pareto", help="the trials of a run on the Pareto front of chosen metrics",
                         description="List the complete trials of RUN_DIR that no other trial dominates: at least as "
                                     "good in every objective and better in one.")
    rp.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    rp.add_argument("--objective", action="append", default=None, metavar="METRIC:max|min",
                    help="a metric and its direction, repeatable (default: val_accuracy:max parameters:min); "
                         "metrics: val_accuracy, test_accuracy, parameters, flops, ...")
    rp.set_defaults(run=_runs_pareto)

    rep = sub.add_parser("report", help="one self-contained HTML page of one or more runs",
                         description="Write the runs as one HTML file that needs no network: configuration and "
                                     "budget, best-so-far curves (one per run), best trials and their architectures "
                                     "drawn, accuracy against parameters with the Pareto front, learning curves, a "
                                     "sortable and filterable table of every trial, and for FaDE runs the anchors and "
                                     "FaDE-ranks. A run in progress is read without disturbing it.")
    rep.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    rep.add_argument("--out", type=Path, default=Path("report.html"), help="the file to write (default: report.html)")
    rep.set_defaults(run=_report)

    ex = sub.add_parser("export", help="write a trial's trained model as ONNX or TorchScript",
                        description="Rebuild the best trial of RUN_DIR (or --trial N) from its checkpoint and write it "
                                    "as an ONNX or TorchScript file taking a batch of inputs; the file is run on "
                                    "random inputs and kept only if its outputs equal the module's to 1e-5.")
    ex.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ex.add_argument("--format", choices=["onnx", "torchscript"], required=True)
    ex.add_argument("--out", type=Path, required=True, help="the file to write (e.g. model.onnx, model.pt)")
    ex.add_argument("--trial", type=int, default=None, help="trial id (default: the best by validation accuracy)")
    ex.set_defaults(run=_export)


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits",
                   help="digits, mnist1d (mnist1d:N: generated with N samples), cifar10, wine, breast_cancer "
                        "(default: digits)")
    p.add_argument("--data-root", type=Path, default=None, help="folder of the dataset files (cifar10) or cache")


def _add_param_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override a space parameter, e.g. --param channels=8 --param C=16 (TOML values); "
                        "the fade space fits kernel_size and pool to the input where none is given")


# where the training flags' defaults come from
_TASK_DEFAULT = "per dataset, archgraph.train.TASK_DEFAULTS: batch 32 and lr 1e-3 on the embedded sets"


def _fill_defaults(args, task, space, *, search: bool) -> dict:
    """Set the training flags left out to ``task``'s defaults (:func:`archgraph.train.task_defaults`;
    ``search_epochs`` for a search's trials) and return the space parameters: ``--param``'s, over
    those the space fits to the task's input (:meth:`archgraph.spaces.Space.fitted`)."""
    from .train import task_defaults

    defaults = task_defaults(task.name)
    defaults["epochs"] = defaults.pop("search_epochs") if search else defaults["epochs"]
    for flag in ("epochs", "batch_size", "lr"):
        if getattr(args, flag) is None:
            setattr(args, flag, defaults[flag])
    given = _parse_params(args.param)
    return {**space.fitted(task.input_shape, given), **given}


def _parse_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ArchGraphError(f"--param takes KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            params[key.strip()] = value
    return params


def _architecture(args, *, need_space: bool = True) -> tuple:
    """The cells of ``args.arch`` and the space named by ``--space`` or by the file (``None``
    where neither names one and ``need_space`` is false)."""
    from . import spaces

    cells, named_space = spaces.load_architecture(args.arch)
    space_name = args.space or named_space
    if space_name is None:
        if need_space:
            raise ArchGraphError(f"{args.arch} names no space; pass --space (one of {', '.join(spaces.available())})")
        return None, cells
    return spaces.load(space_name), cells


def _compile(space, cells, task, params, seed: int):
    return space.compile(cells, input_shape=task.input_shape, num_classes=task.num_classes, seed=seed, **params)


def _train(args) -> int:
    from . import data, spaces
    from .data import train_val_split
    from .train import evaluate, train

    _check_training(args)  # every argument is checked before the run folder is made
    space, cells = _architecture(args)
    cells = space.validate(cells)
    device = _device(args.device)
    task = data.load(args.dataset, root=args.data_root)
    params = _fill_defaults(args, task, space, search=False)
    model = _compile(space, cells, task, params, args.seed)
    model.to(device)
    fit, val = train_val_split(task.train, val_fraction=args.val_fraction, seed=args.seed)
    out = args.out or Path("runs") / f"train-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    spaces.save_architecture(cells, out / "arch.json", space=space.name)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"space {space.name}, dataset {task.name} {tuple(task.input_shape)} → {task.num_classes} classes, "
          f"{n_params:,} parameters, {len(fit)} train / {len(val)} val / {len(task.test)} test, device {device}")
    print(f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr:g}"
          + "".join(f", {k} {v}" for k, v in params.items()))
    info = {"space": space.name, "dataset": task.name, "parameters": n_params, "seed": args.seed,
            "params": {**space.params, **params}}
    history: list[dict] = []

    def checkpoint(row: dict, model) -> None:  # after every epoch: an interrupted run keeps its last epoch
        history.append(row)
        _save_run(out, model, {**info, "history": history})

    result = train(model, fit, val_data=val, epochs=args.epochs, batch_size=args.batch_size,
                   optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                   grad_clip=args.grad_clip, schedule=None if args.schedule == "constant" else args.schedule,
                   early_stop=args.early_stop, seed=args.seed, device=device, progress=not args.no_progress,
                   on_epoch=checkpoint)
    test = evaluate(model, task.test, device=device)
    _print_table(result.history)
    print(f"test accuracy {test['accuracy']:.4f}, test loss {test['loss']:.4f}")
    _save_run(out, model, {**info, "history": result.history, "test": test})
    print(f"run saved to {out}/ (model.pt, arch.json, metrics.json)")
    return 0


def _check_training(args) -> None:
    """Refuse, in one line, the training settings of ``archgraph train`` that cannot run (those left
    out take the task's defaults, which can)."""
    wrong = [f"{flag} must be {rule}, got {value}" for flag, value, fits, rule in (
        ("--epochs", args.epochs, args.epochs is None or args.epochs >= 1, "at least 1"),
        ("--batch-size", args.batch_size, args.batch_size is None or args.batch_size >= 1, "at least 1"),
        ("--lr", args.lr, args.lr is None or args.lr > 0, "positive"),
        ("--weight-decay", args.weight_decay, args.weight_decay >= 0, "0 or more"),
        ("--grad-clip", args.grad_clip, args.grad_clip > 0, "positive"),
        ("--early-stop", args.early_stop, args.early_stop is None or args.early_stop >= 1, "a patience of 1 or more"),
        ("--val-fraction", args.val_fraction, 0 < args.val_fraction < 1, "between 0 and 1"),
    ) if not fits]
    if wrong:
        raise ArchGraphError("; ".join(wrong))


def _device(name: str | None):
    """The torch device ``--device`` names (default: CUDA where there is one), checked to exist here."""
    import torch

    try:
        device = torch.device(_default_device(name))
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, NotImplementedError) as err:  # torch's errors for an unusable device
        raise ArchGraphError(f"--device {name} cannot be used here (torch: {str(err).splitlines()[0]}); "
                             "pass --device cpu, or leave --device out to use CUDA where there is one") from None
    return device


def _save_run(out: Path, model, metrics: dict) -> None:
    import torch

    _atomic_write(out / "model.pt", lambda tmp: torch.save(model.state_dict(), tmp))
    _atomic_write(out / "metrics.json", lambda tmp: tmp.write_text(json.dumps(metrics, indent=1, default=str)))


def _search(args) -> int:
    from . import data, spaces
    from .search.session import Execution, SearchConfig, resume, search
    from .tracking import make_loggers

    budget = {k: v for k, v in (("trials", args.trials), ("max_epochs", args.max_epochs),
                                ("seconds", args.seconds)) if v is not None}
    if args.max_failures < 0:
        raise ArchGraphError(f"--max-failures is a number of trials (0: never stop), got {args.max_failures}")
    if args.retry_failed and args.resume is None:
        raise ArchGraphError("--retry-failed trains the failed trials of a run again; use it with --resume RUN_DIR")
    failures = {"max_failures": args.max_failures or None, "retry_failed": args.retry_failed}
    execution = {k: v for k, v in (("evaluator", args.evaluator), ("workers", args.workers),
                                   ("ray_address", args.ray_address), ("device", args.device and str(_device(args.device))))
                 if v is not None}  # a device that cannot be used here is refused before the run starts
    if args.resume is not None:
        _check_resume_flags(args)
        with _trial_lines(not args.no_progress):
            outcome = resume(args.resume, execution=execution, progress=not args.no_progress,
                             callbacks=make_loggers(args.log, args.resume), **failures, **budget)
    else:
        space_params = _fill_defaults(args, data.load(args.dataset, root=args.data_root), spaces.load(args.space),
                                      search=True)
        config = SearchConfig(
            space=args.space, dataset=args.dataset, strategy=args.strategy, epochs=args.epochs,
            trials=budget.pop("trials", 20), max_epochs=args.max_epochs, seconds=args.seconds, seed=args.seed,
            data_root=None if args.data_root is None else str(args.data_root),
            space_params=space_params, strategy_params=_parse_params(args.strategy_param),
            training={"batch_size": args.batch_size, "lr": args.lr},
            pruner=None if args.pruner == "none" else args.pruner, pruner_params=_parse_params(args.pruner_param),
            **({"objectives": args.objective} if args.objective else {}))
        out = args.out or Path("runs") / f"{args.strategy}-{time.strftime('%Y%m%d-%H%M%S')}"
        callbacks = make_loggers(args.log, out)  # a missing package is reported before the run folder is made
        with _trial_lines(not args.no_progress):
            outcome = search(config, out, execution=Execution(**{"device": _default_device(None), **execution}),
                             progress=not args.no_progress, callbacks=callbacks, **failures)
    _print_results(outcome)
    return 0


# what a resumed run may be given: a new budget, where it runs, and how this call reports and handles failures
_RESUME_FLAGS = ("resume", "trials", "max_epochs", "seconds", "evaluator", "workers", "ray_address", "device",
                 "no_progress", "log", "max_failures", "retry_failed", "run")


def _check_resume_flags(args) -> None:
    """Refuse, naming them, the flags of ``archgraph search --resume`` that would change the run:
    it continues with its recorded settings, and ignoring a flag silently would mislead."""
    defaults = vars(_parser().parse_args(["search"]))
    changed = [f"--{dest.replace('_', '-')}" for dest, default in defaults.items()
               if dest not in _RESUME_FLAGS and getattr(args, dest) != default]
    if changed:
        raise ArchGraphError(f"--resume continues {args.resume} with its recorded settings, which {', '.join(changed)} "
                             "would change; leave them out (a resumed run takes --trials, --max-epochs, --seconds, "
                             "--evaluator, --workers, --ray-address, --device, --log, --max-failures, --retry-failed, "
                             "--no-progress), or start a new run with --out")


@contextlib.contextmanager
def _trial_lines(progress: bool):
    """Show archgraph's log lines (one per trial) on stderr while the block runs, when ``progress``
    is on and stderr is not a terminal: there tqdm hides its bar, and a job's log file gets these."""
    if not progress or sys.stderr.isatty():
        yield
        return
    logger, handler = logging.getLogger("archgraph"), logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _darts(args) -> int:
    from . import data, spaces
    from .data import train_val_split
    from .oneshot import retrain, search_darts
    from .oneshot.methods import check_options

    space = spaces.load(args.space)
    if space.embodiment not in ("darts", "nb201"):
        raise ArchGraphError(f"space {space.name!r} is not a DARTS space; use s1..s5, darts or nb201")
    tuning = _pt_tuning(args)
    options = {"arch_optimizer": args.arch_optimizer, "es_window": args.es_window, "l2_factors": args.l2_factors,
               "drop_path_probs": args.drop_path_probs}
    try:  # refused before the run folder is made
        check_options(args.method, select=args.select, C=args.C, **options)
    except (TypeError, ValueError) as e:
        flags = {"es_window": "--es-window", "l2_factors": "--l2-factors", "drop_path_probs": "--drop-path-probs",
                 "arch_optimizer": "--arch-optimizer", "C=": "--C "}
        message = str(e)
        for name, flag in flags.items():
            message = message.replace(name, flag)
        raise ArchGraphError(message) from None
    task = data.load(args.dataset, root=args.data_root)
    arch, weight = train_val_split(task.train, val_fraction=0.5, seed=args.seed)
    out = args.out or Path("runs") / f"darts-{args.method}-{time.strftime('%Y%m%d-%H%M%S')}"  # made by the first
    # write, after search_darts has checked its settings
    info = {"space": space.name, "method": args.method, "select": args.select, "dataset": task.name,
            "seed": args.seed, "epochs": args.epochs, "C": args.C, "layers": args.layers, **tuning,
            **{k: v for k, v in options.items() if v is not None}}
    history: list[dict] = []

    def checkpoint(row: dict, model) -> None:  # after every epoch: an interrupted search keeps its curve
        history.append(row)
        _atomic_write(out / "metrics.json", lambda tmp: tmp.write_text(json.dumps({**info, "history": history},
                                                                                default=str)))

    device = _default_device(args.device)
    print(f"{args.method} on {space.name} ({args.select} selection), {task.name}: {len(weight)} weight / "
          f"{len(arch)} α samples, {args.epochs} epochs, C={args.C}, {args.layers} cells, device {device}"
          + (f"; DARTS-PT tunes {tuning['tune_epochs']} epoch(s) after {tuning['tune_rounds']} of its projection "
             "rounds at most" if tuning else ""))
    found = search_darts(space, args.method, weight_data=weight, arch_data=arch, input_shape=task.input_shape,
                         num_classes=task.num_classes, select=args.select, epochs=args.epochs, C=args.C,
                         layers=args.layers, batch_size=args.batch_size, order=args.order, seed=args.seed,
                         device=device, progress=not args.no_progress, on_epoch=checkpoint, **options, **tuning)
    spaces.save_architecture(found.cells, out / "arch.json", space=space.name)
    for name, cell in zip(space.cells, found.cells):
        print(f"{name:>7}: " + ", ".join(f"{u}→{v} {op}" for (u, v), op in sorted(cell.edge_ops.items())))
    if space.embodiment == "nb201":
        from .formats import to_nb201_string

        print(f"NAS-Bench-201 string: {to_nb201_string(found.cells[0])}")
    eigenvalue = "—" if found.eigenvalue is None else f"{found.eigenvalue:.4g}"
    print(f"search {found.seconds:.0f} s, λ_max of ∇²_α L_valid at the end: {eigenvalue}"
          + "".join(f", {k}: {v}" for k, v in found.details.items()))
    metrics = {**info, "history": found.history, "eigenvalue": found.eigenvalue, "details": found.details,
               "search_seconds": found.seconds}
    if args.retrain_epochs > 0:
        accuracy = retrain(space, found.cells, task.train, task.test, input_shape=task.input_shape,
                           num_classes=task.num_classes, epochs=args.retrain_epochs, C=args.C, layers=args.layers,
                           batch_size=args.batch_size, seed=args.seed, device=device, progress=not args.no_progress)
        print(f"retrained {args.retrain_epochs} epochs from scratch: test accuracy {accuracy:.4f}")
        metrics["test_accuracy"] = accuracy
    _atomic_write(out / "metrics.json", lambda tmp: tmp.write_text(json.dumps(metrics, indent=1, default=str)))
    print(f"run saved to {out}/ (arch.json: archgraph train --space {space.name} --arch {out / 'arch.json'}; "
          "metrics.json)")
    return 0


def _pt_tuning(args) -> dict:
    """DARTS-PT's tuning, ``tune_epochs`` after each of ``tune_rounds`` projection rounds, bounded by
    the search's ``--epochs``: by default 1 epoch after as many rounds as ``--epochs`` allows (the
    reference's 5 after each of 13 rounds would follow a 10-epoch search with 65)."""
    given = [flag for flag, value in (("--pt-tune-epochs", args.pt_tune_epochs),
                                      ("--pt-tune-rounds", args.pt_tune_rounds)) if value is not None]
    if args.select != "pt":
        if given:
            raise ArchGraphError(f"{' and '.join(given)} set DARTS-PT's tuning; use them with --select pt")
        return {}
    epochs = 1 if args.pt_tune_epochs is None else args.pt_tune_epochs
    rounds, budget = args.pt_tune_rounds, args.epochs
    if epochs < 0 or (rounds is not None and rounds < 0):
        raise ArchGraphError(f"--pt-tune-epochs and --pt-tune-rounds are 0 or more (0: no tuning), got {epochs} and "
                             f"{rounds}")
    if rounds is None:  # as many tunings as --epochs holds
        if epochs > budget:
            raise ArchGraphError(f"DARTS-PT's tuning is bounded by the search's --epochs {budget}, but one tuning "
                                 f"takes --pt-tune-epochs {epochs}; pass --pt-tune-epochs {budget} or fewer, or raise "
                                 "--epochs")
        rounds = budget // epochs if epochs else 0
    elif epochs * rounds > budget:
        raise ArchGraphError(f"DARTS-PT's tuning is bounded by the search's --epochs {budget}, but --pt-tune-epochs "
                             f"{epochs} × --pt-tune-rounds {rounds} = {epochs * rounds} epochs; pass --pt-tune-rounds "
                             f"{budget // epochs} (or --pt-tune-epochs {budget // rounds}), or raise --epochs")
    return {"tune_epochs": epochs, "tune_rounds": rounds}


def _default_device(device: str | None) -> str:
    """The device asked for, else CUDA where there is one, else the CPU."""
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def _print_results(outcome, top: int = 5) -> None:
    from .pareto import SEARCH_OBJECTIVES
    from .trial import TrialState

    trials = {t.id: t for t in outcome.trials}
    if outcome.objectives != SEARCH_OBJECTIVES:
        names = [name for name, _ in outcome.objectives]
        print(f"{len(outcome.results)} trials told; {len(outcome.front)} on the Pareto front of "
              + ", ".join(f"{n} ({d})" for n, d in outcome.objectives) + ":")
        print(f"{'trial':>6} " + " ".join(f"{n:>14}" for n in names) + "  cells (vertices/edges)")
        for t, r in outcome.front:
            print(f"{t.id:>6} " + " ".join(f"{r.metrics[n]:>14.6g}" for n in names) + f"  {_cells(t)}")
        print(f"run folder {outcome.run_dir}/: store.sqlite, front.json, best_arch.json, progress.png")
    else:
        ranked = sorted((r for r in outcome.results if r.scored), key=lambda r: (-r.score, r.trial_id))
        print(f"{len(outcome.results)} trials told; the best {min(top, len(ranked))} architectures:")
        print(f"{'trial':>6} {'val acc':>8} {'test acc':>8} {'weights':>9}  cells (vertices/edges)")
        for r in ranked[:top]:
            print(f"{r.trial_id:>6} {r.score:>8.4f} {r.metrics.get('test_accuracy', float('nan')):>8.4f} "
                  f"{int(r.metrics.get('parameters', 0)):>9,}  {_cells(trials[r.trial_id])}")
        print(f"run folder {outcome.run_dir}/: store.sqlite, best_arch.json, progress.png")
    failed = [r for r in outcome.results if r.state is TrialState.FAILED]
    pruned = sum(r.state is TrialState.PRUNED for r in outcome.results)
    if pruned:
        print(f"{pruned} trials pruned (stopped early by the pruner)")
    if failed:
        print(f"{len(failed)} trials failed; their errors and tracebacks are in store.sqlite; to train them again: "
              f"archgraph search --resume {outcome.run_dir} --retry-failed")
        for r in failed[:top]:
            print(f"{r.trial_id:>6} {r.error.splitlines()[0]}")
    for line in outcome.notes:  # the strategy's (FaDE: its hyper-architectures)
        print(line)


def _cells(trial) -> str:
    return " ".join(f"{c.num_nodes}/{c.num_edges}" for c in trial.arch)


def _print_table(history: list[dict]) -> None:
    columns = [("epoch", "epoch", "d"), ("train_loss", "train loss", ".4f"), ("train_accuracy", "train acc", ".4f"),
               ("val_loss", "val loss", ".4f"), ("val_accuracy", "val acc", ".4f"), ("seconds", "seconds", ".2f")]
    print(" ".join(f"{title:>10}" for _, title, _ in columns))
    for row in history:
        print(" ".join(f"{'-' if row.get(key) is None else format(row[key], fmt):>10}" for key, _, fmt in columns))


def _show(args) -> int:
    from . import data, plot

    given = [x for x in (args.arch, args.genotype, args.nb201, args.nb101) if x is not None]
    if len(given) != 1:
        raise ArchGraphError("archgraph show takes one architecture: a file ARCH, or --genotype, --nb201 or --nb101")
    if args.arch is None:
        return _show_notation(args)
    space, cells = _architecture(args, need_space=False)
    names = space.cells if space else [f"cell{i + 1}" for i in range(len(cells))]
    print(f"{args.arch}: {len(cells)} cell(s)" + (f" of space {space.name}" if space else ""))
    _print_cells(names, cells)
    if space:
        cells = space.validate(cells)
        task = data.load(args.dataset, root=args.data_root)
        model = _compile(space, cells, task, _parse_params(args.param), seed=0)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"  compiled for {task.name} {tuple(task.input_shape)}: {n_params:,} parameters")
    if args.picture:
        plot.draw_architecture(cells, args.picture, names=list(names))
        print(f"  picture written to {args.picture}")
    return 0


def _show_notation(args) -> int:
    """``archgraph show`` of a genotype, NAS-Bench-201 string or NAS-Bench-101 spec."""
    import ast

    from . import formats, plot, spaces
    from .embody.darts import GENOTYPES, genotype_to_graphs, graphs_to_genotype

    space = None
    if args.genotype is not None:
        text = args.genotype.strip()
        if text.upper() not in GENOTYPES and "Genotype(" not in text:
            raise ArchGraphError(f"--genotype takes a Genotype(...) as DARTS logs print it, or the name of a published "
                                 f"one ({', '.join(GENOTYPES)}); got {text[:60]!r}")
        cells = genotype_to_graphs(GENOTYPES.get(text.upper()) or formats.parse_genotype(text))
        names, space = ["normal", "reduce"], spaces.load("darts")
        written = formats.format_genotype(graphs_to_genotype(*cells))
    elif args.nb201 is not None:
        cells, names, space = (formats.from_nb201_string(args.nb201),), ["cell"], spaces.load("nb201")
        written = formats.to_nb201_string(cells[0])
    else:
        try:
            matrix, ops = (ast.literal_eval(text) for text in args.nb101)
        except (ValueError, SyntaxError):
            raise ArchGraphError(f"--nb101 takes the matrix and the op list as Python lists, e.g. '[[0, 1], [0, 0]]' "
                                 f"\"['input', 'output']\", got {' '.join(args.nb101)}") from None
        cells, names = (formats.from_nb101(matrix, ops),), ["cell"]
        written = "matrix={}, ops={}".format(*formats.to_nb101(cells[0]))
    print(f"{len(cells)} cell(s)")
    _print_cells(names, cells)
    print(f"  written back: {written}")
    if space:
        params = {**space.params, **_parse_params(args.param)}
        model = space.builder()(cells if len(cells) > 1 else cells[0], input_shape=(3, 32, 32), num_classes=10,
                                **params)
        settings = ", ".join(f"{k}={v}" for k, v in params.items())
        print(f"  {space.embodiment} CIFAR-10 network ({settings}): "
              f"{sum(p.numel() for p in model.parameters()):,} parameters")
    if args.picture:
        plot.draw_architecture(cells, args.picture, names=names)
        print(f"  picture written to {args.picture}")
    return 0


def _print_cells(names, cells) -> None:
    for name, cell in zip(names, cells):
        ops = sorted({*cell.node_ops.values(), *cell.edge_ops.values()})
        print(f"  {name}: {cell.num_nodes} vertices, {cell.num_edges} edges, sources {list(cell.sources)}, "
              f"sinks {list(cell.sinks)}" + (f", ops {ops}" if ops else ""))


def _ranks(args) -> int:
    from . import plot
    from .oneshot.hyper_trial import load_hyper
    from .ranks import top_paths

    if not args.hyper.exists():
        raise ArchGraphError(f"{args.hyper} does not exist; hyper-architecture files are in RUN_DIR/hyper/ "
                             "of a run of `archgraph search --strategy fade`")
    hyper = load_hyper(args.hyper)
    rows, width = hyper.probabilities.shape
    distinct = [len(set(row)) for row in hyper.pool]
    print(f"{args.hyper}: space {hyper.space}, {rows} rows × {width} cells = {width ** rows:,} paths, "
          f"{math.prod(distinct):,} distinct architectures (distinct cells per row: {distinct})")
    print(f"{'rank':>4} {'FaDE-rank':>10}  path  cells (vertices/edges); an architecture is listed once, "
          "under its best path")
    copies = math.prod(max(row.count(g) for g in row) for row in hyper.pool)  # paths one architecture can have
    listed: set[tuple] = set()
    for path, psi in top_paths(hyper.probabilities, min(width ** rows, args.top * copies)):
        arch = tuple(row[k] for row, k in zip(hyper.pool, path))
        if arch in listed:
            continue
        listed.add(arch)
        cells = " ".join(f"{cell.num_nodes}/{cell.num_edges}" for cell in arch)
        print(f"{len(listed):>4} {psi:>10.3g}  {','.join(map(str, path))}  {cells}")
        if len(listed) == args.top:
            break
    for i, weights in enumerate(hyper.probabilities.tolist(), start=1):
        print(f"row {i} weights: " + " ".join(f"{w:.3f}" for w in weights))
    if "alpha_travel" in hyper.notes:
        print(f"training moved α by a mean |Δα| of {hyper.notes['alpha_travel']:.3f} against an initial spread of "
              f"{hyper.notes['alpha_init_spread']:.3f} (std)")
    if args.picture:
        plot.draw_row_probabilities(hyper.history, args.picture)
        print(f"row weights over the epochs drawn to {args.picture}")
    return 0


def _predict(args) -> int:
    from . import spaces
    from .graph import ArchGraph
    from .predict.gnn import RankingPredictor
    from .store import STORE_FILE, SQLiteStore
    from .trial import OBJECTIVE

    if (args.fit is None) == (args.pool is None):
        raise ArchGraphError("give either --fit RUN_DIR (learn and save MODEL) or --pool POOL.json (rank with MODEL)")
    if args.fit is not None:
        if not (args.fit / STORE_FILE).exists():
            raise ArchGraphError(f"{args.fit} holds no search run ({STORE_FILE} is missing)")
        with SQLiteStore(args.fit / STORE_FILE) as store:
            space = spaces.load(store.config()["space"])
            results = store.results()
            observations = [(t.arch, t.budget, results[t.id].metrics[OBJECTIVE]) for t in store.trials()
                            if t.id in results and results[t.id].scored]
        predictor = RankingPredictor(space, epochs=args.epochs).fit(observations)
        predictor.save(args.model)
        print(f"fitted to {len(observations)} trials of {args.fit} (space {space.name}); "
              f"final ranking loss {predictor.losses[-1]:.4f}; saved to {args.model}")
        return 0
    try:
        data = json.loads(args.pool.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ArchGraphError(f"cannot read the pool {args.pool}: {e}") from None
    named = data.get("space") if isinstance(data, dict) else None
    if args.space is None and named is None:
        raise ArchGraphError(f"{args.pool} names no space; pass --space")
    space = spaces.load(args.space or named)
    listed = data.get("architectures", []) if isinstance(data, dict) else data
    archs = [tuple(ArchGraph.from_dict(c) for c in arch) for arch in listed]
    if not archs:
        raise ArchGraphError(f"{args.pool} lists no architectures")
    scores = RankingPredictor.load(args.model, space).score(archs)
    order = sorted(range(len(archs)), key=lambda i: -scores[i])
    print(f"{len(archs)} architectures of space {space.name}, best predicted first:")
    print(f"{'rank':>4} {'index':>5} {'score':>9}  cells (vertices/edges)")
    for rank, i in enumerate(order[:args.top], 1):
        shapes = " ".join(f"{c.num_nodes}/{c.num_edges}" for c in archs[i])
        print(f"{rank:>4} {i:>5} {scores[i]:>9.4f}  {shapes}")
    return 0


def _runs_list(args) -> int:
    from .runs import find_runs, format_table

    runs = find_runs(args.dir)
    if not runs:
        print(f"no run folders under {args.dir} (a run folder holds store.sqlite)")
        return 0
    print("\n".join(format_table(runs, args.dir)))
    return 0


def _runs_export(args) -> int:
    from .results import read_run, write_csv, write_json

    config, records = read_run(args.run_dir)
    text = write_csv(records, args.out) if args.format == "csv" else write_json(records, config, args.out)
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"{len(records)} trials of {args.run_dir} written to {args.out}")
    return 0


def _runs_pareto(args) -> int:
    from .pareto import DEFAULT_OBJECTIVES, parse_objective, pareto_records
    from .results import read_run

    objectives = [parse_objective(text) for text in args.objective] if args.objective else list(DEFAULT_OBJECTIVES)
    front = pareto_records(read_run(args.run_dir)[1], objectives)
    print(f"{len(front)} trials of {args.run_dir} on the front of " + ", ".join(f"{n} ({d})" for n, d in objectives))
    print(f"{'trial':>6} " + " ".join(f"{name:>14}" for name, _ in objectives) + "  cells (vertices/edges)")
    for r in front:
        print(f"{r['trial']:>6} " + " ".join(f"{r['metrics'][name]:>14.6g}" for name, _ in objectives) + f"  {r['cells']}")
    return 0


def _report(args) -> int:
    from .html_report import write_report

    start = time.perf_counter()
    out = write_report(args.run_dirs, args.out)
    print(f"report of {len(args.run_dirs)} run(s) written to {out} ({out.stat().st_size / 1e3:,.0f} kB, "
          f"{time.perf_counter() - start:.1f} s)")
    return 0


def _export(args) -> int:
    from .export import export_model

    done = export_model(args.run_dir, args.out, args.format, trial=args.trial)
    shape = "×".join(["N", *map(str, done.input_shape)])
    print(f"trial {done.trial} of {args.run_dir} written to {done.path} ({done.format}, input {shape}); run by "
          f"{done.runtime}, its outputs equal the module's to {done.max_difference:.2g} (at most 1e-05 allowed)")
    return 0


def _spaces(args) -> int:
    from . import spaces

    for name in spaces.available():
        space = spaces.load(name)
        print(f"{name:8} {space.description}")
    return 0


def _strategies(args) -> int:
    from .search.options import describe_strategy
    from .search.session import STRATEGIES

    for name in args.names:
        if name not in STRATEGIES:
            raise ArchGraphError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    print("\n\n".join(describe_strategy(name, STRATEGIES[name]) for name in args.names or STRATEGIES))
    return 0


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then move the file over ``path``: a crash never leaves a
    half-written file. The folder is made here, so a run folder holds at least one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
