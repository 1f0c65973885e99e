"""The pieces of archgraph's HTML report (:mod:`archgraph.html_report`): figures as inline SVG and tables.

>>> table(["trial", "val accuracy"], [[0, number(0.91234)]])
'<div class=scroll><table><thead><tr><th>trial</th><th>val accuracy</th></tr></thead><tbody>\\n<tr><td>0</td><td>0.9123</td></tr>\\n</tbody></table></div>'
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure

__all__ = ["Figures", "number", "plain", "table"]


class Figures:
    """Figures as inline SVG, each with its own ids (two figures' clip paths never clash)."""

    def __init__(self):
        self.count = 0

    def svg(self, fig: Figure) -> str:
        self.count += 1
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"figure{self.count}"}):
            fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
        text = buffer.getvalue()
        text = text[text.index("<svg"):]  # no XML declaration nor doctype: the page's parser takes inline SVG
        text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
        return '<figure>' + re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text, count=2) + '</figure>'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str | None = None) -> str:
    """An HTML table; with ``table_id`` one the page's script sorts (a click on a column's head)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    attributes = f' id="{table_id}" class=sortable' if table_id else ""
    return f"<div class=scroll><table{attributes}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>"


def number(value: Any) -> Any:
    """A cell's text: a float to 4 decimals, ``None`` empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return value


def plain(value: Any) -> str:
    """A setting's value: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)
