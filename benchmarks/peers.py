"""archgraph's NAS-Bench-201 search supernet side by side with the peer libraries' (xautodl, NNI).

Every library builds the NAS-Bench-201 search supernet (Dong & Yang 2020, §2 and §5) with the
same settings (C = 16, N = 5, 4 nodes, 10 classes, the 5 NB-201 ops) and takes the same steps on
the same batches of 64 random 3×32×32 images (only time is measured):

* archgraph: :func:`archgraph.oneshot.build_nb201_supernet` as built by default (fused by-node
  cells, channels-last), and as a second row its plain per-edge path in torch's default layout,
  which shows what the speed-ups buy;
* xautodl 1.0.0, the NAS-Bench-201 authors' package: ``TinyNetworkDarts`` and
  ``TinyNetworkGDAS`` (``affine=False, track_running_stats=True``, as their NB-201 searches);
* NNI 3.0: ``nni.nas.hub.pytorch.NasBench201()`` made a supernet by the strategies ``DARTS()``
  and ``GumbelDARTS()``; NNI has no hard Gumbel, so its Gumbel supernet runs every op (soft).

Per method, softmax (DARTS) and hard Gumbel (GDAS, τ = 10), a step is timed as each library's own
trainer takes it:

* weight step: forward, cross-entropy, backward, SGD (lr 0.025, momentum 0.9, weight decay 5e-4)
  on the weights;
* architecture step: forward on another batch, cross-entropy, the α gradient, Adam (lr 3e-4,
  betas (0.5, 0.999), weight decay 1e-3) on α. archgraph's bi-level trainer asks autograd for
  α's gradient only (``train_bilevel``'s first-order step); xautodl's search scripts and NNI's
  ``DartsLightningModule`` call ``backward()``, which also computes every weight gradient.

Libraries take turns step by step (interleaved, the order rotated each step), so that a slower
or busier spell of the machine hits all of them; after ``--warmup`` steps the median of
``--steps`` steps is reported, and the ratios archgraph / peer are taken between those medians.
Under hard Gumbel the cost of a step depends on the ops drawn, so every library draws the same
ones: before each step α is set to ``1000 · one-hot(ops)`` (ops drawn by the benchmark's seeded
generator), which the Gumbel noise cannot overturn; the draw itself is still computed.

Goals (issue "side by side with the peer libraries"): softmax supernet ≤ 0.8× the faster peer;
hard Gumbel ≤ 1.0× xautodl's GDAS.

A peer that is not installed is skipped, with its install line. NNI 3.0 needs pytorch-lightning
< 2.1 and a setuptools that still has ``pkg_resources`` (< 81; torch 2.13 asks for ≥ 77), so it
lives in its own virtual environment (the first command below); run the benchmark from there to
include it (NNI imports with warnings on torch 2.13, silenced here)::

    python -m venv peers && peers/bin/pip install torch==2.13.0 "nni==3.0" "pytorch-lightning<2.1" \\
        "setuptools>=77,<81" && peers/bin/pip install --no-deps xautodl pyyaml && peers/bin/pip install -e .
    peers/bin/python benchmarks/peers.py [--steps 5] [--warmup 2] [--batch 64] [--C 16] [--N 5]
        [--methods darts gdas] [--device cpu|cuda] [--threads T] [--seed 0] [--out peers.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archgraph.embody.nb201 import EDGES, NB201_OPS
from archgraph.oneshot import build_nb201_supernet
from archgraph.relax import Gumbel, arch_parameters, weight_parameters

XAUTODL_INSTALL = "pip install --no-deps xautodl pyyaml"
NNI_INSTALL = ('python -m venv peers && peers/bin/pip install torch==2.13.0 "nni==3.0" "pytorch-lightning<2.1" '
               '"setuptools>=77,<81"  (then xautodl and archgraph: see this file\'s docstring)')
#: α of a forced op: exp(-1000) leaves the others no chance against any Gumbel noise
FORCE = 1000.0


@dataclasses.dataclass
class Contender:
    """One library's supernet for one method, and how its trainer takes the two steps."""

    library: str
    model: nn.Module
    logits: Callable[[torch.Tensor], torch.Tensor]
    weights: list[nn.Parameter]
    alphas: list[torch.Tensor]
    alpha_grads_only: bool  # the architecture step asks autograd for α's gradient alone
    force_ops: Callable[[Sequence[int]], None] | None = None  # makes a hard Gumbel draw pick these ops

    def __post_init__(self):
        self.weight_opt = torch.optim.SGD(self.weights, lr=0.025, momentum=0.9, weight_decay=5e-4)
        self.arch_opt = torch.optim.Adam(self.alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        self.times: dict[str, list[float]] = {"weight": [], "arch": []}

    def weight_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.weight_opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.logits(x), y).backward()
        self.weight_opt.step()

    def arch_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.arch_opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.logits(x), y)
        if self.alpha_grads_only:
            for alpha, grad in zip(self.alphas, torch.autograd.grad(loss, self.alphas, allow_unused=True)):
                alpha.grad = grad
        else:
            self.model.zero_grad(set_to_none=True)
            loss.backward()
        self.arch_opt.step()


def archgraph_contenders(method: str, C: int, N: int, device: torch.device) -> list[Contender]:
    relaxation = Gumbel(10.0, hard=True) if method == "gdas" else "softmax"
    out = []
    for label, fast in (("archgraph", True), ("archgraph (plain)", False)):
        net = build_nb201_supernet(input_shape=(3, 32, 32), num_classes=10, C=C, N=N, relaxation=relaxation,
                                   fused=fast, channels_last=fast).to(device)

        def force(ops, alphas=net.arch_parameters()):
            with torch.no_grad():
                for alpha, k in zip(alphas, ops):
                    alpha.copy_(FORCE * F.one_hot(torch.tensor(k), len(NB201_OPS)))

        out.append(Contender(label, net, net, weight_parameters(net), arch_parameters(net), True,
                             force if method == "gdas" else None))
    return out


def xautodl_contenders(method: str, C: int, N: int, device: torch.device) -> list[Contender]:
    try:
        from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts
        from xautodl.models.cell_searchs.search_model_gdas import TinyNetworkGDAS
    except ImportError:
        print(f"xautodl is not installed: skipped. Install it with: {XAUTODL_INSTALL}")
        return []
    cls = TinyNetworkGDAS if method == "gdas" else TinyNetworkDarts
    net = cls(C, N, 4, 10, list(NB201_OPS), False, True).to(device)

    def force(ops):
        with torch.no_grad():
            net.arch_parameters.copy_(FORCE * F.one_hot(torch.tensor(ops), len(NB201_OPS)))

    return [Contender(f"xautodl {cls.__name__}", net, lambda x: net(x)[1], net.get_weights(),
                      [net.arch_parameters], False, force if method == "gdas" else None)]


def nni_contenders(method: str, C: int, N: int, device: torch.device) -> list[Contender]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nni.nas.hub.pytorch import NasBench201
            from nni.nas.strategy import DARTS, GumbelDARTS
    except ImportError:
        print(f"NNI is not installed here: skipped. Install it with: {NNI_INSTALL}")
        return []
    strategy = GumbelDARTS() if method == "gdas" else DARTS()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = strategy.mutate_model(NasBench201(stem_out_channels=C, num_modules_per_stack=N, num_labels=10))
    net = net.to(device)
    named = dict(net.named_parameters())
    alphas = [p for name, p in named.items() if name.endswith("_arch_alpha")]
    alpha_ids = {id(p) for p in alphas}
    weights = [p for p in net.parameters() if id(p) not in alpha_ids]
    return [Contender(f"NNI {type(strategy).__name__}{' (soft)' if method == 'gdas' else ''}", net, net, weights,
                      list({id(p): p for p in alphas}.values()), False)]


def explain(c: Contender, ours: int, C: int, N: int) -> str:
    """Whether ``c``'s weight count differs from archgraph's by what its cells' 12 convolutions
    (6 edges × 1×1 and 3×3, at C, 2C, 4C channels in N cells each) carry in addition."""
    per_channel = 12 * N * (C + 2 * C + 4 * C)
    extra = {"xautodl": (per_channel, "a bias per conv channel, cancelled by the non-affine BN after it"),
             "NNI": (2 * per_channel, "an affine BN (weight and bias per channel) after each conv")}
    library = c.library.split()[0]
    if library not in extra:
        return ""
    weights, what = extra[library]
    return f"+{weights:,}: {what}" + ("" if count(c.weights) - ours == weights else " (does NOT account for it)")


def count(params: Sequence[torch.Tensor]) -> int:
    return sum(p.numel() for p in params)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable[[], None], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    return time.perf_counter() - start


def race(contenders: list[Contender], *, steps: int, warmup: int, batch: int, device: torch.device,
         rng: np.random.Generator) -> None:
    """Interleaved steps, the order rotated each step; fills each contender's ``times``."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    for step in range(warmup + steps):
        xw, xa = (torch.randn(batch, 3, 32, 32, generator=gen).to(device) for _ in range(2))
        yw, ya = (torch.randint(0, 10, (batch,), generator=gen).to(device) for _ in range(2))
        ops = rng.integers(len(NB201_OPS), size=len(EDGES)).tolist()
        turn = step % len(contenders)
        for c in contenders[turn:] + contenders[:turn]:
            if c.force_ops is not None:
                c.force_ops(ops)
            weight_time = timed(lambda: c.weight_step(xw, yw), device)
            arch_time = timed(lambda: c.arch_step(xa, ya), device)
            if step >= warmup:
                c.times["weight"].append(weight_time)
                c.times["arch"].append(arch_time)
        print(f"  step {step + 1}/{warmup + steps}" + (" (warm-up)" if step < warmup else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="measured steps per library (median)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=["darts", "gdas"], choices=["darts", "gdas"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the medians and ratios as JSON here")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.processor() or platform.machine()} CPU")
    print(f"NAS-Bench-201 search supernets, C={args.C}, N={args.N}, batch {args.batch} of 3×32×32, "
          f"{machine}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    results = {}
    for method in args.methods:
        contenders = (archgraph_contenders(method, args.C, args.N, device)
                      + xautodl_contenders(method, args.C, args.N, device)
                      + nni_contenders(method, args.C, args.N, device))
        print(f"\n{method}: weights (α apart), and the difference to archgraph's explained")
        ours = count(contenders[0].weights)
        for c in contenders:
            print(f"  {c.library:<28} {count(c.weights):>10,}   α {count(c.alphas)}   {explain(c, ours, args.C, args.N)}"
                  .rstrip())
        race(contenders, steps=args.steps, warmup=args.warmup, batch=args.batch, device=device, rng=rng)
        results[method] = report(method, contenders)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine, "threads": torch.get_num_threads(), "settings": vars(args),
                       "results": results}, f, indent=1)


def report(method: str, contenders: list[Contender]) -> dict:
    """Print the medians and the ratios archgraph / each library; return them."""
    medians = {c.library: {kind: statistics.median(ts) for kind, ts in c.times.items()} for c in contenders}
    ours = medians["archgraph"]
    print(f"\n{method}: median seconds per step, and archgraph / library")
    print(f"  {'library':<28} {'weight step':>11} {'arch step':>10} {'ratio weight':>13} {'ratio arch':>11}")
    for library, m in medians.items():
        print(f"  {library:<28} {m['weight']:>11.3f} {m['arch']:>10.3f} "
              f"{ours['weight'] / m['weight']:>13.2f} {ours['arch'] / m['arch']:>11.2f}")
    peers = {k: v for k, v in medians.items() if not k.startswith("archgraph")}
    if peers:
        reference = ([k for k in peers if k.startswith("xautodl")] if method == "gdas"
                     else [min(peers, key=lambda k: peers[k]["weight"] + peers[k]["arch"])])
        goal = 1.0 if method == "gdas" else 0.8
        for k in reference:
            ratio = (ours["weight"] + ours["arch"]) / (peers[k]["weight"] + peers[k]["arch"])
            print(f"  goal: archgraph ≤ {goal}× {k} (weight + arch step): {ratio:.2f}× "
                  f"{'met' if ratio <= goal else 'NOT met'}")
    return medians


if __name__ == "__main__":
    main()
