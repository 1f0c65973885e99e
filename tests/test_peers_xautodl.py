"""Fidelity against the NAS-Bench-201 authors' reference code (``xautodl``).

Compared, with the same weights on both sides:

* a compiled cell (:func:`~archgraph.embody.nb201.build_nb201`) against ``TinyNetwork``: parameter
  count and eval-mode logits, weights copied by :func:`~archgraph.embody.nb201.xautodl_names`
  (the stem, ``lastact``, classifier and ``downsample`` keep their names; ReLU-conv-BN ``.1``/``.2``
  are ``.op.1``/``.op.2`` there; a cell's ``edge_ops.k`` is ``layers.L``, ``L`` the index of its
  edge in the NAS-Bench-201 string);
* GDAS sampling: ``Gumbel(tau, hard=True).mix`` against ``TinyNetworkGDAS``'s ``hardwts`` and
  ``index`` for the same α and Gumbel noise, values and gradients;
* the search supernet (:func:`~archgraph.oneshot.nb201.build_nb201_supernet`) against
  ``TinyNetworkDarts`` (softmax) and ``TinyNetworkGDAS`` (hard Gumbel, fed the same noise):
  training-mode logits and the gradients of α and of every weight. Edge ``j`` (``EDGES[j] =
  (u, v)``) is row ``j`` of xautodl's α, and ``cells.i.mixed.j.candidates.k`` is its
  ``cells.i.edges.{v}<-{u}.k``. xautodl's search-cell convolutions have a bias that archgraph
  leaves out; a training-mode batch norm cancels it, so it keeps its own value.
"""

import re

import pytest
import torch

from archgraph.embody.nb201 import EDGES, NB201_OPS, build_nb201, xautodl_names
from archgraph.oneshot.nb201 import build_nb201_supernet
from archgraph.relax import Gumbel

xautodl = pytest.importorskip("xautodl")
TinyNetwork = pytest.importorskip("xautodl.models.cell_infers").TinyNetwork
searchs = pytest.importorskip("xautodl.models.cell_searchs")
Structure, TinyNetworkDarts, TinyNetworkGDAS = searchs.CellStructure, searchs.TinyNetworkDarts, searchs.TinyNetworkGDAS
NAS201SearchCell = searchs.search_cells.NAS201SearchCell

ALL_OPS = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
DEAD_MIDDLE = "|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
CELLS = [ALL_OPS, ALL_NONE, ALL_SKIP, DEAD_MIDDLE]


def _pair(arch: str):
    """archgraph's and xautodl's benchmark network (C = 16, N = 5) for ``arch``."""
    return (build_nb201(arch, input_shape=(3, 32, 32), num_classes=10),
            TinyNetwork(16, 5, Structure.str2structure(arch), 10))


def _count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def _randomise_batch_norms(net, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)


@pytest.mark.parametrize("arch", CELLS)
def test_compiled_network_has_the_reference_parameter_count(arch):
    ours, theirs = _pair(arch)
    assert _count(ours) == _count(theirs)


@pytest.mark.parametrize("arch", CELLS)
def test_compiled_network_gives_the_reference_eval_logits(arch):
    torch.manual_seed(0)
    ours, theirs = _pair(arch)
    names = xautodl_names(ours)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    # every parameter and buffer (num_batches_tracked too) has one counterpart of the same shape
    assert sorted(names.values()) == sorted(theirs_state)
    assert all(ours_state[k].shape == theirs_state[names[k]].shape for k in names)
    _randomise_batch_norms(ours, seed=1)
    theirs.load_state_dict({names[k]: v for k, v in ours.state_dict().items()})
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    ours.eval(), theirs.eval()
    with torch.no_grad():
        logits = ours(x)
        torch.testing.assert_close(logits, theirs(x)[1], rtol=1e-5, atol=1e-5)
    assert logits.std() > 1e-3  # not a constant output that any network matches


# --- GDAS sampling ---------------------------------------------------------------------------------

def _gumbel_noise(seed: int, like: torch.Tensor) -> torch.Tensor:
    """The Gumbel noise TinyNetworkGDAS draws first thing in its forward after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return -torch.empty_like(like).exponential_().log()


def _gdas_reference(C: int, N: int, alpha: torch.Tensor, tau: float, monkeypatch):
    """A float64 TinyNetworkGDAS with α and τ set, and the list its cells' ``forward_gdas`` calls
    record ``(hardwts, index)`` into."""
    net = TinyNetworkGDAS(C, N, 4, 10, list(NB201_OPS), False, True).double()
    with torch.no_grad():
        net.arch_parameters.copy_(alpha)
    net.tau = tau
    calls = []
    original = NAS201SearchCell.forward_gdas

    def recording(cell, inputs, hardwts, index):
        calls.append((hardwts, index))
        return original(cell, inputs, hardwts, index)

    monkeypatch.setattr(NAS201SearchCell, "forward_gdas", recording)
    return net, calls


@pytest.mark.parametrize("tau", [10.0, 1.0, 0.1])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gdas_weights_match_the_reference_sample(seed, tau, monkeypatch):
    alpha = torch.randn(len(EDGES), len(NB201_OPS), dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    theirs, calls = _gdas_reference(2, 1, alpha, tau, monkeypatch)
    torch.manual_seed(seed)
    theirs(torch.zeros(2, 3, 4, 4, dtype=torch.float64))
    hardwts, index = calls[0]
    assert len(calls) == 3 and all(c[0] is hardwts for c in calls)  # one draw shared by the 3 cells

    ours = alpha.clone().requires_grad_()
    w = Gumbel(tau, hard=True).mix(ours, _gumbel_noise(seed, alpha))
    assert torch.equal(w.argmax(-1, keepdim=True), index)
    torch.testing.assert_close(w, hardwts, rtol=0, atol=1e-12)
    cotangent = torch.randn(w.shape, dtype=w.dtype, generator=torch.Generator().manual_seed(seed + 10))
    (ref_grad,) = torch.autograd.grad((hardwts * cotangent).sum(), theirs.arch_parameters)
    (grad,) = torch.autograd.grad((w * cotangent).sum(), ours)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)
    assert grad.abs().max() > 1e-6


# --- the search supernet ---------------------------------------------------------------------------

C, N, SHAPE = 4, 1, (3, 8, 8)


def _supernet_names(net) -> dict[str, str]:
    """archgraph supernet key → TinyNetworkDarts / TinyNetworkGDAS key; α (one (6, 5) tensor there) left out."""
    names = {}
    for key in net.state_dict():
        mixed = re.fullmatch(r"cells\.(\d+)\.mixed\.(\d+)\.candidates\.(\d+)\.(.+)", key)
        if mixed:
            u, v = EDGES[int(mixed[2])]
            names[key] = f"cells.{mixed[1]}.edges.{v}<-{u}.{mixed[3]}.op.{mixed[4]}"
        elif not key.endswith(".alpha"):
            names[key] = re.sub(r"\.(conv_[ab])\.", r".\1.op.", key)
    return names


def _copy_supernet(ours, theirs) -> dict[str, str]:
    """Copy ``ours``' weights and α into ``theirs``; returns the name mapping."""
    names = _supernet_names(ours)
    missing, unexpected = theirs.load_state_dict({names[k]: v for k, v in ours.state_dict().items() if k in names},
                                                 strict=False)
    assert not unexpected and "arch_parameters" in missing
    # besides α, exactly the search-cell convolutions' biases have no counterpart
    biases = [k for k in missing if k != "arch_parameters"]
    assert biases and all(re.fullmatch(r"cells\.\d+\.edges\.\d<-\d\.[23]\.op\.1\.bias", k) for k in biases)
    with torch.no_grad():
        theirs.arch_parameters.copy_(torch.stack(ours.arch_parameters()))
    return names


def _loss(logits: torch.Tensor) -> torch.Tensor:
    cotangent = torch.randn(logits.shape, dtype=logits.dtype, generator=torch.Generator().manual_seed(5))
    return (logits * cotangent).sum()


def _assert_same_training_step(ours, theirs, names: dict[str, str], x: torch.Tensor, seed: int) -> None:
    """Training-mode logits, α gradient and every weight gradient agree to 1e-5."""
    torch.manual_seed(seed)
    logits = ours(x)
    _loss(logits).backward()
    torch.manual_seed(seed)
    ref_logits = theirs(x)[1]
    _loss(ref_logits).backward()
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
    alpha_grad = torch.stack([a.grad for a in ours.arch_parameters()])
    torch.testing.assert_close(alpha_grad, theirs.arch_parameters.grad, rtol=1e-5, atol=1e-5)
    assert alpha_grad.abs().max() > 1e-4
    ref_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        if name in names:
            ref = ref_params[names[name]].grad
            assert (p.grad is None) == (ref is None), name
            if ref is not None:
                torch.testing.assert_close(p.grad, ref, rtol=1e-5, atol=1e-5, msg=name)


def _supernet(relaxation, fused=True):
    torch.manual_seed(3)
    ours = build_nb201_supernet(input_shape=SHAPE, num_classes=10, C=C, N=N, relaxation=relaxation, fused=fused,
                                init_std=1.0).double()
    return ours, torch.randn(6, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(4))


@pytest.mark.parametrize("fused", [True, False])
def test_darts_supernet_matches_tiny_network_darts(fused):
    ours, x = _supernet("softmax", fused)
    theirs = TinyNetworkDarts(C, N, 4, 10, list(NB201_OPS), False, True).double()
    names = _copy_supernet(ours, theirs)
    _assert_same_training_step(ours, theirs, names, x, seed=0)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_gdas_supernet_matches_tiny_network_gdas(seed, fused, monkeypatch):
    relaxation = Gumbel(1.0, hard=True)
    ours, x = _supernet(relaxation, fused)
    theirs, calls = _gdas_reference(C, N, torch.zeros(len(EDGES), len(NB201_OPS)), relaxation.tau, monkeypatch)
    names = _copy_supernet(ours, theirs)
    # feed archgraph the noise xautodl draws after torch.manual_seed(seed): edge j takes row j
    noise = _gumbel_noise(seed, theirs.arch_parameters)
    rows = {id(a): j for j, a in enumerate(ours.arch_parameters())}
    relaxation.weights = lambda alpha, generator=None: Gumbel.mix(relaxation, alpha, noise[rows[id(alpha)]])
    _assert_same_training_step(ours, theirs, names, x, seed)
    assert len(calls) == 3
