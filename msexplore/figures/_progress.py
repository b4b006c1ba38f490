"""Search progress: every candidate, the best so far, and failures, over trials or over search time.

The figure always holds the same six traces, in this order (``TRACE_ORDER``), whatever the records hold, so a live
widget can redraw it in place with ``update_search_progress(fig, records)``:

====  ==================  ===================================================
 0    candidates · trial  every successful candidate (marker colour = session)
 1    best · trial        best so far (step line)
 2    failures · trial    failed candidates, red x in the strip under the plot
 3    candidates · time   the same three over search time
 4    best · time
 5    failures · time
====  ==================  ===================================================

The "trial"/"search time" buttons only switch which three are visible, and the "linear"/"log" buttons only the
y-axis type, so the buttons never hold data that a live update would leave stale.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ._common import BEST_COLOR, INVALID_COLOR, PALETTE, error_line, figure, layout, note_annotation

__all__ = ["plot_search_progress", "update_search_progress", "TRACE_ORDER", "METRICS", "XS"]

METRICS = ("gflops", "latency")
XS = ("trial", "time")
TRACE_ORDER = (
    "candidates · trial",
    "best · trial",
    "failures · trial",
    "candidates · time",
    "best · time",
    "failures · time",
)
# Sessions by colour: marker.color holds session % len(PALETTE), mapped through this stepwise scale.
SESSION_COLORS = {
    "colorscale": [[(k + edge) / len(PALETTE), c] for k, c in enumerate(PALETTE) for edge in (0, 1)],
    "cmin": -0.5,
    "cmax": len(PALETTE) - 0.5,
    "showscale": False,
}
_X_TITLES = {"trial": "trial", "time": "search time (s, sessions end to end)"}
_Y_TITLES = {"gflops": "GFLOPS (higher is better)", "latency": "latency (lower is better)"}


class _Candidates(NamedTuple):
    trial: tuple[int, ...]
    time_s: tuple[float, ...]
    session: tuple[int, ...]
    value: tuple[float, ...]


class _BestSoFar(NamedTuple):
    """From the first successful candidate on, one point per trial (failures carry the best forward)."""

    trial: tuple[int, ...]
    time_s: tuple[float, ...]
    value: tuple[float, ...]


class _Failures(NamedTuple):
    trial: tuple[int, ...]
    time_s: tuple[float, ...]
    session: tuple[int, ...]
    error: tuple[str, ...]  # the line of the error message worth reading


class _SearchProgressInfo(NamedTuple):
    metric: str  # "gflops" | "latency" (seconds)
    x: str  # "trial" | "time": the x axis shown first
    log_y: bool
    candidates: _Candidates
    best: _BestSoFar
    failures: _Failures
    n_trials: int
    n_sessions: int
    note: str | None


def plot_search_progress(
    records: Any, *, metric: str = "gflops", x: str = "trial", log_y: bool = False
) -> go.Figure:
    """Every candidate, the best so far and the failures of a search, over trials or search time.

    Parameters
    ----------
    records
        ``run.records`` (or a run): one row per measured candidate.
    metric
        ``"gflops"`` (higher is better) or ``"latency"`` (seconds, lower is better).
    x
        ``"trial"`` or ``"time"``: the x axis drawn first (buttons switch between them). Search time lays the
        sessions of a resumed run end to end, leaving out the idle time between them.
    log_y
        Start with a log y axis (a button switches).
    """
    info = _get_search_progress_info(records, metric=metric, x=x, log_y=log_y)
    return _get_search_progress_plot(info)


def update_search_progress(fig: go.Figure, records: Any, *, metric: str = "gflops") -> None:
    """Redraw, in place, a figure made by ``plot_search_progress`` with the records as they are now.

    For a live ``go.FigureWidget``: everything changes inside one ``fig.batch_update()`` (one message to the
    browser). The x axis and the y scale that the reader chose with the figure's buttons stay. With the same
    ``metric`` as drawn, only the data of the six traces, the title and the note change; another ``metric``
    changes axis titles and hover texts too, so the whole figure is drawn again.
    """
    if len(fig.data) != len(TRACE_ORDER):
        raise ValueError(f"fig must be a figure made by plot_search_progress ({len(TRACE_ORDER)} traces), "
                         f"got one with {len(fig.data)} traces")
    shown_x = "time" if fig.data[0].visible is False else "trial"
    log_y = fig.layout.yaxis.type == "log"
    info = _get_search_progress_info(records, metric=metric, x=shown_x, log_y=log_y)
    with fig.batch_update():
        if fig.layout.yaxis.title.text == _Y_TITLES[metric]:
            for trace, values in zip(fig.data, _search_progress_trace_data(info)):
                trace.update(values)
            fig.layout.title.text = _search_progress_title(info)
            fig.layout.annotations = [note_annotation(info.note)] if info.note else []
        else:
            fresh = _get_search_progress_plot(info)
            fig.layout = fresh.layout
            for trace, new in zip(fig.data, fresh.data):
                trace.update(new.to_plotly_json())


# ---- extraction ---------------------------------------------------------------------------------------------


def _get_search_progress_info(
    records: Any, *, metric: str = "gflops", x: str = "trial", log_y: bool = False
) -> _SearchProgressInfo:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    if x not in XS:
        raise ValueError(f"x must be one of {list(XS)}, got {x!r}")
    if not isinstance(records, pd.DataFrame):
        records = getattr(records, "records", records)
    if not isinstance(records, pd.DataFrame):
        raise TypeError(f"records must be run.records (a DataFrame) or a run, got {type(records).__name__}")
    column = "gflops" if metric == "gflops" else "latency_s"
    missing = [c for c in ("trial", "session", "time_s", "ok", column) if c not in records.columns]
    if missing:
        raise ValueError(f"records must have the columns of run.records; missing {missing}")

    df = records.sort_values("trial", kind="stable") if not records["trial"].is_monotonic_increasing else records
    trial = df["trial"].to_numpy(dtype=np.int64)
    session = df["session"].to_numpy(dtype=np.int64)
    elapsed = _search_time(df["time_s"].to_numpy(dtype=float), session)
    value = df[column].to_numpy(dtype=float)
    ok = df["ok"].to_numpy(dtype=bool) & ~np.isnan(value)

    candidates = _Candidates(_t(trial[ok]), _t(elapsed[ok]), _t(session[ok]), _t(value[ok]))
    best = _BestSoFar((), (), ())
    if ok.any():
        masked = np.where(ok, value, np.nan)
        running = (np.fmax if metric == "gflops" else np.fmin).accumulate(masked)
        start = int(np.argmax(ok))
        best = _BestSoFar(_t(trial[start:]), _t(elapsed[start:]), _t(running[start:]))
    failed = ~df["ok"].to_numpy(dtype=bool)
    failures = _Failures(_t(trial[failed]), _t(elapsed[failed]), _t(session[failed]), _errors(df[failed]))

    note = None
    if len(df) == 0:
        note = "No trials yet."
    elif not ok.any():
        if df["ok"].astype(bool).any():  # measured, but this metric is missing
            note = f"No {metric} recorded for the successful candidates; try metric='latency'."
        else:
            note = f"All {len(df)} candidates failed (hover the red marks for the errors)."
    n_sessions = int(len(np.unique(session)))
    return _SearchProgressInfo(metric, x, bool(log_y), candidates, best, failures, len(df), n_sessions, note)


def _t(array: np.ndarray) -> tuple:
    return tuple(array.tolist())


def _search_time(time_s: np.ndarray, session: np.ndarray) -> np.ndarray:
    """Seconds since the first session started, each later session starting where the one before ended."""
    if time_s.size == 0:
        return time_s
    ends = pd.Series(time_s).groupby(session).max()  # sessions in ascending order
    offsets = ends.cumsum().shift(fill_value=0.0)
    return time_s + offsets.reindex(session).to_numpy(dtype=float)


def _errors(failed: pd.DataFrame) -> tuple[str, ...]:
    out = []
    columns = [c for c in ("build_error", "run_error", "max_abs_error") if c in failed.columns]
    for row in failed[columns].itertuples(index=False):  # failures are few; one line each for the hover
        row = dict(zip(columns, row))
        if isinstance(row.get("build_error"), str):
            out.append("build: " + error_line(row["build_error"]))
        elif isinstance(row.get("max_abs_error"), float) and not np.isnan(row["max_abs_error"]):
            out.append(f"wrong result: max abs error {row['max_abs_error']:.3g}")
        elif isinstance(row.get("run_error"), str):
            out.append("run: " + error_line(row["run_error"]))
        else:
            out.append("failed (no error recorded)")
    return tuple(out)


# ---- drawing ------------------------------------------------------------------------------------------------


def _search_progress_trace_data(info: _SearchProgressInfo) -> list[dict[str, Any]]:
    """The data of the six traces, in ``TRACE_ORDER``: ``fig.data[i].update(d)`` redraws them in place.

    numpy arrays, not lists: plotly validates them in one step (a list of lists costs ~100x more per point).
    Candidates are coloured by ``session % len(PALETTE)`` through a discrete colour scale set by the figure.
    """
    c, b, f = info.candidates, info.best, info.failures
    session = np.asarray(c.session, dtype=np.int64)
    cand_custom = np.column_stack([np.asarray(c.trial, dtype=np.int64), session]) if c.trial else np.empty((0, 2))
    fail_custom = np.empty((len(f.trial), 3), dtype=object)
    if f.trial:
        fail_custom[:, 0], fail_custom[:, 1], fail_custom[:, 2] = f.trial, f.session, f.error
    values = np.asarray(c.value, dtype=float)
    colors = session % len(PALETTE)
    strip = np.full(len(f.trial), 0.5)
    out = []
    for cand_x, best_x, fail_x in ((c.trial, b.trial, f.trial), (c.time_s, b.time_s, f.time_s)):
        out += [
            {"x": np.asarray(cand_x), "y": values, "customdata": cand_custom, "marker": {"color": colors}},
            {"x": np.asarray(best_x), "y": np.asarray(b.value, dtype=float)},
            {"x": np.asarray(fail_x), "y": strip, "customdata": fail_custom},
        ]
    return out


def _get_search_progress_plot(info: _SearchProgressInfo) -> go.Figure:
    y_fmt = "%{y:.4g} GFLOPS" if info.metric == "gflops" else "%{y:.3s}s"
    x_fmt = {"trial": "trial %{x}", "time": "%{x:.1f} s"}
    data = _search_progress_trace_data(info)
    traces = []
    for k, x in enumerate(XS):
        visible = x == info.x
        cand, best, fail = data[3 * k : 3 * k + 3]
        traces += [
            {**cand, "type": "scatter", "mode": "markers", "name": "candidates", "legendgroup": "candidates",
             "visible": visible, "showlegend": k == 0,
             "marker": {**cand["marker"], **SESSION_COLORS, "size": 6, "opacity": 0.75},
             "hovertemplate": f"{y_fmt}<br>trial %{{customdata[0]}}, session %{{customdata[1]}}<br>"
             f"{x_fmt[x]}<extra></extra>"},
            {**best, "type": "scatter", "mode": "lines", "name": "best so far", "legendgroup": "best",
             "visible": visible, "showlegend": k == 0, "line": {"shape": "hv", "color": BEST_COLOR, "width": 2.5},
             "hovertemplate": f"best so far: {y_fmt}<br>{x_fmt[x]}<extra></extra>"},
            {**fail, "type": "scatter", "mode": "markers", "name": "failed", "legendgroup": "failed",
             "visible": visible, "showlegend": k == 0, "xaxis": "x2", "yaxis": "y2",
             "marker": {"symbol": "x-thin", "size": 9, "color": INVALID_COLOR,
                        "line": {"width": 2, "color": INVALID_COLOR}},
             "hovertemplate": "failed: %{customdata[2]}<br>trial %{customdata[0]}, session %{customdata[1]}"
             "<extra></extra>"},
        ]

    y_axis = {"domain": [0.13, 1], "anchor": "x", "title": {"text": _Y_TITLES[info.metric]},
              "type": "log" if info.log_y else "linear"}
    if info.metric == "latency":
        y_axis.update(tickformat="~s", ticksuffix="s")
    title = _search_progress_title(info)
    buttons_x = [
        {"label": label, "method": "update",
         "args": [{"visible": [x == want for x in XS for _ in range(3)]}, {"xaxis2.title.text": _X_TITLES[want]}]}
        for want, label in (("trial", "trial"), ("time", "search time"))
    ]
    buttons_y = [{"label": t, "method": "relayout", "args": [{"yaxis.type": t}]} for t in ("linear", "log")]
    lay = layout(
        title,
        height=460,
        # Two rows sharing x: the candidates above, a strip of failures below (so they never bend the scale).
        xaxis={"anchor": "y", "matches": "x2", "showticklabels": False},
        xaxis2={"anchor": "y2", "title": {"text": _X_TITLES[info.x]}},
        yaxis=y_axis,
        yaxis2={"domain": [0, 0.08], "anchor": "x2", "range": [0, 1], "showticklabels": False, "showgrid": False,
                "zeroline": False, "fixedrange": True, "title": {"text": "failed", "font": {"size": 11}}},
        legend={"orientation": "h", "yref": "container", "y": 0.995, "yanchor": "top", "x": 1, "xanchor": "right"},
        updatemenus=[
            {"type": "buttons", "direction": "right", "buttons": buttons_x, "active": XS.index(info.x),
             "x": 0, "xanchor": "left", "y": -0.14, "yanchor": "top", "showactive": True},
            {"type": "buttons", "direction": "right", "buttons": buttons_y, "active": int(info.log_y),
             "x": 1, "xanchor": "right", "y": -0.14, "yanchor": "top", "showactive": True},
        ],
        margin={"l": 70, "r": 30, "t": 80, "b": 95},
        annotations=[note_annotation(info.note)] if info.note else [],
    )
    return figure(traces, lay)


def _search_progress_title(info: _SearchProgressInfo) -> str:
    """The figure's title; ``update_search_progress`` sets it again on every redraw."""
    title = f"Search progress: {info.n_trials} trial{'s' if info.n_trials != 1 else ''}"
    if info.best.value:
        best = info.best.value[-1]
        title += f", best {best:.4g} GFLOPS" if info.metric == "gflops" else f", best {best * 1e3:.4g} ms"
    if info.failures.trial:
        title += f", {len(info.failures.trial)} failed"
    if info.n_sessions > 1:
        title += f" ({info.n_sessions} sessions, by colour)"
    return title
