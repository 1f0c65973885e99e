"""Registry of primitive operations, addressed by name.

An op spec is a string: a registered name, optionally with arguments, e.g.
``"sep_conv_3x3"``, ``"conv(5)"``, ``"dense(64, relu)"``, ``"dropout(0.2)"``.
A factory receives an :class:`OpContext` (channels, stride, affine, spatial dimension)
and the spec's arguments, and returns an ``nn.Module``.

A *parallel* spec, ``"sep_conv_3x3 + skip_connect"``, names several ops applied side by side
to one input and summed: the edge op of a cell whose node takes the same input twice (NASNet,
AmoebaNet, ENAS and PNAS cells do). :func:`parallel` writes it with its parts sorted, so that
the string names the multiset of ops; :func:`split` reads the parts back. A parallel spec is
an edge label, not one op: compilers build each part (:func:`build` takes a single spec).

The DARTS primitives follow the DARTS reference implementation (Liu et al. 2019,
``operations.py`` of quark0/darts); ``nor_conv_*`` follow NAS-Bench-201 (Dong & Yang 2020);
``noise`` is the RobustDARTS S4 op (Zela et al. 2020, §3): the input replaced by N(0, 1).

Examples
--------
>>> import torch
>>> from archgraph import ops
>>> op = ops.build("sep_conv_3x3", ops.OpContext(8, 8))
>>> op(torch.randn(2, 8, 6, 6)).shape
torch.Size([2, 8, 6, 6])
>>> ops.parse("dense(64, relu)")
('dense', (64, 'relu'))
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .errors import SettingError, ShapeError, SpaceError, UnknownOpError

__all__ = [
    "OpContext",
    "register",
    "build",
    "parse",
    "check",
    "check_parts",
    "known_ops",
    "parallel",
    "split",
    "ACTIVATIONS",
    "ReLUConvBN",
    "DilConv",
    "SepConv",
    "FactorizedReduce",
    "Zero",
    "Noise",
    "Dense",
]


@dataclass(frozen=True)
class OpContext:
    """Where an op is placed: its input/output channels (features for dense ops),
    stride, whether batch norm is affine, and the spatial dimension (1 or 2)."""

    in_channels: int
    out_channels: int
    stride: int = 1
    affine: bool = True
    dim: int = 2


OpFactory = Callable[..., nn.Module]
_REGISTRY: dict[str, OpFactory] = {}
_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$")


def register(name: str, factory: OpFactory | None = None, *, overwrite: bool = False):
    """Register ``factory(ctx: OpContext, *args) -> nn.Module`` under ``name``.

    Usable as a decorator. Registering a taken name raises unless ``overwrite=True``.

    Examples
    --------
    >>> from torch import nn
    >>> from archgraph import ops
    >>> @ops.register("pointwise", overwrite=True)
    ... def _pointwise(ctx):
    ...     return nn.Conv2d(ctx.in_channels, ctx.out_channels, 1, stride=ctx.stride)
    >>> ops.build("pointwise", ops.OpContext(4, 8))
    Conv2d(4, 8, kernel_size=(1, 1), stride=(1, 1))
    """

    def _add(f: OpFactory) -> OpFactory:
        if not name.isidentifier():
            raise SettingError(f"op name must be an identifier, got {name!r}")
        if name in _REGISTRY and not overwrite:
            raise SettingError(f"op {name!r} is already registered; pass overwrite=True to replace it")
        _REGISTRY[name] = f
        return f

    return _add(factory) if factory is not None else _add


def parse(spec: str) -> tuple[str, tuple]:
    """Split an op spec into its name and literal arguments (bare words become strings)."""
    m = _SPEC.match(spec) if isinstance(spec, str) else None
    if m is None:
        if isinstance(spec, str) and len(_parts(spec)) > 1:
            raise UnknownOpError(f"{spec!r} is a parallel op spec (several ops summed on one edge), where one op is "
                                 "expected; handle its parts, archgraph.ops.split(spec), one at a time")
        raise UnknownOpError(f"op spec must look like 'name' or 'name(arg, ...)', got {spec!r}")
    name, arg_text = m.group(1), m.group(2)
    if not arg_text:
        return name, ()
    try:
        node = ast.parse(f"f({arg_text})", mode="eval").body
        if node.keywords:
            raise SettingError("write arguments positionally, e.g. conv(5), not conv(kernel_size=5)")
        args = tuple(a.id if isinstance(a, ast.Name) else ast.literal_eval(a) for a in node.args)
    except (SyntaxError, ValueError) as e:
        raise UnknownOpError(f"cannot read the arguments of op spec {spec!r}: {e}") from None
    return name, args


def parallel(*specs: str) -> str:
    """The spec of ``specs`` side by side on one edge, summed: the parts (those of parallel
    specs among them included) sorted and joined by ``" + "``. Equal multisets of ops give
    equal strings, and one plain spec comes back unchanged.

    >>> parallel("skip_connect", "sep_conv_3x3")
    'sep_conv_3x3 + skip_connect'
    >>> parallel("avg_pool_3x3 + max_pool_3x3", "avg_pool_3x3")
    'avg_pool_3x3 + avg_pool_3x3 + max_pool_3x3'
    >>> parallel("conv(5)")
    'conv(5)'
    """
    parts = [part for spec in specs for part in split(spec)]
    if not parts:
        raise UnknownOpError("parallel() needs at least one op spec")
    return parts[0] if len(parts) == 1 else " + ".join(sorted(parts))


def split(spec: str) -> tuple[str, ...]:
    """The parts of a parallel spec, in its order; ``(spec,)`` for a plain spec.

    >>> split("sep_conv_3x3 + skip_connect")
    ('sep_conv_3x3', 'skip_connect')
    >>> split("dropout(0.2)")
    ('dropout(0.2)',)
    """
    if not isinstance(spec, str):
        raise UnknownOpError(f"an op spec is a string such as 'sep_conv_3x3' or 'conv(5)', got {spec!r}")
    parts = _parts(spec)
    if parts is None:
        raise UnknownOpError(f"cannot read op spec {spec!r}: write one op, 'name' or 'name(arg, ...)', or several "
                             "summed on one edge, 'name + name'")
    return parts


def _parts(spec: str) -> tuple[str, ...] | None:
    """The operands of the top-level ``+`` of ``spec`` (``None`` if it does not parse);
    a ``+`` inside an op's arguments does not split."""
    if "+" not in spec:
        return (spec,)
    text = spec.strip()
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    parts, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            stack += [node.right, node.left]
        else:
            parts.append(ast.get_source_segment(text, node))
    return (spec,) if len(parts) == 1 else tuple(parts)


def known_ops() -> list[str]:
    """The registered op names, sorted."""
    return sorted(_REGISTRY)


def check(spec: str) -> str:
    """Return ``spec`` if its name is registered, else raise :class:`UnknownOpError`
    listing the known names."""
    name, _ = parse(spec)
    if name not in _REGISTRY:
        raise UnknownOpError(
            f"unknown op {name!r}; known ops: {', '.join(known_ops())}. "
            "Register new ones with archgraph.ops.register(name, factory)."
        )
    return spec


def check_parts(spec: str) -> str:
    """Return ``spec`` if each of its ops (the one op, or every part of a parallel spec) is
    registered, else raise :class:`UnknownOpError` naming the unknown one.

    >>> check_parts("sep_conv_3x3 + skip_connect")
    'sep_conv_3x3 + skip_connect'
    """
    for part in split(spec):
        check(part)
    return spec


def build(spec: str, ctx: OpContext) -> nn.Module:
    """Build the module named by ``spec`` for the placement ``ctx``."""
    name, args = parse(check(spec))
    try:
        return _REGISTRY[name](ctx, *args)
    except TypeError as e:
        raise UnknownOpError(f"op {spec!r} got arguments it cannot take: {e}") from None


# --- building blocks ------------------------------------------------------------------

def _conv(dim: int) -> type[nn.Module]:
    return (nn.Conv1d, nn.Conv2d)[_dim_index(dim)]


def _bn(dim: int) -> type[nn.Module]:
    return (nn.BatchNorm1d, nn.BatchNorm2d)[_dim_index(dim)]


def _dim_index(dim: int) -> int:
    if dim not in (1, 2):
        raise ShapeError(f"ops support 1-d and 2-d feature maps, got dim={dim}")
    return dim - 1


def _same_channels(ctx: OpContext, name: str) -> int:
    if ctx.in_channels != ctx.out_channels:
        raise SpaceError(
            f"op {name!r} keeps the channel count, but was placed from {ctx.in_channels} "
            f"to {ctx.out_channels} channels; use a convolution there"
        )
    return ctx.in_channels


class ReLUConvBN(nn.Sequential):
    """ReLU → Conv (no bias) → BatchNorm: DARTS' ``ReLUConvBN`` and NAS-Bench-201's ``nor_conv``."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, affine=True, dim=2):
        super().__init__(
            nn.ReLU(inplace=False),
            _conv(dim)(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            _bn(dim)(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU → depthwise (dilated) conv → pointwise conv → BatchNorm (DARTS ``DilConv``)."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, dilation, affine=True, dim=2):
        conv = _conv(dim)
        super().__init__(
            nn.ReLU(inplace=False),
            conv(c_in, c_in, kernel_size, stride, padding, dilation=dilation, groups=c_in, bias=False),
            conv(c_in, c_out, 1, bias=False),
            _bn(dim)(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convolutions, the first strided (DARTS ``SepConv``)."""

    def __init__(self, c_in, c_out, kernel_size, stride, padding, affine=True, dim=2):
        super().__init__(
            DilConv(c_in, c_in, kernel_size, stride, padding, 1, affine, dim),
            DilConv(c_in, c_out, kernel_size, 1, padding, 1, affine, dim),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset strided 1×1 convolutions, concatenated
    (DARTS ``FactorizedReduce``)."""

    def __init__(self, c_in, c_out, affine=True, dim=2):
        super().__init__()
        if c_out % 2:
            raise ShapeError(f"FactorizedReduce needs an even output channel count, got {c_out}")
        conv = _conv(dim)
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = conv(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = conv(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = _bn(dim)(c_out, affine=affine)
        self.dim = dim

    def forward(self, x):
        x = self.relu(x)
        shifted = x[:, :, 1:, 1:] if self.dim == 2 else x[:, :, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Zero(nn.Module):
    """The ``none`` op: zeros of the (strided) input's shape."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return _subsample(x, self.stride).mul(0.0)


class Noise(nn.Module):
    """RobustDARTS S4's ``noise`` op: the (strided) input replaced by ε ~ N(0, 1)."""

    def __init__(self, stride: int = 1):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return torch.randn_like(_subsample(x, self.stride))


def _subsample(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Every ``stride``-th position along the spatial axes of a 1-d or 2-d feature map."""
    if stride == 1:
        return x
    if x.dim() == 4:
        return x[:, :, ::stride, ::stride]
    return x[:, :, ::stride]


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "identity": nn.Identity,
}


class Dense(nn.Sequential):
    """Linear layer followed by an activation: one vertex of an MLP chain."""

    def __init__(self, in_features: int, width: int, activation: str = "relu"):
        if activation not in ACTIVATIONS:
            raise SettingError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")
        super().__init__(nn.Linear(in_features, width), ACTIVATIONS[activation]())
        self.out_features = width


# --- the registered ops ------------------------------------------------------------------

def _pool(kind: str):
    def factory(ctx: OpContext, kernel_size: int = 3):
        _same_channels(ctx, f"{kind}_pool")
        pad = kernel_size // 2
        i = _dim_index(ctx.dim)
        if kind == "max":
            return (nn.MaxPool1d, nn.MaxPool2d)[i](kernel_size, ctx.stride, pad)
        return (nn.AvgPool1d, nn.AvgPool2d)[i](kernel_size, ctx.stride, pad, count_include_pad=False)

    return factory


def _skip(ctx: OpContext):
    """Identity; FactorizedReduce at stride 2 (DARTS); a 1×1 ReLUConvBN where only the
    channel count changes (NAS-Bench-201's stride-1 reduction)."""
    if ctx.stride == 1 and ctx.in_channels == ctx.out_channels:
        return nn.Identity()
    if ctx.stride == 1:
        return ReLUConvBN(ctx.in_channels, ctx.out_channels, 1, 1, 0, ctx.affine, ctx.dim)
    return FactorizedReduce(ctx.in_channels, ctx.out_channels, ctx.affine, ctx.dim)


def _sep(k: int):
    return lambda ctx: SepConv(ctx.in_channels, ctx.out_channels, k, ctx.stride, k // 2, ctx.affine, ctx.dim)


def _dil(k: int):
    return lambda ctx: DilConv(ctx.in_channels, ctx.out_channels, k, ctx.stride, k - 1, 2, ctx.affine, ctx.dim)


def _nor_conv(k: int):
    return lambda ctx: ReLUConvBN(ctx.in_channels, ctx.out_channels, k, ctx.stride, k // 2, ctx.affine, ctx.dim)


def _conv_7x1_1x7(ctx: OpContext):
    c = _same_channels(ctx, "conv_7x1_1x7")
    if ctx.dim != 2:
        raise ShapeError("conv_7x1_1x7 needs 2-d feature maps")
    s = ctx.stride
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, (1, 7), stride=(1, s), padding=(0, 3), bias=False),
        nn.Conv2d(c, c, (7, 1), stride=(s, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(c, affine=ctx.affine),
    )


def _plain_conv(ctx: OpContext, kernel_size: int = 3):
    """conv(k): a k×k convolution with bias and 'same' padding (the FaDE edge op)."""
    return _conv(ctx.dim)(ctx.in_channels, ctx.out_channels, kernel_size, ctx.stride, kernel_size // 2)


def _conv_bn(ctx: OpContext, kernel_size: int = 3):
    conv = _conv(ctx.dim)(ctx.in_channels, ctx.out_channels, kernel_size, ctx.stride, kernel_size // 2, bias=False)
    return nn.Sequential(conv, _bn(ctx.dim)(ctx.out_channels, affine=ctx.affine))


def _conv_bn_relu(ctx: OpContext, kernel_size: int = 3):
    return nn.Sequential(*_conv_bn(ctx, kernel_size), nn.ReLU(inplace=False))


def _relu_conv_bn(ctx: OpContext, kernel_size: int = 3):
    return ReLUConvBN(ctx.in_channels, ctx.out_channels, kernel_size, ctx.stride, kernel_size // 2, ctx.affine, ctx.dim)


def _zero(ctx: OpContext):
    _same_channels(ctx, "none")
    return Zero(ctx.stride)


def _noise(ctx: OpContext):
    _same_channels(ctx, "noise")
    return Noise(ctx.stride)


def _dense(ctx: OpContext, width: int, activation: str = "relu"):
    return Dense(ctx.in_channels, int(width), activation)


def _dropout(ctx: OpContext, p: float = 0.2):
    _same_channels(ctx, "dropout")
    if ctx.stride != 1:
        raise SpaceError(f"dropout keeps the resolution; it cannot be placed with stride {ctx.stride}")
    return nn.Dropout(p)


for _name, _factory in {
    "none": _zero,
    "noise": _noise,
    "skip_connect": _skip,
    "max_pool_3x3": _pool("max"),
    "avg_pool_3x3": _pool("avg"),
    "max_pool": _pool("max"),
    "avg_pool": _pool("avg"),
    "sep_conv_3x3": _sep(3),
    "sep_conv_5x5": _sep(5),
    "sep_conv_7x7": _sep(7),
    "dil_conv_3x3": _dil(3),
    "dil_conv_5x5": _dil(5),
    "conv_7x1_1x7": _conv_7x1_1x7,
    "nor_conv_1x1": _nor_conv(1),
    "nor_conv_3x3": _nor_conv(3),
    "factorized_reduce": lambda ctx: FactorizedReduce(ctx.in_channels, ctx.out_channels, ctx.affine, ctx.dim),
    "conv": _plain_conv,
    "conv_bn": _conv_bn,
    "conv_bn_relu": _conv_bn_relu,
    "relu_conv_bn": _relu_conv_bn,
    "dense": _dense,
    "dropout": _dropout,
}.items():
    register(_name, _factory)
