"""The package as users get it: a light ``import archgraph``, names loaded on first use."""

import subprocess
import sys

import pytest

import archgraph

HEAVY = ("torch", "matplotlib", "torch_geometric", "skopt", "ray", "sklearn", "scipy", "networkx", "numpy")


def test_import_loads_no_heavy_library():
    probe = f"import sys, archgraph\nprint(*sorted({{m.partition('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_public_names_load_on_first_use():
    from archgraph.graph import ArchGraph

    assert archgraph.ArchGraph is ArchGraph
    assert all(callable(f) for f in (archgraph.plot.draw_graph, archgraph.mutate.add_edge, archgraph.ops.check))
    assert set(archgraph.__all__) <= set(dir(archgraph))
    with pytest.raises(AttributeError, match="module 'archgraph' has no attribute 'ArchGrpah'"):
        archgraph.ArchGrpah
    with pytest.raises(ImportError, match="cannot import name 'nope' from 'archgraph'"):
        from archgraph import nope  # noqa: F401
