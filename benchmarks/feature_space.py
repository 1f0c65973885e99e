"""DAG enumeration speed, the FaDE feature space's empty boxes, and bucketed-generator draw time.

Prints, for 4, 5, 6 vertices, the number of non-isomorphic DAGs :func:`enumerate_dags` finds
(checked against OEIS A003087, and A082402 for the weakly connected ones), the time taken and,
measured again apart, how long building that many ``ArchGraph`` objects takes; then the FaDE space of §3 (DAGs with
fewer than 6 vertices, the 3 FaDE features) under the default binning and a few others: boxes,
empty fraction, graphs per non-empty box; and the time of one :class:`BucketGenerator` draw.

    python benchmarks/feature_space.py [--max-vertices 6] [--draws 20000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import networkx as nx
import numpy as np

from archgraph import ArchGraph
from archgraph.generate import BucketGenerator, FeatureSpace, enumerate_dags

A003087 = {1: 1, 2: 2, 3: 6, 4: 31, 5: 302, 6: 5984, 7: 243668}   # DAGs on n unlabelled vertices
A082402 = {1: 1, 2: 1, 3: 4, 4: 24, 5: 267, 6: 5647, 7: 237317}   # weakly connected ones


def enumeration(max_vertices: int) -> None:
    print("vertices  DAGs      A003087  connected  A082402  time [s]  of which ArchGraph() [s]")
    for n in range(4, max_vertices + 1):
        start = time.perf_counter()
        dags = enumerate_dags(n)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        for g in dags:
            ArchGraph(g.edges, num_nodes=n)
        building = time.perf_counter() - start
        connected = sum(nx.is_weakly_connected(g.to_networkx()) for g in dags)
        ok = "ok" if (len(dags), connected) == (A003087[n], A082402[n]) else "MISMATCH"
        print(f"{n:>8}  {len(dags):<8}  {A003087[n]:<7}  {connected:<9}  {A082402[n]:<7}  {seconds:>8.3f}"
              f"  {building:>8.3f}   {ok}")


def fade_space(draws: int, seed: int) -> None:
    start = time.perf_counter()
    space = FeatureSpace.enumerate(max_vertices=5)
    print(f"\nFaDE space (§3: DAGs with < 6 vertices): {len(space)} graphs, features {space.features}, "
          f"built in {time.perf_counter() - start:.2f} s")
    print("bins        boxes  non-empty  empty fraction  graphs per non-empty box (median / max)")
    for bins in (3, 4, (4, 4, 5), 5, 6):
        s = space if bins == 4 else FeatureSpace(space.graphs, bins=bins)
        sizes = [len(s.members(b)) for b in np.ndindex(*s.shape) if s.members(b)]
        label = f"{bins}{' (default)' if bins == 4 else ''}"
        print(f"{label:<12}{int(np.prod(s.shape)):>5}  {len(sizes):>9}  {s.empty_fraction():>14.3f}  "
              f"{np.median(sizes):g} / {max(sizes)}")

    gen = BucketGenerator(space)
    rng = np.random.default_rng(seed)
    points = rng.random((draws, len(space.features)))
    start = time.perf_counter()
    for p in points:
        gen(p, rng)
    per_draw = (time.perf_counter() - start) / draws
    start = time.perf_counter()
    for p in points[: draws // 5]:
        gen.generate(p, rng, 5)
    per_five = (time.perf_counter() - start) / (draws // 5)
    print(f"\nBucketGenerator draw at a uniform random point: {per_draw * 1e6:.1f} µs; "
          f"generate(point, rng, 5): {per_five * 1e6:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-vertices", type=int, default=6, choices=range(4, 8),
                        help="largest vertex count to enumerate (7 takes minutes)")
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    enumeration(args.max_vertices)
    fade_space(args.draws, args.seed)


if __name__ == "__main__":
    main()
