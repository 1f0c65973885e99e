"""The compiler: ArchGraphs to plain ``nn.Module`` s, one embodiment per kind of space."""

from .darts import (AMOEBANET, DARTS_V1, DARTS_V2, ENAS, GENOTYPES, NASNET, PNAS, DartsCell, DartsNetwork, Genotype,
                    build_darts, check_darts_cell, darts_concat, genotype_to_graphs, graphs_to_genotype)
from .darts_skeleton import DartsSkeleton
from .fade import FadeCell, FadeNetwork, build_fade
from .fade_skeleton import FadeSkeleton, chain_channels
from .mlp import MLPNetwork, build_mlp, mlp_graph, mlp_layers
from .nb201 import (EDGES, NB201_OPS, NB201Cell, NB201Network, NB201Skeleton, build_nb201, check_nb201_cell,
                    from_nb201_string, to_nb201_string, xautodl_names)

__all__ = [
    "AMOEBANET",
    "DARTS_V1",
    "DARTS_V2",
    "ENAS",
    "GENOTYPES",
    "NASNET",
    "PNAS",
    "DartsCell",
    "DartsNetwork",
    "DartsSkeleton",
    "Genotype",
    "EDGES",
    "NB201_OPS",
    "NB201Cell",
    "NB201Network",
    "NB201Skeleton",
    "build_darts",
    "build_nb201",
    "check_darts_cell",
    "darts_concat",
    "check_nb201_cell",
    "from_nb201_string",
    "genotype_to_graphs",
    "graphs_to_genotype",
    "to_nb201_string",
    "xautodl_names",
    "FadeCell",
    "FadeNetwork",
    "FadeSkeleton",
    "MLPNetwork",
    "build_fade",
    "build_mlp",
    "chain_channels",
    "mlp_graph",
    "mlp_layers",
]
