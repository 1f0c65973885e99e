from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from archgraph.data import fade_split, load
from archgraph.oneshot.rsws import _applied, random_cells, random_search_ws
from archgraph.oneshot.supernet import build_supernet
from archgraph.relax import arch_parameters, choices, weight_parameters


@pytest.fixture(scope="module")
def digits():
    _, arch, weight = fade_split(load("digits").train, seed=0)
    return Subset(weight, range(256)), Subset(arch, range(96))


def tiny(space="s3", seed=0):
    torch.manual_seed(seed)
    return build_supernet(space, input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)


def test_random_cells_keep_k_distinct_inputs_and_draw_ops_uniformly():
    net = tiny("s3")                                    # ops none, skip_connect, sep_conv_3x3
    rng = np.random.default_rng(0)
    inputs, ops = Counter(), Counter()
    for _ in range(2000):
        normal, reduce = random_cells(net, rng)
        for cell in (normal, reduce):
            assert [len(cell.predecessors(v)) for v in range(2, 6)] == [2, 2, 2, 2]
        inputs.update(normal.predecessors(5))
        ops.update(normal.edge_ops.values())
    assert set(ops) == {"skip_connect", "sep_conv_3x3"}
    assert abs(ops["skip_connect"] / sum(ops.values()) - 0.5) < 0.02
    # node 5 draws 2 of its 5 inputs: each is kept with probability 2/5
    assert all(abs(inputs[u] / 2000 - 0.4) < 0.04 for u in range(5))


def test_applied_cells_fix_kept_edges_and_zero_the_others_until_the_block_ends():
    net = tiny("s3")
    cells = random_cells(net, np.random.default_rng(1))
    with _applied(net, cells):
        for cell_type, cell in zip(net.cell_types, cells):
            for edge in net.edges(cell_type):
                for choice in net.edge_choices(cell_type, edge):
                    if cell.has_edge(*edge):
                        assert net.edge_ops(cell_type, edge)[choice.fixed] == cell.edge_op(*edge)
                    else:
                        assert choice.fixed is None and not choice.weights().any()
    assert all(c.fixed is None and c.weights().all() for c in choices(net))


def accuracy(net, cells, data, batch_size):
    net.train()
    with _applied(net, cells), torch.no_grad():
        correct = sum((net(x).argmax(1) == y).sum().item() for x, y in DataLoader(data, batch_size=batch_size))
    return correct / len(data)


def test_search_trains_only_weights_and_returns_the_best_finalist(digits):
    net = tiny("s5")
    alpha0 = [a.detach().clone() for a in arch_parameters(net)]
    weights0 = [w.detach().clone() for w in weight_parameters(net)]
    result = random_search_ws(net, *digits, epochs=2, samples=30, top=4, batch_size=32, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(arch_parameters(net), alpha0))
    assert not all(torch.equal(a, b) for a, b in zip(weight_parameters(net), weights0))
    assert [row["epoch"] for row in result.history] == [0, 1]
    assert result.history[0]["lr"] == 0.025 and result.history[1]["lr"] < 0.025
    scores = [score for _, score in result.finalists]
    assert len(scores) == 4 and scores == sorted(scores, reverse=True)
    for cells, score in result.finalists:   # recomputed independently (batch statistics: same batches)
        assert accuracy(net, cells, digits[1], batch_size=32) == pytest.approx(score)
    assert result.cells == result.finalists[0][0]


def test_bad_settings_are_refused(digits):
    with pytest.raises(ValueError, match="samples must be a positive int, got 0"):
        random_search_ws(tiny(), *digits, epochs=1, samples=0)
