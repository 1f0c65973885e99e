"""A (1+1) evolutionary search over FaDE chains on digits, in plain archgraph API calls.

Each step mutates one cell of the current best chain (a random edge/vertex change, at most
5 vertices per cell, as the fade space allows), compiles it, trains it briefly and keeps it
if its validation accuracy is at least as good. The searches proper (random, Bayesian,
FaDE, NOSH, controller) live in ``archgraph.search``; this shows the building blocks.

    python examples/mutation_search.py [--steps 6] [--epochs 3] [--seed 0]
"""

import argparse

import numpy as np
import torch

from archgraph import ArchGraph, data, mutate, spaces, train


def fitness(space, cells, task, fit, val, epochs: int, seed: int) -> float:
    torch.manual_seed(seed)
    model = space.compile(cells, input_shape=task.input_shape, num_classes=task.num_classes, kernel_size=3)
    train.train(model, fit, val_data=val, epochs=epochs, batch_size=32, seed=seed, progress=False)
    return train.evaluate(model, val)["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    space = spaces.load("fade")
    task = data.load("digits")
    fit, val = data.train_val_split(task.train, val_fraction=0.2, seed=args.seed)
    best = (ArchGraph([(0, 1)]),) * len(space.cells)
    best_acc = fitness(space, best, task, fit, val, args.epochs, args.seed)
    print(f"start: val accuracy {best_acc:.3f}")
    for step in range(args.steps):
        row = int(rng.integers(len(best)))
        child = list(best)
        child[row] = mutate.random_mutation(best[row], rng, max_nodes=space.max_vertices,
                                            kinds=("add_edge", "remove_edge", "add_vertex", "remove_vertex"))
        acc = fitness(space, child, task, fit, val, args.epochs, args.seed)
        kept = acc >= best_acc
        if kept:
            best, best_acc = tuple(child), acc
        print(f"step {step}: mutate cell {row + 1} → {child[row].num_nodes} vertices, {child[row].num_edges} edges; "
              f"val accuracy {acc:.3f} {'kept' if kept else 'dropped'}")
    print(f"best: val accuracy {best_acc:.3f}; cells {[c.edges for c in best]}")


if __name__ == "__main__":
    main()
