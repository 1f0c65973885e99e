"""What a strategy takes: its parameters, their defaults and a line on each, read from the
strategy's own signature and docstring (its numpydoc ``Parameters`` section, or a base class's),
so that ``archgraph strategies`` and the errors about a strategy's parameters never drift
from the code.

Examples
--------
>>> from archgraph.search.evolution import RegularizedEvolution
>>> [(o.name, o.default) for o in strategy_options(RegularizedEvolution)]
[('population_size', 10), ('sample_size', 3), ('lag', None)]
>>> strategy_options(RegularizedEvolution)[1].doc
"Members drawn to choose a parent, the best of them (Real et al.'s S)."
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docstring_parser

from ..errors import ArchGraphError, SettingError
from ..spaces import Space

__all__ = ["StrategyOption", "describe_strategy", "make_strategy", "strategy_options"]

#: the arguments a strategy takes from the search itself, not from ``--strategy-param`` (``objectives``: ``--objective``)
_GIVEN = ("self", "space", "epochs", "seed", "objectives")


@dataclass(frozen=True)
class StrategyOption:
    """A strategy parameter: its name, default and the first sentence of its documentation."""

    name: str
    default: Any
    doc: str


def strategy_options(cls: type) -> list[StrategyOption]:
    """The parameters a strategy class takes beyond ``space``, ``epochs`` and ``seed``, in
    signature order, each documented by the first class in its MRO whose docstring's
    ``Parameters`` section names it (``""`` where none does)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's entry replaces its base's
        for param in docstring_parser.parse(klass.__doc__ or "", docstring_parser.DocstringStyle.NUMPYDOC).params:
            for name in param.arg_name.split(","):
                docs[name.strip()] = _first_sentence(param.description or "")
    return [StrategyOption(name, p.default, docs.get(name, ""))
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name not in _GIVEN and p.kind is p.KEYWORD_ONLY]


def describe_strategy(name: str, cls: type) -> str:
    """A strategy's summary line and one line per parameter, ``name=default  doc``."""
    summary = _first_sentence(inspect.getdoc(cls).split("\n\n")[0])
    options = strategy_options(cls)
    width = max((len(f"{o.name}={o.default!r}") for o in options), default=0)
    lines = [f"{name}: {summary}"] + [f"  {f'{o.name}={o.default!r}':<{width}}  {o.doc}" for o in options]
    return "\n".join(lines if options else [*lines, "  (no parameters)"])


def make_strategy(name: str, cls: type, space: Space, *, epochs: int, seed: int, params: Mapping[str, Any],
                  objectives: Sequence[str] | None = None):
    """``cls(space, epochs=, seed=, **params)``, and ``objectives=`` unless ``None``; a parameter it
    does not take, or a value it refuses, raises a :class:`~archgraph.errors.SettingError` that
    lists its parameters.

    >>> from archgraph import spaces
    >>> from archgraph.search.evolution import RegularizedEvolution
    >>> make_strategy("evolution", RegularizedEvolution, spaces.load("nb201"), epochs=1, seed=0,
    ...               params={"population": 4})
    Traceback (most recent call last):
    ...
    archgraph.errors.SettingError: strategy 'evolution' has no parameter 'population'; its parameters: \
population_size=10, sample_size=3, lag=None (see `archgraph strategies evolution`)
    """
    options = strategy_options(cls)
    valid = ", ".join(f"{o.name}={o.default!r}" for o in options) or "none"
    where = f"its parameters: {valid} (see `archgraph strategies {name}`)"
    unknown = sorted(set(params) - {o.name for o in options})
    if unknown:
        raise SettingError(f"strategy {name!r} has no parameter {', '.join(map(repr, unknown))}; {where}")
    given = {} if objectives is None else {"objectives": objectives}
    try:
        return cls(space, epochs=epochs, seed=seed, **params, **given)
    except (TypeError, ValueError) as err:  # a value of the wrong type or out of range
        if isinstance(err, ArchGraphError) and not isinstance(err, SettingError):
            raise  # e.g. a space the strategy cannot search: its own line says what to do
        raise SettingError(f"strategy {name!r} refuses {_settings(params)}: {err}; {where}") from None


def _settings(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "its defaults"


def _first_sentence(text: str) -> str:
    """The first sentence of a docstring paragraph on one line, reST roles and literals plain."""
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?([^`]+)`", r"\1", " ".join(text.split())).replace("``", "")
    depth = 0
    for i, char in enumerate(text):
        depth += (char in "([") - (char in ")]")
        if char == "." and depth == 0 and text[i + 1:i + 2] in ("", " ") and not text[:i + 1].endswith(("e.g.", "i.e.")):
            return text[:i + 1]
    return text
