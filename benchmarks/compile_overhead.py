"""Training-step time of compiled modules vs hand-written equivalents, side by side.

For each case the compiled network and its hand-written twin get the same weights (their
outputs are checked equal first), then training steps (forward, cross-entropy, backward,
Adam step) alternate between the two; the script prints the median step time of each and
the ratio compiled / hand-written. Goal: ≤ 1.05 on CPU.

    python benchmarks/compile_overhead.py [--steps 15] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from archgraph import spaces
from archgraph.embody import DARTS_V2, genotype_to_graphs

HERE = Path(__file__).resolve().parent


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fade_case():
    hand = _module("handwritten_fade")
    cells, _ = spaces.load_architecture(HERE.parent / "examples" / "fade_arch.json")
    compiled = spaces.load("fade").compile(cells, input_shape=(1, 8, 8), num_classes=10)
    twin = hand.HandwrittenFade()
    hand.copy_weights(compiled, twin)
    return "FaDE chain (examples/fade_arch.json), digits 1×8×8, batch 128", compiled, twin, (128, 1, 8, 8)


def darts_case():
    hand = _module("handwritten_darts")
    compiled = spaces.load("darts").compile(genotype_to_graphs(DARTS_V2), input_shape=(3, 32, 32), num_classes=10)
    twin = hand.HandwrittenDartsV2(36, 10, 20)
    twin.load_state_dict(compiled.state_dict())  # module names match
    return "DARTS_V2 network (C=36, 20 cells), CIFAR 3×32×32, batch 16", compiled, twin, (16, 3, 32, 32)


def step_timer(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> float:
        sync(x.device)
        start = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimiser.step()
        sync(x.device)
        return time.perf_counter() - start

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(label, compiled, twin, shape, *, steps: int, warmup: int, device: torch.device) -> float:
    compiled.to(device).train()
    twin.to(device).train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen).to(device)
    y = torch.randint(0, 10, (shape[0],), generator=gen).to(device)
    with torch.no_grad():
        compiled.eval(), twin.eval()
        difference = (compiled(x) - twin(x)).abs().max().item()
        compiled.train(), twin.train()
    if difference > 1e-5:
        raise SystemExit(f"{label}: compiled and hand-written outputs differ by {difference:g}")
    timers = {"compiled": step_timer(compiled, x, y), "hand": step_timer(twin, x, y)}
    times: dict[str, list[float]] = {"compiled": [], "hand": []}
    for i in range(warmup + steps):
        order = ("compiled", "hand") if i % 2 == 0 else ("hand", "compiled")  # alternate who goes first
        for name in order:
            t = timers[name]()
            if i >= warmup:
                times[name].append(t)
    c, h = statistics.median(times["compiled"]), statistics.median(times["hand"])
    print(f"{label}\n  params {sum(p.numel() for p in compiled.parameters()):,}; max output difference {difference:.1e}\n"
          f"  median step: compiled {1e3 * c:8.2f} ms   hand-written {1e3 * h:8.2f} ms   ratio {c / h:.3f}")
    return c / h


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per network (median taken)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} CPU threads, "
          f"{args.steps} timed steps after {args.warmup} warm-up, interleaved\n")
    ratios = []
    for case in (fade_case, darts_case):
        torch.manual_seed(0)
        ratios.append(measure(*case(), steps=args.steps, warmup=args.warmup, device=device))
    print(f"\nratios compiled / hand-written: {', '.join(f'{r:.3f}' for r in ratios)} (goal ≤ 1.05)")


if __name__ == "__main__":
    main()
