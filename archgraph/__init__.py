"""archgraph: graph-centric neural architecture search on PyTorch."""

from . import mutate, ops, plot
from .errors import ArchGraphError, DataNotFoundError, InvalidGraphError, ShapeError, SpaceError, UnknownOpError
from .graph import ArchGraph

__version__ = "0.1.0"

__all__ = [
    "ArchGraph",
    "ArchGraphError",
    "DataNotFoundError",
    "InvalidGraphError",
    "ShapeError",
    "SpaceError",
    "UnknownOpError",
    "mutate",
    "ops",
    "plot",
]
