"""Independent oracles the graph tests compare archgraph against."""

import networkx as nx

from archgraph import ArchGraph


def isomorphic(a: ArchGraph, b: ArchGraph) -> bool:
    """networkx's isomorphism test with vertex and edge ops matched."""
    same = lambda x, y: x.get("op") == y.get("op")  # noqa: E731
    return nx.is_isomorphic(a.to_networkx(), b.to_networkx(), node_match=same, edge_match=same)


def is_topological(graph: ArchGraph) -> bool:
    """Every edge goes from a lower to a higher vertex id."""
    return all(u < v for u, v in graph.edges)
