import math

import numpy as np
import pytest
import torch

from archgraph import SpaceError, spaces
from archgraph.embody.darts import DARTS_V1, DARTS_V2, genotype_to_graphs, graphs_to_genotype
from archgraph.embody.nb201 import NB201_OPS, from_nb201_string, to_nb201_string
from archgraph.search.base import asking
from archgraph.search.encoding import DartsEncoding, NB201Encoding, encoding_for
from archgraph.search.evolution import RegularizedEvolution
from archgraph.search.feature_search import BayesianFeatureSearch, RandomFeatureSearch
from archgraph.trial import Result

NB201, DARTS = spaces.load("nb201"), spaces.load("darts")
SMALL = {"nb201": {"C": 4, "N": 1}, "darts": {"C": 4, "layers": 3}}  # compiles in a blink


def random_points(encoding, n, seed=0):
    rng = np.random.default_rng(seed)
    return [encoding.random_point(rng) for _ in range(n)]


def edge_ops(arch):
    """Every (cell, u, v) → op of an architecture, by vertex id."""
    return {(c, u, v): cell.edge_op(u, v) for c, cell in enumerate(arch) for u, v in cell.edges}


@pytest.mark.parametrize("space", [NB201, DARTS], ids=["nb201", "darts"])
def test_encoding_round_trips(space):
    encoding = encoding_for(space)
    for point in random_points(encoding, 300):
        arch = encoding.decode(point)
        space.validate(arch)
        assert encoding.encode(arch) == point


def test_nb201_encoding_is_the_benchmark_string_and_holds_15625_cells():
    encoding = NB201Encoding(NB201)
    assert encoding.choices[0] == (NB201_OPS,) * 6 and math.prod(encoding.sizes[0]) == 15_625
    (cell,) = encoding.decode(((3, 0, 1, 2, 4, 3),))
    # the string's groups list the edges into nodes 1, 2, 3: (0,1) | (0,2) (1,2) | (0,3) (1,3) (2,3)
    assert to_nb201_string(cell) == ("|nor_conv_3x3~0|+|none~0|skip_connect~1|"
                                     "+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    known = from_nb201_string("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert encoding.encode((known,)) == ((4, 2, 1, 2, 0, 0),)


def test_darts_encoding_reads_the_published_genotypes_and_counts_the_cells():
    encoding = DartsEncoding(DARTS)
    for genotype in (DARTS_V1, DARTS_V2):
        cells = genotype_to_graphs(genotype)
        assert graphs_to_genotype(*encoding.decode(encoding.encode(cells))) == graphs_to_genotype(*cells)
    # per node v: an unordered pair of distinct inputs among v, then one of 7 ops (no 'none') on each
    per_cell = math.prod(math.comb(v, 2) * 7 ** 2 for v in range(2, 6))
    assert [math.prod(cell) for cell in encoding.sizes] == [per_cell, per_cell]
    normal, _ = encoding.decode(encoding.encode(genotype_to_graphs(DARTS_V2)))
    assert normal.edge_op(2, 5) == "dil_conv_3x3" and normal.predecessors(5) == (0, 2)


def test_darts_encoding_refuses_a_node_taking_one_input_twice_and_a_space_with_ops_per_edge():
    twice = DARTS_V2._replace(normal=[("sep_conv_3x3", 0), ("skip_connect", 0), *DARTS_V2.normal[2:]])
    with pytest.raises(SpaceError, match=r"two distinct inputs; node 2 of cell 'normal' takes \[0, 0\]"):
        DartsEncoding(DARTS).encode(genotype_to_graphs(twice))
    zero = DARTS_V2._replace(reduce=[("none", 0), *DARTS_V2.reduce[1:]])
    with pytest.raises(SpaceError, match="node 2 of cell 'reduce' carries 'none' and 'max_pool_3x3'; the DARTS "
                                         "encoding's ops are max_pool_3x3, "):
        DartsEncoding(DARTS).encode(genotype_to_graphs(zero))
    with pytest.raises(SpaceError, match="offers different ops on the edges of cell 'normal'"):
        DartsEncoding(spaces.load("s1"))
    assert DartsEncoding(spaces.load("s2")).choices[0][1] == ("skip_connect", "sep_conv_3x3")


def test_nb201_mutation_changes_exactly_one_op():
    encoding = NB201Encoding(NB201)
    rng = np.random.default_rng(1)
    for point in random_points(encoding, 200):
        before, after = edge_ops(encoding.decode(point)), edge_ops(encoding.decode(encoding.mutate(point, rng)))
        assert before.keys() == after.keys()
        assert sum(before[e] != after[e] for e in before) == 1


def test_darts_mutation_changes_exactly_one_op_or_moves_one_edge_with_its_op():
    encoding = DartsEncoding(DARTS)
    rng = np.random.default_rng(2)
    kinds = set()
    for point in random_points(encoding, 400):
        child = encoding.mutate(point, rng)
        DARTS.validate(encoding.decode(child))
        before, after = edge_ops(encoding.decode(point)), edge_ops(encoding.decode(child))
        if before.keys() == after.keys():
            assert sum(before[e] != after[e] for e in before) == 1
            kinds.add("op")
        else:
            (c, u, v), = before.keys() - after.keys()
            (c2, w, v2), = after.keys() - before.keys()
            assert (c2, v2) == (c, v) and w != u and after[c, w, v] == before[c, u, v]
            assert all(before[e] == after[e] for e in before.keys() & after.keys())
            kinds.add("input")
    assert kinds == {"op", "input"}


def test_random_points_are_uniform_over_each_dimension():
    encoding = DartsEncoding(DARTS)
    points = np.array(random_points(encoding, 6000))  # (draws, cells, dimensions)
    for d, n in enumerate(encoding.sizes[0]):
        counts = np.bincount(points[:, 0, d], minlength=n)
        assert len(counts) == n and np.all(np.abs(counts / 6000 - 1 / n) < 0.03)


def compiles(space, arch):
    net = space.compile(arch, input_shape=(1, 8, 8), num_classes=10, seed=0, **SMALL[space.name])
    return net.eval()(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("space", [NB201, DARTS], ids=["nb201", "darts"])
def test_every_architecture_random_search_bo_and_evolution_ask_compiles(space):
    encoding = encoding_for(space)
    random = RandomFeatureSearch(space, epochs=1, seed=0)
    bo = BayesianFeatureSearch(space, epochs=1, seed=0, initial_points=2)
    evolution = RegularizedEvolution(space, epochs=1, seed=0, population_size=3, sample_size=2)
    asked, asks = [], {strategy: asking(strategy) for strategy in (random, bo, evolution)}
    for step in range(5):
        for strategy in (random, bo, evolution):
            trial = asks[strategy]()
            strategy.tell(trial, Result(trial.id, {"val_accuracy": 0.1 * step + 0.01 * trial.id}))
            asked.append(trial)
    assert random.draws == bo.draws == 1  # a point of an encoding is one architecture
    assert [t.info["parent"] is None for t in asked[2::3]] == [True] * 3 + [False] * 2
    for trial in asked:
        if "coordinates" in trial.info:  # a point search's trial is its point, decoded
            assert encoding.encode(trial.arch) == tuple(map(tuple, trial.info["coordinates"]))
        assert compiles(space, trial.arch)


@pytest.mark.parametrize("per_cell", [True, False])
def test_bo_asks_categorical_points_inside_the_darts_encoding(per_cell):
    encoding = DartsEncoding(DARTS)
    bo = BayesianFeatureSearch(DARTS, epochs=1, seed=3, initial_points=2, per_cell=per_cell)
    ask = asking(bo)
    assert [len(opt.space.dimensions) for opt in bo.optimizers] == ([12, 12] if per_cell else [24])
    assert all(dim.categories == tuple(range(n)) for opt in bo.optimizers for dim, n in
               zip(opt.space.dimensions, [s for cell in encoding.sizes for s in cell]))
    for step in range(6):  # past the initial points: the GP proposes
        trial = ask()
        point = np.array(trial.info["coordinates"])
        assert point.shape == (2, 12) and ((0 <= point) & (point < np.array(encoding.sizes))).all()
        bo.tell(trial, Result(trial.id, {"val_accuracy": (point[0, 1] + step) / 20}))
    assert all(len(opt.yi) == 6 for opt in bo.optimizers)


def test_evolution_on_nb201_mutates_one_op_of_the_best_sampled_parent():
    search = RegularizedEvolution(NB201, epochs=1, seed=0, population_size=4, sample_size=4)
    ask = asking(search)
    initial = [ask() for _ in range(4)]
    for t, value in zip(initial, [0.1, 0.7, 0.3, 0.2]):
        search.tell(t, Result(t.id, {"val_accuracy": value}))
    child = ask()
    assert child.info["parent"] == 1
    before, after = edge_ops(initial[1].arch), edge_ops(child.arch)
    assert sum(before[e] != after[e] for e in before) == 1
