"""The model dashboard's parts as pure functions: the header (of the run's ``ModelProgress``) and the task table (of
``run.tasks``).

Kept apart from ``model_dashboard.py`` (the live wiring: subscription, redraw thread, buttons) so each reads alone.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..models.tuning import ModelProgress
from ._html import duration_text, esc, gflops_text, latency_text, note

__all__ = ["model_header_html", "task_rows", "task_table_html", "TASK_COLUMNS"]

TASK_COLUMNS = ("task", "calls", "trials", "failed", "best latency", "GFLOPS", "share of model time")
_NUMERIC = {"calls", "trials", "failed", "best latency", "GFLOPS"}


def model_header_html(progress: ModelProgress) -> str:
    """The run's ``ModelProgress`` as the dashboard's header: status, trials, tasks verified, failures, estimated
    latency, time (its one-line text is ``str(progress)``)."""
    p = progress
    status = p.status + ("…" if p.status in ("stopping", "starting") else "")

    def item(label: str, value: str) -> str:
        return (f'<span><span class="msx-label">{esc(label)}</span> '
                f'<span class="msx-figure-value">{esc(value)}</span></span>')

    items = [
        f'<span class="msx-status msx-status-{esc(p.status)}">{esc(status)}</span>',
        item("trials", f"{p.trials_done}/{p.trials_total}"),
    ]
    in_folder = getattr(p, "measured_in_folder", p.trials_done)  # a resumed run: earlier sessions' trials too
    if in_folder != p.trials_done:
        items.append(item("in folder", str(in_folder)))
    items += [
        item("tasks verified", f"{p.tasks_verified}/{p.tasks}"),
        item("failed", str(p.failures)),
        item("estimated model latency", latency_text(p.estimated_latency_s)),
        item("elapsed", duration_text(p.elapsed_s)),
    ]
    return f'<div class="msx-dashboard-header">{"".join(items)}</div>'


def task_rows(tasks: pd.DataFrame) -> list[dict[str, Any]]:
    """``run.tasks`` as plain rows (``None`` for what is not known yet): what the table draws and the traits hold."""

    def number(value: Any) -> float | None:
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    return [
        {
            "task": str(r.task),
            "calls": int(r.weight),
            "trials": int(r.trials),
            "failures": int(r.failures),
            "best_latency_s": number(r.best_latency_s),
            "gflops": number(r.gflops),
            "time_share": number(r.time_share),
        }
        for r in tasks.itertuples(index=False)
    ]


def task_table_html(rows: list[dict[str, Any]], opened: str = "") -> str:
    """One row per task; the share of the estimated model time as a bar; the opened task's row marked."""
    if not rows:
        return note("The model has no task to tune.")
    head = "".join(f'<th class="{"msx-num" if c in _NUMERIC else ""}">{esc(c)}</th>' for c in TASK_COLUMNS)
    body = []
    for r in rows:
        cells = [
            f"<td>{'▸ ' if r['task'] == opened else ''}<code>{esc(r['task'])}</code></td>",
            *(f'<td class="msx-num">{esc(v)}</td>' for v in (
                r["calls"], r["trials"], r["failures"], latency_text(r["best_latency_s"]),
                gflops_text(r["gflops"]).replace(" GFLOPS", ""))),
            f"<td>{_share_bar(r['time_share'])}</td>",
        ]
        marked = ' class="msx-selected" style="background: var(--jp-layout-color2, #f0f4f8)"' if (
            r["task"] == opened) else ""
        body.append(f'<tr data-task="{esc(r["task"])}"{marked}>{"".join(cells)}</tr>')
    return (f'<table class="msx-table msx-model-tasks"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _share_bar(share: float | None) -> str:
    """A bar as wide as the task's share of the estimated model time, and the percentage."""
    if share is None:
        return '<span class="msx-note">–</span>'
    width = max(0.0, min(1.0, share)) * 100
    return (
        '<span style="display: inline-flex; align-items: center; gap: 6px">'
        '<span style="display: inline-block; width: 120px; height: 9px; border-radius: 2px; '
        'background: var(--jp-layout-color3, #e3e3e3)">'
        f'<span style="display: block; height: 100%; width: {width:.1f}%; border-radius: 2px; '
        'background: var(--jp-brand-color1, #1976d2)"></span></span>'
        f'<span class="msx-num" style="min-width: 3.5em; text-align: right">{share * 100:.1f}%</span></span>'
    )
