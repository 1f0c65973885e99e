import math

import numpy as np
import pytest

from archgraph.errors import ArchGraphError
from archgraph.pareto import (crowded_order, crowding_distance, objective_values, parse_objective, parse_objectives,
                              pareto_front, pareto_ranks, pareto_records)


def brute_dominates(a, b, directions):
    """a dominates b, written out objective by objective."""
    not_worse, strictly_better = True, False
    for x, y, d in zip(a, b, directions):
        if (x < y) if d == "max" else (x > y):
            not_worse = False
        if (x > y) if d == "max" else (x < y):
            strictly_better = True
    return not_worse and strictly_better


def brute_ranks(points, directions):
    """Peel off the non-dominated points of what is left, front after front."""
    left, ranks, rank = set(range(len(points))), {}, 0
    while left:
        front = {i for i in left if not any(brute_dominates(points[j], points[i], directions) for j in left)}
        ranks.update(dict.fromkeys(front, rank))
        left -= front
        rank += 1
    return [ranks[i] for i in range(len(points))]


@pytest.mark.parametrize("seed", range(8))
def test_ranks_and_front_equal_a_brute_force_sort_of_random_points_with_ties(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 4))
    points = rng.integers(0, 5, size=(int(rng.integers(1, 40)), m)).tolist()  # few values: ties and duplicates
    directions = [str(d) for d in rng.choice(["max", "min"], size=m)]
    expected = brute_ranks(points, directions)
    assert pareto_ranks(points, directions).tolist() == expected
    assert pareto_front(points, directions) == [i for i, r in enumerate(expected) if r == 0]


def test_duplicates_share_a_front_and_a_tie_is_broken_by_the_other_objective():
    points = [(0.9, 100), (0.9, 100), (0.9, 120), (0.8, 100), (0.95, 300)]
    assert pareto_ranks(points, ["max", "min"]).tolist() == [0, 0, 1, 1, 0]
    assert pareto_ranks(points, ["min", "max"]).tolist() == [1, 1, 0, 0, 0]


def test_one_objective_fronts_are_the_distinct_values_in_order():
    assert pareto_ranks([[3], [1], [3], [2]], ["max"]).tolist() == [0, 2, 0, 1]
    assert pareto_front([], ["max", "min"]) == []


def test_bad_directions_shapes_and_nan_are_refused():
    with pytest.raises(ArchGraphError, match="'max' or 'min'"):
        pareto_ranks([[1, 2]], ["max", "smallest"])
    with pytest.raises(ArchGraphError, match="n × 3"):
        pareto_ranks([[1, 2]], ["max", "min", "min"])
    with pytest.raises(ArchGraphError, match="NaN"):
        pareto_ranks([[1, float("nan")]], ["max", "min"])


def test_parse_objective():
    assert parse_objective("flops:min") == ("flops", "min")
    assert parse_objective("test_accuracy") == ("test_accuracy", "max")
    with pytest.raises(ArchGraphError, match="NAME:max or NAME:min"):
        parse_objective("parameters:down")


def test_pareto_records_keeps_complete_trials_with_every_metric():
    def rec(trial, state="complete", **metrics):
        return {"trial": trial, "state": state, "metrics": metrics}

    recs = [rec(0, val_accuracy=0.5, parameters=10), rec(1, val_accuracy=0.9, parameters=90),
            rec(2, "failed"), rec(3, "pruned", val_accuracy=0.99, parameters=1), rec(4, val_accuracy=0.95),
            rec(5, val_accuracy=0.8, parameters=95), rec(6, val_accuracy=0.9, parameters=90, flops=5)]
    assert [r["trial"] for r in pareto_records(recs)] == [0, 1, 6]
    assert [r["trial"] for r in pareto_records(recs, [("val_accuracy", "max")])] == [4]
    assert [r["trial"] for r in pareto_records(recs, [("flops", "min"), ("parameters", "max")])] == [6]
    assert pareto_records([rec(0, "failed")]) == []


def brute_crowding(points, directions):
    """Deb et al. 2002's crowding-distance assignment, point by point: on its front, per objective,
    the gap between the nearest values below and above it over the front's range; inf at an end."""
    ranks = brute_ranks(points, directions)
    distances = []
    for i, p in enumerate(points):
        front = [q for j, q in enumerate(points) if ranks[j] == ranks[i]]
        total = 0.0
        for m in range(len(p)):
            order = sorted(range(len(front)), key=lambda k: front[k][m])  # stable: ties keep their order
            position = order.index([j for j, q in enumerate(points) if ranks[j] == ranks[i]].index(i))
            if position in (0, len(order) - 1):
                total = math.inf
                break
            spread = front[order[-1]][m] - front[order[0]][m]
            total += (front[order[position + 1]][m] - front[order[position - 1]][m]) / spread if spread else 0.0
        distances.append(total)
    return distances


@pytest.mark.parametrize("seed", range(6))
def test_crowding_distance_and_crowded_order_equal_deb_et_al_written_out(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 4))
    points = rng.random((int(rng.integers(1, 30)), m)).round(2).tolist()
    directions = [str(d) for d in rng.choice(["max", "min"], size=m)]
    expected = brute_crowding(points, directions)
    assert crowding_distance(points, directions).tolist() == pytest.approx(expected)
    ranks = brute_ranks(points, directions)
    assert crowded_order(points, directions) == sorted(range(len(points)), key=lambda i: (ranks[i], -expected[i], i))


def test_parse_objectives_and_objective_values():
    assert parse_objectives(["flops:min", "val_accuracy"]) == (("flops", "min"), ("val_accuracy", "max"))
    for bad in ([], ["flops:min", "flops:max"]):
        with pytest.raises(ArchGraphError, match="each metric once"):
            parse_objectives(bad)
    objectives = (("val_accuracy", "max"), ("latency", "min"))
    assert objective_values({"val_accuracy": 1, "latency": 0.5, "flops": 3}, objectives) == (1.0, 0.5)
    assert objective_values({"val_accuracy": 0.5}, objectives) is None  # a pruned trial: no latency
    assert objective_values({"val_accuracy": math.nan, "latency": 0.5}, objectives) is None
