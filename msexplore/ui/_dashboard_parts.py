"""The dashboard's parts as pure functions: the figure's data frame and the tables (of the drawn events), the
header (of the run's ``Progress``).

Kept apart from ``dashboard.py`` (the live wiring: subscription, redraw thread, buttons) so each reads alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..common import error_line
from ..figures import value_label
from ..search.run import Progress
from ._html import duration_text, esc, gflops_text, latency_text, note, table

__all__ = ["progress_frame", "header_html", "top_table_html", "confirmation_html", "failure_log_html",
           "failure_summary_html"]

MAX_FAILURES_SHOWN = 100
MAX_DECISION_COLUMNS = 8


def progress_frame(events: list[Any]) -> pd.DataFrame:
    """The columns of ``run.records`` that the progress figure reads, built in milliseconds for thousands of
    events (``records.events_frame`` also makes decision columns and latency statistics: ~100x slower)."""

    def floats(name: str) -> list[float]:
        return [np.nan if getattr(e, name) is None else float(getattr(e, name)) for e in events]

    return pd.DataFrame({
        "trial": np.asarray([e.index for e in events], dtype=np.int64),
        "session": np.asarray([e.session for e in events], dtype=np.int64),
        "time_s": np.asarray([e.time_s for e in events], dtype=float),
        "ok": np.asarray([e.ok for e in events], dtype=bool),
        "latency_s": floats("latency_s"),
        "gflops": floats("gflops"),
        "max_abs_error": floats("max_abs_error"),
        "build_error": [e.build_error for e in events],
        "run_error": [e.run_error for e in events],
    })


def header_html(progress: Progress) -> str:
    """The run's ``Progress`` as the dashboard's header: status, trials, failures, best, time (its one-line
    text is ``str(progress)``)."""
    p = progress
    status = p.status + ("…" if p.status in ("stopping", "starting") else "")

    def item(label: str, value: str) -> str:
        return (f'<span><span class="msx-label">{esc(label)}</span> '
                f'<span class="msx-figure-value">{esc(value)}</span></span>')

    items = [f'<span class="msx-status msx-status-{esc(p.status)}">{esc(status)}</span>',
             item("trials", f"{p.trials_done}/{p.trials_total}")]
    if p.measured_in_folder != p.trials_done:
        items.append(item("in folder", str(p.measured_in_folder)))
    items += [
        item("failed", str(p.failures)),
        item("best", latency_text(p.best_latency_s)),
        item("", gflops_text(p.best_gflops)),
        item("elapsed", duration_text(p.elapsed_s)),
    ]
    if p.eta_s is not None:
        items.append(item("ETA", duration_text(p.eta_s)))
    return f'<div class="msx-dashboard-header">{"".join(items)}</div>'


def top_table_html(events: list[Any], k: int) -> str:
    """The k fastest valid candidates with the decisions that set them apart (those that vary among them)."""
    best = sorted((e for e in events if e.ok), key=lambda e: e.latency_s)[:k]
    title = f'<div class="msx-section-title">Best {len(best)} candidate{"s" if len(best) != 1 else ""}</div>'
    if not best:
        return title + note("No valid candidate yet.")
    names: list[str] = []
    for e in best:
        names += [n for n in e.decisions if n not in names]
    varying = [n for n in names if len({value_label(e.decisions.get(n)) for e in best}) > 1]
    shown = (varying or names)[:MAX_DECISION_COLUMNS]
    rows = [
        [e.index, latency_text(e.latency_s), gflops_text(e.gflops).replace(" GFLOPS", ""),
         *(value_label(e.decisions[n]) if n in e.decisions else "–" for n in shown)]
        for e in best
    ]
    return title + table(rows, ["trial", "latency", "GFLOPS", *shown], numeric=("trial", "latency", "GFLOPS"))


def confirmation_html(frame: pd.DataFrame, rounds: int) -> str:
    """A confirmation (``run.confirm``'s table): the re-timed candidates, fastest median first, with the search's
    own timing beside each median and the spread of the rounds; the best named above it."""
    n = len(frame)
    title = (f'<div class="msx-section-title">Confirmed: {n} candidate{"s" if n != 1 else ""} re-timed in turn, '
             f'{rounds} round{"s" if rounds != 1 else ""}</div>')
    ok = frame[frame["confirmed_ms"].notna()]
    if ok.empty:
        lead = note("No candidate could be re-timed: see the errors below.")
    else:
        first = ok.iloc[0]
        lead = note(f"Best: trial {int(first['index'])}, {latency_text(first['confirmed_ms'] / 1e3)} median "
                    f"(the search timed it at {latency_text(first['search_ms'] / 1e3)}).")

    def ms(value: Any) -> str:
        return "–" if value is None or pd.isna(value) else latency_text(value / 1e3)

    rows = [
        [int(r["index"]), ms(r["search_ms"]), ms(r["confirmed_ms"]), f"{ms(r['min_ms'])} – {ms(r['max_ms'])}",
         "–" if pd.isna(r["stdev_pct"]) else f"{r['stdev_pct']:.1f} %", int(r["timings"]),
         error_line(r["error"], prefer="first", limit=120) if r["error"] else ""]
        for _, r in frame.iterrows()
    ]
    columns = ["trial", "search", "median", "min – max", "spread", "timings", "error"]
    return title + lead + table(rows, columns, numeric=("trial", "search", "median", "spread", "timings"))


def failure_log_html(events: list[Any]) -> str:
    failed = [e for e in events if not e.ok]
    if not failed:
        return ""
    title = f'<div class="msx-section-title">{len(failed)} failed candidate{"s" if len(failed) != 1 else ""}</div>'
    shown = failed[-MAX_FAILURES_SHOWN:]
    more = note(f"… {len(failed) - len(shown)} earlier failures not listed") if len(failed) > len(shown) else ""
    items = "".join(
        f"<details><summary>trial {e.index}: {esc(error_line(_error_text(e), prefer='first', limit=160))}</summary>"
        f'<pre class="msx-pre">{esc(_error_text(e))}</pre></details>'
        for e in shown
    )
    return title + more + items


def failure_summary_html(events: list[Any], k: int = 10) -> str:
    """The failures in a few lines, for a static copy: how many, then the last ``k`` by their one line."""
    failed = [e for e in events if not e.ok]
    if not failed:
        return ""
    title = f'<div class="msx-section-title">{len(failed)} failed candidate{"s" if len(failed) != 1 else ""}</div>'
    rows = [[e.index, error_line(_error_text(e), prefer="first", limit=160)] for e in failed[-k:]]
    more = note(f"… and {len(failed) - k} earlier") if len(failed) > k else ""
    return title + table(rows, ["trial", "error"], numeric=("trial",)) + more


def _error_text(event: Any) -> str:
    if event.max_abs_error is not None and not event.build_error:
        return f"wrong result: max abs error {event.max_abs_error:.3g}\n{event.run_error or ''}".strip()
    return event.error or "failed (no error recorded)"
