"""Do FaDE-ranks predict how well architectures train? FaDE §3.1, Fig. 5, on digits.

Per seed:

1. split the task 1-1-4 (test / architecture training / weight training, FaDE §3);
2. train one hyper-architecture of d = 4 rows × w = 5 DAGs (the same five hand-picked DAGs
   in every row, below), bi-level: weights on the weight split, architecture weights on the
   architecture split, hard Gumbel-softmax at temperature 10, Adam, max-norm schedule
   (FaDE §2.2–§3); ``--estimator all`` (default): α steps run every cell of each row
   (straight-through), ``sampled``: the sampled path alone (GDAS), see archgraph.hyper;
3. rank its w^d = 625 architectures by FaDE-rank ψ = ∏_i α_{i,k_i} (§2.3) and train
   ``--archs`` (16 in the paper) of them from scratch on the weight split ``--repeats`` times
   (different seeds): with ``--pick spaced`` (default) evenly spaced over the rank order, from
   the best to the worst, so that they span the whole range; with ``--pick random`` drawn
   uniformly (seeded, the same for every seed and mode), a sample that does not depend on ψ;
4. measure their test accuracy, averaged over the repeats, and the Spearman and Kendall
   correlations between ψ and it.

With 2 or more repeats the table also gives the ceiling: how well the accuracy of one training
ranks the architectures as another training does (Spearman, averaged over all pairs of
repeats), and, with 4 or more, how well the mean of half the repeats ranks them as the mean of
the other half does. No predictor can agree with noisy accuracies much better than they agree
with themselves.

Prints the per-seed correlations and their mean over seeds (the paper reports Spearman 0.8 on
CIFAR-10), for separate paths, the weight-shared hyper-cells, or both (``--modes``); saves the
scatter plot of ψ against accuracy (Fig. 5 analogue) to ``--out``. Runs on ``--threads`` torch
threads (default 1: these networks are too small to gain from more, and two processes of two
threads each on a 2-core machine slow each other down many times over).

The pool (vertices numbered topologically, see archgraph.embody.fade for the embodiment):
one vertex; a 2-chain; a 4-chain; a diamond (4 vertices); the fully connected DAG on 5
vertices. Unlike the paper's (≈ 0.25 M weights each) they differ in size, 2 to 16 convolutions
per cell. Cells use 3×3 kernels (5×5 ones fade on the 2×2 and 1×1 maps of 8×8 digits, see the
README) and 4, 8, 16, 32 channels.

A hyper-architecture trains far more slowly than one architecture: on the 1,198 weight-split
samples (38 batches of 32), a single architecture of this pool reaches 0.9 training accuracy in
about 30 epochs, the 625-path hyper-architecture (hard Gumbel, one path per step, α kept
uniform) 0.63 after 150 epochs with separate paths and 0.86 with shared hyper-cells — each
separate cell is trained on a fifth of the steps, and the next row must learn to read the
outputs of five unrelated cells. Hence 150 hyper epochs by default; with the paper's few epochs
the row weights are mostly their random initialisation and the correlation is noise.

Measured on the 2-core CPU (``--seeds 0 1 2 --repeats 2 --modes separate``, two seeds side by
side, 23 minutes each): Spearman 0.07, 0.42 and −0.04, seed-to-seed ceilings 0.69, 0.47 and
0.69 — short of the paper's 0.8 and of 0.6. While r > 0 the max-norm term holds each row's α
equal (to 5e-4 from epoch 30 of 150 on, seed 2); the row winners are the leaders of epoch 74,
where r crosses 0 and the hyper-architecture's training accuracy is 0.24 (the loss's gradient
in α, 0.002 per batch on average, outweighs max-norm's, 0.064·|r|, only while |r| < 0.03, about
two epochs), and r < 0 then drives every row to one cell with p ≈ 0.96. So ψ mostly counts the
rows in which a path leaves the winners, and which cell wins a row varies with the seed. With
16 architectures, a Spearman has a standard deviation of about 0.26 when there is no
correlation. Variants measured on hyper seeds 0 and 2 against the mean of 4 trainings of 16
random paths (0.44 and 0.09 with the defaults) stay within that spread: α learning rate 3e-3
(0.20, −0.06); max-norm on the softmax at the Gumbel temperature (0.15, −0.23); 50 weight-only
warm-up epochs (0.05, 0.38); 150 weight-only epochs before the 150-epoch schedule (0.29, 0.20);
batch 128 as in FaDE §3 (−0.20, 0.38). Training the paths with a cosine learning rate does not
steady them: two such trainings rank the 16 paths at Spearman 0.36 (0.52 for two at the
constant rate, averaged over pairs).

    python benchmarks/fade_correlation.py [--seeds 0 1] [--hyper-epochs 150] [--epochs 30] [--repeats 1]
        [--archs 16] [--pick spaced|random] [--modes separate shared] [--estimator all|sampled] [--batch 32]
        [--threads 1] [--out fade_correlation.png]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402
from torch.utils.data import ConcatDataset  # noqa: E402

from archgraph import ArchGraph  # noqa: E402
from archgraph.data import fade_split, load  # noqa: E402
from archgraph.embody import build_fade  # noqa: E402
from archgraph.hyper import build_hyper  # noqa: E402
from archgraph.oneshot import MaxNorm, train_bilevel  # noqa: E402
from archgraph.ranks import log_ranks  # noqa: E402
from archgraph.relax import Gumbel  # noqa: E402
from archgraph.train import evaluate, train  # noqa: E402

POOL = (
    ArchGraph([], num_nodes=1),
    ArchGraph([(0, 1)]),
    ArchGraph([(0, 1), (1, 2), (2, 3)]),
    ArchGraph([(0, 1), (0, 2), (1, 3), (2, 3)]),
    ArchGraph([(u, v) for v in range(5) for u in range(v)]),
)
PARAMS = {"channels": [4, 8, 16, 32], "kernel_size": 3}


def run_seed(seed: int, shared: bool, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, float]:
    """FaDE-ranks (log ψ) and test accuracies (architectures × repeats) of the evaluated
    architectures of one seed, and the hyper-architecture's training accuracy in its last epoch."""
    task = load("digits")
    test, arch_split, weight_split = fade_split(ConcatDataset([task.train, task.test]), seed=seed)
    torch.manual_seed(seed)
    hyper = build_hyper("fade", [POOL] * 4, input_shape=task.input_shape, num_classes=task.num_classes,
                        relaxation=Gumbel(tau=10.0, hard=True, estimator=args.estimator), shared=shared, **PARAMS)
    fit = train_bilevel(hyper, weight_split, arch_split, epochs=args.hyper_epochs, batch_size=args.batch, seed=seed,
                  arch_lr=args.arch_lr, regularizer=MaxNorm(args.hyper_epochs, cell_dependent=args.cell_dependent),
                  progress=False)
    ranks = log_ranks(hyper.probabilities())
    if args.pick == "random":
        chosen = np.random.default_rng(12345).choice(ranks.numel(), size=args.archs, replace=False)
    else:
        order = np.argsort(-ranks.flatten().numpy(), kind="stable")
        chosen = order[np.linspace(0, len(order) - 1, args.archs).round().astype(int)]
    psi = ranks.flatten()[chosen].numpy()
    accuracy = np.array([[trained_accuracy(hyper.architecture(np.unravel_index(flat, ranks.shape)), task,
                                           weight_split, test, 1000 * repeat + seed, args)
                          for repeat in range(args.repeats)] for flat in chosen])
    return psi, accuracy, fit.history[-1]["train_accuracy"]


def trained_accuracy(cells, task, train_data, test_data, seed: int, args: argparse.Namespace) -> float:
    """Test accuracy of the architecture trained from scratch (FaDE §3.1) with ``seed``."""
    torch.manual_seed(seed)
    model = build_fade(list(cells), input_shape=task.input_shape, num_classes=task.num_classes, **PARAMS)
    train(model, train_data, epochs=args.epochs, batch_size=args.batch, weight_decay=1e-4, grad_clip=10.0,
          seed=seed, progress=False)
    return evaluate(model, test_data)["accuracy"]


def ceilings(accuracies: np.ndarray) -> tuple[float, float]:
    """The Spearman between the accuracies of two repeats, averaged over all pairs, and between
    the means of the first and the second half of the repeats (NaN where there are too few)."""
    repeats = accuracies.shape[1]
    pairs = list(itertools.combinations(range(repeats), 2))
    pairwise = statistics.mean(spearmanr(accuracies[:, a], accuracies[:, b]).statistic for a, b in pairs) \
        if pairs else float("nan")
    half = repeats // 2
    of_mean = spearmanr(accuracies[:, :half].mean(axis=1), accuracies[:, half:].mean(axis=1)).statistic \
        if repeats >= 4 else float("nan")
    return pairwise, of_mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--hyper-epochs", type=int, default=150, help="bi-level epochs of the hyper-architecture")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of each architecture trained from scratch")
    parser.add_argument("--archs", type=int, default=16, help="architectures trained from scratch (§3.1: 16)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="trainings from scratch per architecture (different seeds); ψ is correlated with "
                             "their mean, and with 2 or more the seed-to-seed Spearman of the accuracies is "
                             "printed: the ceiling any predictor of these accuracies can reach")
    parser.add_argument("--pick", choices=["spaced", "random"], default="spaced",
                        help="architectures evenly spaced over the rank order, or drawn at random")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["separate", "shared"], choices=["separate", "shared"])
    parser.add_argument("--estimator", choices=["all", "sampled"], default="all",
                        help="cells an α step runs: every cell of each row, or the sampled path alone (GDAS)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arch-lr", type=float, default=1e-3, help="Adam's constant learning rate for α")
    parser.add_argument("--cell-dependent", action="store_true", help="cell-dependent max-norm schedule")
    parser.add_argument("--out", type=Path, default=Path("fade_correlation.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    modes = [mode == "shared" for mode in args.modes]
    fig, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 4), squeeze=False)
    start = time.perf_counter()
    for ax, shared in zip(axes[0], modes):
        name = "shared hyper-cells" if shared else "separate paths"
        print(f"\n{name}: 4 × 5 hyper-architecture, {args.hyper_epochs} epochs, estimator {args.estimator}; "
              f"{args.archs} architectures × {args.epochs} epochs")
        print(f"{'seed':>4} {'spearman':>9} {'kendall':>8} {'acc min':>8} {'acc max':>8} {'hyper acc':>9} "
              f"{'ceiling':>8} {'of mean':>8} {'seconds':>8}")
        rhos, taus = [], []
        for seed in args.seeds:
            t0 = time.perf_counter()
            psi, accuracies, hyper_accuracy = run_seed(seed, shared, args)
            accuracy = accuracies.mean(axis=1)
            rho, tau = spearmanr(psi, accuracy).statistic, kendalltau(psi, accuracy).statistic
            ceiling, mean_ceiling = ceilings(accuracies)
            rhos.append(rho)
            taus.append(tau)
            print(f"{seed:>4} {rho:>9.3f} {tau:>8.3f} {accuracy.min():>8.4f} {accuracy.max():>8.4f} "
                  f"{hyper_accuracy:>9.4f} {ceiling:>8.3f} {mean_ceiling:>8.3f} {time.perf_counter() - t0:>8.1f}")
            ax.scatter(psi, accuracy, s=14, label=f"seed {seed}: ρ = {rho:.2f}")
        print(f"mean {statistics.mean(rhos):>9.3f} {statistics.mean(taus):>8.3f}")
        ax.set_title(f"{name}: mean Spearman {statistics.mean(rhos):.2f}")
        ax.set_xlabel("log FaDE-rank ψ")
        ax.set_ylabel("test accuracy, trained from scratch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=150)
    print(f"\ntotal {time.perf_counter() - start:.0f} s; figure {args.out}")


if __name__ == "__main__":
    main()
