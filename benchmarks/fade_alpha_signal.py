"""Is there a signal in FaDE's α gradient, and does it point the right way? (FaDE issue, diagnosis)

benchmarks/fade_correlation.py finds FaDE-ranks that do not predict the ground truth. This
script separates the two ways that can happen. For each hyper seed it trains the same
hyper-architecture as fade_correlation (same flags, same defaults: separate paths unless
``--modes shared``) and, after each epoch of ``--at``, draws ``--draws`` gradients of the
cross-entropy with respect to α from a frozen copy, each on one random batch of 128 of the
architecture split and one Gumbel draw, as an α step takes them. Per row, gradients are centred
(a row's softmax ignores a shift of its α), and per cell their mean ḡ and standard deviation σ
give:

* **noise**: the signal-to-noise ratio |ḡ|/σ of a single α step, and the α steps the run takes
  against the ``(σ/|ḡ|)²`` steps after which a sum of gradients has the sign of its mean
  (one standard deviation): fewer steps than that, and α follows the draws, not the data;
* **direction**: the path score ``−Σ_i ḡ_{i,k_i}`` (where α goes in expectation) correlated
  with the ground truth of fade_correlation's 16 random paths (Spearman). If this is low, no
  number of steps makes FaDE-ranks predict: the hyper-architecture prefers other cells than
  training from scratch does;
* **one-shot accuracy**: each of the 16 paths extracted with the hyper-architecture's weights
  (:meth:`~archgraph.hyper.HyperArchitecture.extract`) and scored on the architecture split,
  correlated with the ground truth (Spearman): whether the shared weights rank the paths at
  all, whatever α makes of it.

Measured at the defaults (digits, the paper's settings, results/fade_alpha_signal.json; seeds
0 / 1 / 2, whose FaDE-ranks reach 0.34 / 0.54 / −0.34): direction 0.61 / 0.78 / 0.29 at epoch 100
(where r crosses 0) and 0.37 / 0.62 / 0.29 after the last; one-shot 0.30 / 0.37 / −0.19 after the
last; median SNR 0.09–0.31 up to epoch 150, so 24–123 steps for the sign against 3 per epoch.

Results (JSON, ``--results``) per seed and epoch; the ground truth is read from
task_ceiling's runs file (every training there already).

    python benchmarks/fade_alpha_signal.py [--seeds 0 1 2] [--at 0 50 100 150 199] [--draws 300]
        [all of fade_correlation.py's hyper-architecture flags]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from fade_correlation import arguments, scored_truth, train_hyper  # noqa: E402  (next to this script)
from scipy.stats import spearmanr
from task_ceiling import RESULTS, paths, task_data  # noqa: E402

from provenance import write_results  # noqa: E402
from archgraph.hyper import HyperArchitecture
from archgraph.oneshot.steps import requiring_grad
from archgraph.relax import arch_parameters
from archgraph.train import evaluate


def gradient_draws(model: torch.nn.Module, arch_split, draws: int, seed: int) -> np.ndarray:
    """``(draws, rows, width)`` row-centred gradients of the cross-entropy in α, each on one
    random batch of 128 of ``arch_split`` and one Gumbel draw, from a copy of ``model`` in
    train mode (the model itself, its batch-norm statistics and the global RNG untouched)."""
    frozen = copy.deepcopy(model).train()
    alphas = arch_parameters(frozen)
    generator = np.random.default_rng(seed)
    out = []
    with torch.random.fork_rng(devices=[]), requiring_grad(alphas, True):
        torch.manual_seed(seed)
        for _ in range(draws):
            index = generator.choice(len(arch_split), size=min(128, len(arch_split)), replace=False)
            x, y = next(iter(DataLoader(Subset(arch_split, index.tolist()), batch_size=len(index))))
            grads = torch.autograd.grad(F.cross_entropy(frozen(x), y), alphas)
            out.append([(g - g.mean()).tolist() for g in grads])
    return np.array(out)


def signal_figures(draws: np.ndarray, chosen: list[tuple[int, ...]], truth: np.ndarray, steps: int) -> dict:
    """Noise and direction of one set of gradient draws (module docstring)."""
    mean, std = draws.mean(axis=0), draws.std(axis=0, ddof=1)
    snr = np.abs(mean) / std
    needed = (std / np.abs(mean)) ** 2
    score = np.array([-sum(mean[i, k] for i, k in enumerate(path)) for path in chosen])
    return {"mean": mean.round(6).tolist(), "std": std.round(6).tolist(),
            "median_snr": float(np.median(snr)), "median_steps_needed": float(np.median(needed)),
            "alpha_steps_taken": steps, "direction_spearman": float(spearmanr(score, truth).statistic)}


def one_shot_spearman(model: HyperArchitecture, chosen: list[tuple[int, ...]], arch_split, truth: np.ndarray) -> float:
    """Spearman between the ground truth and the accuracy on ``arch_split`` of each path of
    ``chosen`` extracted from ``model`` with its weights."""
    scores = [evaluate(model.extract(path), arch_split)["accuracy"] for path in chosen]
    return float(spearmanr(scores, truth).statistic)


def main() -> None:
    parser = arguments(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at", type=int, nargs="+", default=[0, 50, 100, 150, 199],
                        help="epochs (from 0) after which the gradients are drawn")
    parser.add_argument("--draws", type=int, default=300, help="gradient draws per epoch of --at")
    parser.set_defaults(results=RESULTS / "fade_alpha_signal.json", modes=["separate"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _, (_, arch_split, _) = task_data(args.task)
    chosen = paths(args.archs)
    mean_accuracy = scored_truth(args, chosen).mean(axis=1)
    steps_per_epoch = -(-len(arch_split) // 128)
    records = []
    for mode in args.modes:
        for seed in args.seeds:
            start = time.perf_counter()

            def observe(row: dict, model: torch.nn.Module) -> None:
                if row["epoch"] in args.at:
                    draws = gradient_draws(model, arch_split, args.draws, seed=row["epoch"])
                    figures = signal_figures(draws, chosen, mean_accuracy, steps_per_epoch * (row["epoch"] + 1))
                    figures["one_shot_spearman"] = one_shot_spearman(model, chosen, arch_split, mean_accuracy)
                    records.append({"mode": mode, "seed": seed, "epoch": row["epoch"], **figures})
                    print(f"{mode} seed {seed} epoch {row['epoch']:>3}: median SNR {figures['median_snr']:.3f}, "
                          f"steps for the sign {figures['median_steps_needed']:.0f} (taken so far "
                          f"{figures['alpha_steps_taken']}), direction Spearman "
                          f"{figures['direction_spearman']:.2f}, one-shot Spearman {figures['one_shot_spearman']:.2f}",
                          flush=True)

            train_hyper(args.task, seed, mode == "shared", args, observe=observe)
            print(f"{mode} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
            write_results(args.results, draws=args.draws, hyper_epochs=args.hyper_epochs, init_std=args.init_std,
                          arch_lr=args.arch_lr, estimator=args.estimator, score_epoch=args.score_epoch,
                          window=args.window, paths=[list(p) for p in chosen], accuracy=mean_accuracy.tolist(),
                          records=records)
    print(f"results {args.results}")


if __name__ == "__main__":
    main()
