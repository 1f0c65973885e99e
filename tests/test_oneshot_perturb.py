import contextlib
import copy

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from archgraph.data import fade_split, load
from archgraph.embody import build_darts
from archgraph.oneshot.bilevel import train_bilevel
from archgraph.oneshot.perturb import perturbation_select
from archgraph.oneshot.supernet import build_supernet


@pytest.fixture(scope="module")
def digits():
    _, arch, weight = fade_split(load("digits").train, seed=0)
    return Subset(weight, range(256)), Subset(arch, range(96))


def trained(space, digits, seed=0, epochs=1, nodes=None):
    torch.manual_seed(seed)
    net = build_supernet(space, input_shape=(1, 8, 8), num_classes=10, C=4, layers=3, nodes=nodes)
    weight, arch = digits
    train_bilevel(net, weight, arch, epochs=epochs, batch_size=32, progress=False)
    return net


def accuracy(net, data):
    """Train-mode, no-grad accuracy over ``data``: the measurement DARTS-PT describes."""
    net.train()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(data, batch_size=64):
            correct += (net(x).argmax(1) == y).sum().item()
    return correct / len(data)


def test_each_edge_keeps_the_op_whose_removal_hurts_most(digits):
    net = trained("s5", digits)
    replay = copy.deepcopy(net)
    result = perturbation_select(net, *digits, tune_epochs=0, batch_size=64)
    assert len(result.decisions) == 4 and {d.cell_type for d in result.decisions} == {"normal", "reduce"}
    for decision in result.decisions:
        ops = replay.edge_ops(decision.cell_type, decision.edge)
        expected = {}
        for i, op in enumerate(ops):
            state = copy.deepcopy(replay.state_dict())
            with contextlib.ExitStack() as stack:
                for choice in replay.edge_choices(decision.cell_type, decision.edge):
                    stack.enter_context(choice.masked([float(j != i) for j in range(len(ops))]))
                expected[op] = accuracy(replay, digits[1])
            replay.load_state_dict(state)
        assert decision.accuracies == pytest.approx(expected)
        assert decision.op == min(expected, key=expected.get)
        for choice in replay.edge_choices(decision.cell_type, decision.edge):
            choice.fix(ops.index(decision.op))
    normal, reduce = result.cells
    assert [normal.edge_op(*d.edge) for d in result.decisions if d.cell_type == "normal"] == \
        [d.op for d in result.decisions if d.cell_type == "normal"]
    model = build_darts([normal, reduce], input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    assert model.eval()(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_measuring_leaves_batch_norm_statistics_alone(digits):
    net = trained("s5", digits)
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    perturbation_select(net, *digits, tune_epochs=0)
    after = net.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())


def test_topology_keeps_two_inputs_per_node_and_drops_the_least_needed_edges(digits):
    net = trained("s3", digits, nodes=3)
    weight, arch = digits
    result = perturbation_select(net, weight, Subset(arch, range(48)), tune_epochs=0, seed=1)
    for cell_type, cell in zip(net.cell_types, result.cells):
        assert all(len(cell.predecessors(v)) == 2 for v in range(2, 5))
        assert all(op != "none" for op in cell.edge_ops.values())
        nodes = [d for d in result.decisions if d.cell_type == cell_type and d.node is not None]
        assert sorted(d.node for d in nodes) == [3, 4]
        for d in nodes:                      # node v had v inputs: v − 2 removed, each named with its accuracy
            assert len(d.accuracies) == d.node - 2
            assert all(edge[1] == d.node and edge not in cell.edges for edge in d.accuracies)
    assert sum(d.node is None for d in result.decisions) == 2 * 9


def test_tuning_between_projections_continues_the_schedule(digits):
    net = trained("s5", digits)
    result = perturbation_select(net, *digits, tune_epochs=2, batch_size=64)
    # two rounds of projections (one edge per cell type each); after the last round every edge is fixed
    assert [row["epoch"] for row in result.history] == [0, 1]
    assert all(c.fixed is not None for c in net.edge_choices("normal", (0, 2)))


def test_bad_settings_are_refused(digits):
    net = trained("s5", digits, epochs=1)
    with pytest.raises(ValueError, match="k is the number of input edges kept per node"):
        perturbation_select(net, *digits, k=0)
    with pytest.raises(ValueError, match="tune_epochs is a non-negative int"):
        perturbation_select(net, *digits, tune_epochs=-1)
    with pytest.raises(ValueError, match="tune_rounds is a non-negative int"):
        perturbation_select(net, *digits, tune_rounds=-1)


@pytest.mark.parametrize(("tune_rounds", "decided"), [(None, [1, 2, 3, 4]), (9, [1, 2, 3, 4]), (2, [2, 4]), (0, [])])
def test_tune_rounds_are_spread_over_the_rounds_that_leave_an_edge_undecided(digits, monkeypatch, tune_rounds,
                                                                             decided):
    net = trained("s5", digits, nodes=2)   # 5 edges a cell: rounds 1..4 leave one undecided
    tunings = []

    def spy(supernet, *args, **kwargs):   # a tuning: how many normal edges are decided, and its epochs
        tunings.append((sum(supernet.edge_choices("normal", e)[0].fixed is not None for e in supernet.edges("normal")),
                        kwargs["start_epoch"], kwargs["epochs"]))
        return train_bilevel(supernet, *args, **kwargs)

    monkeypatch.setattr("archgraph.oneshot.perturb.train_bilevel", spy)
    result = perturbation_select(net, *digits, tune_epochs=1, tune_rounds=tune_rounds, batch_size=64)
    assert [d for d, _, _ in tunings] == decided
    assert [(start, epochs) for _, start, epochs in tunings] == [(n, len(decided)) for n in range(len(decided))]
    assert [row["epoch"] for row in result.history] == list(range(len(decided)))   # one schedule over all tunings
