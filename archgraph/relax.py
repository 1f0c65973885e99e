"""One abstraction for every continuous relaxation: a :class:`Choice` between candidates.

DARTS relaxes which op sits on an edge, FaDE which cell sits in a row of a chain; GDAS,
FairDARTS and DrNAS only change *how* the architecture parameters ``alpha`` become mixing
weights. A :class:`Choice` holds the candidate modules and a :class:`Relaxation`:

* :class:`Softmax` — ``softmax(alpha)`` (DARTS, Liu et al. 2019, eq. 2);
* :class:`Gumbel` — ``softmax((alpha + g) / tau)``, ``g`` Gumbel(0, 1) noise; ``hard=True`` gives
  the straight-through one-hot ``onehot(argmax) - p.detach() + p`` (GDAS, Dong & Yang 2019;
  FaDE §2.2 and §3 train with the hard form, temperature 10);
* :class:`Sigmoid` — ``sigmoid(alpha)`` per candidate, no competition (FairDARTS, Chu et al. 2020);
* :class:`Dirichlet` — a reparameterised sample ``theta ~ Dir(elu(alpha) + 1)`` (DrNAS, Chen et al. 2021).

A hard Choice's output is the sampled candidate's, and :class:`Gumbel`'s ``estimator`` says
how ``alpha`` gets its gradient:

* ``"sampled"`` (the GDAS trick, Dong & Yang 2019, §3.2): only the sampled candidate runs; the
  output is ``w[k] * candidate_k(x) + sum(w[i] for i != k)``, ``w[k] = 1`` and the other
  weights 0 in value. As in the GDAS reference code, the unchosen weights are added (see
  :func:`unchosen`) so that gradients reach every ``alpha`` through them as well as through
  ``w[k]``;
* ``"all"`` (the straight-through Gumbel-softmax of Jang et al. 2017, §2.2, as DARTS' mixed op
  computes it): while ``alpha``'s gradient is taken (grad mode on and ``alpha.requires_grad``),
  every candidate runs and the output is ``sum(w[i] * candidate_i(x))``, so each ``w[i]`` gets
  ``<dL/dout, candidate_i(x)>``, the first-order change of the loss had ``i`` been drawn; a
  forward that does not need ``alpha``'s gradient (a weight step with ``alpha`` frozen, an
  evaluation) runs the sampled candidate alone, as the other weights are 0 in value.

A soft Choice runs every candidate except the ``none`` op (:class:`~archgraph.ops.Zero`,
whose weighted zeros add nothing to the output or any gradient) and sums their weighted outputs.

``Choice.probabilities()`` is the noise-free preference a relaxation ranks candidates by
(``softmax(alpha)`` for softmax, Gumbel and Dirichlet, ``sigmoid(alpha)`` for sigmoid): what
FaDE-ranks multiply and what magnitude-based selection reads.

Examples
--------
>>> import torch
>>> from torch import nn
>>> choice = Choice([nn.Identity(), nn.Tanh()], "softmax")
>>> with torch.no_grad():
...     _ = choice.alpha.zero_()
>>> choice(torch.ones(2))                                   # 0.5 · 1 + 0.5 · tanh(1)
tensor([0.8808, 0.8808], grad_fn=<AddBackward0>)
>>> hard = Choice([nn.Identity(), nn.Tanh()], Gumbel(tau=10.0, hard=True))
>>> out = hard(torch.ones(2))
>>> bool(torch.allclose(out, torch.ones(2)) or torch.allclose(out, torch.tanh(torch.ones(2))))
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SettingError, ShapeError
from .ops import Zero

__all__ = [
    "RELAXATIONS",
    "Choice",
    "Dirichlet",
    "Gumbel",
    "Relaxation",
    "Sigmoid",
    "Softmax",
    "arch_parameters",
    "as_relaxation",
    "choices",
    "unchosen",
    "concentration",
    "weight_parameters",
]


class Relaxation(ABC):
    """Turns a Choice's architecture parameters into mixing weights (last dimension = candidates)."""

    #: whether :meth:`weights` is one-hot in value, so that only one candidate needs to run
    hard: bool = False
    #: for a hard relaxation, which candidates run while α's gradient is taken: ``"sampled"`` or ``"all"``
    estimator: str = "sampled"

    @abstractmethod
    def weights(self, alpha: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The mixing weights of one forward pass (a fresh sample for stochastic relaxations)."""

    def probabilities(self, alpha: torch.Tensor) -> torch.Tensor:
        """The noise-free preference over candidates (``softmax(alpha)`` unless overridden)."""
        return F.softmax(alpha, dim=-1)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class Softmax(Relaxation):
    """DARTS: ``softmax(alpha)`` (Liu et al. 2019, eq. 2)."""

    def weights(self, alpha, generator=None):
        return F.softmax(alpha, dim=-1)


class Gumbel(Relaxation):
    """Gumbel-softmax ``softmax((alpha + g) / tau)`` with ``g = -log(-log(u))``, ``u ~ U(0, 1)``.

    ``hard=True`` returns the straight-through one-hot ``onehot(argmax) - p.detach() + p``
    (GDAS; FaDE §3: hard, ``tau = 10``). ``tau`` may be changed between steps (GDAS anneals
    it from 10 to 0.1). Noise comes from ``generator`` when given, else torch's default one.
    ``estimator`` (hard only): ``"sampled"`` or ``"all"``, which candidates run while α's
    gradient is taken (see the module docstring).
    """

    ESTIMATORS = ("sampled", "all")

    def __init__(self, tau: float = 1.0, hard: bool = False, estimator: str = "sampled"):
        if not tau > 0:
            raise SettingError(f"the Gumbel temperature tau must be positive, got {tau}")
        if estimator not in self.ESTIMATORS:
            raise SettingError(f"estimator is 'sampled' (GDAS: only the drawn candidate runs) or 'all' "
                             f"(straight-through over every candidate); got {estimator!r}")
        self.tau = float(tau)
        self.hard = bool(hard)
        self.estimator = estimator

    def __repr__(self) -> str:
        tail = f", estimator={self.estimator!r}" if self.estimator != "sampled" else ""
        return f"Gumbel(tau={self.tau}, hard={self.hard}{tail})"

    def weights(self, alpha, generator=None):
        on = generator.device if generator is not None else alpha.device  # a generator draws on its own device
        u = torch.rand(alpha.shape, generator=generator, dtype=alpha.dtype, device=on).to(alpha.device)
        return self.mix(alpha, -torch.log(-torch.log(u.clamp_min(torch.finfo(alpha.dtype).tiny))))

    def mix(self, alpha: torch.Tensor, gumbel: torch.Tensor) -> torch.Tensor:
        """The weights for given Gumbel noise ``gumbel`` (shaped as ``alpha``):
        ``softmax((alpha + gumbel) / tau)``, made straight-through one-hot when ``hard``.

        >>> Gumbel(tau=1.0, hard=True).mix(torch.zeros(3), torch.tensor([0.0, 2.0, 1.0]))
        tensor([0., 1., 0.])
        """
        p = F.softmax((alpha + gumbel) / self.tau, dim=-1)
        if not self.hard:
            return p
        one_hot = F.one_hot(p.argmax(dim=-1), p.shape[-1]).to(p.dtype)
        return one_hot - p.detach() + p


class Sigmoid(Relaxation):
    """FairDARTS: ``sigmoid(alpha)`` for each candidate independently (Chu et al. 2020, §4)."""

    def weights(self, alpha, generator=None):
        return torch.sigmoid(alpha)

    def probabilities(self, alpha):
        return torch.sigmoid(alpha)


class Dirichlet(Relaxation):
    """DrNAS: ``theta ~ Dir(beta)``, ``beta = elu(alpha) + 1``, reparameterised (Chen et al. 2021, §3).

    The sample draws from torch's default generator (``torch.distributions`` takes no
    ``generator``); seed it with ``torch.manual_seed``. The preference is ``softmax(alpha)``,
    as DrNAS derives its genotype.
    """

    def weights(self, alpha, generator=None):
        return torch.distributions.Dirichlet(concentration(alpha)).rsample()


def concentration(alpha: torch.Tensor) -> torch.Tensor:
    """DrNAS's Dirichlet concentration ``elu(alpha) + 1`` (positive for every real ``alpha``)."""
    return F.elu(alpha) + 1.0


#: relaxation name → class, for configs and the command line
RELAXATIONS: dict[str, type[Relaxation]] = {
    "softmax": Softmax, "gumbel": Gumbel, "sigmoid": Sigmoid, "dirichlet": Dirichlet,
}


def as_relaxation(spec: str | Relaxation, **kwargs) -> Relaxation:
    """A :class:`Relaxation` from its name (``kwargs`` go to its constructor) or itself.

    >>> as_relaxation("gumbel", tau=10.0, hard=True)
    Gumbel(tau=10.0, hard=True)
    """
    if isinstance(spec, Relaxation):
        return spec
    if spec not in RELAXATIONS:
        raise SettingError(f"unknown relaxation {spec!r}; known: {', '.join(RELAXATIONS)}")
    return RELAXATIONS[spec](**kwargs)


class Choice(nn.Module):
    """A relaxed choice between candidate modules that take the same inputs.

    Parameters
    ----------
    candidates:
        The modules chosen between; each is called with the Choice's inputs.
    relaxation:
        A :class:`Relaxation` or its name (``"softmax"``, ``"gumbel"``, ``"sigmoid"``, ``"dirichlet"``).
    alpha:
        The architecture parameters, one per candidate; pass one ``nn.Parameter`` to several
        Choices to share it (DARTS shares one α per edge among all cells of a type). By
        default a fresh parameter drawn from ``N(0, init_std²)``.
    init_std:
        Standard deviation of a fresh ``alpha`` (DARTS: 1e-3; FaDE §3: 0.5).
    generator:
        Optional ``torch.Generator`` for the relaxation's noise.
    """

    def __init__(self, candidates: Iterable[nn.Module], relaxation: str | Relaxation = "softmax", *,
                 alpha: nn.Parameter | None = None, init_std: float = 1e-3,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.candidates = nn.ModuleList(candidates)
        k = len(self.candidates)
        if k == 0:
            raise SettingError("a Choice needs at least one candidate")
        if alpha is None:
            on = generator.device if generator is not None else None
            alpha = nn.Parameter(torch.randn(k, generator=generator, device=on).cpu() * init_std)
        elif alpha.shape != (k,):
            raise ShapeError(f"alpha must have one entry per candidate: expected shape ({k},), got {tuple(alpha.shape)}")
        self.alpha = alpha
        self.relaxation = as_relaxation(relaxation)
        self.generator = generator
        self.fixed: int | None = None
        self._mask: list[float] | None = None

    def __len__(self) -> int:
        return len(self.candidates)

    def weights(self) -> torch.Tensor:
        """The mixing weights of one forward pass (a fresh sample for stochastic relaxations),
        one-hot when :meth:`fix`-ed, times the mask inside :meth:`masked`."""
        if self.fixed is None:
            w = self.relaxation.weights(self.alpha, self.generator)
        else:
            w = self._one_hot(self.fixed)
        if self._mask is not None:
            w = w * torch.tensor(self._mask, dtype=w.dtype, device=w.device)
        return w

    def probabilities(self) -> torch.Tensor:
        """The relaxation's noise-free preference over the candidates (see the module
        docstring); one-hot when :meth:`fix`-ed."""
        if self.fixed is not None:
            return self._one_hot(self.fixed)
        return self.relaxation.probabilities(self.alpha)

    def fix(self, k: int | None) -> None:
        """Decide the Choice for candidate ``k``, or release it with ``None``.

        A fixed Choice's weights are ``onehot(k)`` whatever ``alpha`` says (``alpha`` gets
        no gradient) and only candidate ``k`` runs: DARTS-PT's projection of an edge onto
        its selected op (Wang et al. 2021, Alg. 1).

        >>> choice = Choice([nn.Identity(), nn.Tanh()])
        >>> choice.fix(1)
        >>> choice(torch.ones(1)), choice.probabilities()
        (tensor([0.7616]), tensor([0., 1.]))
        """
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(self)):
            raise SettingError(f"fix takes a candidate index in [0, {len(self) - 1}] or None; got {k!r}")
        self.fixed = k

    @contextmanager
    def masked(self, mask: Sequence[float]) -> Iterator[Choice]:
        """Within the block, multiply the weights by ``mask`` without renormalising; candidates
        masked with 0 do not run (an all-zero mask makes the Choice output zeros).

        DARTS-PT measures an op's importance as the accuracy lost when its weight is set to 0
        in the current softmax (Wang et al. 2021, §3.1), and removes an edge by masking all its ops.

        >>> choice = Choice([nn.Identity(), nn.Tanh()])
        >>> with torch.no_grad():
        ...     _ = choice.alpha.zero_()
        >>> with choice.masked([1.0, 0.0]):
        ...     choice(torch.ones(1))                             # 0.5 · 1, not renormalised
        tensor([0.5000], grad_fn=<AddBackward0>)
        """
        mask = [float(m) for m in mask]
        if len(mask) != len(self):
            raise ShapeError(f"mask has {len(mask)} entries, the Choice {len(self)} candidates; give one per candidate")
        previous, self._mask = self._mask, mask
        try:
            yield self
        finally:
            self._mask = previous

    def active(self, w: torch.Tensor) -> tuple[list[int], torch.Tensor | None]:
        """The candidates a forward pass with weights ``w`` runs, and the term it adds to their
        weighted sum (:func:`unchosen` for a hard relaxation running the sampled candidate alone,
        else ``None``): the fixed one, the sampled one, or every unmasked candidate but
        :class:`~archgraph.ops.Zero` (whose weighted zeros add nothing to the output or any
        gradient) unless nothing else is left. The last for soft relaxations, and for hard ones
        with ``estimator="all"`` while ``alpha``'s gradient is taken.

        >>> choice = Choice([Zero(), nn.Identity(), nn.Tanh()])
        >>> choice.active(choice.weights())
        ([1, 2], None)
        """
        if self.fixed is not None:
            return [self.fixed], None
        if self.relaxation.hard and not (self.relaxation.estimator == "all" and torch.is_grad_enabled()
                                         and self.alpha.requires_grad):
            k = int(w.argmax())
            return [k], unchosen(w, k)
        runs = [k for k in range(len(self)) if self._mask is None or self._mask[k] != 0]
        live = [k for k in runs if not isinstance(self.candidates[k], Zero)]
        return live or runs[:1] or [0], None

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        w = self.weights()
        ks, extra = self.active(w)
        out = sum(w[k] * self.candidates[k](*inputs) for k in ks)
        return out if extra is None else out + extra

    def _one_hot(self, k: int) -> torch.Tensor:
        return F.one_hot(torch.tensor(k, device=self.alpha.device), len(self)).to(self.alpha.dtype)

    def extra_repr(self) -> str:
        fixed = "" if self.fixed is None else f", fixed={self.fixed}"
        return f"candidates={len(self)}, relaxation={self.relaxation!r}{fixed}"


def unchosen(w: torch.Tensor, k: int) -> torch.Tensor:
    """The sum of the hard weights other than ``w[k]``: zero in value, but with gradient 1
    to each of them. The GDAS reference code (D-X-Y/AutoDL-Projects, ``forward_gdas``) adds
    it to the chosen op's output so that every ``alpha`` also gets ``sum(dL/dout)``.

    >>> w = torch.tensor([0.0, 1.0, 0.0], requires_grad=True)
    >>> out = unchosen(w, 1)
    >>> out.backward(); out.item(), w.grad.tolist()
    (0.0, [1.0, 0.0, 1.0])
    """
    return torch.cat((w[:k], w[k + 1:])).sum()


def choices(module: nn.Module) -> list[Choice]:
    """Every :class:`Choice` inside ``module``, in module order."""
    return [m for m in module.modules() if isinstance(m, Choice)]


def arch_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The architecture parameters of ``module``: each Choice's ``alpha``, shared ones once."""
    return list(_unique(c.alpha for c in choices(module)))


def weight_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Every parameter of ``module`` that is not an architecture parameter.

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), Choice([nn.Identity(), nn.ReLU()]))
    >>> len(arch_parameters(net)), len(weight_parameters(net))
    (1, 2)
    """
    arch = {id(p) for p in arch_parameters(module)}
    return [p for p in module.parameters() if id(p) not in arch]


def _unique(params: Iterable[nn.Parameter]) -> Iterator[nn.Parameter]:
    seen: set[int] = set()
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            yield p
