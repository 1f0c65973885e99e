"""Doubly stochastic coordinate descent (DSCD; Bodin, Tomasi & Dai, §3, Alg. 1, App. C).

Gradient steps on architecture parameters settle in the nearest local minimum. DSCD wraps a
local optimiser (Adam by default) and alternates its steps with *global* steps that are
doubly stochastic: pick one entry ``d`` of all the parameters uniformly at random, draw a new
value for it from a Beta distribution over the domain ``bounds``, keep it only if the loss
there beats the best loss of the last ``K`` steps. Early on the Beta is uniform over the
domain (jumps anywhere); a cosine schedule over ``total_steps`` concentrates it on the
current value (App. C), so the global search narrows as the run goes on.

:func:`beta_parameters` turns ``(v, φ)`` into the Beta's ``(a, b)``, :func:`cosine_concentration`
is the schedule, :func:`propose` draws proposals, and :class:`DSCD` is the optimiser wrapper.

Examples
--------
>>> import torch
>>> x = torch.nn.Parameter(torch.tensor([0.9]))     # Adam alone stays at the local minimum 0.897
>>> def well():                                     # minima 0.897 (f = 0.666) and -1.078 (f = -0.728)
...     return ((x ** 2 - 1) ** 2 + 0.7 * x).sum()
>>> dscd = DSCD([x], torch.optim.Adam([x], lr=0.05), total_steps=300, bounds=(-2.0, 2.0),
...             T=20, generator=torch.Generator().manual_seed(0))
>>> for _ in range(300):
...     _ = dscd.step(well)
>>> round(x.item(), 1)
-1.1
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from ..errors import SettingError, ShapeError

__all__ = ["DSCD", "beta_parameters", "cosine_concentration", "propose"]

_PHASES = ("local", "global")


def cosine_concentration(step: int, total_steps: int) -> float:
    """The concentration ``φ(t) = (1 − cos(π · min(t, total) / total)) / 2`` (Bodin et al., App. C).

    ``φ`` rises from 0 (the proposal is uniform on the domain) to 1 (a Dirac at the current
    value) along half a cosine period, slowly at both ends; it stays 1 after ``total_steps``.

    Examples
    --------
    >>> [round(cosine_concentration(t, 100), 3) for t in (0, 25, 50, 100, 150)]
    [0.0, 0.146, 0.5, 1.0, 1.0]
    """
    if total_steps < 1:
        raise SettingError(f"total_steps must be at least 1, got {total_steps}")
    if step < 0:
        raise SettingError(f"step counts the steps taken so far, so it cannot be negative; got {step}")
    return (1.0 - math.cos(math.pi * min(step, total_steps) / total_steps)) / 2.0


def beta_parameters(v: float | np.ndarray, phi: float) -> tuple[Any, Any]:
    """The Beta ``(a, b)`` with mean ``μ`` and standard deviation ``σ`` of App. C.

    ``μ = φ·v + (1 − φ)·0.5`` and ``σ = (1 − φ)/√12`` interpolate between the uniform
    distribution on ``[0, 1]`` (``φ = 0``: ``a = b = 1``) and a Dirac at the unit position ``v``
    (``φ → 1``). With ``c1 = μ/(1 − μ)`` and ``c2 = σ²(c1 + 1)²``, ``b = (c1 − c2)/(c2 (c1 + 1))``
    and ``a = c1·b``; then ``a/(a + b) = μ`` and ``ab/((a + b)²(a + b + 1)) = σ²`` (solve the
    Beta's mean and variance for ``a``, ``b``). ``b > 0`` because ``σ² < μ(1 − μ)`` for every
    ``v`` in ``[0, 1]`` and ``φ < 1``.

    Parameters
    ----------
    v:
        Unit position(s) in ``[0, 1]``: the current value mapped from the domain.
    phi:
        Concentration in ``[0, 1)``; at ``φ = 1`` the Beta degenerates (see :func:`propose`).

    Examples
    --------
    >>> a, b = beta_parameters(0.3, 0.0)
    >>> round(float(a), 12), round(float(b), 12)
    (1.0, 1.0)
    >>> a, b = beta_parameters(0.2, 0.5)                    # μ = 0.35, σ = 0.5/√12
    >>> round(float(a / (a + b)), 12)
    0.35
    """
    v = np.asarray(v, dtype=float)
    if not 0.0 <= phi < 1.0:
        raise SettingError(f"phi must lie in [0, 1) for a proper Beta distribution, got {phi}")
    if np.any((v < 0.0) | (v > 1.0)):
        raise SettingError(f"v is a unit position, so it must lie in [0, 1]; got {v}")
    mu = phi * v + (1.0 - phi) * 0.5
    sigma = (1.0 - phi) / math.sqrt(12.0)
    c1 = mu / (1.0 - mu)
    c2 = sigma**2 * (c1 + 1.0) ** 2
    b = (c1 - c2) / (c2 * (c1 + 1.0))
    return c1 * b, b


def propose(x: float | np.ndarray, phi: float, *, bounds: tuple[float, float] = (-3.0, 3.0),
            rng: np.random.Generator) -> np.ndarray:
    """Draw new values for coordinates now at ``x`` from the annealed Beta on ``bounds`` (App. C).

    ``x`` is mapped to the unit position ``v = (x − lo)/(hi − lo)``, clipped to ``[0, 1]`` (a
    value that a local step carried outside the domain is proposed around the nearest bound);
    a draw ``u ~ Beta(a, b)`` (:func:`beta_parameters`) is mapped back to ``lo + (hi − lo)·u``.
    At ``φ = 1`` the proposal is the Dirac at the clipped current value itself.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> u = propose(np.zeros(20000), 0.0, bounds=(-3.0, 3.0), rng=rng)      # uniform on [-3, 3]
    >>> bool(-3 <= u.min() and u.max() <= 3), round(float(u.std()), 1)
    (True, 1.7)
    >>> propose(np.array([5.0, 1.5]), 1.0, rng=rng)                           # Dirac, clipped
    array([3. , 1.5])
    """
    lo, hi = _check_bounds(bounds)
    v = np.clip((np.asarray(x, dtype=float) - lo) / (hi - lo), 0.0, 1.0)
    if phi >= 1.0:
        return lo + (hi - lo) * v
    a, b = beta_parameters(v, phi)
    return lo + (hi - lo) * rng.beta(a, b)


class DSCD:
    """Adam (or any torch optimiser) alternated with doubly stochastic coordinate steps (Bodin et al., Alg. 1).

    Each :meth:`step` is one step of the current phase and evaluates the closure once:

    * a **local** step zeroes the gradients, calls ``closure()``, backpropagates its loss and
      steps the local optimiser;
    * a **global** step draws an entry ``d`` uniformly among all entries of all ``params``,
      sets it to ``propose(x[d], φ(t))`` and calls ``closure()`` under ``torch.no_grad()``;
      the proposal is kept if its loss is below the best loss of the last ``K`` steps
      (:attr:`best`), otherwise ``x[d]`` gets its old value back.

    After ``T`` consecutive steps that did not improve, the phase switches to the other type.

    Decisions where the paper's description leaves room (our reading, with the section):

    * *The window* (Alg. 1): it holds the loss of every step — a local step's loss (measured at
      the point the step starts from, the only loss it computes) and a global step's proposal
      loss, accepted or not. :attr:`best` is the minimum over the previous ``K`` steps
      (``+inf`` before the first step). Acceptance is strict (``<``): a proposal as good as the
      best is rejected, so plateaus do not make the parameters drift. A NaN loss counts as +inf.
    * *Improvement* (§3, the switching rule): a step improves when its loss is strictly below
      :attr:`best` — the acceptance test, applied to both step types. A global step improves
      exactly when it is accepted; a local phase lasts while the local optimiser keeps setting
      new records and ends after ``T`` steps without one. The run starts with a local phase.
      There is no tolerance: in float64 a converged Adam keeps setting records by tiny amounts
      for hundreds of steps, so local phases last longer than in float32, torch's default.
    * *The proposal's centre* (Alg. 1's ``x_best[d]``): the current value of ``x[d]``. Global
      steps only move ``x`` to better points, so within a global phase it is the best point;
      entering one, it is the local phase's last iterate (we do not restore an earlier point).
    * *The schedule's clock* (App. C): ``t`` counts every step of both types, so ``total_steps``
      is the number of :meth:`step` calls planned; after it, ``φ = 1`` and a global step
      evaluates the current point (it can improve only on a record left by the local phase).
    * *The local optimiser's state* (silent in the paper): untouched by global steps; Adam's
      moments carry over an accepted jump.

    Parameters
    ----------
    params:
        The tensors to optimise (e.g. ``archgraph.relax.arch_parameters(model)``), leaf
        floating-point tensors with ``requires_grad``.
    local:
        The local optimiser; it must update every tensor in ``params``. Default:
        ``torch.optim.Adam(params)`` (lr 1e-3).
    total_steps:
        Length of the cosine schedule of ``φ`` in :meth:`step` calls (App. C).
    bounds:
        The domain ``(lo, hi)`` of every coordinate for proposals (App. C: ``(-3, 3)``).
    T:
        Consecutive non-improving steps after which the phase switches (§3: 50).
    K:
        Length of the window of past steps that a proposal must beat (Alg. 1: 1000).
    tol:
        For the switching rule only: a step improves when its loss is below
        ``best - tol · |best|``. The paper's rule is strict (``tol = 0``); with it, an optimiser
        that keeps creeping down by tiny amounts never hands over to global steps.
    generator:
        A ``numpy.random.Generator`` (used as is), or a ``torch.Generator`` (which seeds a fresh
        numpy Generator once), for the coordinates and proposals. ``None``: an unseeded one.

    Examples
    --------
    >>> x = torch.nn.Parameter(torch.zeros(3))
    >>> dscd = DSCD([x], total_steps=100, generator=np.random.default_rng(0))
    >>> dscd
    DSCD(local=Adam, total_steps=100, bounds=(-3.0, 3.0), T=50, K=1000)
    >>> loss = dscd.step(lambda: ((x - 1) ** 2).sum())
    >>> float(loss), dscd.phase, dscd.best
    (3.0, 'local', 3.0)
    """

    def __init__(self, params: Iterable[torch.Tensor], local: torch.optim.Optimizer | None = None, *,
                 total_steps: int, bounds: tuple[float, float] = (-3.0, 3.0), T: int = 50, K: int = 1000,
                 tol: float = 0.0, generator: np.random.Generator | torch.Generator | None = None):
        self.params = _check_params(params)
        self.local = torch.optim.Adam(self.params) if local is None else _check_local(local, self.params)
        for name, value in (("total_steps", total_steps), ("T", T), ("K", K)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingError(f"{name} must be an int of at least 1, got {value!r}")
        if not tol >= 0:
            raise SettingError(f"tol is a relative improvement, at least 0; got {tol!r}")
        self.total_steps, self.T, self.K, self.tol = total_steps, T, K, float(tol)
        self.bounds = _check_bounds(bounds)
        self._rng = _numpy_generator(generator)
        self._ends = np.cumsum([p.numel() for p in self.params])
        self._t = 0
        self._phase = "local"
        self._streak = 0
        self._window: deque[tuple[int, float]] = deque()  # (step, loss), losses increasing: a sliding minimum

    def __repr__(self) -> str:
        return (f"DSCD(local={type(self.local).__name__}, total_steps={self.total_steps}, "
                f"bounds={self.bounds}, T={self.T}, K={self.K})")

    @property
    def phase(self) -> str:
        """The type of the next step: ``"local"`` or ``"global"``."""
        return self._phase

    @property
    def phi(self) -> float:
        """The proposal's concentration ``φ`` for the next step (:func:`cosine_concentration`)."""
        return cosine_concentration(self._t, self.total_steps)

    @property
    def best(self) -> float:
        """The lowest loss of the last ``K`` steps (``+inf`` before the first)."""
        return self._window[0][1] if self._window else math.inf

    def step(self, closure: Callable[[], torch.Tensor], *,
             gradient: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        """Take one step of the current phase and return the loss the closure gave (detached).

        ``closure()`` must compute and return the scalar loss at the current parameters; it
        must not call ``backward`` (local steps do, global steps evaluate without gradients).

        ``gradient``, if given, replaces ``closure`` in local steps: it must set the ``.grad`` of
        the parameters itself (after the local optimiser's ``zero_grad``) and return the loss at
        the point the step starts from, which goes into the window like the closure's. For a
        gradient that is not the ``backward`` of one forward, e.g. DARTS' second-order α
        gradient (:mod:`archgraph.oneshot.steps`); global steps still call ``closure``.

        Examples
        --------
        >>> x = torch.nn.Parameter(torch.tensor([2.0]))
        >>> dscd = DSCD([x], torch.optim.SGD([x], lr=0.25), total_steps=10, generator=np.random.default_rng(0))
        >>> def gradient():                             # the gradient of x², set by hand
        ...     x.grad = 2 * x.detach()
        ...     return (x ** 2).sum().detach()
        >>> float(dscd.step(lambda: (x ** 2).sum(), gradient=gradient)), x.item()
        (4.0, 1.0)
        """
        if not callable(closure):
            raise TypeError(f"step needs a closure that returns the loss, got {type(closure).__name__}")
        if gradient is not None and not callable(gradient):
            raise TypeError(f"gradient must be a callable that sets the parameters' .grad and returns the loss, "
                            f"got {type(gradient).__name__}")
        best = self.best
        loss = (self._local_step(closure, gradient) if self._phase == "local"
                else self._global_step(closure, best))
        value = float(loss)
        value = math.inf if math.isnan(value) else value
        margin = self.tol * abs(best) if math.isfinite(best) else 0.0
        self._streak = 0 if value < best - margin else self._streak + 1
        if self._streak >= self.T:
            self._phase = _PHASES[1 - _PHASES.index(self._phase)]
            self._streak = 0
        while self._window and self._window[-1][1] >= value:
            self._window.pop()
        self._window.append((self._t, value))
        while self._window[0][0] <= self._t - self.K:
            self._window.popleft()
        self._t += 1
        return loss

    def _local_step(self, closure: Callable[[], torch.Tensor],
                    gradient: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        self.local.zero_grad()
        if gradient is not None:
            loss = _checked_loss(gradient()).detach()
            self.local.step()
            return loss
        with torch.enable_grad():
            loss = _checked_loss(closure())
            if not loss.requires_grad:
                raise SettingError("the closure's loss does not depend on the parameters (it has no grad_fn), so a "
                                 "local step cannot take its gradient; compute the loss from the parameters given "
                                 "to DSCD, outside torch.no_grad()")
            loss.backward()
        self.local.step()
        return loss.detach()

    def _global_step(self, closure: Callable[[], torch.Tensor], best: float) -> torch.Tensor:
        d = int(self._rng.integers(self._ends[-1]))
        i = int(np.searchsorted(self._ends, d, side="right"))
        param = self.params[i]
        index = tuple(int(k) for k in np.unravel_index(d - (self._ends[i - 1] if i else 0), param.shape))
        with torch.no_grad():
            old = param[index].item()
            param[index] = float(propose(old, self.phi, bounds=self.bounds, rng=self._rng))
            accepted = False
            try:
                loss = _checked_loss(closure()).detach()
                accepted = float(loss) < best
            finally:  # a rejected proposal, or a closure that raised, leaves x as it was
                if not accepted:
                    param[index] = old
        return loss

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs besides the parameters: counters, phase, window, RNG and
        the local optimiser's state. The settings (``total_steps``, ``bounds``, ``T``, ``K``) come from
        the constructor of the instance that loads it."""
        return {"step": self._t, "phase": self._phase, "streak": self._streak, "window": list(self._window),
                "rng": self._rng.bit_generator.state, "local": self.local.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the parameters are restored by their owner).

        Examples
        --------
        >>> x = torch.nn.Parameter(torch.zeros(2))
        >>> a = DSCD([x], total_steps=10, T=1, generator=np.random.default_rng(0))
        >>> for _ in range(3):
        ...     _ = a.step(lambda: (x ** 2).sum())
        >>> b = DSCD([x], total_steps=10, T=1)
        >>> b.load_state_dict(a.state_dict())
        >>> (b.phase, b.best, b.phi) == (a.phase, a.best, a.phi)
        True
        """
        missing = {"step", "phase", "streak", "window", "rng", "local"} - set(state)
        if missing or state["phase"] not in _PHASES:
            raise SettingError(f"not a DSCD state_dict (missing {sorted(missing)} or an unknown phase); pass what "
                             f"DSCD.state_dict() returned")
        self._t, self._phase, self._streak = int(state["step"]), state["phase"], int(state["streak"])
        self._window = deque((int(t), float(loss)) for t, loss in state["window"])
        self._rng.bit_generator.state = state["rng"]
        self.local.load_state_dict(state["local"])


def _check_bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise SettingError(f"bounds must be a pair (lo, hi) of numbers, got {bounds!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise SettingError(f"bounds must be finite with lo < hi, got {bounds!r}; e.g. bounds=(-3.0, 3.0)")
    return lo, hi


def _check_params(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be an iterable of tensors, e.g. [x] or model.parameters(), not one tensor")
    params = list(params)
    if not params:
        raise SettingError("DSCD got no parameters to optimise")
    for k, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.is_floating_point() or not p.is_leaf or not p.requires_grad:
            raise TypeError(f"params[{k}] must be a leaf floating-point tensor with requires_grad=True "
                            f"(an nn.Parameter), got {type(p).__name__}")
        if p.numel() == 0:
            raise ShapeError(f"params[{k}] is empty (shape {tuple(p.shape)}); leave it out")
    return params


def _check_local(local: torch.optim.Optimizer, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    if not isinstance(local, torch.optim.Optimizer):
        raise TypeError(f"local must be a torch.optim.Optimizer, got {type(local).__name__}")
    updated = {id(p) for group in local.param_groups for p in group["params"]}
    for k, p in enumerate(params):
        if id(p) not in updated:
            raise SettingError(f"the local optimiser does not update params[{k}] (shape {tuple(p.shape)}); build it "
                             f"on the same tensors, e.g. params = list(...); DSCD(params, torch.optim.Adam(params))")
    return local


def _checked_loss(loss: object) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        got = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ShapeError(f"the closure must return the scalar loss as a tensor, got {got}; reduce it "
                         f"(e.g. loss.mean()) and return it")
    return loss if loss.ndim == 0 else loss.reshape(())


def _numpy_generator(generator: np.random.Generator | torch.Generator | None) -> np.random.Generator:
    if generator is None or isinstance(generator, np.random.Generator):
        return np.random.default_rng(generator)
    if isinstance(generator, torch.Generator):
        seed = torch.randint(2**62, (1,), generator=generator, device=generator.device)
        return np.random.default_rng(int(seed))
    raise TypeError(f"generator must be a numpy.random.Generator or a torch.Generator, got {type(generator).__name__}")
