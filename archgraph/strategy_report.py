"""What a strategy adds to a run's HTML report (:mod:`archgraph.html_report`), each drawn inline as SVG.

* FaDE: each row's anchor over the outer steps (FaDE Fig. 6), and the last hyper-architecture's
  row weights over the epochs and best paths by FaDE-rank (FaDE §2.3);
* NOSH, successive halving, predictor search: the pyramid, trials per rung (RANK-NOSH Fig. 2), the
  promoted ones (those another trial resumed) marked;
* an ``archgraph darts`` run folder (``metrics.json``, no store): α over the epochs, one panel per
  edge, and λ_max, the dominant eigenvalue of the validation loss's Hessian in α (RobustDARTS §4.2),
  where the run measured it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from . import plot
from ._html import Figures, number, plain, table
from .oneshot.hyper_trial import TrainHyperArchitecture, load_hyper
from .ranks import top_paths

__all__ = ["darts_section", "fade_section", "pyramid_section", "read_darts_run"]

_PATHS = 5  # best paths listed by FaDE-rank


def fade_section(records: list[Mapping[str, Any]], hyper_dir: Path, figures: Figures) -> str:
    """A FaDE run's anchors, and the rows' weights and best paths of its last hyper-architecture."""
    hyper = [r for r in records if r["kind"] == TrainHyperArchitecture.tag and r["state"] == "complete"]
    if not hyper:
        return ""
    parts = ["<h3>FaDE</h3>"]
    anchors = [r["info"]["anchors"] for r in hyper if "anchors" in r["info"]]
    if anchors:
        from .features import FADE_FEATURES

        parts += ["<p>Each row's anchor over the outer steps (FaDE Fig. 6).</p>",
                  figures.svg(plot.draw_trajectories(anchors, features=FADE_FEATURES))]
    path = hyper_dir / f"trial-{hyper[-1]['trial']}.json"
    if path.is_file():
        summary = load_hyper(path)
        paths = top_paths(summary.probabilities, k=_PATHS)
        parts += [f"<p>Hyper-architecture of trial {hyper[-1]['trial']}: each row's weights over the epochs, and the "
                  "best paths by FaDE-rank, the product of the rows' weights along the path (FaDE §2.3).</p>",
                  figures.svg(plot.draw_row_probabilities(summary.history)),
                  table(["path", "FaDE-rank", "cells (vertices/edges)"],
                        [[",".join(map(str, p)), f"{psi:.3g}",
                          " ".join(f"{row[k].num_nodes}/{row[k].num_edges}" for row, k in zip(summary.pool, p))]
                         for p, psi in paths])]
    return "\n".join(parts)


def pyramid_section(records: list[Mapping[str, Any]], figures: Figures) -> str:
    """A pyramid search's rungs (its trials' ``info["level"]``): trials, promoted, best accuracy per rung."""
    rungs: dict[int, list[Mapping[str, Any]]] = {}
    for r in records:
        if isinstance(r["info"].get("level"), int):
            rungs.setdefault(r["info"]["level"], []).append(r)
    if not rungs:
        return ""
    promoted = {r["resume_from"] for r in records if r["resume_from"] is not None}
    rows = []
    for level in sorted(rungs):
        trials = rungs[level]
        scores = [r["metrics"]["val_accuracy"] for r in trials if r["state"] == "complete"
                  and "val_accuracy" in r["metrics"]]
        rows.append([level, trials[0]["budget"], len(trials), sum(r["trial"] in promoted for r in trials),
                     sum(r["state"] in ("failed", "pruned") for r in trials), number(max(scores, default=None))])
    return "\n".join(["<h3>The pyramid</h3>",
                      "<p>Trials per rung, each rung training longer; the promoted ones (resumed from their "
                      "checkpoint on the rung above) in colour (RANK-NOSH Fig. 2).</p>",
                      figures.svg(_draw_pyramid([(row[1], row[2], row[3]) for row in rows])),
                      table(["rung", "epochs", "trials", "promoted", "failed or pruned", "best val accuracy"], rows)])


def _draw_pyramid(rungs: list[tuple[int, int, int]]) -> Figure:
    """One centred bar per rung ``(epochs, trials, promoted)``, bottom rung first, the promoted inside."""
    fig = Figure(figsize=(6, 0.6 + 0.5 * len(rungs)))
    ax = fig.add_subplot()
    for y, (epochs, trials, promoted) in enumerate(rungs):
        ax.barh(y, trials, left=-trials / 2, color="#c8d0d8", height=0.8, label="trials" if y == 0 else None)
        ax.barh(y, promoted, left=-promoted / 2, color="#c0392b", height=0.8, label="promoted" if y == 0 else None)
        ax.text(trials / 2 + 0.3, y, f"{trials} trials, {promoted} promoted", va="center", fontsize=8)
    ax.set_yticks(range(len(rungs)), [f"{epochs} epochs" for epochs, _, _ in rungs])
    widest = max(trials for _, trials, _ in rungs)
    ax.set_xlim(-widest / 2 - 0.5, widest / 2 + widest * 0.6 + 2)
    ax.set_xticks([])
    ax.legend(loc="upper right", fontsize=8)
    return fig


def read_darts_run(run_dir: Path) -> dict[str, Any] | None:
    """The ``metrics.json`` of an ``archgraph darts`` run folder, ``None`` when ``run_dir`` is not one."""
    path = run_dir / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and "method" in metrics and "history" in metrics else None


def darts_section(name: str, metrics: Mapping[str, Any], figures: Figures) -> str:
    """An ``archgraph darts`` run: its settings, α over the epochs and λ_max where measured."""
    history = metrics["history"]
    settings = {k: v for k, v in metrics.items() if k not in ("history", "details")}
    parts = [f"<section><h2>DARTS run {name}</h2>", "<h3>Configuration and outcome</h3>",
             table(["setting", "value"], [[k, plain(v)] for k, v in {**settings, **metrics.get("details", {})}.items()])]
    if history and all(row.get("alpha") for row in history):
        parts += ["<h3>α over the epochs</h3>", "<p>Each edge's architecture weights (softmax of α), one panel per "
                  "edge (Choice), in the supernet's module order.</p>", figures.svg(plot.draw_row_probabilities(history))]
    measured = [(row["epoch"], row["eigenvalue"]) for row in history if row.get("eigenvalue") is not None]
    if measured or metrics.get("eigenvalue") is not None:
        parts += ["<h3>λ_max</h3>", "<p>The dominant eigenvalue of the validation loss's Hessian in α (RobustDARTS "
                  "§4.2): over the epochs where the run measured it, and at the end of the search.</p>",
                  figures.svg(_draw_eigenvalues(measured, metrics.get("eigenvalue"), len(history)))]
    return "\n".join([*parts, "</section>"])


def _draw_eigenvalues(measured: list[tuple[int, float]], final: float | None, epochs: int) -> Figure:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    if measured:
        ax.plot(*zip(*measured), marker="o", color="#1f77b4", label="during the search")
    if final is not None:
        ax.scatter([epochs], [final], color="#c0392b", zorder=3, label="end of the search")
    ax.set_xlabel("epoch")
    ax.set_ylabel("λ_max")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
