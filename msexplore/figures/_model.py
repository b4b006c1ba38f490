"""A whole model's tuning: the estimated model latency after each measured batch, over trials or tuning time.

The y axis is in seconds with SI prefixes (``12.7µs``, ``3.2ms``): a small model's estimate is microseconds, a large
one's milliseconds, and a fixed unit would read ``0.0127`` for one of them.

The estimate is the core's (``run.latency_history``: the sum over tasks of calls per inference x best latency),
defined once every task has a verified schedule; batches measured before that are kept as gaps, so the figure
holds one point per batch. The figure always holds the same two traces (``TRACE_ORDER``), so a live widget can
redraw it in place with ``update_model_latency(fig, history)``; the "trials"/"tuning time" buttons only switch
which one is visible.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ._common import BEST_COLOR, figure, layout, note_annotation

__all__ = ["plot_model_latency", "update_model_latency", "TRACE_ORDER", "XS"]

XS = ("trials", "time")
TRACE_ORDER = ("estimate · trials", "estimate · time")
TRACE_NAME = "estimated model latency"
COLUMNS = ("time_s", "trials", "estimated_latency_s")
_X_TITLES = {"trials": "trials measured (all tasks)", "time": "tuning time (s)"}


class _ModelLatencyInfo(NamedTuple):
    x: str  # "trials" | "time": the x axis shown first
    trials: tuple[int, ...]  # one per measured batch, in order
    time_s: tuple[float, ...]
    latency_s: tuple[float | None, ...]  # None: not every task had a verified schedule yet
    latest_s: float | None  # the last estimate
    first_s: float | None  # the first estimate
    note: str | None


def plot_model_latency(history: Any, *, x: str = "trials") -> go.Figure:
    """The estimated latency of the whole model after each measured batch of a model run.

    Parameters
    ----------
    history
        ``run.latency_history`` (or a ``ModelRun``): one row per measured batch, with the columns
        ``time_s``, ``trials`` and ``estimated_latency_s`` (seconds; missing until every task has an estimate).
    x
        ``"trials"`` or ``"time"``: the x axis drawn first (buttons switch between them).
    """
    info = _get_model_latency_info(history, x=x)
    return _get_model_latency_plot(info)


def update_model_latency(fig: go.Figure, history: Any) -> None:
    """Redraw, in place, a figure made by ``plot_model_latency`` with the history as it is now.

    For a live ``go.FigureWidget``: the traces' data, the title and the note change inside one
    ``fig.batch_update()`` (one message to the browser); the x axis the reader chose with the buttons stays.
    """
    if len(fig.data) != len(TRACE_ORDER) or fig.data[0].name != TRACE_NAME:
        raise ValueError(f"fig must be a figure made by plot_model_latency ({len(TRACE_ORDER)} traces), "
                         f"got one with {len(fig.data)} traces")
    shown_x = "time" if fig.data[0].visible is False else "trials"
    info = _get_model_latency_info(history, x=shown_x)
    with fig.batch_update():
        for trace, values in zip(fig.data, _model_latency_trace_data(info)):
            trace.update(values)
        fig.layout.title.text = _model_latency_title(info)
        fig.layout.annotations = [_note(info)]


# ---- extraction ---------------------------------------------------------------------------------------------


def _get_model_latency_info(history: Any, *, x: str = "trials") -> _ModelLatencyInfo:
    if x not in XS:
        raise ValueError(f"x must be one of {list(XS)}, got {x!r}")
    if not isinstance(history, pd.DataFrame):
        history = getattr(history, "latency_history", history)
    if not isinstance(history, pd.DataFrame):
        raise TypeError(
            f"history must be run.latency_history (a DataFrame) or a ModelRun, got {type(history).__name__}"
        )
    missing = [c for c in COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(f"history must have the columns of run.latency_history {list(COLUMNS)}; missing {missing}")

    trials = history["trials"].to_numpy(dtype=np.int64)
    time_s = history["time_s"].to_numpy(dtype=float)
    seconds = pd.to_numeric(history["estimated_latency_s"], errors="coerce").to_numpy(dtype=float)
    latency_s = tuple(None if np.isnan(s) else float(s) for s in seconds)
    estimates = [v for v in latency_s if v is not None]

    note = None
    if len(history) == 0:
        note = "No batch measured yet: the estimate appears after each measured batch."
    elif not estimates:
        batches = f"{len(history)} batch{'es' if len(history) != 1 else ''}"
        note = (f"No estimate yet ({batches} measured): the model latency is estimated once every task "
                "has a verified schedule.")
    return _ModelLatencyInfo(
        x=x,
        trials=tuple(trials.tolist()),
        time_s=tuple(time_s.tolist()),
        latency_s=latency_s,
        latest_s=estimates[-1] if estimates else None,
        first_s=estimates[0] if estimates else None,
        note=note,
    )


# ---- drawing ------------------------------------------------------------------------------------------------


def _model_latency_trace_data(info: _ModelLatencyInfo) -> list[dict[str, Any]]:
    """The data of the two traces, in ``TRACE_ORDER``: ``fig.data[i].update(d)`` redraws them in place.

    Batches without an estimate are NaN: plotly leaves a gap there, and the trace keeps one point per batch.
    """
    y = np.asarray([np.nan if v is None else v for v in info.latency_s], dtype=float)
    trials = np.asarray(info.trials, dtype=np.int64)
    return [
        {"x": trials, "y": y, "customdata": np.asarray(info.time_s, dtype=float)},
        {"x": np.asarray(info.time_s, dtype=float), "y": y, "customdata": trials},
    ]


def _get_model_latency_plot(info: _ModelLatencyInfo) -> go.Figure:
    hovers = {
        "trials": "%{y:.4s}s<br>after %{x} trials, %{customdata:.0f} s<extra></extra>",
        "time": "%{y:.4s}s<br>after %{customdata} trials, %{x:.0f} s<extra></extra>",
    }
    traces = [
        {**data, "type": "scatter", "mode": "lines+markers", "name": TRACE_NAME, "visible": x == info.x,
         "showlegend": False, "connectgaps": False, "line": {"shape": "hv", "color": BEST_COLOR, "width": 2.5},
         "marker": {"size": 7, "color": BEST_COLOR}, "hovertemplate": hovers[x]}
        for x, data in zip(XS, _model_latency_trace_data(info))
    ]
    buttons = [
        {"label": label, "method": "update",
         "args": [{"visible": [x == want for x in XS]}, {"xaxis.title.text": _X_TITLES[want]}]}
        for want, label in (("trials", "trials"), ("time", "tuning time"))
    ]
    lay = layout(
        _model_latency_title(info),
        height=340,
        xaxis={"title": {"text": _X_TITLES[info.x]}, "rangemode": "tozero"},
        yaxis={"title": {"text": "estimated model latency"}, "tickformat": "~s", "ticksuffix": "s",
               "rangemode": "tozero"},
        updatemenus=[
            {"type": "buttons", "direction": "right", "buttons": buttons, "active": XS.index(info.x),
             "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom", "showactive": True},
        ],
        margin={"l": 70, "r": 30, "t": 70, "b": 55},
        annotations=[_note(info)],
    )
    return figure(traces, lay)


def _note(info: _ModelLatencyInfo) -> dict[str, Any]:
    """The figure's one annotation, hidden while there is nothing to say (the layout keeps its shape)."""
    return {**note_annotation(info.note or ""), "visible": info.note is not None}


def _model_latency_title(info: _ModelLatencyInfo) -> str:
    """The figure's title; ``update_model_latency`` sets it again on every redraw."""
    if info.latest_s is None:
        return "Estimated model latency: none yet"
    trials = info.trials[-1]
    title = f"Estimated model latency: {_seconds(info.latest_s)} after {trials} trial{'s' if trials != 1 else ''}"
    if info.first_s is not None and info.first_s != info.latest_s:
        title += f" (first estimate {_seconds(info.first_s)})"
    return title


def _seconds(value: float) -> str:
    """A latency in the unit that suits it, four significant digits: ``12.67 µs``, ``3.2 ms``, ``1.5 s``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3)):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {unit}"
    return f"{value / 1e-6:.4g} µs"
