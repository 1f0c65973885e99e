"""archgraph: graph-centric neural architecture search on PyTorch.

``import archgraph`` loads only the errors: :class:`ArchGraph`, :func:`load_model` (the trained
model of a search run's trial, :mod:`archgraph.bundle`) and the submodules named in
``__all__`` are imported when first used (PEP 562's module ``__getattr__``), so that a
command such as ``archgraph --help`` does not wait for torch or matplotlib.

>>> import archgraph
>>> archgraph.ArchGraph([(0, 1)]).num_edges
1
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import (ArchGraphError, BudgetError, DataNotFoundError, InvalidGraphError, SettingError, ShapeError, SpaceError,
                     UnknownOpError)

if TYPE_CHECKING:
    from . import mutate, ops, plot
    from .bundle import load_model
    from .graph import ArchGraph

__version__ = "0.1.0"

__all__ = [
    "ArchGraph",
    "ArchGraphError",
    "BudgetError",
    "DataNotFoundError",
    "InvalidGraphError",
    "SettingError",
    "ShapeError",
    "SpaceError",
    "UnknownOpError",
    "load_model",
    "mutate",
    "ops",
    "plot",
]

_LAZY_SUBMODULES = ("mutate", "ops", "plot")


def __getattr__(name: str):
    if name == "ArchGraph":
        from .graph import ArchGraph

        globals()["ArchGraph"] = ArchGraph  # later lookups skip this function
        return ArchGraph
    if name == "load_model":
        from .bundle import load_model

        globals()["load_model"] = load_model
        return load_model
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
