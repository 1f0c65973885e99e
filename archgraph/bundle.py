"""Model bundles: what a run folder keeps to rebuild a trial's trained model, and :func:`load_model`.

Every trial's checkpoint (``RUN_DIR/checkpoints/trial-<id>.pt``, written by
:class:`~archgraph.evaluate.TrialEvaluator`) holds, beside the trained weights (``model``), a
``bundle``: a dict of plain values that rebuilds the module without the run's config, the
space's file or the dataset:

============== ==========================================================================
``format``     ``"archgraph-model"``
``version``    :data:`BUNDLE_VERSION` (a newer one is refused with what to do)
``space``      the space's name, its ``embodiment`` (the compiler) and ``cells`` (cell names)
``params``     every parameter of the compiler, resolved: the builder's defaults, the
               space file's values, the run's overrides (``channels``, ``kernel_size``, ...)
``arch``       the cells, as :meth:`ArchGraph.to_dict <archgraph.graph.ArchGraph.to_dict>` gives them
``input_shape`` one sample's shape, without the batch dimension
``num_classes`` the outputs (logits)
``dataset``    the dataset it was trained on, whose inputs it expects as
               :func:`archgraph.data.load` gives them (scaled or normalised)
``archgraph``  the version of archgraph that wrote it
============== ==========================================================================

:func:`load_model` returns the trained module of a run's best trial (or of a given one), in
eval mode; :func:`load_bundle` returns the bundle with it. ``best_arch.json`` also names the
space's parameters, for ``archgraph train``. Exporting a bundle to ONNX or TorchScript is
:mod:`archgraph.export`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__, spaces
from .errors import ArchGraphError
from .graph import ArchGraph
from .store import STORE_FILE, SQLiteStore, load_checkpoint
from .trial import TrainArchitecture, TrialState

__all__ = ["BUNDLE_FORMAT", "BUNDLE_VERSION", "build", "describe", "load_bundle", "load_model", "resolved_params"]

BUNDLE_FORMAT = "archgraph-model"
#: Version of the bundle's layout; 1: the fields of the module docstring.
BUNDLE_VERSION = 1


def resolved_params(space: spaces.Space, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Every keyword parameter of the space's compiler as a model is built with ``overrides``:
    the builder's defaults, then the space file's values, then the overrides.

    >>> resolved_params(spaces.load("fade"), {"channels": 2})
    {'channels': 2, 'kernel_size': 5, 'pool': 'max', 'weights_per_cell': None}
    """
    space.check_params(overrides)
    defaults = spaces.builder_options(space.builder())
    return json.loads(json.dumps({**defaults, **space.params, **overrides}))  # plain JSON values, as stored


def describe(space: spaces.Space, arch: Sequence[ArchGraph], *, params: Mapping[str, Any],
             input_shape: Sequence[int], num_classes: int, dataset: str) -> dict[str, Any]:
    """The bundle of a model of ``space`` compiled from ``arch`` with ``params`` (see the module docstring)."""
    return {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "space": space.name, "embodiment": space.embodiment,
            "cells": list(space.cells), "params": resolved_params(space, params),
            "arch": [cell.to_dict() for cell in arch], "input_shape": [int(n) for n in input_shape],
            "num_classes": int(num_classes), "dataset": dataset, "archgraph": __version__}


def build(bundle: Mapping[str, Any]) -> nn.Module:
    """A freshly initialised module of the bundle's architecture (load the weights into it).

    Raises
    ------
    ArchGraphError
        When ``bundle`` is not one, or of a newer version than this archgraph reads.
    """
    if bundle.get("format") != BUNDLE_FORMAT:
        raise ArchGraphError(f"not a model bundle (format {bundle.get('format')!r}, expected {BUNDLE_FORMAT!r})")
    if bundle["version"] > BUNDLE_VERSION:
        raise ArchGraphError(f"the model bundle has version {bundle['version']}, this archgraph reads up to "
                             f"{BUNDLE_VERSION}; upgrade archgraph (it was written by archgraph {bundle['archgraph']})")
    space = spaces.Space(name=bundle["space"], embodiment=bundle["embodiment"], cells=tuple(bundle["cells"]),
                         params=bundle["params"])
    arch = [ArchGraph.from_dict(cell) for cell in bundle["arch"]]
    return space.compile(arch, input_shape=bundle["input_shape"], num_classes=bundle["num_classes"])


def load_bundle(run_dir: str | os.PathLike, trial: int | None = None, *,
                device: str | torch.device | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The trained module of trial ``trial`` of the run in ``run_dir`` (``None``: the best
    trial by validation accuracy, the earliest among ties), in eval mode on ``device`` (default
    the CPU), and its bundle with the ``trial`` id added.

    Raises
    ------
    ArchGraphError
        When the folder holds no run, the trial does not exist, did not complete (failed, pruned,
        running), trained a hyper-architecture, or its checkpoint holds no bundle; each message
        says what to do.
    """
    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILE).is_file():
        raise ArchGraphError(f"{run_dir} holds no search run ({STORE_FILE} is missing); give a run folder of "
                             "archgraph search")
    with SQLiteStore(run_dir / STORE_FILE, read_only=True) as store:
        recs = {r["trial"]: r for r in store.records()}
    record = recs.get(trial) if trial is not None else _best(recs.values(), run_dir)
    if record is None:
        raise ArchGraphError(f"{run_dir} has no trial {trial}; its trials are 0 to {len(recs) - 1}")
    _check_loadable(record, run_dir)
    state = load_checkpoint(run_dir, record["checkpoint"])
    if "bundle" not in state:
        raise ArchGraphError(f"{run_dir / record['checkpoint']} holds weights but no model bundle (written by an "
                             "archgraph before bundles); compile best_arch.json's cells with the run's space "
                             "parameters and load its 'model' state instead")
    model = build(state["bundle"])
    model.load_state_dict(state["model"])
    return model.to(device or "cpu").eval(), {**state["bundle"], "trial": record["trial"]}


def load_model(run_dir: str | os.PathLike, trial: int | None = None, *,
               device: str | torch.device | None = None) -> nn.Module:
    """The trained ``nn.Module`` of the best trial of the run in ``run_dir``, or of trial ``trial``,
    in eval mode on ``device`` (default the CPU); see :func:`load_bundle`.

    Examples
    --------
    >>> import tempfile, torch
    >>> from archgraph.search.session import SearchConfig, search
    >>> config = SearchConfig(trials=2, epochs=1, space_params={"channels": 2, "kernel_size": 3},
    ...                       strategy_params={"draws": 1})
    >>> with tempfile.TemporaryDirectory() as run_dir:
    ...     outcome = search(config, run_dir, progress=False)
    ...     model = load_model(run_dir)
    >>> model(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 10])
    """
    return load_bundle(run_dir, trial, device=device)[0]


def _best(records, run_dir: Path) -> dict[str, Any]:
    scored = [r for r in records if r["state"] == TrialState.COMPLETE.value and "val_accuracy" in r["metrics"]]
    if not scored:
        raise ArchGraphError(f"{run_dir} has no completed trial with a validation accuracy yet; wait for one, or "
                             "name a trial")
    return max(scored, key=lambda r: (r["metrics"]["val_accuracy"], -r["trial"]))


def _check_loadable(record: Mapping[str, Any], run_dir: Path) -> None:
    trial, state = record["trial"], record["state"]
    if record["kind"] != TrainArchitecture.tag:
        raise ArchGraphError(f"trial {trial} trained no single model (its task is {record['kind']!r}); name an "
                             "architecture trial, or leave the trial out for the run's best")
    if state != TrialState.COMPLETE.value or record["checkpoint"] is None:
        why = {"failed": f"failed ({record['error']})", "pruned": "was pruned (stopped early, no checkpoint)",
               "running": "is still training (or was interrupted)"}.get(state, "has no checkpoint")
        raise ArchGraphError(f"trial {trial} of {run_dir} {why}; name a completed trial, or leave the trial out "
                             "for the run's best")
