"""Training-step time of a FaDE hyper-architecture vs one architecture it contains, side by side.

A d×w hyper-architecture (FaDE §2.2) relaxed by hard Gumbel-softmax (temperature 10, §3) runs
one sampled path per step, so its step should cost about one architecture's. Here d = 4 rows
of w = 5 connected DAGs with 2–5 vertices (drawn with a seeded numpy Generator), FaDE's scale
(§3): CIFAR-10-shaped random data 3×32×32, batch 128, 5×5 kernels, the fade space's channels
4, 8, 16, 32 (32 in the deepest cell). A step is forward, cross-entropy, gradients, Adam, as
:func:`archgraph.oneshot.train_bilevel` takes them: the hyper-architecture's weight step with
α frozen (one sampled path runs), its α step on α alone (with the default straight-through
estimator every cell of each row runs, see archgraph.hyper). Each hyper weight step is followed
by a step of the standalone compiled network (``build_fade``, via ``extract``) of the path that
step sampled, then by a hyper α step;
standalone networks are built when their path is first sampled and get one untimed step
then (the hyper step goes first: its path is known once it ran). Printed: median step time
of each, the median of the per-pair ratios (the ratio: like with like, robust to a machine
whose speed drifts) and the ratio of the medians, for separate paths and the weight-shared
hyper-cell, for the weight step (goal: ratio ≤ 1.3) and the α step.

The figures go to ``--results`` (JSON, with the command and versions) as well.

    python benchmarks/hyper_step.py [--steps 20] [--threads 2] [--device cpu] [--batch 128]
        [--results benchmarks/results/hyper_step.json]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archgraph import ArchGraph, spaces
from archgraph.generate import enumerate_dags
from archgraph.hyper import HyperArchitecture, build_hyper
from archgraph.oneshot.steps import requiring_grad
from archgraph.relax import arch_parameters, weight_parameters
from provenance import write_results  # benchmarks/provenance.py, next to this script

SHAPE = (3, 32, 32)
D, W = 4, 5


def draw_pool(rng: np.random.Generator) -> list[list[ArchGraph]]:
    """d rows of w distinct connected DAGs, each row's vertex counts drawn from 2..5."""
    by_size = {n: enumerate_dags(n, connected=True) for n in range(2, 6)}
    pool = []
    for _ in range(D):
        row: list[ArchGraph] = []
        while len(row) < W:
            graphs = by_size[int(rng.integers(2, 6))]
            g = graphs[int(rng.integers(len(graphs)))]
            if g not in row:
                row.append(g)
        pool.append(row)
    return pool


class Stepper:
    """One training step of ``params`` (default: every parameter of ``model``) with their own
    Adam: time in seconds, peak memory in bytes."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: list[nn.Parameter] | None = None):
        self.model, self.x, self.y = model, x, y
        self.params = list(model.parameters()) if params is None else params
        self.optimiser = torch.optim.Adam(self.params, lr=1e-3)

    def __call__(self) -> tuple[float, int]:
        device = self.x.device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        start = time.perf_counter()
        grads = torch.autograd.grad(F.cross_entropy(self.model(self.x), self.y), self.params, allow_unused=True)
        for p, g in zip(self.params, grads):
            p.grad = g
        self.optimiser.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            return time.perf_counter() - start, torch.cuda.max_memory_allocated(device) - base
        return time.perf_counter() - start, 0


def record_paths(hyper: HyperArchitecture) -> list[int]:
    """A list that each forward fills with the path it sampled (a hook on every candidate)."""
    path = [0] * len(hyper.rows)
    for i, row in enumerate(hyper.rows):
        for k, candidate in enumerate(row.candidates):
            candidate.register_forward_hook(lambda *_, i=i, k=k: path.__setitem__(i, k))
    return path


def measure(pool, *, shared: bool, steps: int, warmup: int, batch: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    hyper = build_hyper(spaces.load("fade"), pool, input_shape=SHAPE, num_classes=10, shared=shared).to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *SHAPE, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    alphas = arch_parameters(hyper)
    weight_step = Stepper(hyper, x, y, weight_parameters(hyper))
    alpha_step, sampled = Stepper(hyper, x, y, alphas), record_paths(hyper)
    singles: dict[tuple[int, ...], Stepper] = {}
    times: dict[str, list[float]] = {"hyper": [], "alpha": [], "single": []}
    memory: dict[str, list[int]] = {"hyper": [], "alpha": [], "single": []}
    for i in range(warmup + steps):
        with requiring_grad(alphas, False):
            t_hyper, m_hyper = weight_step()
        path = tuple(sampled)
        if path not in singles:
            singles[path] = Stepper(hyper.extract(path), x, y)
            singles[path]()  # untimed first step: the hyper-architecture's paths are warm too
        t_single, m_single = singles[path]()
        t_alpha, m_alpha = alpha_step()
        if i >= warmup:
            for key, t, m in (("hyper", t_hyper, m_hyper), ("alpha", t_alpha, m_alpha), ("single", t_single, m_single)):
                times[key].append(t), memory[key].append(m)
    h, a, s = (statistics.median(times[key]) for key in ("hyper", "alpha", "single"))
    paired, alpha_paired = (statistics.median(t / u for t, u in zip(times[key], times["single"]))
                            for key in ("hyper", "alpha"))
    n_path = statistics.mean(sum(p.numel() for p in st.model.parameters()) for st in singles.values())
    print(f"{'shared hyper-cell' if shared else 'separate paths'}: {sum(p.numel() for p in hyper.parameters()):,} "
          f"parameters (a path: {n_path:,.0f} on average), {len(singles)} distinct paths sampled\n"
          f"  median step: hyper weights {1e3 * h:8.2f} ms   single {1e3 * s:8.2f} ms   "
          f"ratio {paired:.3f} (ratio of the medians {h / s:.3f})\n"
          f"               hyper α       {1e3 * a:8.2f} ms   ratio to single {alpha_paired:.3f}")
    if device.type == "cuda":
        print(f"  peak step memory above the resident parameters: hyper weights {max(memory['hyper']) / 2**20:.1f} "
              f"MiB   hyper α {max(memory['alpha']) / 2**20:.1f} MiB   single {max(memory['single']) / 2**20:.1f} MiB")
    return {"mode": "shared" if shared else "separate", "weight_step_ratio": paired, "alpha_step_ratio": alpha_paired,
            "median_seconds": {"hyper_weights": h, "hyper_alpha": a, "single": s}, "distinct_paths": len(singles)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed hyper steps, each paired with a single step")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pool's numpy Generator")
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).resolve().parent / "results" / "hyper_step.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    pool = draw_pool(np.random.default_rng(args.seed))
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, "
          f"{args.steps} timed steps after {args.warmup} warm-up, batch {args.batch}, input {SHAPE}\n"
          f"pool {D}×{W}, vertices per row: {[[g.num_nodes for g in row] for row in pool]}, "
          f"channels {list(spaces.load('fade').params['channels'])}, kernel 5\n")
    rows = [measure(pool, shared=shared, steps=args.steps, warmup=args.warmup, batch=args.batch, device=device)
            for shared in (False, True)]
    print(f"\nweight-step ratios hyper / single: separate {rows[0]['weight_step_ratio']:.3f}, "
          f"shared {rows[1]['weight_step_ratio']:.3f} (goal ≤ 1.3)")
    write_results(args.results, device=str(device), threads=torch.get_num_threads(), machine=platform.machine(),
                  seed=args.seed, steps=args.steps, batch=args.batch, rows=rows)


if __name__ == "__main__":
    main()
