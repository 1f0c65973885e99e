"""Shipping a trial's trained model: ONNX or TorchScript files, checked against the module.

:func:`export_model` rebuilds a run's trial (:func:`archgraph.bundle.load_bundle`), writes it as

* ``onnx``: :func:`torch.onnx.export` (the dynamo exporter, opset of torch's choice), the batch
  dimension dynamic, checked by :func:`onnx.checker.check_model`; needs ``onnx`` and ``onnxscript``
  (``pip install "archgraph[export]"``);
* ``torchscript``: :func:`torch.jit.script`, saved with its code, loadable by
  :func:`torch.jit.load` (and from C++) without archgraph;

then runs the written file on a batch of inputs (a seeded standard normal, of a batch size other
than the export's example, so the dynamic batch is exercised) and compares its outputs with the
module's: the file is kept only when the largest absolute difference is at most ``tolerance``
(1e-5). An ONNX file runs on ``onnxruntime`` when it is installed, else on ONNX's reference
evaluator (:class:`onnx.reference.ReferenceEvaluator`, pure Python: slower, same semantics).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .bundle import load_bundle
from .errors import ArchGraphError

__all__ = ["FORMATS", "Exported", "export_model"]

FORMATS = ("onnx", "torchscript")


@dataclass(frozen=True)
class Exported:
    """What :func:`export_model` wrote and how it checked it."""

    path: Path
    format: str
    trial: int
    input_shape: tuple[int, ...]  #: one sample's shape; the file takes a batch of them
    runtime: str  #: what ran the file for the check: ``onnxruntime``, ``onnx.reference`` or ``torch.jit``
    max_difference: float  #: the largest absolute difference between the file's outputs and the module's


def export_model(run_dir: str | os.PathLike, out: str | os.PathLike, format: str, *, trial: int | None = None,
                 batch_size: int = 4, tolerance: float = 1e-5, seed: int = 0) -> Exported:
    """Write the trained model of trial ``trial`` (``None``: the best) of the run in ``run_dir`` to
    ``out`` as ``format`` (``onnx`` or ``torchscript``), checked on ``batch_size`` inputs drawn
    with ``seed`` (see the module docstring).

    Raises
    ------
    ArchGraphError
        For an unknown format, a missing exporter package, a trial that cannot be loaded, or a file
        whose outputs differ from the module's by more than ``tolerance`` (then nothing is written).
    """
    if format not in FORMATS:
        raise ArchGraphError(f"unknown export format {format!r}; known: {', '.join(FORMATS)}")
    model, bundle = load_bundle(run_dir, trial)
    shape = tuple(bundle["input_shape"])
    x = torch.randn((batch_size, *shape), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = model(x)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if format == "onnx":
            _write_onnx(model, x[:max(1, batch_size // 2)], tmp)  # another batch size than the check's
            outputs, runtime = _run_onnx(tmp, x)
        else:
            torch.jit.script(model).save(str(tmp))
            outputs, runtime = torch.jit.load(str(tmp))(x).detach(), "torch.jit"
        difference = (outputs - expected).abs().max().item()
        if not difference <= tolerance:
            raise ArchGraphError(f"the {format} file's outputs differ from the module's by up to {difference:.3g} "
                                 f"(tolerance {tolerance:g}); nothing was written; please report it with the run's "
                                 "space and architecture")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return Exported(out, format, bundle["trial"], shape, runtime, difference)


def _write_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
    except ImportError:
        raise ArchGraphError('ONNX export needs onnx and onnxscript; install them with: '
                             'pip install "archgraph[export]"') from None
    batch = torch.export.Dim("batch")
    exporter_log = logging.getLogger("torch.onnx")  # it warns of every torchvision op it cannot register
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # and torch's own deprecations, nothing the user can act on
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(model, (example,), str(path), dynamo=True, dynamic_shapes=({0: batch},),
                              external_data=False, verbose=False)
    finally:
        exporter_log.setLevel(level)
    onnx.checker.check_model(str(path), full_check=True)


def _run_onnx(path: Path, x: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The file's output for ``x``, and what computed it."""
    try:
        import onnxruntime
    except ImportError:
        import onnx
        from onnx.reference import ReferenceEvaluator

        proto = onnx.load(str(path))
        (output,) = ReferenceEvaluator(proto).run(None, {proto.graph.input[0].name: x.numpy()})
        return torch.from_numpy(output), "onnx.reference"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return torch.from_numpy(output), "onnxruntime"
