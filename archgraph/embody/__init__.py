"""The compiler: ArchGraphs to plain ``nn.Module`` s, one embodiment per kind of space."""

from .fade import FadeCell, FadeNetwork, build_fade, chain_channels
from .mlp import MLPNetwork, build_mlp, mlp_graph, mlp_layers

__all__ = [
    "FadeCell",
    "FadeNetwork",
    "MLPNetwork",
    "build_fade",
    "build_mlp",
    "chain_channels",
    "mlp_graph",
    "mlp_layers",
]
