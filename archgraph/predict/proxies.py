"""Zero-cost proxies: scores of an untrained network from one batch, no training.

Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021,
turn pruning-at-initialisation saliencies into architecture scores: a per-weight saliency is
summed over the weights of every convolution and linear layer (§3; biases and batch norm are
not scored). Each proxy here follows that paper's reference implementation
(SamsungLabs/zero-cost-nas) and its original paper; :func:`naswot` is Mellor et al. 2021.

Every proxy is ``name(model, x, y, *, seed=0, ...) -> float``: ``x`` a batch, ``y`` one
target per sample, read only by the loss-based proxies (which take ``y=None`` with a
``loss_fn`` that does not read it). Each works on a deep copy of the model, so the model's
weights, batch-norm statistics, train/eval mode and ``requires_grad`` flags are left as they
were. The copy runs in training mode (batch norm normalises with the batch's statistics, as
for the freshly built networks the proxies are meant for) on the model's device; stochastic
layers (dropout, drop-path, the ``noise`` op) draw from torch's generators seeded with
``seed`` inside a fork, so a score is a deterministic function of the weights, the batch and
``seed``, and the caller's random state is untouched. Scored layers are
``Conv1d``/``Conv2d``/``Conv3d`` and ``Linear`` (the reference scores ``Conv2d`` and
``Linear`` only, the same set on image models).

Examples
--------
>>> import torch
>>> from torch import nn
>>> _ = torch.manual_seed(0)
>>> net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
>>> x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
>>> scores = score(net, x, y)
>>> sorted(scores) == sorted(PROXIES)
True
>>> scores["synflow"] > 0 and scores["snip"] > 0
True
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import SettingError, ShapeError

__all__ = ["PROXIES", "SCORED_LAYERS", "fisher", "grad_norm", "grasp", "jacob_cov", "naswot", "score", "snip", "synflow"]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: The layers whose weights the proxies score (Abdelfattah et al. 2021, §3).
SCORED_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# the rectifiers whose binary codes NASWOT reads: modules (nn.ReLU calls F.relu) and functions
_RELUS = frozenset({torch.relu, torch.relu_, F.relu, F.relu_, F.relu6, F.leaky_relu, F.leaky_relu_,
                    torch.Tensor.relu, torch.Tensor.relu_})


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, seed: int = 0) -> float:
    """Synaptic flow, Tanaka, Kunin, Yamins & Ganguli 2020, eq. 4 and Alg. 1.

    Every parameter and buffer is replaced by its absolute value, batch norm is bypassed, and
    one all-ones input (the shape of a sample of ``x``) is fed in double precision; with
    ``R = Σ f(1)``, the score is ``Σ_θ |θ ⊙ ∂R/∂θ|`` over the scored weights. The data never
    enter: only ``x``'s sample shape is read, and ``y`` is ignored. For a bias-free network of
    ``L`` linear layers the score is ``L · R`` (the conservation law of §4).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(3, 2, bias=False), nn.Linear(2, 1, bias=False))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1., -2., 0.], [0., 1., 1.]]))
    ...     _ = net[1].weight.copy_(torch.tensor([[-1., 3.]]))
    >>> synflow(net, torch.randn(4, 3))  # L · R = 2 · (1·3 + 3·2)
    18.0
    """
    with _scoring(model, x, None, seed=seed) as (net, x, _):
        _bypass_batch_norm(net)
        net.double()
        with torch.no_grad():
            for t in chain(net.parameters(), net.buffers()):
                t.abs_()
        weights = _weights(net)
        r = _forward(net, torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)).sum()
        return _total((w * g).abs() for w, g in zip(weights, _grads(r, weights)))


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss_fn: Loss = F.cross_entropy,
         seed: int = 0) -> float:
    """SNIP connection sensitivity, Lee, Ajanthan & Torr 2019, eq. 6 (unnormalised):
    ``Σ_θ |θ ⊙ ∂L/∂θ|``, the loss ``L = loss_fn(model(x), y)`` on one batch.

    This is ``|∂L/∂c|`` at ``c = 1`` for a multiplicative mask ``c`` on the weights, the
    reference's formulation, computed without the mask.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Linear(3, 2, bias=False)
    >>> x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    >>> gain = lambda out, target: out.sum()  # ∂L/∂W = 1 Σ_n xₙᵀ does not depend on W
    >>> with torch.no_grad():
    ...     base = snip(net, x, y, loss_fn=gain)
    ...     _ = net.weight.mul_(3)
    >>> abs(snip(net, x, y, loss_fn=gain) - 3 * base) < 1e-4
    True
    """
    with _scoring(model, x, y, seed=seed, loss_fn=loss_fn) as (net, x, y):
        weights, grads = _loss_grads(net, x, y, loss_fn)
        return _total((w * g).abs() for w, g in zip(weights, grads))


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss_fn: Loss = F.cross_entropy,
              seed: int = 0) -> float:
    """Gradient norm, Abdelfattah et al. 2021, §3: ``Σ_layers ‖∂L/∂W‖₂``, the Euclidean
    (Frobenius) norm of each scored weight's gradient, summed over the layers.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Linear(2, 1, bias=False)
    >>> x = torch.tensor([[3., 4.]])
    >>> grad_norm(net, x, None, loss_fn=lambda out, target: out.sum())  # ‖x‖₂
    5.0
    """
    with _scoring(model, x, y, seed=seed, loss_fn=loss_fn) as (net, x, y):
        _, grads = _loss_grads(net, x, y, loss_fn)
        return _total(g.norm() for g in grads)


def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss_fn: Loss = F.cross_entropy,
          seed: int = 0) -> float:
    """GraSP, Wang, Zhang & Grosse 2020, eq. 8, with the sign of the reference:
    ``Σ_θ −θ ⊙ (H g)``, ``g = ∂L/∂θ`` held constant and ``H`` the Hessian of ``L`` over the
    scored weights.

    ``H g`` is the gradient of ``⟨g, ∂L/∂θ⟩`` (a Hessian-vector product; ``H`` is never
    formed). One forward pass serves both differentiations; the reference runs two, which is
    the same on a deterministic network.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Linear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = net.weight.fill_(1.0)
    >>> x = torch.tensor([[1., 2.]])
    >>> # L = ½ (w·x)²: g = (w·x) x, H = x xᵀ, H g = (w·x) |x|² x, score = −(w·x)² |x|² = −45
    >>> grasp(net, x, None, loss_fn=lambda out, target: 0.5 * out.pow(2).sum())
    -45.0
    """
    with _scoring(model, x, y, seed=seed, loss_fn=loss_fn) as (net, x, y):
        weights, grads = _loss_grads(net, x, y, loss_fn, create_graph=True)
        hg = _grads(sum((g.detach() * g).sum() for g in grads), weights)
        return _total(-w.detach() * h for w, h in zip(weights, hg))


def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss_fn: Loss = F.cross_entropy,
           fan_in: bool = False, seed: int = 0) -> float:
    """Fisher channel saliency, Theis et al. 2018, eq. 9, as used by Turner et al. 2020
    (BlockSwap): ``Σ_layers Σ_k Δ_k``, ``Δ_k = ½ · mean_n (Σ_s a_nks ∂L/∂a_nks)²``, where
    ``a`` is a scored layer's output (before any batch norm), ``k`` its output channel
    (dim 1 of a convolution's output, the last dim of a linear layer's) and ``s`` runs over
    the remaining (spatial) positions. ``L`` is the batch's mean loss, as in the reference.

    The reference broadcasts each ``Δ_k`` over the weights of channel ``k`` before summing,
    which multiplies it by the layer's fan-in (``weight[0].numel()``); ``fan_in=True``
    reproduces that, and the numbers of Abdelfattah et al. 2021. The default is the papers'
    sum over channels. A layer called several times adds the ``Δ_k`` of every call.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Linear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = net.weight.fill_(1.0)
    >>> x = torch.tensor([[1., 2.]])
    >>> # a = 3, ∂L/∂a = a for L = ½ a²: Δ = ½ (a · a)² = 40.5; fan-in 2
    >>> half_square = lambda out, target: 0.5 * out.pow(2).sum()
    >>> fisher(net, x, None, loss_fn=half_square), fisher(net, x, None, loss_fn=half_square, fan_in=True)
    (40.5, 81.0)
    """
    with _scoring(model, x, y, seed=seed, loss_fn=loss_fn) as (net, x, y):
        layers = _layers(net)
        calls: list[tuple[nn.Module, torch.Tensor]] = []

        def keep(layer: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
            calls.append((layer, output))
            return output.clone()  # an in-place op downstream (ReLU(inplace=True)) must not alter it

        for layer in layers:
            layer.register_forward_hook(keep)  # on the copy, which is dropped afterwards
        loss = loss_fn(_forward(net, x), y)
        grads = _grads(loss, [a for _, a in calls])
        deltas = []
        for (layer, a), g in zip(calls, grads):
            s = a.detach() * g
            if isinstance(layer, nn.Linear):
                s = s.movedim(-1, 1)
            delta = 0.5 * s.reshape(s.shape[0], s.shape[1], -1).sum(2).pow(2).mean(0)
            deltas.append(delta * layer.weight[0].numel() if fan_in else delta)
        return _total(deltas)


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, seed: int = 0) -> float:
    """Jacobian covariance, Mellor, Turner, Storkey & Crowley 2020 (arXiv:2006.04647v1),
    eq. 2: ``−Σ_i [log(v_i + k) + 1/(v_i + k)]``, ``k = 10⁻⁵``, over the eigenvalues ``v_i``
    of the correlation matrix of the per-sample input gradients ``J_n = ∂(Σ f(x))/∂x_n``.

    ``y`` is ignored. The correlation matrix is computed in double precision and its
    eigenvalues, non-negative in exact arithmetic, are clamped at 0 against round-off (where
    the reference's ``log`` would return NaN). A network whose input gradient is constant
    over some sample (an output that ignores the input) has no correlation matrix: the score
    is then NaN, as in the reference.

    Examples
    --------
    >>> import math, torch
    >>> from torch import nn
    >>> net = nn.Linear(3, 2, bias=False)  # every Jₙ = Wᵀ1: C is all ones, eigenvalues 4, 0, 0, 0
    >>> k = 1e-5
    >>> expected = -(math.log(4 + k) + 1 / (4 + k) + 3 * (math.log(k) + 1 / k))
    >>> abs(jacob_cov(net, torch.randn(4, 3)) - expected) < 1e-6 * abs(expected)
    True
    """
    with _scoring(model, x, None, seed=seed, min_batch=2) as (net, x, _):
        x = x.detach().clone().requires_grad_(True)
        (jac,) = _grads(_forward(net, x).sum(), [x])
        corr = torch.corrcoef(jac.reshape(len(x), -1).double())
        if not torch.isfinite(corr).all():
            return float("nan")
        v = torch.linalg.eigvalsh(corr).clamp(min=0.0) + 1e-5
        return -(v.log() + v.reciprocal()).sum().item()


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, seed: int = 0) -> float:
    """NASWOT, Mellor, Turner, Storkey & Crowley 2021, §3, eq. 2: ``log |det K|`` with
    ``K = Σ_ReLU [c cᵀ + (1 − c)(1 − c)ᵀ]``, ``c_n`` the binary code ``pre-activation > 0`` of
    sample ``n`` at a rectifier; ``K_nm`` counts the units where samples ``n`` and ``m`` fall
    on the same side. The paper uses batches of 128; ``y`` is ignored.

    Every call of a rectifier on a batch is read: ``nn.ReLU`` (and ReLU6, LeakyReLU) modules
    and the functions ``torch.relu``/``F.relu`` that compiled FaDE cells call. The reference
    hooks the modules reached by the backward pass whose class name contains ``ReLU``; on
    networks whose rectifiers all sit on a path to the output the two coincide, except that
    its name test also takes ``ReLUConvBN`` blocks (NAS-Bench-201, DARTS), whose input is that
    of their first ReLU: it counts those codes twice, archgraph once.

    Examples
    --------
    >>> import math, torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU())
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.], [-1.]]))
    ...     _ = net[0].bias.zero_()
    >>> x = torch.tensor([[1.], [-1.], [2.]])  # codes 10, 01, 10: K = [[2, 0, 2], [0, 2, 0], [2, 0, 2]]
    >>> naswot(net, x)
    -inf
    >>> abs(naswot(net, x[:2]) - math.log(4)) < 1e-12
    True
    """
    with _scoring(model, x, None, seed=seed, min_batch=2) as (net, x, _), torch.no_grad():
        with _BinaryCodes(len(x)) as codes:
            _forward(net, x)
        if codes.kernel is None:
            raise SettingError(f"naswot reads the binary codes of ReLU activations, but {type(model).__name__} "
                             "called no ReLU on the batch; use a ReLU network, or another proxy")
        return torch.linalg.slogdet(codes.kernel).logabsdet.item()


#: Proxy name → function, in the order of Abdelfattah et al. 2021, Table 1, then NASWOT.
PROXIES: dict[str, Callable[..., float]] = {
    "grad_norm": grad_norm, "snip": snip, "grasp": grasp, "fisher": fisher,
    "synflow": synflow, "jacob_cov": jacob_cov, "naswot": naswot,
}
_LOSS_BASED = frozenset({"grad_norm", "snip", "grasp", "fisher"})


def score(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, proxies: str | Sequence[str] | None = None,
          *, loss_fn: Loss = F.cross_entropy, seed: int = 0) -> dict[str, float]:
    """The named proxies (all of :data:`PROXIES` by default) of ``model`` on one batch,
    ``{name: value}``; ``loss_fn`` goes to the loss-based ones.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    >>> list(score(net, x, y, ["snip", "naswot"]))
    ['snip', 'naswot']
    >>> score(net, x, y, "zen")
    Traceback (most recent call last):
    ...
    archgraph.errors.SettingError: unknown proxy 'zen'; known: grad_norm, snip, grasp, fisher, synflow, jacob_cov, naswot
    """
    names = list(PROXIES) if proxies is None else [proxies] if isinstance(proxies, str) else list(proxies)
    for name in names:
        if name not in PROXIES:
            raise SettingError(f"unknown proxy {name!r}; known: {', '.join(PROXIES)}")
    return {name: PROXIES[name](model, x, y, seed=seed, **({"loss_fn": loss_fn} if name in _LOSS_BASED else {}))
            for name in names}


@contextmanager
def _scoring(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, *, seed: int, loss_fn: Loss | None = None,
             min_batch: int = 1) -> Iterator[tuple[nn.Module, torch.Tensor, torch.Tensor | None]]:
    """Check the batch (``y`` only for a loss; cross-entropy needs it), then yield a
    training-mode copy of ``model`` and the batch on its device, inside a seeded fork of
    torch's random state with gradients enabled."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module (got {type(model).__name__})")
    if not torch.is_tensor(x) or x.dim() < 2 or len(x) < min_batch:
        got = f"a tensor of shape {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__
        raise ShapeError(f"x must be a batch (N, *sample_shape) of N ≥ {min_batch} samples, got {got}")
    checks_y = loss_fn is not None and (y is not None or loss_fn is F.cross_entropy)
    if checks_y and (not torch.is_tensor(y) or y.dim() == 0 or len(y) != len(x)):
        got = f"shape {tuple(y.shape)}" if torch.is_tensor(y) else type(y).__name__
        raise ShapeError(f"y must hold one target per sample of x ({len(x)}), got {got}")
    device = next(chain(model.parameters(), model.buffers()), x).device
    accelerated = device.type != "cpu"
    with torch.random.fork_rng(devices=[device] if accelerated else [],
                               device_type=device.type if accelerated else None), torch.enable_grad():
        torch.manual_seed(seed)
        yield copy.deepcopy(model).train(), x.to(device), None if y is None else y.to(device)


def _layers(net: nn.Module) -> list[nn.Module]:
    """The scored layers of ``net``, their weights set to require gradients."""
    layers = [m for m in net.modules() if isinstance(m, SCORED_LAYERS)]
    if not layers:
        raise SettingError(f"{type(net).__name__} has no Conv1d/Conv2d/Conv3d or Linear layer, whose weights "
                         "zero-cost proxies score; use jacob_cov or naswot, which need none")
    for layer in layers:
        layer.weight.requires_grad_(True)
    return layers


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [layer.weight for layer in _layers(net)]


def _forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = net(x)
    if not torch.is_tensor(out) or out.dim() == 0 or len(out) != len(x):
        got = f"shape {tuple(out.shape)}" if torch.is_tensor(out) else type(out).__name__
        raise ShapeError(f"the model must map a batch of {len(x)} samples to {len(x)} outputs, got {got}")
    return out


def _grads(output: torch.Tensor, inputs: Sequence[torch.Tensor], *, create_graph: bool = False) -> list[torch.Tensor]:
    """``∂output/∂inputs``, zeros for inputs the output does not depend on."""
    if not output.requires_grad:
        return [torch.zeros_like(t) for t in inputs]
    return list(torch.autograd.grad(output, inputs, create_graph=create_graph, allow_unused=True,
                                    materialize_grads=True))


def _loss_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None, loss_fn: Loss, *,
                create_graph: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The scored weights and the gradients of the batch loss with respect to them."""
    weights = _weights(net)
    return weights, _grads(loss_fn(_forward(net, x), y), weights, create_graph=create_graph)


def _total(values: Iterable[torch.Tensor]) -> float:
    """The sum of all entries of ``values``, accumulated in double precision."""
    return float(sum((v.detach().sum(dtype=torch.float64) for v in values), 0.0))


def _bypass_batch_norm(net: nn.Module) -> None:
    """Replace every batch-norm layer of ``net`` by the identity (in place)."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, _BATCH_NORMS):
                setattr(module, name, nn.Identity())


class _BinaryCodes(TorchFunctionMode):
    """Accumulates NASWOT's kernel from every rectifier called on a batch of ``n`` samples."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.kernel: torch.Tensor | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RELUS:
            z = args[0] if args else kwargs["input"]
            if z.dim() > 0 and len(z) == self.n:
                c = (z > 0).reshape(self.n, -1).double()
                k = c @ c.T + (1 - c) @ (1 - c).T
                self.kernel = k if self.kernel is None else self.kernel + k
        return func(*args, **kwargs)
