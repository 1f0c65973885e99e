"""Training-step time of a FaDE hyper-architecture vs one architecture it contains, side by side.

A d×w hyper-architecture (FaDE §2.2) relaxed by hard Gumbel-softmax (temperature 10, §3) runs
one sampled path per step, so its step should cost about one architecture's. Here d = 4 rows
of w = 5 connected DAGs with 2–5 vertices (drawn with a seeded numpy Generator), FaDE's scale
(§3): CIFAR-10-shaped random data 3×32×32, batch 128, 5×5 kernels, the fade space's channels
4, 8, 16, 32 (32 in the deepest cell). A step is forward, cross-entropy, backward, Adam
(weights and α for the hyper-architecture). Each hyper step is followed by a step of the
standalone compiled network (``build_fade``, via ``extract``) of the path that step sampled;
standalone networks are built when their path is first sampled and get one untimed step
then (the hyper step goes first: its path is known once it ran). Printed: median step time
of each, the median of the per-pair ratios (the ratio: like with like, robust to a machine
whose speed drifts) and the ratio of the medians, for separate paths and the weight-shared
hyper-cell. Goal: ratio ≤ 1.3.

    python benchmarks/hyper_step.py [--steps 20] [--threads 2] [--device cpu] [--batch 128]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archgraph import ArchGraph, spaces
from archgraph.generate import enumerate_dags
from archgraph.hyper import HyperArchitecture, build_hyper

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
    """One training step of a model with its own Adam: time in seconds, peak memory in bytes."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        self.model, self.x, self.y = model, x, y
        self.optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def __call__(self) -> tuple[float, int]:
        device = self.x.device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        start = time.perf_counter()
        self.optimiser.zero_grad(set_to_none=True)
        F.cross_entropy(self.model(self.x), self.y).backward()
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


def measure(pool, *, shared: bool, steps: int, warmup: int, batch: int, device: torch.device) -> float:
    torch.manual_seed(0)
    hyper = build_hyper(spaces.load("fade"), pool, input_shape=SHAPE, num_classes=10, shared=shared).to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *SHAPE, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    hyper_step, sampled = Stepper(hyper, x, y), record_paths(hyper)
    singles: dict[tuple[int, ...], Stepper] = {}
    times: dict[str, list[float]] = {"hyper": [], "single": []}
    memory: dict[str, list[int]] = {"hyper": [], "single": []}
    for i in range(warmup + steps):
        t_hyper, m_hyper = hyper_step()
        path = tuple(sampled)
        if path not in singles:
            singles[path] = Stepper(hyper.extract(path), x, y)
            singles[path]()  # untimed first step: the hyper-architecture's paths are warm too
        t_single, m_single = singles[path]()
        if i >= warmup:
            times["hyper"].append(t_hyper), times["single"].append(t_single)
            memory["hyper"].append(m_hyper), memory["single"].append(m_single)
    h, s = statistics.median(times["hyper"]), statistics.median(times["single"])
    paired = statistics.median(a / b for a, b in zip(times["hyper"], times["single"]))
    n_path = statistics.mean(sum(p.numel() for p in st.model.parameters()) for st in singles.values())
    print(f"{'shared hyper-cell' if shared else 'separate paths'}: {sum(p.numel() for p in hyper.parameters()):,} "
          f"parameters (a path: {n_path:,.0f} on average), {len(singles)} distinct paths sampled\n"
          f"  median step: hyper {1e3 * h:8.2f} ms   single {1e3 * s:8.2f} ms   "
          f"ratio {paired:.3f} (ratio of the medians {h / s:.3f})")
    if device.type == "cuda":
        print(f"  peak step memory above the resident parameters: hyper {max(memory['hyper']) / 2**20:.1f} MiB   "
              f"single {max(memory['single']) / 2**20:.1f} MiB")
    return paired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed hyper steps, each paired with a single step")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pool's numpy Generator")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    pool = draw_pool(np.random.default_rng(args.seed))
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, "
          f"{args.steps} timed steps after {args.warmup} warm-up, batch {args.batch}, input {SHAPE}\n"
          f"pool {D}×{W}, vertices per row: {[[g.num_nodes for g in row] for row in pool]}, "
          f"channels {list(spaces.load('fade').params['channels'])}, kernel 5\n")
    ratios = [measure(pool, shared=shared, steps=args.steps, warmup=args.warmup, batch=args.batch, device=device)
              for shared in (False, True)]
    print(f"\nratios hyper / single: separate {ratios[0]:.3f}, shared {ratios[1]:.3f} (goal ≤ 1.3)")


if __name__ == "__main__":
    main()
