"""Do FaDE-ranks predict how well architectures train? FaDE §3.1, Fig. 5.

Per hyper seed and mode (separate paths, shared hyper-cells):

1. split the task 1-1-4 (test / architecture training / weight training, FaDE §3; split seed
   0, the ground truth's);
2. train one hyper-architecture of d = 4 rows × w = 5 DAGs (the same five hand-picked DAGs in
   every row, ``task_ceiling.POOL``) bi-level as in FaDE §3: weights on the weight split, α on
   the architecture split, hard Gumbel-softmax at temperature 10, batch 128, Adam (lr 1e-3,
   weight decay 1e-4, clipping 10), constant α learning rate, α ~ N(0, 0.5), max-norm with r
   falling linearly from +1 to −1 (``--cell-dependent``: shallower rows first). Separate paths
   have equal-size cells (FaDE §3.1, ``weights_per_cell``); shared hyper-cells cannot (every
   mask has G_max's channels) and run the pool at the channels between cells. ``--estimator
   all`` (default): α steps run every cell of each row (straight-through); ``sampled``: the
   sampled path alone (GDAS), see archgraph.hyper;
3. rank its 625 paths by FaDE-rank ψ = ∏_i α_{i,k_i} (§2.3) and correlate ψ (Spearman, Kendall)
   with the mean test accuracy of ``--archs`` paths trained from scratch ``--repeats`` times:
   ``--pick random`` (default), the ground truth's paths, drawn independently of ψ, whose
   trainings ``benchmarks/task_ceiling.py`` already made (read from its runs file; missing ones
   are trained and added); ``--pick spaced``, paths evenly spaced over the seed's rank order.

Beside each correlation: the ground truth's split-half ceiling (Spearman between the mean
accuracies of two halves of the repeats): no predictor agrees with the mean of the trainings
much better than it agrees with itself. ψ averaged over the hyper seeds (log ψ summed) is
reported as a variant, not as the headline.

Diagnosis (FaDE issue): per row, the epoch from which its winner (argmax α) no longer changes;
per epoch, the mean |∂L/∂α| of the loss on one architecture batch against the max-norm term's
mean |∂(r · max α)/∂α|; after training, the output RMS of each cell of a row on the same input.

Measured (2-core CPU; the README has the tables): on digits, whose ground truth is steady
(split-half 0.90), separate paths reach Spearman 0.34, 0.54 and −0.34 for hyper seeds 0–2 (ψ
summed over the seeds: 0.23), shared hyper-cells −0.15, 0.53 and 0.62 (summed: 0.69), short of
0.6 for each seed; every row's winner settles within three epochs of where r crosses 0, and the
data's gradient in α outweighs max-norm's only while |r| < 0.011–0.018 (2–4 of 200 epochs). On MNIST-1D with 5,000 samples (ceiling 0.26) no variant is told apart from
noise: separate 0.09 / −0.46 / 0.55, shared 0.43 / 0.19 / −0.62, cell-dependent −0.60 / 0.63 /
0.14 (two of its three hyper-architectures die), sampled-path α steps −0.24 / 0.16 / −0.01.
Departures on digits, separate paths: ``--estimator sampled`` 0.08 / −0.08 / −0.17; ``--init-std 0.001`` 0.39 / −0.42 / −0.08; ``--arch-lr
0.0065`` −0.18 / 0.59 / 0.45; ``--max-norm 0`` 0.22 / 0.39 / 0.27; ``--max-norm 0.01`` 0.64 / 0.60 /
0.13; ``--max-norm 0.01 --hyper-epochs 400`` 0.73 / 0.72 / 0.09 (ψ summed over the seeds 0.81).

Results: one record per mode and hyper seed in ``--results`` (JSON, with the command, versions
and settings; keys ``mode``, ``seed``, ``spearman``, ``kendall``, ``ceiling`` and the diagnosis),
the scatter plot of ψ against accuracy (Fig. 5 analogue) in ``--out``.

    python benchmarks/fade_correlation.py [--task digits] [--seeds 0 1 2] [--hyper-epochs 200]
        [--epochs 40] [--score-epoch 30] [--window 5]
        [--modes separate shared] [--archs 16] [--repeats 4] [--pick random|spaced]
        [--estimator all|sampled] [--cell-dependent] [--workers 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402
from task_ceiling import (CHANNELS, POOL, RESULTS, ROWS, SETTINGS, SPLIT_SEED, accuracy,  # noqa: E402
                          ceiling_figures, ground_truth, paths, settings_for, task_data)
from torch.utils.data import DataLoader  # noqa: E402

from provenance import write_results  # noqa: E402  (benchmarks/provenance.py, next to this script)
from archgraph.hyper import HyperArchitecture, build_hyper  # noqa: E402
from archgraph.oneshot import MaxNorm, train_bilevel  # noqa: E402
from archgraph.oneshot.steps import requiring_grad  # noqa: E402
from archgraph.ranks import log_ranks  # noqa: E402
from archgraph.relax import Gumbel, arch_parameters  # noqa: E402

INIT_STD = 0.5  # FaDE §3: α ~ N(0, 0.5)


def train_hyper(spec: str, seed: int, shared: bool, args: argparse.Namespace, observe=None):
    """The trained hyper-architecture of one seed and mode, its history and its per-epoch
    gradient diagnosis; ``observe(row, model)``, where given, is called after every epoch too."""
    task, (_, arch_split, weight_split) = task_data(spec)
    settings = settings_for(spec, args.weights_per_cell)
    if shared:
        settings.pop("weights_per_cell")
    torch.manual_seed(seed)
    hyper = build_hyper("fade", [POOL] * ROWS, input_shape=task.input_shape, num_classes=task.num_classes,
                        relaxation=Gumbel(tau=10.0, hard=True, estimator=args.estimator), shared=shared,
                        init_std=args.init_std, generator=torch.Generator().manual_seed(seed), channels=args.channels, **settings)
    regularizer = MaxNorm(args.hyper_epochs, start=args.max_norm, end=-args.max_norm, cell_dependent=args.cell_dependent)
    probe = next(iter(DataLoader(arch_split, batch_size=128, shuffle=False)))
    gradients = []

    def diagnose(row: dict, model: HyperArchitecture) -> None:
        gradients.append(alpha_gradients(model, regularizer, row["epoch"], probe))
        if observe is not None:
            observe(row, model)

    fit = train_bilevel(hyper, weight_split, arch_split, epochs=args.hyper_epochs, batch_size=128, seed=seed,
                        arch_lr=args.arch_lr, regularizer=regularizer, on_epoch=diagnose, progress=False)
    return hyper, fit.history, gradients, probe


def hyper_result(spec: str, seed: int, mode: str, args: argparse.Namespace) -> dict:
    """What one hyper-architecture gives: log ψ of every path (row-major over the 625 paths) and
    the diagnosis; read from ``--hyper-dir`` when made before with the same settings, else
    trained and written there (so a killed run keeps the hyper-architectures it finished)."""
    settings = {"task": spec, "mode": mode, "seed": seed, "hyper_epochs": args.hyper_epochs,
                "estimator": args.estimator, "arch_lr": args.arch_lr, "cell_dependent": args.cell_dependent,
                "pool": [repr(g) for g in POOL], "channels": args.channels, "settings": SETTINGS,
                # only an override enters the key, so the hyper-architectures kept before the flag are found
                **({"weights_per_cell": args.weights_per_cell} if args.weights_per_cell else {}),
                **({"init_std": args.init_std} if args.init_std != INIT_STD else {}),
                **({"max_norm": args.max_norm} if args.max_norm != 1.0 else {})}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    path = args.hyper_dir / f"{spec.replace(':', '-')}-{mode}-seed{seed}-{key}.json"
    if path.is_file():
        return json.loads(path.read_text())["result"]
    start = time.perf_counter()
    hyper, history, gradients, probe = train_hyper(spec, seed, mode == "shared", args)
    result = {"log_ranks": log_ranks(hyper.probabilities()).flatten().tolist(),
              "hyper_train_accuracy": history[-1]["train_accuracy"], "settled_epochs": settle_epochs(history),
              "alpha": [epoch["alpha"] for epoch in history], "gradients": gradients,
              "output_rms": output_rms(hyper, probe[0]), "seconds": round(time.perf_counter() - start, 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"settings": settings, "result": result}) + "\n")
    print(f"{mode} seed {seed}: hyper-architecture trained in {result['seconds']:.0f} s -> {path}", flush=True)
    return result


def alpha_gradients(model: HyperArchitecture, regularizer: MaxNorm, epoch: int, batch) -> dict:
    """Mean |∂L/∂α| of the cross-entropy on ``batch`` (train mode, one Gumbel draw, as an α step
    takes it) and mean |∂(r · max α)/∂α| of the max-norm term, per row; ``r`` of the epoch."""
    alphas = arch_parameters(model)
    x, y = batch
    was_training = model.training
    model.train()
    with requiring_grad(alphas, True):
        loss_grads = torch.autograd.grad(F.cross_entropy(model(x), y), alphas)
        norm_grads = torch.autograd.grad(regularizer(model, epoch), alphas)
    model.train(was_training)
    return {"loss": [g.abs().mean().item() for g in loss_grads], "max_norm": [g.abs().mean().item() for g in norm_grads],
            "r": regularizer.coefficients(epoch, rows=len(alphas))}


def gradient_balance(gradients: list[dict]) -> dict:
    """Where the data can move α against max-norm: the loss's mean |∂L/∂α| over the epochs, the
    max-norm term's mean per unit |r|, the |r| below which the first outweighs the second, and
    the number of epochs whose |r| lies below it (rows pooled)."""
    loss = float(np.mean([g["loss"] for g in gradients]))
    ratios = [m / abs(r) for g in gradients for m, r in zip(g["max_norm"], g["r"]) if r]
    if not ratios:  # no max-norm (--max-norm 0): the data has α to itself
        return {"loss_grad": loss, "max_norm_grad_per_unit_r": 0.0, "data_outweighs_below_r": float("inf"),
                "epochs_data_outweighs": len(gradients)}
    per_r = float(np.mean(ratios))
    threshold = loss / per_r
    return {"loss_grad": loss, "max_norm_grad_per_unit_r": per_r, "data_outweighs_below_r": threshold,
            "epochs_data_outweighs": int(sum(np.mean(np.abs(g["r"])) < threshold for g in gradients))}


def settle_epochs(history: list[dict]) -> list[int]:
    """Per row, the first epoch from which its argmax α stays the same to the end."""
    winners = np.array([[int(np.argmax(row)) for row in epoch["alpha"]] for epoch in history])
    settled = []
    for column in winners.T:
        changes = np.flatnonzero(column[1:] != column[:-1])
        settled.append(int(history[changes[-1] + 1]["epoch"]) if len(changes) else int(history[0]["epoch"]))
    return settled


@torch.no_grad()
def output_rms(model: HyperArchitecture, x: torch.Tensor) -> list[list[float]]:
    """Per row, the output RMS of each cell on the same input: the best path's output of the
    rows before (eval mode)."""
    was_training = model.training
    model.eval()
    rms = []
    for i, (row, k) in enumerate(zip(model.rows, model.best_path())):
        if i and model.downsample is not None:
            x = model.downsample(x)
        outputs = [cell(x) for cell in row.candidates]
        rms.append([o.pow(2).mean().sqrt().item() for o in outputs])
        x = outputs[k]
    model.train(was_training)
    return rms


def arguments(**kwargs) -> argparse.ArgumentParser:
    """The command line: the hyper-architecture's and the ground truth's settings (also read by
    benchmarks/fade_alpha_signal.py, which builds the same hyper-architectures)."""
    parser = argparse.ArgumentParser(**kwargs)
    parser.add_argument("--task", default="digits",
                        help="digits or mnist1d:N; digits is the task whose ground truth is steady (task_ceiling.py)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hyper-epochs", type=int, default=200,
                        help="bi-level epochs of the hyper-architecture (digits: 10 batches of 128 each)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of each architecture trained from scratch")
    parser.add_argument("--archs", type=int, default=16, help="architectures trained from scratch (§3.1: 16)")
    parser.add_argument("--repeats", type=int, default=4, help="trainings from scratch per architecture")
    parser.add_argument("--score-epoch", type=int, default=30,
                        help="score each training at this epoch (FaDE §3.2: 30; the trainings run --epochs)")
    parser.add_argument("--window", type=int, default=5,
                        help="a training's accuracy: its mean test accuracy over this many last epochs")
    parser.add_argument("--pick", choices=["random", "spaced"], default="random",
                        help="the ground truth's random paths, or paths evenly spaced over each seed's ranks")
    parser.add_argument("--modes", nargs="+", default=["separate", "shared"], choices=["separate", "shared"])
    parser.add_argument("--estimator", choices=["all", "sampled"], default="all",
                        help="cells an α step runs: every cell of each row, or the sampled path alone (GDAS)")
    parser.add_argument("--arch-lr", type=float, default=1e-3, help="Adam's constant learning rate for α")
    parser.add_argument("--init-std", type=float, default=INIT_STD,
                        help="standard deviation of the initial α (FaDE §3: N(0, 0.5))")
    parser.add_argument("--max-norm", type=float, default=1.0, metavar="R",
                        help="max-norm's r falls linearly from R to −R (FaDE §2.2: 1; 0: no max-norm)")
    parser.add_argument("--cell-dependent", action="store_true", help="cell-dependent max-norm schedule")
    parser.add_argument("--channels", type=int, nargs=4, default=CHANNELS, help="channels between the 4 cells")
    parser.add_argument("--weights-per-cell", type=int, default=None,
                        help="weights of every separate-path cell (default: SETTINGS, by the task's input kind)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the hyper-architecture's training")
    parser.add_argument("--workers", type=int, default=2, help="processes for missing from-scratch trainings")
    parser.add_argument("--runs", type=Path, default=RESULTS / "task_ceiling.runs.jsonl",
                        help="the ground truth's trainings (JSON lines, shared with task_ceiling.py)")
    parser.add_argument("--results", type=Path, default=RESULTS / "fade_correlation.json")
    parser.add_argument("--hyper-dir", type=Path, default=RESULTS / "fade_hyper",
                        help="one file per trained hyper-architecture, reused by later runs with the same settings")
    parser.add_argument("--hypers-only", action="store_true",
                        help="train and keep the hyper-architectures, then stop (while task_ceiling.py makes the "
                             "ground truth in another process)")
    parser.add_argument("--out", type=Path, default=Path("fade_correlation.png"))
    return parser


def training_settings(args: argparse.Namespace) -> dict:
    """How each architecture of the ground truth is trained from scratch (task_ceiling's keys)."""
    return {"epochs": args.epochs, "batch": 128, "lr": 1e-3, "schedule": None, "channels": args.channels,
            "weights_per_cell": args.weights_per_cell}


def scored_truth(args: argparse.Namespace, chosen: list[tuple[int, ...]]) -> np.ndarray:
    """``(architectures, repeats)``: each training of ``chosen`` from scratch (read from
    ``--runs`` or trained) scored by its mean test accuracy over the ``--window`` epochs ending
    with ``--score-epoch``."""
    truth = ground_truth([args.task], chosen, args.repeats, training_settings(args), args.runs, args.workers)
    return np.array([[accuracy(rec, args.score_epoch, args.window) for rec in row] for row in truth[args.task]])


def main() -> None:
    parser = arguments(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args = parser.parse_args()
    if not 1 <= args.window <= args.score_epoch <= args.epochs:
        parser.error("need 1 <= --window <= --score-epoch <= --epochs")
    torch.set_num_threads(args.threads)
    training = training_settings(args)
    shape = (len(POOL),) * ROWS

    hypers = {(mode, seed): hyper_result(args.task, seed, mode, args) for mode in args.modes for seed in args.seeds}
    if args.hypers_only:
        return

    records, summed = [], {}
    fig, axes = plt.subplots(1, len(args.modes), figsize=(5 * len(args.modes), 4), squeeze=False)
    for ax, mode in zip(axes[0], args.modes):
        print(f"\n{mode}: {ROWS} × {len(POOL)} hyper-architecture on {args.task}, {args.hyper_epochs} epochs, "
              f"estimator {args.estimator}; {args.archs} architectures × {args.repeats} trainings")
        print(f"{'seed':>4} {'spearman':>9} {'kendall':>8} {'ceiling':>8} {'hyper acc':>9} {'settled':>16} "
              f"{'seconds':>8}")
        for seed in args.seeds:
            hyper = hypers[mode, seed]
            ranks = np.array(hyper["log_ranks"]).reshape(shape)
            if args.pick == "random":
                chosen = paths(args.archs)
            else:
                order = np.argsort(-ranks.flatten(), kind="stable")
                flat = order[np.linspace(0, len(order) - 1, args.archs).round().astype(int)]
                chosen = [tuple(int(k) for k in np.unravel_index(i, shape)) for i in flat]
            accuracies = scored_truth(args, chosen)
            mean_accuracy = accuracies.mean(axis=1)
            psi = np.array([ranks[path] for path in chosen])
            summed[mode] = summed.get(mode, 0) + ranks
            record = {
                "mode": mode, "seed": seed, "task": args.task, "paths": [list(p) for p in chosen],
                "spearman": float(spearmanr(psi, mean_accuracy).statistic),
                "kendall": float(kendalltau(psi, mean_accuracy).statistic),
                "ceiling": ceiling_figures(accuracies)["split_half"], "log_psi": psi.tolist(),
                "accuracy": mean_accuracy.tolist(), **{k: v for k, v in hyper.items() if k != "log_ranks"},
                "gradient_balance": gradient_balance(hyper["gradients"]),
            }
            records.append(record)
            print(f"{seed:>4} {record['spearman']:>9.3f} {record['kendall']:>8.3f} {record['ceiling']:>8.3f} "
                  f"{record['hyper_train_accuracy']:>9.4f} {str(record['settled_epochs']):>16} "
                  f"{record['seconds']:>8.0f}")
            balance = record["gradient_balance"]
            print(f"     |∂L/∂α| {balance['loss_grad']:.2e}, max-norm {balance['max_norm_grad_per_unit_r']:.2e}·|r|: "
                  f"the data outweighs it for |r| < {balance['data_outweighs_below_r']:.3f}, "
                  f"{balance['epochs_data_outweighs']} of {args.hyper_epochs} epochs; output RMS per row "
                  f"{[[round(v, 2) for v in row] for row in record['output_rms']]}")
            ax.scatter(psi, mean_accuracy, s=14, label=f"seed {seed}: ρ = {record['spearman']:.2f}")
        rhos = [r["spearman"] for r in records if r["mode"] == mode]
        if args.pick == "random":
            psi = np.array([summed[mode][path] for path in chosen])
            variant = spearmanr(psi, mean_accuracy).statistic
            records.append({"mode": mode, "seed": "sum of log ψ over seeds " + " ".join(map(str, args.seeds)),
                            "spearman": float(variant), "kendall": float(kendalltau(psi, mean_accuracy).statistic),
                            "ceiling": records[-1]["ceiling"], "variant": True})
            print(f"variant, ψ averaged over the seeds: Spearman {variant:.3f}")
        print(f"mean Spearman {np.mean(rhos):.3f}")
        ax.set_title(f"{mode}: mean Spearman {np.mean(rhos):.2f}")
        ax.set_xlabel("log FaDE-rank ψ")
        ax.set_ylabel(f"test accuracy, mean of {args.repeats} trainings")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=150)
    write_results(args.results, settings=SETTINGS, training=training, score_epoch=args.score_epoch,
                  window=args.window, hyper_epochs=args.hyper_epochs, estimator=args.estimator, arch_lr=args.arch_lr,
                  cell_dependent=args.cell_dependent, init_std=args.init_std, max_norm=args.max_norm,
                  split_seed=SPLIT_SEED, records=records)
    print(f"\nfigure {args.out}; results {args.results}")


if __name__ == "__main__":
    main()
