"""The exceptions archgraph raises.

Every error derives from :class:`ArchGraphError` and from the builtin it refines, so
``except ValueError`` keeps working for callers that do not know archgraph. Messages say
what was expected, what was got, and what to do.
"""

from __future__ import annotations

import errno
import sqlite3

__all__ = [
    "ArchGraphError",
    "InvalidGraphError",
    "UnknownOpError",
    "ShapeError",
    "SpaceError",
    "DataNotFoundError",
    "BudgetError",
    "SettingError",
    "DiskFullError",
    "EvaluatorError",
    "disk_full",
]


class ArchGraphError(Exception):
    """Base class of every archgraph error."""


class InvalidGraphError(ArchGraphError, ValueError):
    """A graph is not a valid DAG: a cycle, a dangling vertex id, an empty graph, ..."""


class UnknownOpError(ArchGraphError, KeyError):
    """An operation name is not in the op registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ShapeError(ArchGraphError, ValueError):
    """Data of a shape the model or space cannot take."""


class SpaceError(ArchGraphError, ValueError):
    """A search space file or an architecture that does not fit its space."""


class DataNotFoundError(ArchGraphError, FileNotFoundError):
    """Dataset files are not where they were expected (archgraph never downloads)."""


class BudgetError(ArchGraphError, ValueError):
    """A budget (epochs, trials, rounds) that a method cannot divide the way it needs."""


class SettingError(ArchGraphError, ValueError):
    """An argument a function, class or strategy cannot take: a hyperparameter out of its range,
    a name that is not one of its choices, settings that contradict each other."""


class DiskFullError(ArchGraphError, OSError):
    """A write failed because the disk (or the user's quota) is full."""


class EvaluatorError(ArchGraphError, ConnectionError):
    """Where trials were to train cannot be reached: a Ray cluster that does not answer."""


def disk_full(err: BaseException) -> bool:
    """Whether ``err`` says the disk is full: an ``OSError`` with ``ENOSPC`` or ``EDQUOT``, SQLite's
    ``SQLITE_FULL``, or a :class:`DiskFullError` (from a worker)."""
    if isinstance(err, DiskFullError):
        return True
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(err, sqlite3.OperationalError) and "disk is full" in str(err)
