"""The values a space parameter may take, checked when a space is loaded and when a model is compiled.

A space file's ``[params]`` and the ``--param`` overrides reach the embodiment's builder, where a bad
value (``kernel_size = 0``, ``channels = -1``) would fail deep inside torch or, worse, build a network
of the wrong shape (an even kernel size does not keep a feature map's size). :func:`check_values`
refuses such values first, in one line naming the parameter, the value and what to give instead.
A parameter is checked by its name, which means the same thing in every embodiment that takes it.

Examples
--------
>>> check_values("fade", {"kernel_size": 5, "channels": [4, 8]}, cells=2)
>>> check_values("fade", {"kernel_size": 4}, cells=2)
Traceback (most recent call last):
...
archgraph.errors.SpaceError: space 'fade': kernel_size must be an odd whole number of 1 or more (an odd kernel \
keeps a feature map's size), got 4
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .errors import SpaceError

__all__ = ["check_values"]


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _counts(value: Any) -> bool:  # one count, or one per cell (the length is checked by check_values)
    return _count(value) or (isinstance(value, list | tuple) and bool(value) and all(map(_count, value)))


#: parameters that take one value for all cells or a list with one per cell
_PER_CELL = ("channels", "weights_per_cell")
#: parameter name → (does the value fit, what it must be)
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "channels": (_counts, "a whole number of 1 or more, or a list of them with one per cell"),
    "weights_per_cell": (lambda v: v is None or _counts(v), "a whole number of 1 or more, or a list of them with "
                                                           "one per cell"),
    "kernel_size": (lambda v: _count(v) and v % 2 == 1, "an odd whole number of 1 or more (an odd kernel keeps "
                                                        "a feature map's size)"),
    "C": (_count, "a whole number of 1 or more"),
    "N": (_count, "a whole number of 1 or more"),
    "layers": (_count, "a whole number of 1 or more"),
    "pool": (lambda v: v in ("max", "avg", None), "'max' or 'avg'"),
    "auxiliary": (lambda v: isinstance(v, bool), "true or false"),
    "drop_path_prob": (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1,
                       "a number in [0, 1)"),
}


def check_values(space: str, params: Mapping[str, Any], *, cells: int) -> None:
    """Raise a :class:`~archgraph.SpaceError` for the first of ``params`` whose value the space
    ``space`` (of ``cells`` cells) cannot compile; names without a rule pass."""
    for name, value in params.items():
        fits, rule = _RULES.get(name, (lambda v: True, ""))
        if not fits(value):
            raise SpaceError(f"space {space!r}: {name} must be {rule}, got {value!r}")
        if name in _PER_CELL and isinstance(value, list | tuple) and len(value) != cells:
            raise SpaceError(f"space {space!r}: {name} lists {len(value)} values for {cells} cells; give one per cell, "
                             "or one value for all")
