import os

import pytest
import torch

from archgraph import ArchGraph, SpaceError, UnknownOpError, spaces
from archgraph.embody import DARTS_V2, from_nb201_string, genotype_to_graphs, mlp_graph


def test_shipped_spaces_load():
    assert {"fade", "darts", "nb201", "mlp"} <= set(spaces.available())
    fade = spaces.load("fade")
    assert (len(fade.cells), fade.min_vertices, fade.max_vertices) == (4, 1, 5)
    assert fade.params["kernel_size"] == 5
    mlp = spaces.load("mlp")
    assert len(mlp.ops) == 7 * 4 + 1 and mlp.max_vertices == 10


def test_validate_names_the_broken_rule():
    fade = spaces.load("fade")
    cell = ArchGraph([(0, 1)])
    assert fade.validate([cell] * 4) == (cell,) * 4
    with pytest.raises(SpaceError, match="takes 4 ArchGraph cells"):
        fade.validate([cell] * 3)
    big = ArchGraph([(i, i + 1) for i in range(5)])
    with pytest.raises(SpaceError, match="cell 'cell2' has 6 vertices, the space allows 1..5"):
        fade.validate([cell, big, cell, cell])
    mlp = spaces.load("mlp")
    with pytest.raises(SpaceError, match="uses op 'dense\\(100, relu\\)'"):
        mlp.validate(mlp_graph([(100, "relu")]))
    assert mlp.validate(mlp_graph([(64, "relu"), "dropout"]))  # spacing of args does not matter


def test_compile_overrides_and_rejects_unknown_parameters():
    fade = spaces.load("fade")
    cells = [ArchGraph([(0, 1)])] * 4
    net = fade.compile(cells, input_shape=(1, 8, 8), num_classes=10, channels=2, kernel_size=3)
    assert net(torch.randn(1, 1, 8, 8)).shape == (1, 10)
    with pytest.raises(SpaceError, match="no parameter\\(s\\) \\['chanels'\\]"):
        fade.compile(cells, input_shape=(1, 8, 8), num_classes=10, chanels=2)


def test_space_files_from_paths_and_the_env(tmp_path, monkeypatch):
    (tmp_path / "tiny.toml").write_text('embodiment = "fade"\ncells = ["a"]\nmax_vertices = 2\n[params]\nchannels = 2\n')
    assert spaces.load(tmp_path / "tiny.toml").name == "tiny"
    monkeypatch.setenv("ARCHGRAPH_SPACES", str(tmp_path))
    assert spaces.load("tiny").max_vertices == 2
    (tmp_path / "bad.toml").write_text('embodiment = "fade"\ncells = ["a"]\nmax_vertex = 2\n')
    with pytest.raises(SpaceError, match="unknown key\\(s\\) \\['max_vertex'\\]"):
        spaces.load(tmp_path / "bad.toml")
    (tmp_path / "badop.toml").write_text('embodiment = "fade"\ncells = ["a"]\nops = ["sep_conv_9x9"]\n')
    with pytest.raises(UnknownOpError, match="unknown op 'sep_conv_9x9'"):
        spaces.load(tmp_path / "badop.toml")
    with pytest.raises(SpaceError, match="no space named 'nope'; available: .*fade"):
        spaces.load("nope")


@pytest.mark.parametrize("text, message", [
    ('cells = "cell1"\n', "cells must be a list of cell names, .* got 'cell1'"),
    ('cells = 3\n', "cells must be a list of cell names, .* got 3"), ('cells = ["a", "a"]\n', "cells names a cell twice"),
    ('cells = ["a"]\nmin_vertices = 6\nmax_vertices = 3\n', "min_vertices 6 exceeds max_vertices 3"),
    ('cells = ["a"]\nmax_vertices = 0\n', "max_vertices must be a whole number of 1 or more, got 0"),
    ('cells = ["a"]\nops = "conv_3x3"\n', "ops must be a list of op names"),
    ('cells = ["a"]\nparams = 3\n', "params must be a table"),
    ('cells = ["a"]\n[params]\nkernel_size = 0\n', "kernel_size must be an odd whole number of 1 or more"),
    ('cells = ["a"]\n[params]\nkernel_size = 4\n', "kernel_size must be an odd .*, got 4"),
    ('cells = ["a"]\n[params]\nchannels = -1\n', "channels must be a whole number of 1 or more, .* got -1"),
    ('cells = ["a", "b"]\n[params]\nchannels = [4, 8, 16]\n', "channels lists 3 values for 2 cells"),
    ('cells = ["a"]\n[params]\npool = "min"\n', "pool must be 'max' or 'avg', got 'min'"),
])
def test_space_files_are_checked_when_loaded(tmp_path, text, message):
    (tmp_path / "bad.toml").write_text('embodiment = "fade"\n' + text)
    with pytest.raises(SpaceError, match=f"space 'bad': {message}"):
        spaces.load(tmp_path / "bad.toml")


@pytest.mark.parametrize("params, message", [
    ({"kernel_size": 2}, "kernel_size must be an odd"), ({"channels": 0}, "channels must be a whole number"),
    ({"weights_per_cell": [100, 100]}, "weights_per_cell lists 2 values for 4 cells"),
])
def test_compile_checks_the_values_of_overrides(params, message):
    with pytest.raises(SpaceError, match=message):
        spaces.load("fade").compile([ArchGraph([(0, 1)])] * 4, input_shape=(1, 8, 8), num_classes=10, **params)


@pytest.mark.parametrize("params, message", [
    ({"C": 0}, "C must be a whole number of 1 or more"), ({"layers": True}, "layers must be a whole number"),
    ({"drop_path_prob": 1.0}, r"drop_path_prob must be a number in \[0, 1\)"),
    ({"auxiliary": 1}, "auxiliary must be true or false"),
])
def test_darts_parameters_are_checked(params, message):
    with pytest.raises(SpaceError, match=message):
        spaces.load("darts").check_params(params)


def test_env_folders_come_before_the_shipped_spaces(tmp_path, monkeypatch):
    shipped = spaces.available()
    (tmp_path / "fade.toml").write_text('embodiment = "mlp"\ncells = ["mine"]\n')
    (tmp_path / "notes.txt").write_text("not a space")
    monkeypatch.setenv("ARCHGRAPH_SPACES", os.pathsep.join([str(tmp_path / "missing"), str(tmp_path)]))
    assert spaces.load("fade").cells == ("mine",)
    assert spaces.available() == shipped
    monkeypatch.delenv("ARCHGRAPH_SPACES")
    assert spaces.load("fade").embodiment == "fade"


def test_architecture_files_round_trip(tmp_path):
    cells = (ArchGraph([(0, 1), (1, 2)]), ArchGraph([(0, 1, "conv(3)")]))
    path = spaces.save_architecture(cells, tmp_path / "a.json", space="fade")
    loaded, space = spaces.load_architecture(path)
    assert space == "fade" and all(a.is_identical(b) for a, b in zip(loaded, cells))
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "op.json").write_text('{"cells": [{"num_nodes": 2, "edges": [[0, 1, "conv_9x9"]]}]}')
    with pytest.raises(UnknownOpError, match=f"architecture file {tmp_path / 'op.json'}: unknown op 'conv_9x9'; known"):
        spaces.load_architecture(tmp_path / "op.json")
    with pytest.raises(SpaceError, match="not valid JSON"):
        spaces.load_architecture(tmp_path / "broken.json")
    with pytest.raises(SpaceError, match="does not exist"):
        spaces.load_architecture(tmp_path / "missing.json")


def test_robustdarts_spaces_ship_with_their_ops():
    assert {"s1", "s2", "s3", "s4", "s5"} <= set(spaces.available())
    assert spaces.load("s2").ops == ("skip_connect", "sep_conv_3x3")
    assert spaces.load("s3").ops == ("none", "skip_connect", "sep_conv_3x3")
    assert spaces.load("s4").ops == ("noise", "sep_conv_3x3")
    s5 = spaces.load("s5")
    assert (s5.min_vertices, s5.max_vertices, s5.ops) == (3, 3, ("sep_conv_3x3", "skip_connect", "max_pool_3x3"))
    s1 = spaces.load("s1")
    assert all(len(s1.edge_ops[cell]) == 14 for cell in s1.cells)
    assert all(len(ops) == 2 for table in s1.edge_ops.values() for ops in table.values())
    assert s1.ops_for("normal", (1, 5)) == ("max_pool_3x3", "skip_connect")
    assert s1.ops_for("reduce", (1, 4)) == ("max_pool_3x3", "sep_conv_3x3")
    assert set(s1.ops) == {"skip_connect", "sep_conv_3x3", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3",
                           "avg_pool_3x3"}  # without an ops list: the ops the tables name
    assert spaces.load("darts").ops_for("reduce", (3, 5)) == spaces.load("darts").ops
    with pytest.raises(SpaceError, match="has no cell 'cell'"):
        s1.ops_for("cell", (0, 2))


def test_edge_ops_narrow_what_an_edge_may_carry():
    s1 = spaces.load("s1")
    normal, reduce = (ArchGraph([(u, v, s1.ops_for(cell, (u, v))[-1]) for v in range(2, 6) for u in (0, 1)])
                      for cell in s1.cells)  # every node fed by both inputs, the second op of each pair
    assert s1.validate([normal, reduce]) == (normal, reduce)
    with pytest.raises(SpaceError, match="'reduce' uses op 'dil_conv_3x3' on edge 0->2, .* max_pool_3x3, avg_pool_3x3"):
        s1.validate([normal, normal])
    net = s1.compile([normal, reduce], input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)
    assert type(net).__name__ == "DartsNetwork" and net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    s5 = spaces.load("s5")
    cell = ArchGraph([(0, 2, "sep_conv_3x3"), (1, 2, "max_pool_3x3")])
    assert s5.compile([cell, cell], input_shape=(1, 8, 8), num_classes=10, C=4, layers=3)(
        torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_edge_ops_tables_in_files_and_their_errors(tmp_path):
    head = 'embodiment = "darts"\ncells = ["normal", "reduce"]\nmax_vertices = 3\n'
    (tmp_path / "pairs.toml").write_text(head + '[edge_ops.normal]\n"0->2" = ["skip_connect"]\n'
                                         '" 1 -> 2 " = ["sep_conv_3x3", "skip_connect"]\n')
    space = spaces.load(tmp_path / "pairs.toml")
    assert dict(space.edge_ops["normal"]) == {(0, 2): ("skip_connect",), (1, 2): ("sep_conv_3x3", "skip_connect")}
    assert space.ops == ("skip_connect", "sep_conv_3x3") and space.ops_for("reduce", (0, 2)) == space.ops
    assert spaces.Space("p", "darts", ("normal", "reduce"), edge_ops={"normal": {(0, 2): ["none"]}}).ops == ("none",)
    bad = {
        '[edge_ops.normal]\n"2->0" = ["skip_connect"]\n': "edge key '2->0' must name an edge 'u->v' with .* u < v",
        '[edge_ops.normal]\n"0-2" = ["skip_connect"]\n': "edge key '0-2'",
        '[edge_ops.norm]\n"0->2" = ["skip_connect"]\n': "edge_ops names cell 'norm'",
        '[edge_ops.normal]\n"0->3" = ["skip_connect"]\n': "lists edge 0->3, but cells have at most 3 vertices",
        '[edge_ops.normal]\n"0->2" = []\n': "gives edge 0->2 no op",
        'edge_ops = ["skip_connect"]\n': "edge_ops must map cell names to tables",
        'edge_ops = {normal = 3}\n': "edge_ops.normal must be a table",
        'ops = ["skip_connect"]\n[edge_ops.normal]\n"0->2" = ["sep_conv_3x3"]\n':
            "offers 'sep_conv_3x3' on edge 0->2, which the space's ops do not list",
    }
    for i, (text, message) in enumerate(bad.items()):
        (tmp_path / f"bad{i}.toml").write_text(head + text)
        with pytest.raises(SpaceError, match=message):
            spaces.load(tmp_path / f"bad{i}.toml")
    (tmp_path / "unknown.toml").write_text(head + '[edge_ops.normal]\n"0->2" = ["sep_conv_9x9"]\n')
    with pytest.raises(UnknownOpError, match="unknown op 'sep_conv_9x9'"):
        spaces.load(tmp_path / "unknown.toml")


# compile(seed=): the initial weights from a seed, torch's global generator left as it was

SEEDED = {  # one small architecture per embodiment: (cells, input shape, parameters)
    "fade": ([ArchGraph([(0, 1), (0, 2)], num_nodes=4)] * 4, (1, 8, 8), {"channels": 2, "kernel_size": 3}),
    "mlp": (mlp_graph([(64, "relu"), "dropout"]), (5,), {}),
    "darts": (genotype_to_graphs(DARTS_V2), (1, 8, 8), {"C": 2, "layers": 2}),
    "nb201": (from_nb201_string("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|"
                                "nor_conv_3x3~2|"), (1, 8, 8), {"C": 2, "N": 1}),
}


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_compile_seed_draws_the_weights_without_touching_the_global_generator(name):
    space = spaces.load(name)
    cells, shape, params = SEEDED[name]

    def state(**seed) -> list[torch.Tensor]:
        net = space.compile(cells, input_shape=shape, num_classes=3, **params, **seed)
        return [t.detach().clone() for t in net.state_dict().values()]

    before = torch.get_rng_state()
    first, again, other = state(seed=0), state(seed=0), state(seed=1)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's stream goes on as if nothing was drawn
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    torch.manual_seed(0)  # seed=s gives the weights of torch.manual_seed(s) and a build from the global generator
    seeded = torch.get_rng_state()
    assert all(torch.equal(a, b) for a, b in zip(state(), first, strict=True))
    assert not torch.equal(torch.get_rng_state(), seeded)  # seed=None drew from the global generator


def test_seed_is_not_a_space_parameter():
    with pytest.raises(SpaceError, match=r"no parameter\(s\) \['seed'\]"):
        spaces.load("fade").check_params({"seed": 0})
    with pytest.raises(TypeError, match="seed must be an int"):
        spaces.load("mlp").compile(mlp_graph([(64, "relu")]), input_shape=(5,), num_classes=3, seed="0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compile_seed_under_a_cuda_default_device_leaves_both_generators():
    cells, shape, params = SEEDED["fade"]
    before = torch.get_rng_state(), torch.cuda.get_rng_state()
    torch.set_default_device("cuda")   # the weights are drawn on the GPU, from its generator
    try:
        first, again = ([t.clone() for t in spaces.load("fade").compile(cells, input_shape=shape, num_classes=3,
                                                                         seed=0, **params).state_dict().values()]
                        for _ in range(2))
    finally:
        torch.set_default_device(None)
    assert first[0].is_cuda and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert torch.equal(torch.get_rng_state(), before[0]) and torch.equal(torch.cuda.get_rng_state(), before[1])


@pytest.mark.parametrize("shape, fitted", [
    ((3, 32, 32), {"pool": "max", "kernel_size": 5}),   # the paper's CIFAR-10: maps 32, 16, 8, 4
    ((1, 28, 28), {"pool": "max", "kernel_size": 5}),   # 28, 14, 7, 4
    ((1, 40), {"pool": "max", "kernel_size": 5}),       # MNIST-1D: 40, 20, 10, 5
    ((1, 25, 40), {"pool": "max", "kernel_size": 5}),   # the narrower side counts: 25, 13, 7, 4
    ((1, 24, 24), {"pool": None, "kernel_size": 5}),    # 24, 12, 6, 3: unpooled, 24×24 maps
    ((1, 8, 8), {"pool": None, "kernel_size": 5}),      # digits: 8, 4, 2, 1 pooled
    ((1, 2, 2), {"pool": None, "kernel_size": 3}),      # a 2×2 map: taps beyond 2·2 − 1 = 3 read padding
    ((1, 1), {"pool": None, "kernel_size": 3}),         # never below 3
    ((13,), {}), ((3, 8, 8, 8), {}),                    # not an image or a signal: the builder says why
])
def test_fade_defaults_fit_the_input(shape, fitted):
    assert spaces.load("fade").fitted(shape) == fitted


def test_fitting_follows_the_space_file_and_leaves_out_what_is_given(tmp_path):
    (tmp_path / "two.toml").write_text('embodiment = "fade"\ncells = ["a", "b"]\n[params]\nkernel_size = 9\n'
                                       'pool = "avg"\n[fit]\ndeepest_side = 2\n')
    two = spaces.load(tmp_path / "two.toml")  # one halving; 9 is narrowed to 2m − 1 of the narrowest map m
    assert two.fitted((1, 4, 4)) == {"pool": "avg", "kernel_size": 3}      # maps 4, 2
    assert two.fitted((1, 6, 6)) == {"pool": "avg", "kernel_size": 5}      # 6, 3
    assert two.fitted((1, 3, 3)) == {"pool": "avg", "kernel_size": 3}      # 3, 2
    assert two.fitted((1, 2, 2)) == {"pool": None, "kernel_size": 3}       # 2, 1 pooled: unpooled 2, 2
    assert two.fitted((1, 20)) == {"pool": "avg", "kernel_size": 9}        # 20, 10
    assert two.fitted((1, 4, 4), {"pool": None}) == {"kernel_size": 7}     # the given pooling decides the maps
    assert two.fitted((1, 4, 4), {"kernel_size": 1, "pool": "max"}) == {}
    assert spaces.load("fade").fitted((1, 8, 8), {"pool": "max"}) == {"kernel_size": 3}   # maps 8, 4, 2, 1
    (tmp_path / "plain.toml").write_text('embodiment = "fade"\ncells = ["a"]\n')
    assert spaces.load(tmp_path / "plain.toml").fitted((1, 8, 8)) == {}   # no [fit]: the file's values stand
    assert spaces.load("nb201").fitted((3, 32, 32)) == {}


@pytest.mark.parametrize("text, message", [
    ('embodiment = "mlp"\ncells = ["a"]\n[fit]\ndeepest_side = 4\n', "fits the kernel size and pooling of the fade"),
    ('embodiment = "fade"\ncells = ["a"]\n[fit]\nside = 4\n', r"\[fit\] has no key\(s\) \['side'\]"),
    ('embodiment = "fade"\ncells = ["a"]\n[fit]\ndeepest_side = 0\n', "deepest_side must be a whole number"),
    ('embodiment = "fade"\ncells = ["a"]\nfit = 4\n', "fit must be a table"),
])
def test_fit_tables_are_checked(tmp_path, text, message):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(SpaceError, match=message):
        spaces.load(tmp_path / "bad.toml")
