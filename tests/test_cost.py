import pytest
import torch

from archgraph import ArchGraph, spaces
from archgraph.cost import count_flops, measure_latency
from archgraph.embody import mlp_graph


def hooked_flops(model, input_shape):
    """2 × multiply-adds of every convolution and linear layer, from the shapes their forward hooks see."""
    total = []

    def conv(module, inputs, output):
        k = module.weight[0].numel()  # in_channels / groups × kernel area
        total.append(2 * k * output.numel())

    def linear(module, inputs, output):
        total.append(2 * module.in_features * output.numel())

    hooks = [m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    for hook in hooks:
        hook.remove()
    return sum(total)


@pytest.mark.parametrize("space, cells, params, shape", [
    ("fade", [ArchGraph([(0, 1), (0, 2), (1, 2)])] * 4, {"channels": 2, "kernel_size": 3}, (1, 8, 8)),
    ("mlp", [mlp_graph([(32, "relu"), (16, "tanh")])], {}, (64,)),
])
def test_flops_are_twice_the_multiply_adds_of_convolutions_and_linear_layers(space, cells, params, shape):
    net = spaces.load(space).compile(cells, input_shape=shape, num_classes=10, seed=0, **params)
    expected = hooked_flops(net, shape)
    net.train()
    assert expected > 0 and count_flops(net, shape) == expected
    assert net.training  # left in the mode it was in


def test_a_hand_counted_network():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 8 * 8, 5))
    assert count_flops(net, (3, 8, 8)) == 2 * (3 * 4 * 9 * 8 * 8) + 2 * (256 * 5)


def test_latency_is_a_positive_number_of_seconds_and_leaves_the_model_as_it_was():
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Dropout(0.5))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    calls = []
    net.register_forward_hook(lambda module, inputs, output: calls.append((inputs[0].shape, module.training,
                                                                           torch.is_grad_enabled())))
    latency = measure_latency(net, (8,), batch_size=5, warmup=2, repeats=3)
    assert isinstance(latency, float) and latency > 0
    assert calls == [(torch.Size([5, 8]), False, False)] * 5  # warm-up and timed passes, a batch each, in eval mode
    assert net.training and all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="repeats >= 1"):
        measure_latency(net, (8,), batch_size=5, repeats=0)


def test_every_trained_trial_records_its_latency(tiny_run):
    from archgraph.results import read_run

    complete = [r for r in read_run(tiny_run)[1] if r["state"] == "complete"]
    assert len(complete) == 3 and all(r["metrics"]["latency"] > 0 for r in complete)
