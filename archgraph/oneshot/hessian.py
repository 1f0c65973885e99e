"""Curvature of a loss in the architecture parameters: the Hessian and its dominant eigenvalue.

RobustDARTS (Zela et al. 2020, §4.2, Fig. 3) shows that DARTS's architectures generalise
poorly when the validation loss is sharp in α: the dominant eigenvalue λ_max of
``∇²_α L_valid(α, ω)`` grows during the search, and it tells when to stop (DARTS-ES, §4.3)
or regularise more (DARTS-ADA, §5.2; see :mod:`archgraph.oneshot.early_stop`).

* :func:`hessian` builds the explicit matrix, one double-backward row at a time (small
  problems and tests);
* :func:`dominant_eigenvalue` finds λ_max by Lanczos (``scipy.sparse.linalg.eigsh``, ARPACK)
  on Hessian-vector products, never forming the matrix;
* :func:`arch_eigenvalue` is the RobustDARTS quantity for a module with Choices.

The reference code (automl/RobustDARTS, ``src/search/analyze.py``) builds the explicit
Hessian of the cross-entropy on one validation batch, model in train mode, over all α
(normal and reduce) concatenated, plus ``arch_weight_decay · I`` (1e-3), and takes the
largest eigenvalue; :func:`arch_eigenvalue` computes the same number without the matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from torch import nn

from ..errors import SettingError, ShapeError
from ..relax import arch_parameters, choices
from ..train import _device, _forward, _kept_buffers, _loss

__all__ = ["arch_eigenvalue", "dominant_eigenvalue", "hessian"]


def hessian(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    """The explicit ``(n, n)`` Hessian of a scalar ``loss`` over ``params`` flattened and concatenated.

    Row ``i`` is the gradient of ``∂loss/∂θ_i`` (double backward): ``n`` backward passes,
    so keep ``n`` small. Parameters the loss does not depend on give zero rows and columns.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> y = torch.tensor(3.0, requires_grad=True)
    >>> hessian(x[0] ** 2 * y + x[1] ** 3, [x, y])            # H of x0²·y + x1³ at (1, 2, 3)
    tensor([[ 6.,  0.,  2.],
            [ 0., 12.,  0.],
            [ 2.,  0.,  0.]])
    """
    params = _check(loss, params)
    grad = _flat_grad(loss, params)
    rows = [_flat(torch.autograd.grad(g, params, retain_graph=True, allow_unused=True), params)
            if g.requires_grad else torch.zeros_like(grad) for g in grad]
    return torch.stack(rows).detach()


def dominant_eigenvalue(loss: torch.Tensor, params: Sequence[torch.Tensor], *, tol: float = 1e-6,
                        max_iter: int = 100, generator: torch.Generator | None = None) -> float:
    """λ_max, the largest (algebraic) eigenvalue of the Hessian of ``loss`` over ``params``.

    Lanczos (ARPACK's implicitly restarted Lanczos through ``scipy.sparse.linalg.eigsh``,
    ``which="LA"``) on Hessian-vector products ``v ↦ ∇(∇loss · v)``, each one backward pass
    through the retained graph, so memory stays that of one gradient. The products run in
    the parameters' dtype and device; ARPACK works in float64 on the CPU.

    Parameters
    ----------
    loss:
        A scalar with a graph back to ``params`` (built with gradients enabled).
    params:
        The tensors (``requires_grad=True``) to differentiate twice, concatenated.
    tol:
        ARPACK's relative accuracy for the eigenvalue.
    max_iter:
        ARPACK's maximum number of restarts.
    generator:
        Draws Lanczos's random start vector; ``None``: a generator seeded with 0, so that
        the result does not depend on, nor change, torch's global RNG.

    Raises
    ------
    RuntimeError
        When ARPACK has not converged after ``max_iter`` restarts.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(3, requires_grad=True)
    >>> loss = 0.5 * (torch.tensor([1.0, 4.0, -2.0]) * x ** 2).sum()     # H = diag(1, 4, -2)
    >>> round(dominant_eigenvalue(loss, [x]), 6)
    4.0
    """
    params = _check(loss, params)
    grad = _flat_grad(loss, params)
    n = grad.numel()
    if not grad.requires_grad:  # the loss is linear in params: H = 0
        return 0.0
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    start = torch.randn(n, generator=generator, device=generator.device, dtype=torch.float64).cpu().numpy()
    hvp = _hessian_vector_product(grad, params)
    if n == 1:  # ARPACK needs k < n
        return float(hvp(np.ones(1))[0])
    operator = LinearOperator((n, n), matvec=hvp, dtype=np.float64)
    try:
        value = eigsh(operator, k=1, which="LA", tol=tol, maxiter=max_iter, v0=start,
                      return_eigenvectors=False)
    except ArpackNoConvergence as err:
        raise RuntimeError(f"Lanczos (ARPACK) found no eigenvalue to tol={tol} within max_iter={max_iter} "
                           "restarts; raise max_iter or tol") from err
    return float(value[0])


def arch_eigenvalue(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], *, weight_decay: float = 0.0,
                    device: torch.device | str | None = None, generator: torch.Generator | None = None) -> float:
    """λ_max of ``∇²_α L_valid(α, ω)`` on one validation batch (RobustDARTS §4.2, Fig. 3).

    ``L_valid`` is the cross-entropy of ``model(x)`` against ``y``; α are all architecture
    parameters (:func:`~archgraph.relax.arch_parameters`, shared ones once) concatenated.
    As in the reference code, the model runs in train mode: batch-norm layers use the batch's
    statistics, and a stochastic relaxation draws one sample, kept for all Hessian-vector
    products. The call leaves no trace: the model's mode and buffers (batch-norm running
    statistics) are restored and the draws come from a forked torch RNG, so tracking λ_max
    does not change the search it watches.

    Parameters
    ----------
    model:
        A classifier with at least one :class:`~archgraph.relax.Choice`.
    batch:
        ``(x, y)``: inputs and class indices.
    weight_decay:
        Adds ``weight_decay · I``, the Hessian of the L2 penalty ``weight_decay/2 · ‖α‖²``
        (i.e. adds ``weight_decay`` to λ_max). The paper defines λ_max on ``L_valid``
        alone, hence the default 0; the reference code includes its α weight decay (pass
        ``1e-3`` to reproduce its numbers).
    device:
        Where to compute; ``None``: where the model's parameters are.
    generator:
        Lanczos's start vector (see :func:`dominant_eigenvalue`).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from archgraph.relax import Choice
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 3), Choice([nn.Tanh(), nn.ReLU(), nn.Identity()], init_std=0.5))
    >>> batch = torch.randn(16, 4), torch.randint(0, 3, (16,))
    >>> lam = arch_eigenvalue(model, batch)
    >>> lam > 0, abs(arch_eigenvalue(model, batch, weight_decay=1e-3) - lam - 1e-3) < 1e-6
    (True, True)
    """
    if not choices(model):
        raise SettingError(f"the model ({type(model).__name__}) contains no archgraph.relax.Choice, so it has no "
                         "architecture parameters to take the Hessian over; build it from Choices")
    alphas = [a for a in arch_parameters(model) if a.requires_grad]
    if not alphas:
        raise SettingError("every architecture parameter of the model has requires_grad=False; "
                         "set requires_grad=True on the Choices' alpha to take the Hessian over them")
    device = _device(model, device)
    model.to(device)
    x, y = (t.to(device) for t in batch)
    was_training = model.training
    on_accelerator = device.type != "cpu"
    with _kept_buffers(model):
        try:
            with torch.random.fork_rng(devices=[device] if on_accelerator else [],
                                       device_type=device.type if on_accelerator else None), torch.enable_grad():
                model.train()
                _, loss = _loss(_forward(model, x, with_aux=False), y, aux_weight=0.0)
            return dominant_eigenvalue(loss, alphas, generator=generator) + weight_decay
        finally:
            model.train(was_training)


def _check(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    params = list(params)
    if not params:
        raise SettingError("params is empty; pass the tensors to take the Hessian over")
    if loss.numel() != 1:
        raise ShapeError(f"the Hessian needs a scalar loss, got a tensor of shape {tuple(loss.shape)}; "
                         "reduce it first (e.g. .mean())")
    if not loss.requires_grad or not all(p.requires_grad for p in params):
        raise SettingError("the loss must be built from params with requires_grad=True and gradients enabled "
                         "(not under torch.no_grad())")
    return params


def _flat(grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def _flat_grad(loss: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
    """∇loss over params, flat, with a graph for a second backward (zeros where it does not depend on one)."""
    return _flat(torch.autograd.grad(loss, params, create_graph=True, allow_unused=True), params)


def _hessian_vector_product(grad: torch.Tensor, params: list[torch.Tensor]) -> Callable[[np.ndarray], np.ndarray]:
    """``v ↦ H v`` in numpy float64, one backward pass of ``grad · v`` per product."""

    def product(v: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(np.ascontiguousarray(v).reshape(-1), dtype=grad.dtype, device=grad.device)
        hv = torch.autograd.grad(grad, params, grad_outputs=v, retain_graph=True, allow_unused=True)
        return _flat(hv, params).detach().to("cpu", torch.float64).numpy()

    return product
