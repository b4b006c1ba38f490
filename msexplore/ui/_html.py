"""Small HTML builders shared by the panels: escaped tables, error boxes with an expandable traceback, units."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..common import latency_text  # the panels' unit, as the core's progress lines print it

__all__ = ["esc", "table", "error_box", "note", "latency_text", "gflops_text", "duration_text"]


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table(rows: Iterable[Sequence[Any]], columns: Sequence[str], *, numeric: Sequence[str] = ()) -> str:
    """An HTML table (``msx-table``) of already formatted cells; ``numeric`` columns are right-aligned."""
    right = {k for k, c in enumerate(columns) if c in numeric}
    head = "".join(f'<th class="{"msx-num" if k in right else ""}">{esc(c)}</th>' for k, c in enumerate(columns))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"msx-num" if k in right else ""}">{esc(v)}</td>' for k, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<table class="msx-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def error_box(title: str, detail: str | None = None, *, summary: str = "traceback") -> str:
    """A red box with the error's one line, and the full text (traceback) folded underneath."""
    folded = ""
    if detail and detail.strip() and detail.strip() != title.strip():
        folded = f"<details><summary>{esc(summary)}</summary><pre class=\"msx-pre\">{esc(detail)}</pre></details>"
    return f'<div class="msx-error-box"><div class="msx-error">{esc(title)}</div>{folded}</div>'


def note(text: str) -> str:
    return f'<div class="msx-note">{esc(text)}</div>'


def gflops_text(gflops: float | None) -> str:
    if gflops is None or (isinstance(gflops, float) and math.isnan(gflops)):
        return "–"
    return f"{gflops:.1f} GFLOPS"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
