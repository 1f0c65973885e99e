"""Several objectives: non-dominated sorting and the Pareto front of a run's trials.

A point *dominates* another when it is at least as good in every objective and better in one
(Deb et al. 2002, NSGA-II §III-A), "good" meaning higher for an objective to ``max`` and lower
for one to ``min``. :func:`pareto_ranks` sorts points into fronts: front 0 is the non-dominated
set, front 1 what is non-dominated once front 0 is taken away, and so on. Equal points never
dominate each other, so duplicates share a front; a point that ties another in one objective and
is worse in none is dominated only if it is worse in another.

:func:`pareto_records` picks the trials of a run (:meth:`Store.records
<archgraph.store.Store.records>`) on the front of chosen metrics; ``archgraph runs pareto RUN_DIR``
prints them and ``archgraph report`` draws them. The objectives are written
``"val_accuracy:max"``, ``"parameters:min"`` (:func:`parse_objective`).

Evolution with several objectives (:class:`~archgraph.search.RegularizedEvolution`) reads each
result's values with :func:`objective_values` and orders points as NSGA-II does
(:func:`crowded_order`): by front, then within a front by :func:`crowding_distance`, the less
crowded first. A run of several objectives keeps the front of its completed trials
(:attr:`archgraph.search.session.SearchOutcome.front`).

No library is used: NSGA-II's own sort is the dozen lines below (O(m n²) for n points and m
objectives), and a run holds hundreds of trials, not millions.

Examples
--------
>>> pareto_ranks([(0.9, 100), (0.8, 50), (0.8, 80), (0.9, 100)], ["max", "min"]).tolist()
[0, 0, 1, 0]
>>> pareto_front([(0.9, 100), (0.8, 50), (0.8, 80)], ["max", "min"])
[0, 1]
>>> crowding_distance([(4, 10), (3, 5), (2, 3), (0, 0)], ["max", "min"]).tolist()  # 2/4 + 7/10, 3/4 + 5/10
[inf, 1.2, 1.25, inf]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ArchGraphError

__all__ = ["DEFAULT_OBJECTIVES", "SEARCH_OBJECTIVE", "SEARCH_OBJECTIVES", "crowded_order", "crowding_distance", "objective_values",
           "parse_objective", "parse_objectives", "pareto_front", "pareto_ranks", "pareto_records"]

#: The objectives a report draws: accuracy against size.
DEFAULT_OBJECTIVES = (("val_accuracy", "max"), ("parameters", "min"))
#: What a search pursues unless told otherwise (``--objective``).
SEARCH_OBJECTIVE = "val_accuracy:max"
_DIRECTIONS = ("max", "min")


def parse_objective(text: str) -> tuple[str, str]:
    """``"NAME:max"`` or ``"NAME:min"`` as ``(name, direction)``; a bare name is maximised.

    >>> parse_objective("parameters:min"), parse_objective("val_accuracy")
    (('parameters', 'min'), ('val_accuracy', 'max'))
    """
    name, _, direction = text.partition(":")
    direction = direction or "max"
    if not name or direction not in _DIRECTIONS:
        raise ArchGraphError(f"an objective is NAME:max or NAME:min (e.g. parameters:min), got {text!r}")
    return name, direction


def parse_objectives(texts: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """:func:`parse_objective` of each text; at least one, each metric once.

    >>> parse_objectives(["val_accuracy:max", "latency:min"])
    (('val_accuracy', 'max'), ('latency', 'min'))
    """
    objectives = tuple(parse_objective(text) for text in texts)
    names = [name for name, _ in objectives]
    if not objectives or len(set(names)) < len(names):
        raise ArchGraphError(f"give one objective or more, each metric once (e.g. val_accuracy:max parameters:min), "
                             f"got {list(texts)}")
    return objectives


#: :data:`SEARCH_OBJECTIVE` parsed: a run whose objectives are other than these keeps a Pareto front.
SEARCH_OBJECTIVES = parse_objectives([SEARCH_OBJECTIVE])


def objective_values(metrics: Mapping[str, Any], objectives: Sequence[tuple[str, str]]) -> tuple[float, ...] | None:
    """The values of ``objectives`` in ``metrics``, ``None`` when one is missing or not a finite number.

    >>> objective_values({"val_accuracy": 0.9, "parameters": 120}, DEFAULT_OBJECTIVES)
    (0.9, 120.0)
    """
    values = tuple(metrics.get(name) for name, _ in objectives)
    if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in values):
        return None
    return tuple(float(v) for v in values)


def pareto_ranks(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """The front of each point (0: non-dominated), by NSGA-II's fast non-dominated sort.

    ``points`` is n × m, one column per objective, ``directions`` one ``"max"`` or ``"min"`` per
    column. Raises :class:`~archgraph.errors.ArchGraphError` on a direction other than those, a
    width other than ``len(directions)``, or a NaN.
    """
    if any(d not in _DIRECTIONS for d in directions):
        raise ArchGraphError(f"directions are 'max' or 'min', got {list(directions)}")
    if not len(points):
        return np.zeros(0, dtype=int)
    values = np.asarray(points, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ArchGraphError(f"the points must be n × {len(directions)}, one column per direction given, got shape "
                             f"{values.shape}")
    if np.isnan(values).any():
        raise ArchGraphError("a point has a NaN objective; leave out the trials that lack a metric")
    gain = values * np.where(np.asarray(directions) == "max", 1.0, -1.0)  # higher is better in every column
    better_or_equal = (gain[:, None, :] >= gain[None, :, :]).all(axis=2)
    better = (gain[:, None, :] > gain[None, :, :]).any(axis=2)
    dominates = better_or_equal & better  # [i, j]: i dominates j
    ranks = np.full(len(values), -1)
    count = dominates.sum(axis=0)  # how many points dominate each one
    front, rank = np.flatnonzero(count == 0), 0
    while front.size:
        ranks[front] = rank
        count = count - dominates[front].sum(axis=0)
        front, rank = np.flatnonzero((count == 0) & (ranks < 0)), rank + 1
    return ranks


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """The indices of the non-dominated points, in order (see :func:`pareto_ranks`)."""
    return np.flatnonzero(pareto_ranks(points, directions) == 0).tolist()


def crowding_distance(points: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """NSGA-II's crowding distance of each point within its front (Deb et al. 2002, §III-B): per
    objective, the points of a front sorted by it, the two ends get infinity and each other point
    the gap between its two neighbours divided by the front's range (0 where the range is 0), summed
    over the objectives. The larger, the less crowded the point's neighbourhood on its front."""
    ranks = pareto_ranks(points, directions)
    values = np.asarray(points, dtype=float).reshape(len(ranks), len(directions))
    distance = np.zeros(len(ranks))
    for rank in np.unique(ranks):
        front = np.flatnonzero(ranks == rank)
        for column in values[front].T:
            order = np.argsort(column, kind="stable")
            sorted_values, spread = column[order], column.max() - column.min()
            if spread > 0:
                distance[front[order[1:-1]]] += (sorted_values[2:] - sorted_values[:-2]) / spread
            distance[front[order[[0, -1]]]] = np.inf
    return distance


def crowded_order(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """The indices of ``points``, best first by NSGA-II's crowded comparison (Deb et al. 2002,
    §III-B): the lower front first, within a front the larger :func:`crowding_distance` first, then
    the earlier point.

    >>> crowded_order([(0.8, 80), (0.9, 100), (0.8, 50), (0.85, 60)], ["max", "min"])
    [1, 2, 3, 0]
    """
    if not len(points):
        return []
    ranks, distance = pareto_ranks(points, directions), crowding_distance(points, directions)
    return np.lexsort((np.arange(len(ranks)), -distance, ranks)).tolist()


def pareto_records(records: Sequence[Mapping[str, Any]],
                   objectives: Sequence[tuple[str, str]] = DEFAULT_OBJECTIVES) -> list[Mapping[str, Any]]:
    """The complete trials of ``records`` that no other complete trial dominates in ``objectives``
    (``(metric, "max" | "min")`` pairs), by trial id; trials lacking one of the metrics take no part.

    >>> recs = [{"trial": i, "state": "complete", "metrics": {"val_accuracy": a, "parameters": p}}
    ...         for i, (a, p) in enumerate([(0.9, 500), (0.7, 100), (0.6, 300)])]
    >>> [r["trial"] for r in pareto_records(recs)]
    [0, 1]
    """
    names = [name for name, _ in objectives]
    scored = [r for r in records if r["state"] == "complete" and all(
        isinstance(r["metrics"].get(name), (int, float)) for name in names)]
    points = [[r["metrics"][name] for name in names] for r in scored]
    return [scored[i] for i in pareto_front(points, [d for _, d in objectives])] if scored else []
