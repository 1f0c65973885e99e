"""What every benchmark's results file records beside its figures: the exact command and the
versions that made them (README tables come from these files)."""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path


def provenance() -> dict:
    """The command line of this process and the versions of Python, torch, archgraph and mnist1d."""
    return {"command": "python " + " ".join(sys.argv),
            "versions": {"python": platform.python_version(),
                         **{p: version(p) for p in ("torch", "archgraph", "mnist1d")}}}


def write_results(path: Path, **fields) -> Path:
    """Write ``fields`` as JSON to ``path`` (its folder made), after :func:`provenance`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**provenance(), **fields}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path
