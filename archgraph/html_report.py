"""A search run as one self-contained HTML page: ``archgraph report RUN_DIR [RUN_DIR ...] --out report.html``.

:func:`write_report` reads each run folder without writing to it (the store is opened read-only, so
a run in progress goes on undisturbed) and writes one HTML file that needs nothing else: the figures
are inline SVG (text kept as text), the table's sorting and filtering a few lines of inline script,
no file, font or script is fetched, so it reads offline and travels as an e-mail attachment.

The page holds, for all runs together, the best validation accuracy so far over trials told and
over seconds (one curve per run, so several runs compare side by side); then for each run

* its configuration and what the search used of its budget (trials by state, seconds);
* the best trials, and each of the three best architectures drawn (:func:`archgraph.plot.draw_architecture`);
* validation accuracy against parameters, the Pareto front (:mod:`archgraph.pareto`) marked (for a
  run of several objectives, ``--objective``, its first two and the front of all of them);
* the learning curves of every trial, the best five coloured;
* a table of every trial (state, metrics, parameters, FLOPs, seconds, architecture hash, whether it
  is on the front), sorted by a click on a column's head and filtered by the text typed above it;
* what its strategy adds (:mod:`archgraph.strategy_report`): for a FaDE run the anchors' trajectories
  and its last hyper-architecture's row weights and best paths by FaDE-rank, for a NOSH run the pyramid.

An ``archgraph darts`` run folder (``metrics.json``, no store) gets a section of its own: its
settings, α over the epochs and λ_max where the run measured it.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from archgraph import ArchGraph
>>> from archgraph.store import SQLiteStore
>>> from archgraph.trial import Result, Trial
>>> with tempfile.TemporaryDirectory() as run_dir:
...     with SQLiteStore(Path(run_dir) / "store.sqlite") as store:
...         store.set_config({"strategy": "random", "space": "fade"})
...         store.record_ask(Trial(id=0, arch=[ArchGraph([(0, 1)])], budget=1, seed=0))
...         store.record_tell(Result(0, {"val_accuracy": 0.5, "parameters": 10}))
...     page = write_report([run_dir], Path(run_dir) / "report.html").read_text()
>>> page.startswith("<!DOCTYPE html>"), page.count("<svg"), "https://" in page
(True, 4, False)
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import plot
from ._html import Figures, number, plain, table
from .errors import ArchGraphError
from .graph import ArchGraph
from .oneshot.hyper_trial import HYPER_FOLDER, TrainHyperArchitecture
from .pareto import DEFAULT_OBJECTIVES, SEARCH_OBJECTIVE, parse_objectives, pareto_records
from .results import FIELDS, JSON_COLUMNS, flat_rows, read_run
from .runs import read_status
from .store import STORE_FILE
from .strategy_report import darts_section, fade_section, pyramid_section, read_darts_run
from .trial import OBJECTIVE

__all__ = ["render_report", "write_report"]

_TOP = 5  # best trials listed and their learning curves coloured
_DRAWN = 3  # best architectures drawn
_COLUMNS = ("trial", "state", "kind", "budget", "seconds")  # of flat_rows, before the metrics


@dataclass(frozen=True)
class _Run:
    name: str
    config: Mapping[str, Any]
    status: Mapping[str, Any] | None
    records: list[dict[str, Any]]
    hyper_dir: Path

    @property
    def ranked(self) -> list[dict[str, Any]]:
        """The complete trials with a validation accuracy, best first (the earliest among ties)."""
        scored = [r for r in self.records if r["state"] == "complete" and OBJECTIVE in r["metrics"]]
        return sorted(scored, key=lambda r: (-r["metrics"][OBJECTIVE], r["trial"]))

    @property
    def objectives(self) -> tuple[tuple[str, str], ...]:
        """The run's objectives if it searched several (``--objective``), else accuracy against parameters."""
        objectives = parse_objectives(self.config.get("objectives") or [SEARCH_OBJECTIVE])
        return objectives if len(objectives) > 1 else DEFAULT_OBJECTIVES


def write_report(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Write :func:`render_report` of ``run_dirs`` to ``out`` (atomically) and return its path."""
    out = Path(out)
    page = render_report(run_dirs)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out


def render_report(run_dirs: Sequence[str | os.PathLike]) -> str:
    """The HTML page of the runs in ``run_dirs`` (see the module docstring).

    Raises
    ------
    ArchGraphError
        When no run folder is given, or one holds no store.
    """
    if not run_dirs:
        raise ArchGraphError("give at least one run folder (one holding store.sqlite)")
    darts = {str(d): read_darts_run(Path(d)) for d in run_dirs if not (Path(d) / STORE_FILE).exists()}
    runs = [_read(Path(d)) for d in run_dirs if darts.get(str(d)) is None]
    names = ", ".join(str(d) for d in run_dirs)
    figures = Figures()
    body = [f"<h1>archgraph report: {html.escape(names)}</h1>",
            f"<p class=note>Made {time.strftime('%Y-%m-%d %H:%M:%S')} from the run folders as they were then.</p>"]
    if runs:
        body += ["<h2>Best validation accuracy so far</h2>", _compare(runs, figures)]
    body += [_run_section(run, index, figures) for index, run in enumerate(runs)]
    body += [darts_section(name, metrics, figures) for name, metrics in darts.items() if metrics is not None]
    return _PAGE.format(title=html.escape(names), style=_STYLE, script=_SCRIPT, body="\n".join(body))


def _read(run_dir: Path) -> _Run:
    config, records = read_run(run_dir)
    return _Run(str(run_dir), config or {}, read_status(run_dir), records, run_dir / HYPER_FOLDER)


def _compare(runs: Sequence[_Run], figures: Figures) -> str:
    by_trials, by_time = {}, {}
    for run in runs:
        told = sorted((r["told_at"], r["metrics"][OBJECTIVE]) for r in run.records
                      if r["state"] == "complete" and OBJECTIVE in r["metrics"] and r["told_at"] is not None)
        start = min((r["asked_at"] for r in run.records if r["asked_at"] is not None), default=0.0)
        by_trials[run.name] = [(n, score) for n, (_, score) in enumerate(told, start=1)]
        by_time[run.name] = [(at - start, score) for at, score in told]
    if not any(by_trials.values()):
        return "<p>No trial has a validation accuracy yet.</p>"
    return "<div class=row>" + figures.svg(plot.best_over_time(by_trials, xlabel="trials told")) + figures.svg(
        plot.best_over_time(by_time, xlabel="seconds since the first trial")) + "</div>"


def _run_section(run: _Run, index: int, figures: Figures) -> str:
    parts = [f"<section><h2>Run {html.escape(run.name)}</h2>", "<h3>Configuration and budget</h3>",
             table(["setting", "value"], [[k, plain(v)] for k, v in {**run.config, **_usage(run)}.items()])]
    ranked = run.ranked
    if ranked:
        parts += ["<h3>Best trials</h3>", table(["trial", "val accuracy", "test accuracy", "parameters", "FLOPs",
                                                  "seconds", "cells"],
                                                 [[r["trial"], *(number(r["metrics"].get(k)) for k in (
                                                     OBJECTIVE, "test_accuracy", "parameters", "flops")),
                                                   number(r["seconds"]), r["cells"]] for r in ranked[:_TOP]])]
        names = _cell_names(run, ranked[0])
        parts.append("<h3>Best architectures</h3>")
        for rank, r in enumerate(ranked[:_DRAWN], start=1):
            cells = [ArchGraph.from_dict(c) for c in r["architecture"]]
            parts.append(f"<p>{rank}. trial {r['trial']}, validation accuracy {r['metrics'][OBJECTIVE]:.4f}</p>"
                         + figures.svg(plot.draw_architecture(cells, names=names)))
    objectives = run.objectives
    front = {r["trial"] for r in pareto_records(run.records, objectives)}
    if front:
        (y, y_way), (x, x_way) = objectives[:2]
        drawn = [r for r in run.records if r["state"] == "complete" and all(k in r["metrics"] for k, _ in objectives)]
        parts += [f"<h3>{html.escape(y)} against {html.escape(x)}</h3>",
                  f"<p>The Pareto front of {html.escape(', '.join(f'{n} ({d})' for n, d in objectives))}: the trials "
                  "no other trial is as good as in every objective and better in one.</p>", figures.svg(plot.draw_front(
                      [(r["metrics"][x], r["metrics"][y]) for r in drawn],
                      [i for i, r in enumerate(drawn) if r["trial"] in front],
                      labels=[f"trial {r['trial']}" for r in drawn], xlabel=f"{x} ({x_way})",
                      ylabel=f"{y} ({y_way})"))]
    curves = {str(r["trial"]): [(row["epoch"], row[OBJECTIVE]) for row in r["curve"] if row.get(OBJECTIVE) is not None]
              for r in run.records if r["kind"] != TrainHyperArchitecture.tag}
    if any(curves.values()):
        parts += ["<h3>Learning curves</h3>", figures.svg(plot.learning_curves(
            curves, highlight=[str(r["trial"]) for r in ranked[:_TOP]]))]
    parts += [f"<h3>Every trial ({len(run.records)})</h3>", _trials_table(run, index, front),
              fade_section(run.records, run.hyper_dir, figures), pyramid_section(run.records, figures), "</section>"]
    return "\n".join(parts)


def _usage(run: _Run) -> dict[str, Any]:
    """What the search used: trials by state, seconds of training, wall-clock seconds, its state."""
    states = {}
    for r in run.records:
        states[r["state"]] = states.get(r["state"], 0) + 1
    asked = [r["asked_at"] for r in run.records if r["asked_at"] is not None]
    told = [r["told_at"] for r in run.records if r["told_at"] is not None]
    return {"trials told": ", ".join(f"{n} {state}" for state, n in states.items()) or "none",
            "training seconds": round(sum(r["seconds"] or 0 for r in run.records), 1),
            "wall-clock seconds": round(max(told) - min(asked), 1) if told and asked else "-",
            "state": (run.status or {}).get("state", "unknown (no status.json)"),
            "budget of the last call": (run.status or {}).get("budget", "-")}


def _trials_table(run: _Run, index: int, front: set[int]) -> str:
    """Every trial: the columns of :data:`_COLUMNS` around one per metric and whether it is on the front."""
    rows = flat_rows(run.records)
    metrics = [c for c in (rows[0] if rows else ()) if c not in FIELDS and c not in JSON_COLUMNS]
    header = [*_COLUMNS[:5], *metrics, "front", "cells", "hash", "error"]
    body = [[*(row[c] for c in (*_COLUMNS[:5], *metrics)), "yes" if row["trial"] in front else "", row["cells"],
             row["hash"][:10], row["error"] or ""] for row in rows]
    table_id = f"trials-{index}"
    return (f'<input class=filter data-table="{table_id}" placeholder="filter rows: type a state, a trial id, ...">'
            + table(header, [[number(v) for v in row] for row in body], table_id=table_id))


def _cell_names(run: _Run, record: Mapping[str, Any]) -> list[str] | None:
    from . import spaces

    try:
        names = list(spaces.load(run.config["space"]).cells)
    except (KeyError, ArchGraphError, OSError):  # a run of a space file no longer at hand
        return None
    return names if len(names) == len(record["architecture"]) else None


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>archgraph report: {title}</title>
<style>{style}</style></head>
<body>
{body}
<script>{script}</script>
</body></html>
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #1d2329; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccd; padding-bottom: .2em; margin-top: 2em; }
.note { color: #667; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0 1em; }
th, td { border: 1px solid #d5d9de; padding: .2em .5em; text-align: right; }
th { background: #eef1f4; } td { white-space: nowrap; } td:last-child, th:last-child { text-align: left; }
table.sortable th { cursor: pointer; user-select: none; }
th.asc::after { content: " \\25B2"; } th.desc::after { content: " \\25BC"; }
.scroll { overflow-x: auto; } .filter { width: 24em; padding: .3em; margin-top: .3em; }
figure { margin: .5em 0; } figure svg { max-width: 100%; height: auto; }
.row { display: flex; flex-wrap: wrap; gap: 1em; } .row figure { flex: 1 1 45%; }
"""

# sort a table by a click on a column's head (numbers as numbers, again to reverse); keep the rows holding a filter's text
_SCRIPT = """
function cellValue(row, i) {
  const text = row.cells[i].textContent.trim(), number = Number(text.replace(/,/g, ''));
  return text !== '' && !isNaN(number) ? number : text;
}
document.querySelectorAll('table.sortable th').forEach(th => th.addEventListener('click', () => {
  const table = th.closest('table'), i = th.cellIndex, up = !th.classList.contains('asc');
  table.querySelectorAll('th').forEach(h => h.classList.remove('asc', 'desc'));
  th.classList.add(up ? 'asc' : 'desc');
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {
    const x = cellValue(a, i), y = cellValue(b, i);
    const order = typeof x === typeof y ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
    return up ? order : -order;
  });
  rows.forEach(row => table.tBodies[0].appendChild(row));
}));
document.querySelectorAll('input.filter').forEach(input => input.addEventListener('input', () => {
  const text = input.value.toLowerCase();
  Array.from(document.getElementById(input.dataset.table).tBodies[0].rows).forEach(row => {
    row.hidden = text !== '' && !row.textContent.toLowerCase().includes(text);
  });
}));
"""
