"""The canonical labelling of DAGs with vertex and edge ops, on plain data.

The search behind :mod:`archgraph.canonical` and ``ArchGraph``'s ``==`` and ``hash``: it takes a
DAG as its vertex count, edges and ops, so that :mod:`archgraph.graph` uses it without importing
:mod:`archgraph.canonical`, which builds ``ArchGraph`` s (see there for the method and examples).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

Edge = tuple[int, int]

# A labelled DAG on vertices 0..n-1 in canonical order: (vertex ops, sorted (u, v, edge op)), "" = no op.
_Key = tuple[tuple[str, ...], tuple[tuple[int, int, str], ...]]


def _canonical_key(n: int, arcs: Mapping[Edge, str], labels: Sequence[str]) -> _Key:
    """The lexicographically smallest relabelling of a DAG whose arcs all go ``u → v``, ``u < v``.

    Individualisation-refinement, as in nauty: vertices are coloured by (level, height, op,
    in-degree, out-degree) — level and height being the longest paths from a source and to a
    sink — the colours refined by the multisets of predecessor and successor colours (with
    edge ops) until stable, and the first colour class of several vertices split by
    individualising each of its vertices in turn, down to discrete colourings, whose
    relabellings (keys) are compared. Branches that an automorphism maps onto an explored one
    are skipped: swaps of twins (equal predecessors and successors) and the automorphisms read
    off two leaves with equal keys; a leaf equal to the best one ends the branch that an
    automorphism maps onto the best leaf's (nauty's backjump). Every step is equivariant, so
    the smallest key is exact; colours keep the level order, so the numbering it gives is
    topological.
    """
    preds: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    succs: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    for (u, v), op in arcs.items():
        preds[v].append((u, op))
        succs[u].append((v, op))
    level, height = [0] * n, [0] * n
    for v in range(n):  # arcs go up: index order is topological
        level[v] = max([level[u] for u, _ in preds[v]], default=-1) + 1
        height[~v] = max([height[w] for w, _ in succs[~v]], default=-1) + 1
    best_key: _Key | None = None     # the smallest leaf so far, its vertex order and its path
    best_order: list[int] = []
    best_fixed: tuple[int, ...] = ()
    automorphisms: list[list[int]] = []

    def refine(colour: list) -> list:
        count = len(set(colour))
        while count < n:
            sig = [(colour[v], tuple(sorted([(colour[u], op) for u, op in preds[v]])),
                    tuple(sorted([(colour[w], op) for w, op in succs[v]]))) for v in range(n)]
            rank = {s: i for i, s in enumerate(sorted(set(sig)))}
            colour = [rank[s] for s in sig]
            if len(rank) == count:
                break
            count = len(rank)
        return colour

    def root(parent: list[int], x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def search(colour: list, fixed: tuple[int, ...]) -> int:
        """Explore the node reached by individualising ``fixed``; return the depth to back up
        to (``len(fixed)`` when done, less to abandon equivalent ancestors' subtrees)."""
        nonlocal best_key, best_order, best_fixed
        colour = refine(colour)
        ranked = sorted(colour)
        if len(set(ranked)) == n:
            order = sorted(range(n), key=colour.__getitem__)
            pos = {v: i for i, v in enumerate(order)}
            key = tuple(labels[v] for v in order), tuple(sorted([(pos[u], pos[v], op) for (u, v), op in arcs.items()]))
            if best_key is None or key < best_key:
                best_key, best_order, best_fixed = key, order, fixed
            elif key == best_key:  # the two leaves differ by an automorphism
                g = [best_order[pos[v]] for v in range(n)]
                automorphisms.append(g)
                # where the paths to the two leaves part, at depth d, if g takes this path's branch
                # onto the best leaf's, it maps the whole branch onto that explored one: back up to d
                d = next(j for j, (a, b) in enumerate(zip(fixed, best_fixed)) if a != b)
                if all(g[fixed[j]] == best_fixed[j] for j in range(d + 1)):
                    return d
            return len(fixed)
        cell = next(a for a, b in zip(ranked, ranked[1:]) if a == b)  # the first class of 2+ vertices
        one_per_twins = {(tuple(sorted(preds[v])), tuple(sorted(succs[v]))): v for v in range(n) if colour[v] == cell}
        explored: list[int] = []
        # the orbits of the automorphisms found so far that fix ``fixed`` pointwise, as a union-find
        # forest, brought up to date before each branch (each automorphism is looked at once)
        parent, used = list(range(n)), 0
        for v in one_per_twins.values():
            for g in automorphisms[used:]:
                if all(g[x] == x for x in fixed):
                    for x in range(n):
                        a, b = root(parent, x), root(parent, g[x])
                        parent[a] = b
            used = len(automorphisms)
            if not explored or root(parent, v) not in {root(parent, w) for w in explored}:
                back_to = search([2 * c + (c == cell and w != v) for w, c in enumerate(colour)], (*fixed, v))
                if back_to < len(fixed):
                    return back_to
                explored.append(v)
        return len(fixed)

    search([(level[v], height[v], labels[v], len(preds[v]), len(succs[v])) for v in range(n)], ())
    return best_key


def _key_of(n: int, edges: Sequence[tuple[int, int]], edge_ops: Mapping[tuple[int, int], str],
            node_ops: Mapping[int, str]) -> _Key:
    """The canonical key of the DAG on vertices ``0 .. n-1`` with these edges and ops: equal for
    two DAGs exactly when they are isomorphic with equal ops."""
    succs: list[list[int]] = [[] for _ in range(n)]
    indegree = [0] * n
    for u, v in edges:
        succs[u].append(v)
        indegree[v] += 1
    order = [v for v in range(n) if not indegree[v]]
    for v in order:  # Kahn's algorithm; any topological order will do
        for w in succs[v]:
            indegree[w] -= 1
            if not indegree[w]:
                order.append(w)
    index = {v: i for i, v in enumerate(order)}
    arcs = {(index[u], index[v]): edge_ops.get((u, v), "") for u, v in edges}
    return _canonical_key(n, arcs, [node_ops.get(v, "") for v in order])


def _form_of(key: _Key) -> str:
    """The compact JSON of the graph ``key`` describes (``to_json`` with keys sorted), without building it."""
    labels, arcs = key
    data: dict = {"num_nodes": len(labels), "edges": [[u, v, op] if op else [u, v] for u, v, op in arcs]}
    node_ops = {str(v): op for v, op in enumerate(labels) if op}
    if node_ops:
        data["node_ops"] = node_ops
    return json.dumps(data, sort_keys=True, separators=(",", ":"))
