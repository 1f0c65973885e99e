"""Compiled modules are plain nn.Modules: torch.compile, torch.fx, TorchScript and ONNX
all reproduce their eval-mode outputs."""

import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from archgraph import ArchGraph
from archgraph.embody import (DARTS_V2, build_darts, build_fade, build_mlp, build_nb201, genotype_to_graphs,
                              mlp_graph)

CELL = ArchGraph([(0, 1), (0, 2), (1, 2)])


def tiny_models():
    return {
        "fade-2d": (lambda: build_fade([CELL, CELL], input_shape=(1, 8, 8), num_classes=10, channels=2), (2, 1, 8, 8)),
        "fade-1d": (lambda: build_fade([CELL], input_shape=(1, 40), num_classes=10, channels=2), (2, 1, 40)),
        "darts": (lambda: build_darts(genotype_to_graphs(DARTS_V2), input_shape=(3, 8, 8), num_classes=10, C=4, layers=3),
                  (2, 3, 8, 8)),
        # node 1 has only a `none` input: the Zero op must export too
        "nb201": (lambda: build_nb201("|none~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
                                      input_shape=(3, 8, 8), num_classes=10, C=4, N=1), (2, 3, 8, 8)),
        "mlp": (lambda: build_mlp(mlp_graph([(16, "relu"), "dropout", (8, "tanh")]), input_shape=(13,), num_classes=3), (2, 13)),
    }


@pytest.fixture(params=sorted(tiny_models()))
def model_and_input(request):
    factory, shape = tiny_models()[request.param]
    torch.manual_seed(0)
    return factory().eval(), torch.randn(*shape)


def test_torch_fx(model_and_input):
    model, x = model_and_input
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)


def test_torchscript(model_and_input):
    model, x = model_and_input
    torch.testing.assert_close(torch.jit.script(model)(x), model(x), rtol=0, atol=0)


def test_torch_compile(model_and_input):
    model, x = model_and_input
    torch.testing.assert_close(torch.compile(model, backend="eager")(x), model(x))


def test_onnx(model_and_input, tmp_path):
    model, x = model_and_input
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (x,), path, dynamo=True, verbose=False)
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    (out,) = ReferenceEvaluator(proto).run(None, {proto.graph.input[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), model(x).detach(), rtol=1e-5, atol=1e-5)
