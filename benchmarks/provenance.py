"""What every benchmark's results file records beside its figures: the exact command and the
versions that made them (README tables come from these files); and the ``--runs`` file of a
resumable benchmark, one JSON line per finished run keyed by what made it."""

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


def finished_runs(path: Path) -> dict[str, dict]:
    """The runs ``path`` holds (JSON lines ``{"key": ..., "run": ...}``) by key; none when it is missing."""
    if not path.is_file():
        return {}
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {record["key"]: record["run"] for record in records}


def log_run(path: Path, key: str, run: dict) -> None:
    """Append a finished run to ``path`` (its folder made), flushed at once, so a killed benchmark keeps it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log:
        log.write(json.dumps({"key": key, "run": run}) + "\n")
