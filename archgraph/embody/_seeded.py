"""Seeded weight initialisation that leaves torch's global generator as it was.

Every builder (``build_fade``, ``build_darts``, ``build_nb201``, ``build_mlp``,
:meth:`Space.compile <archgraph.spaces.Space.compile>`, ``build_hyper`` and the supernets)
takes ``seed``. PyTorch's modules draw their initial weights in their constructors
(``nn.Conv2d.reset_parameters``, ``nn.init.kaiming_normal_``) from torch's default generator and
take no generator of their own, so a builder cannot hand them one; re-implementing every
module's initialisation to draw from a local ``torch.Generator`` would duplicate torch.
Instead the builder runs under :func:`torch.random.fork_rng`: the default generator is saved,
seeded with ``seed``, the network built, and the saved state put back. The weights are those
``torch.manual_seed(seed)`` followed by the build would give, and the caller's random stream
goes on as if nothing had been drawn.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["seeded_init"]


@contextmanager
def seeded_init(seed: int | None) -> Iterator[None]:
    """Within the block torch's default generator draws from ``seed`` (the CPU's, and the
    default device's where :func:`torch.set_default_device` made it an accelerator); afterwards
    it is back in the state it had. ``None`` changes nothing: the block draws from, and
    advances, the global generator, as plain PyTorch does.

    Examples
    --------
    >>> before = torch.get_rng_state()
    >>> with seeded_init(0):
    ...     a = torch.nn.Linear(2, 2).weight
    >>> with seeded_init(0):
    ...     b = torch.nn.Linear(2, 2).weight
    >>> torch.equal(a, b), torch.equal(torch.get_rng_state(), before)
    (True, True)
    """
    if seed is None:
        yield
        return
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an int (or None for torch's global generator), got {seed!r}") from None
    device = torch.get_default_device()
    accelerator = [device] if device.type != "cpu" else []
    with torch.random.fork_rng(devices=accelerator, device_type=device.type if accelerator else "cuda"):
        torch.random.default_generator.manual_seed(seed)
        if accelerator:
            torch.get_device_module(device.type).manual_seed(seed)
        yield
