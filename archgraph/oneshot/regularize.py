"""Regularisers of bi-level training: terms of the architecture loss, and Cutout for the weights.

An architecture regulariser is any callable ``(model, epoch) -> Tensor`` whose value is
added to the architecture loss ``L(α, ω)`` (see :func:`archgraph.oneshot.train_bilevel`).
One that also has a ``coefficients(epoch, rows=...)`` method gets its coefficients
recorded in the trainer's history. Here:

* :class:`MaxNorm`, FaDE's schedule (Neumeier, Stier & Granitzer 2024, §2.2, Fig. 2a): the
  architecture loss is ``L(α, ω) + Σ_i r_i · ‖α_i‖∞`` with ``α_i`` row ``i``'s probabilities
  and ``r_i`` decreasing linearly over the epochs, from positive (a row's favourite is
  penalised: keep exploring) to negative (its favourite is rewarded: commit);
* :class:`ZeroOneLoss`, FairDARTS' push of every sigmoid weight towards 0 or 1 (§3);
* :class:`DirichletKL`, DrNAS' distance of the Dirichlet concentrations from a prior (§2).

DrNAS' default regulariser, an L2 penalty on α with factor 1e-3, is the α optimiser's weight
decay: its reference code passes that factor to Adam as ``weight_decay``, which adds ``λα``
to the gradient, the gradient of ``λ/2 · ‖α‖²``. Use ``train_bilevel(...,
arch_weight_decay=1e-3)``; there is no separate class.

The weights are regularised by the trainer's ``weight_decay`` (RobustDARTS' L2 factor),
``drop_path_prob`` and :class:`Cutout` (RobustDARTS §5: stronger regularisation of the inner
objective gives flatter, better-generalising architectures).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SettingError, ShapeError
from ..relax import Choice, Dirichlet, Relaxation, Sigmoid, choices, concentration

__all__ = ["Cutout", "DirichletKL", "MaxNorm", "ZeroOneLoss"]


class MaxNorm:
    """FaDE's max-norm regulariser ``Σ_i r_i(epoch) · max_k α_{i,k}`` (FaDE §2.2, Fig. 2a).

    ``α_i`` is row ``i``'s noise-free preference ``Choice.probabilities()`` — the paper
    writes ``α = Gumbel-softmax(α′)``; we use the noise-free quantity that FaDE-ranks
    multiply (:mod:`archgraph.ranks`), so the penalty does not depend on a Gumbel draw.
    The rows are the model's Choices in module order, Choices that share one ``alpha``
    counted once (0 = the shallowest row of a chain).

    Schedules, with ``E = epochs``, epoch ``e`` counted from 0 and ``d`` rows:

    * cell-independent: ``r(e) = (1 - f) · start + f · end`` with ``f = min(1, e / (E - 1))``
      for every row, i.e. ``start`` in the first epoch and ``end`` in the last (``start`` throughout
      when ``E = 1``);
    * cell-dependent ("shallower cells are regularised earlier"): row ``i`` reaches
      ``end`` at epoch ``t_i = (E - 1) · (i + 1) / d`` and stays there,
      ``r_i(e) = (1 - f_i) · start + f_i · end`` with ``f_i = min(1, e / t_i)``; the deepest row follows the
      cell-independent schedule.

    FaDE gives the idea and plots ``r_i`` in ``[-1, 1]`` over 50 epochs (Fig. 2a) but prints
    no formula: these are our reading of that figure.

    Parameters
    ----------
    epochs:
        Length of the schedule, normally the trainer's ``epochs``; later epochs keep ``end``.
    start, end:
        ``r`` in the first epoch and from the (row's) last scheduled epoch on.
    cell_dependent:
        Whether shallower rows reach ``end`` earlier.
    rows:
        The number of rows ``d``, if known; otherwise it is taken from the model on each call.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from archgraph.relax import Choice
    >>> reg = MaxNorm(epochs=5, cell_dependent=True)
    >>> reg.coefficients(2, rows=2)
    [-1.0, 0.0]
    >>> model = nn.Sequential(Choice([nn.Identity(), nn.ReLU()]), Choice([nn.Identity(), nn.Tanh()]))
    >>> with torch.no_grad():
    ...     for p in model.parameters():
    ...         _ = p.zero_()
    >>> reg(model, epoch=0)                     # r = [1, 1], max α = [0.5, 0.5]
    tensor(1., grad_fn=<AddBackward0>)
    """

    def __init__(self, epochs: int, *, start: float = 1.0, end: float = -1.0, cell_dependent: bool = False,
                 rows: int | None = None):
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise SettingError(f"epochs is the length of the schedule, an int of at least 1; got {epochs!r}")
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
            raise SettingError(f"rows is the number of Choices, an int of at least 1 (or None); got {rows!r}")
        self.epochs = epochs
        self.start = float(start)
        self.end = float(end)
        self.cell_dependent = bool(cell_dependent)
        self.rows = rows

    def coefficients(self, epoch: float, rows: int | None = None) -> list[float]:
        """``r_i`` at ``epoch`` for each of the ``rows`` rows, shallowest first.

        ``rows`` defaults to the one given to the constructor.

        >>> MaxNorm(epochs=3).coefficients(1, rows=2)
        [0.0, 0.0]
        """
        rows = self.rows if rows is None else rows
        if rows is None:
            raise SettingError("MaxNorm.coefficients needs the number of rows: pass rows=... here or to MaxNorm(...)")
        if self.rows is not None and rows != self.rows:
            raise SettingError(f"this MaxNorm was made for {self.rows} rows, asked for {rows}")
        if epoch < 0:
            raise SettingError(f"epochs count from 0, got epoch={epoch}")
        last = self.epochs - 1
        ends = [last * (i + 1) / rows if self.cell_dependent else last for i in range(rows)]
        fractions = [min(1.0, epoch / t) if t > 0 else 0.0 for t in ends]
        return [(1.0 - f) * self.start + f * self.end for f in fractions]  # exactly start and end at the ends

    def __call__(self, model: nn.Module, epoch: float) -> torch.Tensor:
        """``Σ_i r_i(epoch) · max(α_i)``, differentiable in the architecture parameters."""
        rows = _rows(model)
        if not rows:
            raise SettingError("MaxNorm regularises the rows of a model with Choices; this model has none")
        r = self.coefficients(epoch, rows=len(rows))
        return sum(r_i * choice.probabilities().max() for r_i, choice in zip(r, rows))

    def __repr__(self) -> str:
        rows = "" if self.rows is None else f", rows={self.rows}"
        return (f"MaxNorm(epochs={self.epochs}, start={self.start}, end={self.end}, "
                f"cell_dependent={self.cell_dependent}{rows})")


class ZeroOneLoss:
    """FairDARTS' zero-one loss ``−weight · mean((σ(α) − 0.5)²)`` (Chu et al. 2020, §3).

    Sigmoid weights compete with nobody (:class:`~archgraph.relax.Sigmoid`), so nothing
    drives them apart; this term rewards every ``σ(α)`` for leaving 0.5 towards 0 or 1, so
    that the discretisation (keep an op when ``σ ≥ 0.85``) loses little. As in FairDARTS'
    reference code (xiaomi-automl/FairDARTS, ``fairdarts/separate_loss.py``, default weight
    10), the mean runs over every entry of every α together, a shared α counted once. Every
    Choice of the model must use the sigmoid relaxation. The epoch is not used.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from archgraph.relax import Choice
    >>> model = Choice([nn.Identity(), nn.Tanh()], "sigmoid", alpha=nn.Parameter(torch.tensor([0.0, 100.0])))
    >>> ZeroOneLoss(weight=10.0)(model, epoch=0)       # −10 · mean(0², 0.5²)
    tensor(-1.2500, grad_fn=<MulBackward0>)
    """

    def __init__(self, weight: float = 10.0):
        self.weight = float(weight)

    def __call__(self, model: nn.Module, epoch: int) -> torch.Tensor:
        sigmoids = torch.cat([row.probabilities().reshape(-1) for row in _relaxed_rows(model, Sigmoid, self)])
        return -self.weight * (sigmoids - 0.5).pow(2).mean()

    def __repr__(self) -> str:
        return f"ZeroOneLoss(weight={self.weight})"


class DirichletKL:
    """DrNAS' ``weight · Σ_rows KL(Dir(β) ‖ Dir(prior · 1))``, ``β = elu(α) + 1`` (Chen et al. 2021, §2).

    The distance ``d(β, β̂)`` of DrNAS' objective with ``β̂ = prior · 1`` (the paper's
    anchor is 1), summed over the Choices (a shared α counted once); β is
    :func:`archgraph.relax.concentration`. The reference code (xiangning-chen/DrNAS,
    ``model_search.py``) scales the sum by ``reg_scale``, 1e-3 by default: that is
    ``weight``. Every Choice of the model must use the Dirichlet relaxation. The epoch is
    not used.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from archgraph.relax import Choice
    >>> model = Choice([nn.Identity(), nn.Tanh()], "dirichlet", alpha=nn.Parameter(torch.zeros(2)))
    >>> DirichletKL(weight=1.0)(model, epoch=0)       # β = (1, 1) is the prior itself
    tensor(0., grad_fn=<MulBackward0>)
    """

    def __init__(self, prior: float = 1.0, weight: float = 1e-3):
        if not prior > 0:
            raise SettingError(f"prior is the concentration β̂ of the anchor Dir(β̂ · 1), a positive number; got {prior!r}")
        self.prior = float(prior)
        self.weight = float(weight)

    def __call__(self, model: nn.Module, epoch: int) -> torch.Tensor:
        return self.weight * sum(self._kl(concentration(row.alpha)) for row in _relaxed_rows(model, Dirichlet, self))

    def _kl(self, beta: torch.Tensor) -> torch.Tensor:
        anchor = torch.distributions.Dirichlet(torch.full_like(beta, self.prior))
        return torch.distributions.kl_divergence(torch.distributions.Dirichlet(beta), anchor)

    def __repr__(self) -> str:
        return f"DirichletKL(prior={self.prior}, weight={self.weight})"


class Cutout:
    """Cutout with a probability that grows over the search (RobustDARTS §5; DeVries & Taylor 2017).

    Each image of a batch ``(batch, ..., height, width)`` has, with probability ``p``, a
    ``length × length`` square set to zero, the same square in every channel. Its centre is
    a uniformly drawn pixel and it is clipped at the image border, so squares near the
    border are smaller (the reference code, automl/RobustDARTS ``src/utils.py``, does the
    same; for an odd ``length`` its square is one pixel shorter, ours is ``length`` as
    named). Images are zeroed after normalisation there, i.e. set to the dataset mean.

    :func:`archgraph.oneshot.train_bilevel` applies it to the weight batches only, with
    ``p = prob · e / (epochs − 1)`` in epoch ``e`` (:meth:`probability`): the reference code
    raises the probability linearly from 0 in the first epoch to ``prob`` in the last (its
    search loaders share one transform, so there the architecture batches are cut out too;
    we regularise the inner, weight objective alone, as the paper frames it).

    Parameters
    ----------
    length:
        The side of the square in pixels (RobustDARTS: 16 on 32 × 32 images).
    prob:
        The largest probability, reached in the last epoch.
    dim:
        2 for images; 1 for signals ``(batch, ..., length)``, where a ``length``-long
        segment, the same in every channel, is zeroed instead of a square.

    Examples
    --------
    >>> import torch
    >>> cutout = Cutout(length=4, prob=1.0)
    >>> cutout.probability(epoch=1, epochs=5)
    0.25
    >>> cut = cutout(torch.ones(1, 3, 6, 6), generator=torch.Generator().manual_seed(0))
    >>> cut[0, 0].int()                 # centred at pixel (3, 5), clipped at the right border
    tensor([[1, 1, 1, 1, 1, 1],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 1, 1]], dtype=torch.int32)
    >>> bool((cut[:, 0] == cut[:, 2]).all())   # the same square in every channel
    True
    """

    def __init__(self, length: int = 16, prob: float = 1.0, dim: int = 2):
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise SettingError(f"length is the side of the cut-out square in pixels, an int of at least 1; got {length!r}")
        if not 0.0 <= prob <= 1.0:
            raise SettingError(f"prob is the largest probability of cutting out a square, in [0, 1]; got {prob!r}")
        if dim not in (1, 2):
            raise SettingError(f"dim is 2 (cut squares out of images) or 1 (segments out of signals); got {dim!r}")
        self.length = length
        self.prob = float(prob)
        self.dim = dim

    def probability(self, epoch: int, epochs: int) -> float:
        """``prob · epoch / (epochs − 1)``: 0 in the first epoch, ``prob`` in the last (0 when ``epochs = 1``)."""
        return 0.0 if epochs == 1 else self.prob * epoch / (epochs - 1)

    def __call__(self, x: torch.Tensor, *, prob: float | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` with a square cut out of each image with probability ``prob`` (default: ``self.prob``).

        Random numbers come from ``generator`` when given (drawn on its device), else from
        torch's default generator on ``x``'s device; ``x`` itself is not changed.
        """
        if x.dim() < 1 + self.dim:
            raise ShapeError(f"Cutout(dim={self.dim}) masks a batch of shape (batch, ..., "
                             f"{'height, width' if self.dim == 2 else 'length'}); got shape {tuple(x.shape)}: train "
                             "without cutout on data that are neither images nor signals")
        prob = self.prob if prob is None else prob
        n, height, width = len(x), x.shape[-2] if self.dim == 2 else 1, x.shape[-1]
        on = generator.device if generator is not None else x.device
        hit = torch.rand(n, generator=generator, device=on) < prob
        if self.dim == 1:  # one row of height 1: the segment
            x = x.unsqueeze(-2)
        top = torch.randint(height, (n,), generator=generator, device=on) - self.length // 2
        left = torch.randint(width, (n,), generator=generator, device=on) - self.length // 2
        hit, top, left = hit.to(x.device), top.to(x.device), left.to(x.device)
        rows = torch.arange(height, device=x.device)
        cols = torch.arange(width, device=x.device)
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + self.length)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + self.length)
        cut = hit[:, None, None] & in_rows[:, :, None] & in_cols[:, None, :]
        out = x * (~cut).to(x.dtype).reshape(n, *[1] * (x.dim() - 3), height, width)
        return out.squeeze(-2) if self.dim == 1 else out

    def __repr__(self) -> str:
        return f"Cutout(length={self.length}, prob={self.prob}{', dim=1' if self.dim == 1 else ''})"


def _rows(module: nn.Module) -> list[Choice]:
    """The Choices of ``module`` in module order, one per architecture parameter (shared ``alpha`` once)."""
    rows: dict[int, Choice] = {}
    for choice in choices(module):
        rows.setdefault(id(choice.alpha), choice)
    return list(rows.values())


def _relaxed_rows(model: nn.Module, relaxation: type[Relaxation], regularizer) -> list[Choice]:
    """The rows of ``model``, refused unless there are some and all use ``relaxation``."""
    rows = _rows(model)
    if not rows:
        raise SettingError(f"{regularizer!r} regularises the Choices of a model; {type(model).__name__} has none")
    for choice in rows:
        if not isinstance(choice.relaxation, relaxation):
            raise TypeError(f"{regularizer!r} is made for the {relaxation.__name__} relaxation, but a Choice of the "
                            f"model uses {choice.relaxation!r}; build the Choices with "
                            f"relaxation={relaxation.__name__.lower()!r}")
    return rows
