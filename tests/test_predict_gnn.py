"""Tests of archgraph/predict/gnn.py and of its featurisation, archgraph/predict/featurize.py."""

import numpy as np
import pytest
from scipy.stats import kendalltau

from archgraph import ArchGraph, spaces
from archgraph.embody.darts import DARTS_V2, genotype_to_graphs
from archgraph.embody.nb201 import NB201_OPS, from_nb201_string
from archgraph.errors import ShapeError, SpaceError
from archgraph.generate import random_dag
from archgraph.predict.featurize import Featurizer, ops_present
from archgraph.predict.gnn import RankingPredictor, pairs

FADE, NB201, MLP, DARTS = (spaces.load(n) for n in ("fade", "nb201", "mlp", "darts"))
SMALL = dict(hidden=16, epochs=20)  # enough to exercise a fit, quick on one thread


def chain(ops):
    return ArchGraph([(v, v + 1) for v in range(len(ops) - 1)], num_nodes=len(ops), node_ops=dict(enumerate(ops)))


def fade_arch(rng):
    return tuple(random_dag(int(rng.integers(1, 6)), rng) for _ in FADE.cells)


def nb201_arch(rng):
    return (ArchGraph([(j, i, NB201_OPS[rng.integers(5)]) for i in range(1, 4) for j in range(i)]),)


def mlp_arch(rng):
    return (chain([MLP.ops[i] for i in rng.integers(len(MLP.ops), size=int(rng.integers(1, 11)))]),)


SAMPLERS = {"fade": (FADE, fade_arch), "nb201": (NB201, nb201_arch), "mlp": (MLP, mlp_arch)}


def num_edges(arch):
    return sum(c.num_edges for c in arch)


def relabel(arch, rng):
    """The same architecture, every cell's vertices renumbered at random."""
    cells = []
    for cell in arch:
        p = rng.permutation(cell.num_nodes)
        cells.append(ArchGraph([(p[u], p[v], cell.edge_op(u, v)) for u, v in cell.edges], num_nodes=cell.num_nodes,
                               node_ops={p[v]: op for v, op in cell.node_ops.items()}))
    return tuple(cells)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    archs = [fade_arch(rng) for _ in range(12)]
    return RankingPredictor(FADE, **SMALL).fit([(a, 10, num_edges(a)) for a in archs]), archs


# --- featurisation -------------------------------------------------------------------------

NB201_CELL = from_nb201_string("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")


@pytest.mark.parametrize("space, arch, nodes, edges, width", [
    # 5 terminals + 4 × 3 vertices; per cell 3 edges + 1 from a terminal + 1 to one; no ops, 4 flags, 4 cells
    (FADE, (ArchGraph([(0, 1), (0, 2), (1, 2)]),) * 4, 17, 20, 8),
    # 2 terminals + 4 vertices + 6 edge-op vertices; 6 × 2 + 1 + 1 edges; 5 ops, 4 flags, 1 cell
    (NB201, (NB201_CELL,), 12, 14, 10),
    # 2 terminals + 3 layer vertices; 2 + 1 + 1 edges; 29 ops, 4 flags, 1 cell
    (MLP, (chain(["dense(64, relu)", "dropout(0.2)", "dense(32, tanh)"]),), 5, 4, 34),
    # 3 terminals + 2 × (6 + 8); per cell 8 × 2 + 2 from inputs + 4 intermediates to the output
    (DARTS, genotype_to_graphs(DARTS_V2), 31, 44, 14),
])
def test_featurize_shapes(space, arch, nodes, edges, width):
    data = Featurizer(space)(arch)
    assert (data.num_nodes, data.num_edges, Featurizer(space).num_features) == (nodes, edges, width)
    assert data.x.shape == (nodes, width) and data.edge_index.shape == (2, edges)
    assert data.x.sum(1).min() >= 1   # every vertex carries at least a flag or an op


def test_featurize_columns():
    f = Featurizer(MLP)
    x = f((chain(["dense(64,relu)", "dropout(0.2)"]),)).x  # spelt without the space: same column
    k = len(MLP.ops)
    assert x[1].nonzero().flatten().tolist() == [MLP.ops.index("dense(64, relu)"), k + 4]        # op, cell 0
    assert x[0].nonzero().flatten().tolist() == x[3].nonzero().flatten().tolist() == [k + 3]   # terminals
    g = Featurizer(FADE)((ArchGraph([(0, 1, "conv(3)")]),) * 4)   # no vocabulary: an 'other op' edge vertex
    assert g.x[3].nonzero().flatten().tolist() == [0, 2, 4]       # other op, edge op, cell 0
    assert repr(f) == "Featurizer(space='mlp', ops=29, num_features=34)"


def test_featurize_rejects_other_spaces():
    with pytest.raises(SpaceError, match="takes 4 ArchGraph cells"):
        Featurizer(FADE)((NB201_CELL,))
    with pytest.raises(SpaceError, match="does not offer"):
        Featurizer(NB201)((ArchGraph([(0, 1, "sep_conv_3x3"), (1, 2), (2, 3)]),))


@pytest.mark.parametrize("name", ["fade", "nb201", "mlp"])
def test_permutation_invariance(name):
    space, sample = SAMPLERS[name]
    rng = np.random.default_rng(1)
    archs = [sample(rng) for _ in range(12)]
    predictor = RankingPredictor(space, **SMALL).fit([(a, 10, float(i)) for i, a in enumerate(archs)])
    renumbered = [relabel(a, rng) for a in archs]
    assert any(not all(c.is_identical(d) for c, d in zip(a, b)) for a, b in zip(archs, renumbered))
    np.testing.assert_allclose(predictor.score(renumbered), predictor.score(archs), rtol=1e-5, atol=1e-6)
    assert np.ptp(predictor.score(archs)) > 0


# --- the pair rule -------------------------------------------------------------------------

def test_pairs_rule():
    a, b, c, d = ((ArchGraph(e),) for e in ([(0, 1)], [(0, 1), (1, 2)], [(0, 2), (1, 2)], [(0, 1), (0, 2)]))
    observations = [
        (a, 10, 0.80),          # 0
        (b, 10, 0.70),          # 1: worse than 0 at the same budget
        (c, 20, 0.90),          # 2: trained longer than all but 4: beats only 4
        (d, 5, 0.75),           # 3: beats 1 with fewer epochs; loses to 0, which trained longer: no pair
        (b, 20, 0.60),          # 4: below everyone trained as long or shorter, but b is never paired with b
        (d, 10, 0.70, [1.0]),   # 5: ties 1: no pair; extra ignored; d is never paired with d
        (relabel(a, np.random.default_rng(0)), 5, 0.95),  # 6: a renumbered: not paired with 0
    ]
    assert pairs(observations) == [(0, 1), (0, 4), (0, 5), (2, 4), (3, 1), (3, 4), (5, 4),
                                   (6, 1), (6, 2), (6, 3), (6, 4), (6, 5)]
    assert pairs([]) == [] and pairs([(a, 1, 0.5)]) == []


def test_pairs_rejects_bad_observations():
    with pytest.raises(ValueError, match="must be \\(arch, epochs, accuracy\\)"):
        pairs([(ArchGraph([(0, 1)]), 10)])
    with pytest.raises(ValueError, match="finite accuracy"):
        pairs([(ArchGraph([(0, 1)]), 10, float("nan"))])


# --- fitting and ranking -------------------------------------------------------------------

def test_ranks_fade_by_edges_from_mixed_budgets():
    """Accuracy = a rising learning curve times the number of edges: accuracies after different
    budgets are confounded, the pairs are not, and the held-out ranking is recovered."""
    rng = np.random.default_rng(0)
    train, test = [fade_arch(rng) for _ in range(60)], [fade_arch(rng) for _ in range(100)]
    budgets = rng.choice([5, 10, 20], size=len(train))
    obs = [(a, int(e), (1 - np.exp(-e / 5)) * num_edges(a)) for a, e in zip(train, budgets)]
    predictor = RankingPredictor(FADE, hidden=32, epochs=100).fit(obs)
    assert np.mean(predictor.losses[-5:]) < 0.2 * np.mean(predictor.losses[:5])
    tau = kendalltau(predictor.score(test), [num_edges(a) for a in test]).statistic
    assert tau > 0.8, tau


def test_ranks_nb201_by_ops_with_logistic_loss():
    weight = dict(zip(NB201_OPS, (0.0, 1.0, 2.3, 3.7, 0.6)))  # a known function of the cell's ops

    def target(arch):
        return sum(weight[op] for op in arch[0].edge_ops.values())

    rng = np.random.default_rng(0)
    train, test = [nb201_arch(rng) for _ in range(60)], [nb201_arch(rng) for _ in range(100)]
    predictor = RankingPredictor(NB201, hidden=32, epochs=100, loss="logistic").fit(
        [(a, 10, target(a)) for a in train])
    assert np.mean(predictor.losses[-5:]) < 0.5 * np.mean(predictor.losses[:5])
    tau = kendalltau(predictor.score(test), [target(a) for a in test]).statistic
    assert tau > 0.8, tau


def test_extra_features_are_combined_with_the_graph():
    """Accuracy = edges + a proxy score given as an extra input (on a large scale: standardised):
    the predictor ranks better than the proxy alone."""
    rng = np.random.default_rng(0)
    archs = [fade_arch(rng) for _ in range(60)]
    proxy = rng.uniform(0, 1e6, size=len(archs))
    accuracy = np.array([num_edges(a) for a in archs]) / 40 + proxy / 1e6
    predictor = RankingPredictor(FADE, hidden=32, epochs=100, extra_features=1).fit(
        [(a, 10, y, [p]) for a, y, p in zip(archs[:40], accuracy[:40], proxy[:40])])
    tau = kendalltau(predictor.score(archs[40:], extra=proxy[40:, None]), accuracy[40:]).statistic
    proxy_alone = kendalltau(proxy[40:], accuracy[40:]).statistic
    assert tau > 0.9 and tau > proxy_alone + 0.05, (tau, proxy_alone)


def test_vocabulary_of_a_space_without_ops():
    rng = np.random.default_rng(0)
    archs = [tuple(ArchGraph([(0, 1, op), (1, 2)]) for op in rng.choice(["conv(3)", "conv(5)"], 4))
             for _ in range(6)]
    assert ops_present(archs) == ("conv(3)", "conv(5)")
    predictor = RankingPredictor(FADE, **SMALL).fit([(a, 1, float(i)) for i, a in enumerate(archs)])
    assert predictor.featurizer.ops == ("conv(3)", "conv(5)")
    assert predictor.featurizer.num_features == 2 + 4 + 4


def test_deterministic_for_a_seed(fitted):
    predictor, archs = fitted
    obs = [(a, 10, num_edges(a)) for a in archs]
    again = RankingPredictor(FADE, **SMALL).fit(obs)
    assert np.array_equal(again.score(archs), predictor.score(archs)) and again.losses == predictor.losses
    other = RankingPredictor(FADE, **SMALL, seed=1).fit(obs)
    assert not np.array_equal(other.score(archs), predictor.score(archs))
    assert predictor.score([]).shape == (0,)


def test_early_stopping_keeps_the_best_held_out_epoch():
    """validation_fraction: the kept weights are the held-out pairs' best epoch, and they are what
    training on the other observations alone for that many epochs gives."""
    rng = np.random.default_rng(3)
    archs = [fade_arch(rng) for _ in range(30)]
    noisy = [num_edges(a) + rng.normal(0, 3) for a in archs]
    obs = [(a, 10, y) for a, y in zip(archs, noisy)]
    predictor = RankingPredictor(FADE, hidden=16, epochs=60, validation_fraction=0.4, seed=1).fit(obs)
    held = predictor.held_out
    assert len(held) == 12 and len(predictor.validation_scores) == 60 == len(predictor.losses)
    assert predictor.best_epoch == int(np.argmax(predictor.validation_scores))  # the earliest best
    assert 0 < predictor.best_epoch < 50 and predictor.validation_scores[-1] < max(predictor.validation_scores)
    scores = predictor.score([archs[i] for i in held])
    ordered = [scores[i] > scores[j] for i, j in pairs([obs[k] for k in held])]
    assert np.mean(ordered) == max(predictor.validation_scores)

    rest = [o for k, o in enumerate(obs) if k not in held]
    plain = RankingPredictor(FADE, hidden=16, epochs=predictor.best_epoch, seed=1).fit(rest)
    centred = [p.score(archs) - p.score(archs).mean() for p in (plain, predictor)]
    assert np.allclose(*centred, atol=1e-6)  # the output bias, whose gradient is 0 up to rounding, aside
    assert np.allclose(plain.losses, predictor.losses[:predictor.best_epoch])
    assert repr(predictor).endswith("epochs=60, validation_fraction=0.4)")


def test_early_stopping_needs_held_out_pairs(fitted):
    _, archs = fitted
    obs = [(a, 10, num_edges(a)) for a in archs[:4]]
    tiny = RankingPredictor(FADE, **SMALL, validation_fraction=0.2).fit(obs)  # one held out: no pair
    plain = RankingPredictor(FADE, **SMALL).fit(obs)
    assert tiny.held_out == () and tiny.validation_scores == [] and tiny.best_epoch == SMALL["epochs"]
    assert np.array_equal(tiny.score(archs), plain.score(archs))


def test_save_load_round_trip(tmp_path, fitted):
    predictor, archs = fitted
    loaded = RankingPredictor.load(predictor.save(tmp_path / "p.pt"), FADE)
    assert np.array_equal(loaded.score(archs), predictor.score(archs))
    assert repr(loaded) == repr(predictor) == (
        "RankingPredictor(space='fade', hidden=16, layers=3, loss='hinge', margin=0.1, epochs=20)")
    with pytest.raises(SpaceError, match="for space 'fade', not 'nb201'"):
        RankingPredictor.load(tmp_path / "p.pt", NB201)

    rng = np.random.default_rng(2)
    extra = rng.normal(size=(len(archs), 2))
    with_extra = RankingPredictor(FADE, **SMALL, extra_features=2, loss="logistic").fit(
        [(a, 10, num_edges(a), e) for a, e in zip(archs, extra)])
    loaded = RankingPredictor.load(with_extra.save(tmp_path / "q.pt"), FADE)
    assert np.array_equal(loaded.score(archs, extra), with_extra.score(archs, extra))
    assert loaded.settings == with_extra.settings


def test_errors(tmp_path, fitted):
    predictor, archs = fitted
    fresh = RankingPredictor(FADE)
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh.score(archs)
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh.save(tmp_path / "p.pt")
    with pytest.raises(ValueError, match="got none"):
        fresh.fit([])
    with pytest.raises(ValueError, match="no pair to learn from"):
        fresh.fit([(a, 10, 0.5) for a in archs])
    with pytest.raises(SpaceError, match="takes 4 ArchGraph cells"):
        fresh.fit([(archs[0], 10, 0.5), ((NB201_CELL,), 10, 0.6)])
    with pytest.raises(SpaceError, match="takes 4 ArchGraph cells"):
        predictor.score([(NB201_CELL,)])
    with pytest.raises(ShapeError, match="takes extra_features=1 values per architecture"):
        RankingPredictor(FADE, extra_features=1).fit([(a, 10, float(i)) for i, a in enumerate(archs)])
    with pytest.raises(ShapeError, match=r"expected extra of shape \(12, 0\)"):
        fresh.fit([(a, 10, float(i), [1.0]) for i, a in enumerate(archs)])
    with pytest.raises(ShapeError, match=r"expected extra of shape \(12, 0\)"):
        predictor.score(archs, extra=np.ones((12, 1)))
    with_extra = RankingPredictor(FADE, **SMALL, extra_features=1).fit(
        [(a, 10, float(i), [i]) for i, a in enumerate(archs)])
    with pytest.raises(ShapeError, match="pass extra"):
        with_extra.score(archs)
    with pytest.raises(ShapeError, match="rows of 1 numbers"):
        with_extra.score(archs[:2], extra=[[1.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="loss must be one of hinge, logistic"):
        RankingPredictor(FADE, loss="mse")
    with pytest.raises(ValueError, match="layers must be a positive integer"):
        RankingPredictor(FADE, layers=0)
    for fraction in (-0.1, 1.0, "0.2"):
        with pytest.raises(ValueError, match=r"validation_fraction must be in \[0, 1\)"):
            RankingPredictor(FADE, validation_fraction=fraction)
