import pytest
import torch

from archgraph import ArchGraph, InvalidGraphError
from archgraph.embody import build_mlp, mlp_graph, mlp_layers


def test_layers_widths_activations_and_head():
    g = mlp_graph([(64, "relu"), "dropout", (32, "tanh")])
    assert mlp_layers(g) == ["dense(64, relu)", "dropout(0.2)", "dense(32, tanh)"]
    net = build_mlp(g, input_shape=(13,), num_classes=3)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(13, 64), (64, 32), (32, 3)]
    kinds = [type(m).__name__ for m in net.layers.modules()]
    assert "Dropout" in kinds and "ReLU" in kinds and "Tanh" in kinds
    assert sum(p.numel() for p in net.parameters()) == 13 * 64 + 64 + 64 * 32 + 32 + 32 * 3 + 3


def test_binary_tasks_get_one_sigmoid_unit():
    net = build_mlp(mlp_graph([(8, "elu")]), input_shape=(4,), num_classes=2)
    assert net.head.out_features == 1
    x = torch.randn(6, 4)
    z = net.head(net.layers(x))
    probs = net(x).softmax(dim=1)
    torch.testing.assert_close(probs[:, 1:], torch.sigmoid(z))


def test_images_are_flattened():
    net = build_mlp(mlp_graph([(16, "sigmoid")]), input_shape=(1, 8, 8), num_classes=10)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_not_a_path_or_missing_ops_is_an_error():
    with pytest.raises(InvalidGraphError, match="single path"):
        mlp_layers(ArchGraph([(0, 1), (0, 2)], node_ops={0: "dense(8, relu)", 1: "dense(8, relu)", 2: "dense(8, relu)"}))
    with pytest.raises(InvalidGraphError, match="carry no op"):
        mlp_layers(ArchGraph([(0, 1)]))
    with pytest.raises(ValueError, match="unknown activation"):
        build_mlp(mlp_graph([(8, "swish")]), input_shape=(4,), num_classes=3)
