"""The architecture steps of bi-level training: first order and second order (DARTS §2.3, App. A).

:func:`archgraph.oneshot.train_bilevel` calls one step per weight batch, with the
architecture batch ``(x_a, y_a)`` and the weight batch ``(x_w, y_w)`` that follows it. A step
sets the gradient of every architecture parameter α, adds the regulariser's gradient, and
lets the α optimiser step. The two steps differ only in the gradient of the cross-entropy:

* first order (DARTS §2.3 with ξ = 0): ``∇_α L_arch(ω, α)`` at the current weights ω;
* second order (DARTS eq. 7): the gradient of ``L_arch(ω', α)`` through the virtual step
  ``ω' = ω − ξ ∇_ω L_weight(ω, α)``, which by the chain rule is (eq. 7–8)

  ``∇_α L_arch(ω', α) − ξ ∇²_{α,ω} L_weight(ω, α) · ∇_{ω'} L_arch(ω', α)``,

  the mixed Hessian–vector product taken by central finite differences (App. A):
  ``(∇_α L_weight(ω⁺, α) − ∇_α L_weight(ω⁻, α)) / 2ε`` with ``ω^± = ω ± ε ∇_{ω'} L_arch(ω', α)``
  and ``ε = 0.01 / ‖∇_{ω'} L_arch(ω', α)‖``.

Choices we made where the paper and its reference code (quark0/darts ``cnn/architect.py``)
differ:

* The virtual step is the paper's plain gradient step of the cross-entropy (no momentum,
  weight decay or gradient clipping). The reference code also adds the weight optimiser's
  momentum buffer (times the momentum) and the weight decay ``λω`` to it, and ``λω'`` to the
  finite-difference direction; we do neither, so the step is the derivative of eq. 6 as
  written (and what an independent autograd unrolling gives).
* ξ is the weight optimiser's learning rate at the time of the step (the reference code
  passes the cosine-scheduled learning rate), whatever the optimiser; DARTS pairs the
  second order with SGD.
* Random relaxations (Gumbel, Dirichlet) and dropout draw fresh noise on every forward. The
  two finite-difference forwards replay the noise of the virtual step's forward, so that
  they differentiate the same ``L_weight`` the virtual step descended; the noise stream then
  continues where the architecture forward left it.
* Every forward runs in training mode, as in the reference code, so batch-norm running
  statistics see the extra forwards at ω' and ω^±. The weights themselves are given back
  exactly (copied, not stepped back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..relax import choices
from ..train import _forward, _loss
from .dscd import DSCD

#: ``regularizer(model, epoch)``: a term added to the architecture loss (see :mod:`.regularize`)
Regularizer = Callable[[nn.Module, int], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]
Grads = list[torch.Tensor | None]

#: the finite-difference step ε · ‖∇_{ω'} L_arch‖ of DARTS App. A
_FINITE_DIFFERENCE = 0.01


class _ArchMeter:
    """Sums of the architecture steps' cross-entropy, correct predictions and penalty.

    Kept on the device, as :func:`archgraph.train._run` does, so that no step waits for a
    transfer; read once per epoch.
    """

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.penalty_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.seen = 0
        self.steps = 0

    def add(self, logits: torch.Tensor, y: torch.Tensor, loss: torch.Tensor, penalty: torch.Tensor | None) -> None:
        self.loss_sum += loss.detach() * len(y)
        self.correct += (logits.detach().argmax(dim=1) == y).sum()
        self.seen += len(y)
        self.steps += 1
        if penalty is not None:
            self.penalty_sum += penalty.detach().reshape(())

    @property
    def loss(self) -> float | None:
        return self.loss_sum.item() / self.seen if self.seen else None

    @property
    def accuracy(self) -> float | None:
        return self.correct.item() / self.seen if self.seen else None

    @property
    def penalty(self) -> float | None:
        return self.penalty_sum.item() / self.steps if self.steps else None


class _FirstOrderStep:
    """One α step at the current ω (DARTS §2.3, ξ = 0): ``∇_α [L_arch(ω, α) + regularizer]``.

    Only the gradients of α are computed (``torch.autograd.grad``), not those of the
    weights, which the α step does not use. Called with the architecture batch and the
    weight batch that follows it; the first order ignores the latter. Subclasses change
    :meth:`_gradients`; the regulariser's gradient, the optimiser step and the bookkeeping
    stay here.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, alphas: list[nn.Parameter],
                 regularizer: Regularizer | None, epoch: int, device: torch.device, meter: _ArchMeter):
        self.model, self.optimizer, self.alphas, self.regularizer = model, optimizer, alphas, regularizer
        self.epoch, self.device, self.meter = epoch, device, meter

    def __call__(self, arch_batch: Batch, weight_batch: Batch) -> None:
        if isinstance(self.optimizer, DSCD):
            self.optimizer.step(lambda: self._evaluate(arch_batch, weight_batch),
                                gradient=lambda: self._set_gradients(arch_batch, weight_batch))
            return
        self._set_gradients(arch_batch, weight_batch)
        self.optimizer.step()

    def _set_gradients(self, arch_batch: Batch, weight_batch: Batch) -> torch.Tensor:
        """Set α's ``.grad`` to the gradient of the architecture loss plus the regulariser, record
        the step, and return that loss (the objective's value where the gradient was taken)."""
        with requiring_grad(self.alphas, True):  # the weight steps around it may run with α frozen
            grads, logits, y, loss = self._gradients(arch_batch, weight_batch)
            penalty = self._penalty()
            if penalty is not None and penalty.requires_grad:
                penalty_grads = torch.autograd.grad(penalty, self.alphas, allow_unused=True)
                grads = [_add(g, r) for g, r in zip(grads, penalty_grads)]
        for alpha, grad in zip(self.alphas, grads):
            alpha.grad = grad  # None for an α that nothing used: Adam leaves it alone
        self.meter.add(logits, y, loss.detach(), penalty)
        return loss.detach() if penalty is None else loss.detach() + penalty.detach()

    def _evaluate(self, arch_batch: Batch, weight_batch: Batch) -> torch.Tensor:
        """The architecture loss plus the regulariser at the current α, without α's gradient: what a
        global step of :class:`~archgraph.oneshot.dscd.DSCD` compares with its window. Recorded in
        the epoch's ``arch_loss`` like a gradient step's (at the proposal, kept or not)."""
        with torch.no_grad():
            logits, y, loss = self._objective(arch_batch, weight_batch)
            penalty = self._penalty()
        self.meter.add(logits, y, loss, penalty)
        return loss if penalty is None else loss + penalty

    def _objective(self, arch_batch: Batch, weight_batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The logits, labels and cross-entropy whose α gradient :meth:`_gradients` takes (first
        order: at the current ω), evaluated without gradients."""
        x, y = _to(arch_batch, self.device)
        logits, loss = self._loss(x, y)
        return logits, y, loss

    def _gradients(self, arch_batch: Batch, weight_batch: Batch) -> tuple[Grads, torch.Tensor, torch.Tensor,
                                                                          torch.Tensor]:
        """``∇_α`` of the cross-entropy, and the logits, labels and loss to record."""
        x, y = _to(arch_batch, self.device)
        logits, loss = self._loss(x, y)
        return list(torch.autograd.grad(loss, self.alphas, allow_unused=True)), logits, y, loss

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _loss(_forward(self.model, x, with_aux=False), y, aux_weight=0.0)

    def _penalty(self) -> torch.Tensor | None:
        if self.regularizer is None:
            return None
        penalty = self.regularizer(self.model, self.epoch)
        if not isinstance(penalty, torch.Tensor) or penalty.numel() != 1:
            got = f"a tensor of shape {tuple(penalty.shape)}" if isinstance(penalty, torch.Tensor) else repr(penalty)
            raise TypeError(f"regularizer(model, epoch) must return a scalar tensor to add to the "
                            f"architecture loss; got {got}")
        return penalty.reshape(())


class _SecondOrderStep(_FirstOrderStep):
    """One α step through the virtual weight step (DARTS §2.3 eq. 7–8, App. A; see the module docstring).

    ``weights`` are the trainable weights ω; ξ is ``weight_optimizer``'s learning rate when
    the step runs. The logits and loss recorded are those of the architecture batch at ω'.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, alphas: list[nn.Parameter],
                 regularizer: Regularizer | None, epoch: int, device: torch.device, meter: _ArchMeter, *,
                 weights: list[nn.Parameter], weight_optimizer: torch.optim.Optimizer):
        super().__init__(model, optimizer, alphas, regularizer, epoch, device, meter)
        self.weights, self.weight_optimizer = weights, weight_optimizer

    @contextmanager
    def _virtual_weights(self, xw: torch.Tensor, yw: torch.Tensor) -> Iterator[tuple[list[torch.Tensor], float, _RngState]]:
        """ω moved to the virtual weights ``ω' = ω − ξ ∇_ω L_weight(ω, α)`` (eq. 7) for the block and
        given back exactly afterwards; yields ω, ξ and the random state before the weight batch's
        forward (to replay its noise)."""
        xi = self.weight_optimizer.param_groups[0]["lr"]
        weights0 = [w.detach().clone() for w in self.weights]
        noise = _RngState(self.model, self.device)
        with torch.enable_grad():
            _, weight_loss = self._loss(xw, yw)
            weight_grads = _zeros_for_none(torch.autograd.grad(weight_loss, self.weights, allow_unused=True),
                                           self.weights)
        try:
            with torch.no_grad():
                for w, g in zip(self.weights, weight_grads):
                    w.sub_(xi * g)
            yield weights0, xi, noise
        finally:
            with torch.no_grad():
                for w, w0 in zip(self.weights, weights0):
                    w.copy_(w0)

    def _gradients(self, arch_batch, weight_batch):
        (xa, ya), (xw, yw) = _to(arch_batch, self.device), _to(weight_batch, self.device)
        with self._virtual_weights(xw, yw) as (weights0, xi, virtual_noise):
            logits, loss = self._loss(xa, ya)
            grads = torch.autograd.grad(loss, self.alphas + self.weights, allow_unused=True)
            alpha_grads, direction = list(grads[:len(self.alphas)]), _zeros_for_none(grads[len(self.alphas):],
                                                                                     self.weights)
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(d, dtype=torch.float64)
                                                         for d in direction]))
            if xi != 0 and norm > 0:
                eps = _FINITE_DIFFERENCE / norm
                after = _RngState(self.model, self.device)
                plus = self._alpha_gradients_at(weights0, direction, eps, xw, yw, virtual_noise)
                minus = self._alpha_gradients_at(weights0, direction, -eps, xw, yw, virtual_noise)
                after.restore()
                scale = -xi / (2 * eps)
                alpha_grads = [_add(g, _add(p, m, -1.0), scale) for g, p, m in zip(alpha_grads, plus, minus)]
        return alpha_grads, logits, ya, loss

    def _objective(self, arch_batch, weight_batch):
        """``L_arch(ω', α)`` at the virtual weights ``ω' = ω − ξ ∇_ω L_weight(ω, α)`` of the current
        α (the quantity whose gradient eq. 7 is), ω given back exactly afterwards."""
        (xa, ya), (xw, yw) = _to(arch_batch, self.device), _to(weight_batch, self.device)
        with self._virtual_weights(xw, yw), torch.no_grad():
            logits, loss = self._loss(xa, ya)
        return logits, ya, loss

    def _alpha_gradients_at(self, weights0: list[torch.Tensor], direction: list[torch.Tensor], eps: torch.Tensor,
                            x: torch.Tensor, y: torch.Tensor, noise: _RngState) -> Grads:
        """``∇_α L_weight(ω + eps · direction, α)`` with the noise of the virtual step's forward."""
        with torch.no_grad():
            for w, w0, d in zip(self.weights, weights0, direction):
                w.copy_(w0 + eps * d)
        noise.restore()
        _, loss = self._loss(x, y)
        return list(torch.autograd.grad(loss, self.alphas, allow_unused=True))


class _RngState:
    """The state of every random source a forward may draw from, to replay its draws.

    That is torch's global generator on the CPU and on ``device`` (Dirichlet samples, dropout,
    Gumbel noise without a generator) and each Choice's own ``generator``.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.device = device if device.type != "cpu" else None
        self.accelerator = getattr(torch, device.type).get_rng_state(device) if self.device is not None else None
        generators = {id(c.generator): c.generator for c in choices(model) if c.generator is not None}
        self.generators = [(g, g.get_state()) for g in generators.values()]

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.device is not None:
            getattr(torch, self.device.type).set_rng_state(self.accelerator, self.device)
        for generator, state in self.generators:
            generator.set_state(state)


@contextmanager
def requiring_grad(params: list[nn.Parameter], flag: bool) -> Iterator[None]:
    """Within the block, ``params`` have ``requires_grad = flag``; their own flags after it."""
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(flag)
    try:
        yield
    finally:
        for p, b in zip(params, before):
            p.requires_grad_(b)


def _to(batch: Batch, device: torch.device) -> Batch:
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _add(a: torch.Tensor | None, b: torch.Tensor | None, scale: float | torch.Tensor = 1.0) -> torch.Tensor | None:
    """``a + scale · b``, a missing gradient (``None``) counting as zero; ``None`` if both are."""
    if b is None:
        return a
    return scale * b if a is None else a + scale * b


def _zeros_for_none(grads, params: list[nn.Parameter]) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]
