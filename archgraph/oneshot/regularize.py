"""Regularisers of the architecture loss, called by the bi-level trainer as ``regularizer(model, epoch)``.

A regulariser is any callable ``(model, epoch) -> Tensor`` whose value is added to the
architecture loss ``L(α, ω)`` (see :func:`archgraph.oneshot.train_bilevel`). One that
also has a ``coefficients(epoch, rows=...)`` method gets its coefficients recorded in the
trainer's history.

:class:`MaxNorm` is FaDE's schedule (Neumeier, Stier & Granitzer 2024, §2.2, Fig. 2a): the
architecture loss is ``L(α, ω) + Σ_i r_i · ‖α_i‖∞`` with ``α_i`` row ``i``'s probabilities
and ``r_i`` decreasing linearly over the epochs, from positive (a row's favourite is
penalised: keep exploring) to negative (its favourite is rewarded: commit).
"""

from __future__ import annotations

import torch
from torch import nn

from .bilevel import _rows

__all__ = ["MaxNorm"]


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
            raise ValueError(f"epochs is the length of the schedule, an int of at least 1; got {epochs!r}")
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 1):
            raise ValueError(f"rows is the number of Choices, an int of at least 1 (or None); got {rows!r}")
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
            raise ValueError("MaxNorm.coefficients needs the number of rows: pass rows=... here or to MaxNorm(...)")
        if self.rows is not None and rows != self.rows:
            raise ValueError(f"this MaxNorm was made for {self.rows} rows, asked for {rows}")
        if epoch < 0:
            raise ValueError(f"epochs count from 0, got epoch={epoch}")
        last = self.epochs - 1
        ends = [last * (i + 1) / rows if self.cell_dependent else last for i in range(rows)]
        fractions = [min(1.0, epoch / t) if t > 0 else 0.0 for t in ends]
        return [(1.0 - f) * self.start + f * self.end for f in fractions]  # exactly start and end at the ends

    def __call__(self, model: nn.Module, epoch: float) -> torch.Tensor:
        """``Σ_i r_i(epoch) · max(α_i)``, differentiable in the architecture parameters."""
        rows = _rows(model)
        if not rows:
            raise ValueError("MaxNorm regularises the rows of a model with Choices; this model has none")
        r = self.coefficients(epoch, rows=len(rows))
        return sum(r_i * choice.probabilities().max() for r_i, choice in zip(r, rows))

    def __repr__(self) -> str:
        rows = "" if self.rows is None else f", rows={self.rows}"
        return (f"MaxNorm(epochs={self.epochs}, start={self.start}, end={self.end}, "
                f"cell_dependent={self.cell_dependent}{rows})")
