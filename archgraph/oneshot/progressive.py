"""DrNAS' progressive search: partial channels that widen, and ops pruned, from stage to stage.

DrNAS (Chen et al., ICLR 2021, §2.4 "progressive learning scheme") searches the DARTS space
directly on a large network by letting each mixed edge see only a ``1/K`` share of its input's
channels (partial channels, after PC-DARTS) and, stage after stage, pruning the weakest ops of
every edge and widening the share. This module reproduces the reference code
(xiangning-chen/DrNAS, ``DARTS-space/train_search.py``, ``model_search.py``, ``net2wider.py``,
``utils.py``) on :class:`~archgraph.oneshot.supernet.Supernet`:

* **Partial channels** (:class:`PartialMixedOp`, :func:`partial_channels`): an edge of a cell
  with ``C`` channels runs its candidate ops on the first ``C / K`` channels of its input; the
  other channels bypass them (max-pooled 2 × 2 on a reduction edge, whose ops halve the
  resolution) and are concatenated after the ops' mixture; a channel shuffle with ``K``
  groups follows, so that the next edge sees other channels first. ``C`` must be a multiple
  of every ``K`` (the reference's reshape fails otherwise).
* **Pruning** (:func:`prune`): every edge keeps the ``keep`` ops of largest α (ties: the
  earlier op), in their order; the others are removed with their α entries. The reference
  keeps them and masks their mixing weight to zero instead — its Dirichlet sample over all
  ops, masked and renormalised, has the distribution of the Dirichlet over the kept ops (the
  Dirichlet's subcomposition property), and its genotype's masked softmax is the softmax over
  the kept ops, so removing them gives the same search with fewer parameters.
* **Widening** (:func:`widen`): when ``K`` drops (6 → 4), every candidate is rebuilt on
  ``C / K`` channels and its weights copied: the old channels keep their places, each new
  channel is a copy of a uniformly drawn old one (Net2Wider's copy without its rescaling, as
  the reference's ``InChannelWider`` / ``OutChannelWider`` / ``BNWider``). A depthwise
  convolution draws its own new channels and the pointwise convolution after it reads them
  in the same order; batch norm follows the convolution before it; a convolution reading a
  tensor whose channels no earlier layer of the op widened (the op's input) draws its input
  copies at random, as the reference does.
* **Stages** (:func:`train_progressive`): ``K`` = 6 then 4, 25 + 25 epochs, the ops pruned to 4
  per edge between the stages (``num_keeps = [7, 4]``: the reference never uses the 7), the
  weights' learning rate one cosine over all 50 epochs, and in every stage a warm-up of 10
  epochs in which only the weights train (``if epoch >= 10`` on the stage's epoch count).

Differences from the reference, all in what carries over between stages: its SGD momentum
buffers are widened and kept, and its α optimiser (Adam) keeps its moments; here each stage is
one :func:`~archgraph.oneshot.bilevel.train_bilevel` call (``start_epoch`` / ``end_epoch`` of
one schedule), whose optimisers start fresh. The data order restarts from ``seed`` each stage.
NAS-Bench-201's progressive run (``201-space/train_search_progressive.py``: K 4 → 2, 5 → 3 ops,
50 + 50 epochs) is not reproduced: :class:`~archgraph.oneshot.nb201.NB201Supernet`'s cells are
not :class:`~archgraph.oneshot.supernet.MixedOp` edges this module can rebuild.

Examples
--------
>>> import torch
>>> from archgraph.oneshot.supernet import build_supernet
>>> net = build_supernet("darts", input_shape=(1, 8, 8), num_classes=10, C=12, layers=3, seed=0)
>>> partial_channels(net, 6)
>>> edge = net.choice("normal", (0, 2))
>>> edge.k, edge.candidates[4][0][1].in_channels         # sep_conv_3x3 on 12 / 6 channels
(6, 2)
>>> prune(net, 4)
>>> len(edge), len(edge.alpha)
(4, 4)
>>> widen(net, 4, generator=torch.Generator().manual_seed(0))
>>> edge = net.choice("normal", (0, 2))
>>> edge.k, net(torch.randn(2, 1, 8, 8)).shape
(4, torch.Size([2, 10]))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..errors import BudgetError, SettingError, ShapeError
from ..ops import FactorizedReduce
from .bilevel import train_bilevel
from .supernet import MixedOp, SearchCell, Supernet, _candidate

__all__ = ["DRNAS_STAGES", "PartialMixedOp", "ProgressiveResult", "partial_channels", "prune", "train_progressive",
           "widen"]

#: DrNAS' stages on the DARTS space (reference ``DARTS-space/train_search.py``): partial-channel K per
#: stage, ops each edge keeps from that stage on (``None``: all), epochs per stage, α warm-up epochs per stage
DRNAS_STAGES = {"partial_channels": (6, 4), "keep": (None, 4), "stage_epochs": (25, 25), "warmup": (10, 10)}


class PartialMixedOp(MixedOp):
    """A mixed edge on partial channels (DrNAS after PC-DARTS): the ops see ``C // k`` of the ``C`` input channels.

    Built from a :class:`~archgraph.oneshot.supernet.MixedOp`, whose ``alpha``, relaxation,
    noise generator and shared draw it keeps, with fresh candidates on ``C // k`` channels
    (:func:`partial_channels`), or from a wider partial edge (:func:`widen`).

    ``forward(x)``: the Choice's mixture of its ops on ``x[:, :C // k]``, concatenated with the
    other channels (max-pooled with kernel and stride 2 when the ops reduce the resolution),
    then shuffled: with ``k`` groups of ``C // k`` channels, channel ``g · (C // k) + i`` moves to
    ``i · k + g``.
    """

    def __init__(self, mixed: MixedOp, candidates: Sequence[nn.Module], *, C: int, stride: int, k: int):
        super().__init__(candidates, mixed.names, mixed.relaxation, alpha=mixed.alpha, init_std=0.0,
                         generator=mixed.generator, draws=mixed._draws, key=mixed._key)
        self.C, self.stride, self.k = C, stride, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.k == 1:  # every channel through the ops, as the reference's k = 1
            return super().forward(x)
        c = x.shape[1] // self.k
        out = super().forward(x[:, :c])
        rest = x[:, c:]
        if out.shape[2:] != rest.shape[2:]:
            rest = (F.max_pool2d if rest.dim() == 4 else F.max_pool1d)(rest, 2, 2)
        return channel_shuffle(torch.cat([out, rest], dim=1), self.k)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, partial_channels={self.k}"


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: ``groups`` groups of ``C / groups`` channels interleaved.

    >>> channel_shuffle(torch.arange(6.0).reshape(1, 6, 1, 1), 3).flatten().tolist()
    [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    """
    n, c = x.shape[:2]
    return x.reshape(n, groups, c // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


def partial_channels(supernet: Supernet, k: int) -> None:
    """Make every mixed edge a :class:`PartialMixedOp` with ``K = k``: fresh candidate ops on
    ``C // k`` channels (drawn from torch's global generator, as module constructors draw), the
    same α. The first stage of DrNAS' search, which builds its network this way.

    Raises
    ------
    SettingError, ShapeError
        If ``k`` is not a positive int dividing every cell's channel count, or an edge is
        already partial (use :func:`widen`).
    """
    _check_k(supernet, k)
    for cell, j, mixed, C, stride in _edges(supernet):
        if isinstance(mixed, PartialMixedOp):
            raise SettingError(f"the supernet's edges already run on partial channels (K = {mixed.k}); use "  # noqa: TRY004
                             "widen() to change K")
        candidates = [_candidate(name, C // k, stride, cell.dim).to(mixed.alpha.device) for name in mixed.names]
        cell.edge_ops[j] = PartialMixedOp(mixed, candidates, C=C, stride=stride, k=k)


def widen(supernet: Supernet, k: int, *, generator: torch.Generator | None = None) -> None:
    """Lower every partial edge's ``K`` to ``k``: its ops rebuilt on ``C // k`` channels, weights
    copied as the reference's Net2Wider copy does (see the module docstring). ``generator``
    draws the channels copied (``None``: torch's global generator).

    Raises
    ------
    SettingError, ShapeError
        If an edge is not partial, or ``k`` does not lower its ``K`` or divide its channels.
    """
    _check_k(supernet, k)
    for cell, j, mixed, C, stride in _edges(supernet):
        if not isinstance(mixed, PartialMixedOp) or k >= mixed.k:
            now = mixed.k if isinstance(mixed, PartialMixedOp) else "none (all channels)"
            raise SettingError(f"widen lowers the partial-channel K of partial edges; this edge's K is {now}, asked "
                             f"for {k}: make the edges partial first with partial_channels(), and widen to a smaller K")
        candidates = []
        for name, old in zip(mixed.names, mixed.candidates):
            new = _candidate(name, C // k, stride, cell.dim).to(_device_of(old, mixed.alpha))
            _copy_widened(old, new, generator)
            candidates.append(new)
        cell.edge_ops[j] = PartialMixedOp(mixed, candidates, C=C, stride=stride, k=k)


def prune(supernet: Supernet, keep: int) -> None:
    """Keep on every edge the ``keep`` ops of largest α (DrNAS ``utils.prune``), removing the
    others and their α entries; ties go to the earlier op, the kept ops stay in order. An edge
    with ``keep`` ops or fewer stays as it is. Every cell of a type shares the edge's new α.

    Raises
    ------
    SettingError
        If ``keep`` is not a positive int.
    """
    _check_supernet(supernet)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise SettingError(f"keep is the number of ops each edge keeps, an int of at least 1; got {keep!r}")
    for cell_type in supernet.cell_types:
        for edge in supernet.edges(cell_type):
            mixed_ops = supernet.edge_choices(cell_type, edge)
            alpha = mixed_ops[0].alpha
            if len(alpha) <= keep:
                continue
            values = alpha.detach().tolist()
            order = sorted(range(len(values)), key=lambda i: (-values[i], i))
            kept = sorted(order[:keep])
            new_alpha = nn.Parameter(alpha.detach()[kept].clone(), requires_grad=alpha.requires_grad)
            for mixed in mixed_ops:
                if mixed.fixed is not None:
                    raise SettingError("prune removes candidates; release the fixed edges first (fix(None))")
                mixed.candidates = nn.ModuleList([mixed.candidates[i] for i in kept])
                mixed.names = tuple(mixed.names[i] for i in kept)
                mixed.alpha = new_alpha


@dataclass
class ProgressiveResult:
    """What :func:`train_progressive` did.

    Attributes
    ----------
    history:
        :func:`~archgraph.oneshot.bilevel.train_bilevel`'s rows of every stage, in order.
    stages:
        Per stage: its ``epochs`` ``[start, end)``, ``partial_channels`` (K), ``ops_per_edge`` (the
        most any edge has in the stage), ``warmup`` epochs and ``seconds`` (pruning, widening and
        training).
    stopped_early:
        Whether ``on_epoch`` stopped the search.
    """

    history: list[dict] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    stopped_early: bool = False


def train_progressive(supernet: Supernet, weight_data: Dataset, arch_data: Dataset, *, epochs: int,
                      partial_channels: Sequence[int] = DRNAS_STAGES["partial_channels"],
                      keep: Sequence[int | None] = DRNAS_STAGES["keep"], stage_epochs: Sequence[int] | None = None,
                      warmup: Sequence[int] | None = None, generator: torch.Generator | None = None,
                      on_epoch: Callable | None = None, **train_kwargs) -> ProgressiveResult:
    """DrNAS' progressive search (reference ``DARTS-space/train_search.py``): stages of bi-level
    training, the edges' partial channels widening and their ops pruned between stages.

    Stage ``i`` first prunes every edge to ``keep[i]`` ops (``None``: no pruning), then sets the
    edges' partial-channel ``K`` to ``partial_channels[i]`` (:func:`partial_channels` for the
    first stage's fresh narrow ops, :func:`widen` after), then trains epochs ``[s_i, s_i +
    stage_epochs[i])`` of one schedule of ``epochs`` epochs (``train_bilevel(start_epoch=s_i,
    end_epoch=..., epochs=epochs)``: the weights' cosine learning rate runs over the whole
    search), α frozen in the stage's first ``warmup[i]`` epochs.

    Parameters
    ----------
    supernet:
        A :class:`~archgraph.oneshot.supernet.Supernet` with plain (full-channel) edges; DrNAS
        uses the Dirichlet relaxation. Changed in place.
    weight_data, arch_data, epochs, on_epoch, **train_kwargs:
        As for :func:`~archgraph.oneshot.bilevel.train_bilevel` (``arch_warmup``,
        ``start_epoch`` and ``end_epoch`` are set per stage).
    partial_channels, keep:
        Per stage, K and the ops kept (reference: ``(6, 4)`` and ``(None, 4)``; its first
        ``num_keeps`` entry, 7, is never used).
    stage_epochs:
        Epochs per stage, summing to ``epochs``; default ``epochs`` split evenly, the
        earlier stages taking the remainder (reference: 25 + 25 of 50).
    warmup:
        α warm-up epochs per stage, each below its stage's length; default
        ``round(0.4 · stage_epochs[i])``, the reference's 10 of every 25 at other budgets.
    generator:
        Draws the channels :func:`widen` copies (``None``: torch's global generator).

    Examples
    --------
    >>> from torch.utils.data import Subset
    >>> from archgraph.data import fade_split, load
    >>> from archgraph.oneshot.supernet import build_supernet
    >>> _, arch, weight = fade_split(load("digits").train, seed=0)
    >>> net = build_supernet("s3", input_shape=(1, 8, 8), num_classes=10, C=12, layers=3, relaxation="dirichlet", seed=0)
    >>> result = train_progressive(net, Subset(weight, range(64)), Subset(arch, range(64)), epochs=2, keep=(None, 2),
    ...                            batch_size=32, progress=False)
    >>> [(s["epochs"], s["partial_channels"], s["ops_per_edge"]) for s in result.stages]
    [((0, 1), 6, 3), ((1, 2), 4, 2)]
    """
    for name in ("arch_warmup", "start_epoch", "end_epoch"):
        if name in train_kwargs:
            raise TypeError(f"train_progressive sets {name} per stage; give warmup=... (per stage) instead")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise SettingError(f"epochs must be an int of at least 1, got {epochs!r}")
    ks, keeps = tuple(partial_channels), tuple(keep)
    n = len(ks)
    if n == 0 or len(keeps) != n:
        raise SettingError(f"partial_channels and keep give one entry per stage, and at least one stage; got {n} and "
                         f"{len(keeps)} (DrNAS: (6, 4) and (None, 4))")
    if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks) or any(
            b <= a for a, b in zip(ks[1:], ks)):
        raise SettingError(f"partial_channels are the stages' K, ints >= 1 that decrease (the edges widen); got {ks}")
    for k in ks:
        _check_k(supernet, k)
    if any(kept is not None and (isinstance(kept, bool) or not isinstance(kept, int) or kept < 1) for kept in keeps):
        raise SettingError(f"keep gives each stage the ops every edge keeps, an int >= 1 or None (all); got {keeps}")
    if stage_epochs is None:
        stage_epochs = tuple(epochs // n + (1 if i < epochs % n else 0) for i in range(n))
    stage_epochs = tuple(stage_epochs)
    if (len(stage_epochs) != n or any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in stage_epochs)
            or sum(stage_epochs) != epochs):
        raise BudgetError(f"stage_epochs gives each of the {n} stages at least one epoch and sums to epochs={epochs}; "
                         f"got {stage_epochs}")
    warmup = tuple(round(0.4 * e) for e in stage_epochs) if warmup is None else tuple(warmup)
    if len(warmup) != n or any(isinstance(w, bool) or not isinstance(w, int) or not 0 <= w < e
                               for w, e in zip(warmup, stage_epochs)):
        raise SettingError(f"warmup gives each stage its α warm-up epochs, an int in [0, stage epochs - 1]; got {warmup} "
                         f"for stage_epochs {stage_epochs}")
    result = ProgressiveResult()
    start = 0
    for i, (k, kept, length, w) in enumerate(zip(ks, keeps, stage_epochs, warmup)):
        began = time.perf_counter()
        if kept is not None:
            prune(supernet, kept)
        if i == 0:
            _make_partial(supernet, k)
        elif k != ks[i - 1]:
            widen(supernet, k, generator=generator)
        run = train_bilevel(supernet, weight_data, arch_data, epochs=epochs, start_epoch=start, end_epoch=start + length,
                            arch_warmup=start + w, on_epoch=on_epoch, **train_kwargs)
        result.history += run.history
        ops_per_edge = max(len(supernet.choice(t, e)) for t in supernet.cell_types for e in supernet.edges(t))
        result.stages.append({"epochs": (start, start + length), "partial_channels": k, "ops_per_edge": ops_per_edge,
                              "warmup": w, "seconds": time.perf_counter() - began})
        if run.stopped_early:
            result.stopped_early = True
            break
        start += length
    return result


_make_partial = partial_channels  # train_progressive's parameter of that name hides the function


def _check_supernet(supernet: Supernet) -> None:
    if not isinstance(supernet, Supernet):
        raise TypeError(f"DrNAS' progressive scheme rebuilds the mixed edges of an archgraph.oneshot.Supernet (the "
                        f"DARTS supernet); got {type(supernet).__name__}")


def _edges(supernet: Supernet):
    """``(cell, j, edge op, C, stride)`` for every mixed edge of every cell."""
    _check_supernet(supernet)
    for cell in supernet.cells:
        C = _cell_channels(cell)
        for j, ((u, _), mixed) in enumerate(zip(cell.edges, cell.edge_ops)):
            yield cell, j, mixed, C, 2 if cell.reduction and u < 2 else 1


def _cell_channels(cell: SearchCell) -> int:
    """The channel count ``C`` of a search cell's nodes (its preprocessing's output)."""
    return cell.preprocess1[1].out_channels


def _check_k(supernet: Supernet, k: int) -> None:
    _check_supernet(supernet)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SettingError(f"the partial-channel K is an int of at least 1, got {k!r}")
    channels = sorted({_cell_channels(cell) for cell in supernet.cells})
    bad = [c for c in channels if c % k]
    if bad:
        raise ShapeError(f"partial channels with K = {k} split each cell's channels into K groups, but the supernet's "
                         f"cells have {', '.join(map(str, channels))} channels ({', '.join(map(str, bad))} not divisible "
                         f"by {k}); build it with C a multiple of every K (DrNAS' K = 6 then 4: C = 12, 24, 36, ...)")


def _device_of(module: nn.Module, fallback: torch.Tensor) -> torch.device:
    for tensor in module.state_dict().values():
        return tensor.device
    return fallback.device


def _extend(old: int, new: int, generator: torch.Generator | None) -> torch.Tensor:
    """The channel map of a widening: the ``old`` channels in place, then ``new − old`` uniform draws of them."""
    drawn = torch.randint(old, (new - old,), generator=generator)
    return torch.cat([torch.arange(old), drawn])


@torch.no_grad()
def _copy_widened(old: nn.Module, new: nn.Module, generator: torch.Generator | None) -> None:
    """Copy ``old``'s weights into ``new``, the same op on more channels (see :func:`widen`)."""
    if isinstance(old, nn.modules.conv._ConvNd):
        _copy_conv(old, new, None, generator)
        return
    if isinstance(old, nn.modules.batchnorm._BatchNorm):
        _copy_bn(old, new, None, generator)
        return
    if isinstance(old, FactorizedReduce):  # two parallel convolutions, concatenated before the batch norm
        one = _copy_conv(old.conv_1, new.conv_1, None, generator)
        two = _copy_conv(old.conv_2, new.conv_2, None, generator)
        _copy_bn(old.bn, new.bn, torch.cat([one, two + old.conv_1.out_channels]), generator)
        return
    index = None  # the channel map of the tensor the last widened layer produced
    for o, n in zip(old.children(), new.children()):
        if type(o) is not type(n):
            raise TypeError(f"cannot widen {type(old).__name__}: its layers differ ({type(o).__name__} vs "
                            f"{type(n).__name__})")
        if isinstance(o, nn.modules.conv._ConvNd):
            index = _copy_conv(o, n, index, generator)
        elif isinstance(o, nn.modules.batchnorm._BatchNorm):
            index = _copy_bn(o, n, index, generator)
        elif isinstance(o, FactorizedReduce) or any(True for _ in o.children()):
            _copy_widened(o, n, generator)
            index = None
        elif o.state_dict():
            raise TypeError(f"cannot widen a {type(o).__name__} inside {type(old).__name__}: only convolutions and "
                            "batch norms have channels to copy")


def _copy_conv(old: nn.modules.conv._ConvNd, new: nn.modules.conv._ConvNd, index: torch.Tensor | None,
               generator: torch.Generator | None) -> torch.Tensor:
    out = _extend(old.out_channels, new.out_channels, generator).to(old.weight.device)
    if old.groups > 1:  # depthwise: one filter per channel, the new ones copies of drawn ones
        new.weight.copy_(old.weight[out])
    else:
        inp = index if index is not None and len(index) == new.in_channels else _extend(
            old.in_channels, new.in_channels, generator).to(old.weight.device)
        new.weight.copy_(old.weight[out][:, inp])
    if old.bias is not None:
        new.bias.copy_(old.bias[out])
    return out


def _copy_bn(old: nn.modules.batchnorm._BatchNorm, new: nn.modules.batchnorm._BatchNorm, index: torch.Tensor | None,
             generator: torch.Generator | None) -> torch.Tensor:
    if index is None or len(index) != new.num_features:
        index = _extend(old.num_features, new.num_features, generator)
    index = index.to(old.running_mean.device if old.running_mean is not None else "cpu")
    for name in ("running_mean", "running_var", "weight", "bias"):
        if getattr(old, name) is not None:
            getattr(new, name).copy_(getattr(old, name)[index])
    if old.num_batches_tracked is not None:
        new.num_batches_tracked.copy_(old.num_batches_tracked)
    return index
