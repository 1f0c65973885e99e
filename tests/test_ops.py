import pytest
import torch
from torch import nn

from archgraph import ArchGraph, UnknownOpError, ops
from archgraph.ops import OpContext

BUILTIN = ops.known_ops()  # at import, before any test registers its own op

# name -> (spec, halves the resolution even at stride 1, works on 1-d feature maps)
SPATIAL = {
    "none": ("none", False, True),
    "noise": ("noise", False, True),
    "skip_connect": ("skip_connect", False, True),
    "max_pool_3x3": ("max_pool_3x3", False, True),
    "avg_pool_3x3": ("avg_pool_3x3", False, True),
    "max_pool": ("max_pool(5)", False, True),
    "avg_pool": ("avg_pool(5)", False, True),
    "sep_conv_3x3": ("sep_conv_3x3", False, True),
    "sep_conv_5x5": ("sep_conv_5x5", False, True),
    "sep_conv_7x7": ("sep_conv_7x7", False, True),
    "dil_conv_3x3": ("dil_conv_3x3", False, True),
    "dil_conv_5x5": ("dil_conv_5x5", False, True),
    "conv_7x1_1x7": ("conv_7x1_1x7", False, False),
    "nor_conv_1x1": ("nor_conv_1x1", False, True),
    "nor_conv_3x3": ("nor_conv_3x3", False, True),
    "factorized_reduce": ("factorized_reduce", True, True),
    "conv": ("conv(5)", False, True),
    "conv_bn": ("conv_bn(3)", False, True),
    "conv_bn_relu": ("conv_bn_relu", False, True),
    "relu_conv_bn": ("relu_conv_bn(1)", False, True),
    "dropout": ("dropout(0.5)", False, True),
}
FEATURE_OPS = {"dense"}  # act on (batch, features)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_every_builtin_op_has_a_shape_case():
    assert set(SPATIAL) | FEATURE_OPS == set(BUILTIN)


def cases(names):
    """(name, stride) pairs; dropout cannot be strided (tested on its own)."""
    return [(n, s) for n in sorted(names) for s in (1, 2) if (n, s) != ("dropout", 2)]


def test_dropout_refuses_a_stride():
    with pytest.raises(ValueError, match="dropout keeps the resolution"):
        ops.build("dropout(0.2)", OpContext(8, 8, stride=2))


@pytest.mark.parametrize("name, stride", cases(SPATIAL))
def test_shape_2d(name, stride):
    spec, halves, _ = SPATIAL[name]
    op = ops.build(spec, OpContext(8, 8, stride=stride)).eval()
    size = 4 if stride == 2 or halves else 8
    assert op(torch.randn(2, 8, 8, 8)).shape == (2, 8, size, size)


@pytest.mark.parametrize("name, stride", cases(n for n, (_, _, one_d) in SPATIAL.items() if one_d))
def test_shape_1d(name, stride):
    spec, halves, _ = SPATIAL[name]
    op = ops.build(spec, OpContext(8, 8, stride=stride, dim=1)).eval()
    assert op(torch.randn(2, 8, 16)).shape == (2, 8, 8 if stride == 2 or halves else 16)


def test_conv_7x1_1x7_refuses_1d():
    with pytest.raises(ValueError, match="needs 2-d feature maps"):
        ops.build("conv_7x1_1x7", OpContext(8, 8, dim=1))


@pytest.mark.parametrize("spec", ["sep_conv_3x3", "dil_conv_5x5", "nor_conv_3x3", "conv(3)", "conv_bn", "factorized_reduce"])
def test_convolutions_change_channels(spec):
    op = ops.build(spec, OpContext(8, 16, stride=2))
    assert op(torch.randn(2, 8, 8, 8)).shape == (2, 16, 4, 4)


def test_skip_connect_changing_channels_keeps_resolution():
    op = ops.build("skip_connect", OpContext(8, 16))
    assert op(torch.randn(2, 8, 8, 8)).shape == (2, 16, 8, 8)


@pytest.mark.parametrize("spec", ["none", "noise", "max_pool_3x3", "avg_pool", "dropout", "conv_7x1_1x7"])
def test_channel_keeping_ops_refuse_a_channel_change(spec):
    with pytest.raises(ValueError, match="keeps the channel count, but was placed from 8 to 16 channels"):
        ops.build(spec, OpContext(8, 16))


def test_unsupported_dim():
    with pytest.raises(ValueError, match="1-d and 2-d feature maps, got dim=3"):
        ops.build("conv", OpContext(8, 8, dim=3))


def test_dense():
    op = ops.build("dense(16, tanh)", OpContext(8, 8))
    y = op(torch.randn(4, 8))
    assert y.shape == (4, 16) and bool((y.abs() <= 1).all())
    assert isinstance(op[1], nn.Tanh) and op.out_features == 16
    assert isinstance(ops.build("dense(3)", OpContext(8, 8))[1], nn.ReLU)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        ops.build("dense(3, swish)", OpContext(8, 8))


# --- parameter counts against the DARTS formulas (C = 16) ----------------------------------

C = 16
BN = 2 * C  # affine batch norm: weight and bias


@pytest.mark.parametrize("spec, stride, expected", [
    ("sep_conv_3x3", 1, 2 * (C * 3 * 3 + C * C + BN)),  # two (depthwise k×k, pointwise 1×1, BN)
    ("sep_conv_5x5", 1, 2 * (C * 5 * 5 + C * C + BN)),
    ("sep_conv_7x7", 1, 2 * (C * 7 * 7 + C * C + BN)),
    ("dil_conv_3x3", 1, C * 3 * 3 + C * C + BN),
    ("dil_conv_5x5", 1, C * 5 * 5 + C * C + BN),
    ("conv_7x1_1x7", 1, 2 * C * C * 7 + BN),
    ("nor_conv_1x1", 1, C * C + BN),
    ("nor_conv_3x3", 1, C * C * 9 + BN),
    ("skip_connect", 2, 2 * C * (C // 2) + BN),  # FactorizedReduce: two 1×1 convs to C/2
    ("conv(3)", 1, C * C * 9 + C),  # with bias
    ("conv_bn(5)", 1, C * C * 25 + BN),
    ("skip_connect", 1, 0),
    ("max_pool_3x3", 1, 0),
    ("avg_pool_3x3", 2, 0),
    ("none", 1, 0),
    ("noise", 1, 0),
])
def test_parameter_counts(spec, stride, expected):
    assert n_params(ops.build(spec, OpContext(C, C, stride=stride))) == expected


def test_parameter_counts_without_affine_batch_norm():
    assert n_params(ops.build("sep_conv_3x3", OpContext(C, C, affine=False))) == 2 * (C * 9 + C * C)
    assert n_params(ops.build("dense(64)", OpContext(C, C))) == C * 64 + 64


# --- zero and noise ------------------------------------------------------------------------

def test_zero_gives_zeros_of_the_strided_shape():
    x = torch.randn(2, 4, 6, 6)
    assert torch.equal(ops.build("none", OpContext(4, 4))(x), torch.zeros_like(x))
    assert torch.equal(ops.build("none", OpContext(4, 4, stride=2))(x), torch.zeros(2, 4, 3, 3))


def test_noise_replaces_the_input_by_unit_gaussian_noise():
    op = ops.build("noise", OpContext(8, 8))
    x = torch.full((4, 8, 16, 16), 3.0)
    torch.manual_seed(0)
    y = op(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    assert abs(y.mean().item()) < 0.05 and abs(y.std().item() - 1) < 0.05
    torch.manual_seed(0)
    assert torch.equal(op(x), y)  # seeded: reproducible
    assert not torch.equal(op(x), y)


# --- specs, check, registry ----------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ("sep_conv_3x3", ("sep_conv_3x3", ())),
    ("conv(5)", ("conv", (5,))),
    (" conv ( 5 ) ", ("conv", (5,))),
    ("conv()", ("conv", ())),
    ("dense(64, relu)", ("dense", (64, "relu"))),
    ("dense(64, 'tanh')", ("dense", (64, "tanh"))),
    ("dropout(0.2)", ("dropout", (0.2,))),
    ("shift(-1, True, None)", ("shift", (-1, True, None))),
])
def test_parse(spec, expected):
    assert ops.parse(spec) == expected


@pytest.mark.parametrize("spec", ["3conv", "conv(", "conv(5)x", "", "conv(a.b)", "conv(1 2)", 5, None])
def test_parse_rejects_malformed_specs(spec):
    with pytest.raises(UnknownOpError, match="op spec"):
        ops.parse(spec)


def test_parse_does_not_drop_keyword_arguments():
    with pytest.raises(UnknownOpError):
        ops.parse("conv(kernel_size=5)")


def test_parallel_writes_the_multiset_of_ops_sorted():
    assert ops.parallel("skip_connect", "sep_conv_3x3") == "sep_conv_3x3 + skip_connect"
    assert ops.parallel("max_pool_3x3+avg_pool_3x3", "avg_pool_3x3") == "avg_pool_3x3 + avg_pool_3x3 + max_pool_3x3"
    assert ops.parallel(" conv ( 5 ) ") == " conv ( 5 ) "  # a plain spec comes back as it was
    with pytest.raises(UnknownOpError, match="at least one op spec"):
        ops.parallel()


def test_split_reads_the_parts_at_the_top_level_only():
    assert ops.split("dropout(1e+3)+ conv(5) + dense(64, relu)") == ("dropout(1e+3)", "conv(5)", "dense(64, relu)")
    assert ops.split("conv(+3)") == ("conv(+3)",)
    with pytest.raises(UnknownOpError, match=r"cannot read op spec 'conv\(5\) \+': write one op"):
        ops.split("conv(5) +")


def test_a_parallel_spec_is_not_one_op():
    with pytest.raises(UnknownOpError, match=r"'conv\(5\) \+ skip_connect' is a parallel op spec .*archgraph.ops.split"):
        ops.build("conv(5) + skip_connect", OpContext(8, 8))


def test_check_returns_the_spec_and_lists_known_ops():
    assert ops.check("conv(7)") == "conv(7)"
    with pytest.raises(UnknownOpError) as e:
        ops.check("sepconv_3x3(2)")
    text = str(e.value)
    assert text.startswith("unknown op 'sepconv_3x3'; known ops: ")
    assert all(name in text for name in BUILTIN)
    assert isinstance(e.value, KeyError)


def test_build_with_arguments_the_factory_cannot_take():
    with pytest.raises(UnknownOpError, match=r"op 'none\(3\)' got arguments it cannot take"):
        ops.build("none(3)", OpContext(8, 8))


class Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


def test_register_a_user_op_and_build_it():
    @ops.register("test_ops_scale", overwrite=True)
    def scale(ctx: OpContext, factor: float = 2.0):
        return Scale(factor)

    assert "test_ops_scale" in ops.known_ops()
    x = torch.randn(3, 4)
    assert torch.equal(ops.build("test_ops_scale(3)", OpContext(4, 4))(x), 3 * x)
    assert torch.equal(ops.build("test_ops_scale", OpContext(4, 4))(x), 2 * x)
    assert ArchGraph([(0, 1, "test_ops_scale(0.5)")]).edge_op(0, 1) == "test_ops_scale(0.5)"


def test_register_as_a_function_call():
    ops.register("test_ops_identity", lambda ctx: nn.Identity(), overwrite=True)
    assert isinstance(ops.build("test_ops_identity", OpContext(2, 2)), nn.Identity)


def test_register_refuses_a_taken_name_without_overwrite():
    with pytest.raises(ValueError, match="op 'conv' is already registered; pass overwrite=True"):
        ops.register("conv", lambda ctx: nn.Identity())
    assert isinstance(ops.build("conv", OpContext(2, 2)), nn.Conv2d)  # unchanged


@pytest.mark.parametrize("name", ["conv(3)", "two words", "3x3"])
def test_register_refuses_a_name_that_is_not_an_identifier(name):
    with pytest.raises(ValueError, match="op name must be an identifier"):
        ops.register(name, lambda ctx: nn.Identity())
