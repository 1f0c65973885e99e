import pytest
import torch

from archgraph import ArchGraph, SpaceError, UnknownOpError, spaces
from archgraph.embody import mlp_graph


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


def test_architecture_files_round_trip(tmp_path):
    cells = (ArchGraph([(0, 1), (1, 2)]), ArchGraph([(0, 1, "conv(3)")]))
    path = spaces.save_architecture(cells, tmp_path / "a.json", space="fade")
    loaded, space = spaces.load_architecture(path)
    assert space == "fade" and all(a.is_identical(b) for a, b in zip(loaded, cells))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(SpaceError, match="not valid JSON"):
        spaces.load_architecture(tmp_path / "broken.json")
    with pytest.raises(SpaceError, match="does not exist"):
        spaces.load_architecture(tmp_path / "missing.json")
