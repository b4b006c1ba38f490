"""A plotly figure as a small inline SVG, for the static copies of the panels (no plotly.js, no kaleido).

It draws what a reader of a saved notebook needs from the panels' figures: the visible scatter traces (markers,
lines, step lines) and bar traces of the main axes, with ranges, a few ticks, axis titles, the title, a legend, and
the figure's note when it has no data. Other subplots and trace types are left out (their numbers are in the copy's
tables). Large traces are thinned to ``max_points`` points, so a copy stays a few tens of kB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._html import esc

__all__ = ["figure_svg"]

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_MARGIN = {"left": 64, "right": 16, "top": 40, "bottom": 44}


def figure_svg(fig: Any, *, width: int = 640, height: int = 300, max_points: int = 400) -> str:
    """``fig`` (a ``go.Figure`` or ``FigureWidget``) as an ``<svg>`` element."""
    layout = fig.layout
    traces = [_trace_data(t, max_points) for t in fig.data if _drawn(t)]
    title = _text(getattr(layout.title, "text", None))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="11">',
             f"<title>{esc(title or 'figure')}</title>",
             f'<rect width="{width}" height="{height}" fill="white"/>']
    if title:
        parts.append(f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{esc(title)}</text>')
    left, top = _MARGIN["left"], _MARGIN["top"]
    plot_w, plot_h = width - left - _MARGIN["right"], height - top - _MARGIN["bottom"]
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>')
    x_titles = [_text(axis.get("title", {}).get("text")) for key, axis in layout.to_plotly_json().items()
                if key.startswith("xaxis")]  # a subplot under the main one may carry the shared x title
    x_title = _text(getattr(layout.xaxis.title, "text", None)) or next((t for t in x_titles if t), "")
    y_title = _text(getattr(layout.yaxis.title, "text", None))
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">{esc(x_title)}</text>')
    parts.append(f'<text transform="translate(14 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
                 f"{esc(y_title)}</text>")
    if not any(len(t["y"]) for t in traces):
        notes = [_text(a.text) for a in (layout.annotations or ()) if a.text]
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" fill="#666">'
                     f"{esc(notes[0] if notes else 'no data')}</text></svg>")
        return "".join(parts)

    log_y = layout.yaxis.type == "log"
    categories = _categories(traces)
    xs = np.concatenate([_x_positions(t, categories) for t in traces])
    ys = np.concatenate([_y_values(t, log_y) for t in traces])
    x_lo, x_hi = _span(xs[np.isfinite(xs)], pad=0.5 if categories else 0.03)
    y_values = ys[np.isfinite(ys)]
    if any(t["type"] == "bar" for t in traces) and not log_y:
        y_values = np.append(y_values, 0.0)
    y_lo, y_hi = _span(y_values, pad=0.05)

    def px(x: np.ndarray) -> np.ndarray:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: np.ndarray) -> np.ndarray:
        return top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    for value in _ticks(y_lo, y_hi):
        y = float(py(np.array(value)))
        label = _number(10**value if log_y else value)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    x_ticks = [(k, name) for k, name in enumerate(categories)] if categories else \
        [(v, _number(v)) for v in _ticks(x_lo, x_hi)]
    for value, label in x_ticks[:: max(1, len(x_ticks) // 10)]:
        x = float(px(np.array(value)))
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{esc(label)}</text>')

    legend_x = left + 4
    for k, trace in enumerate(traces):
        color = trace["color"] or _PALETTE[k % len(_PALETTE)]
        x, y = px(_x_positions(trace, categories)), py(_y_values(trace, log_y))
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if trace["type"] == "bar":
            bar_w = max(2.0, plot_w / max(1, len(categories) or len(x)) * 0.7)
            base = float(py(np.array(0.0 if not log_y else y_lo)))
            parts += [f'<rect x="{a - bar_w / 2:.1f}" y="{min(b, base):.1f}" width="{bar_w:.1f}" '
                      f'height="{abs(base - b):.1f}" fill="{color}"/>' for a, b in zip(x, y)]
        else:
            if "lines" in trace["mode"] and len(x) > 1:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                             f'points="{_points(x, y, step=trace["shape"] == "hv")}"/>')
            if "markers" in trace["mode"] or len(x) == 1:
                parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{color}" fill-opacity="0.7"/>'
                          for a, b in zip(x, y)]
        if trace["name"]:
            parts.append(f'<rect x="{legend_x}" y="{top - 12}" width="10" height="3" fill="{color}"/>'
                         f'<text x="{legend_x + 14}" y="{top - 8}">{esc(trace["name"])}</text>')
            legend_x += 24 + 6 * len(trace["name"])
    panels = sum(1 for key in layout.to_plotly_json() if key.startswith("xaxis"))
    if panels > 1 and any(t.type == "bar" for t in fig.data):  # subplots of distributions: the first one drawn
        parts.append(f'<text x="{width - 4}" y="{height - 8}" text-anchor="end" fill="#666">first of {panels} '
                     "panels (the live panel has them all)</text>")
    parts.append("</svg>")
    return "".join(parts)


# ---- the traces' data ----
def _drawn(trace: Any) -> bool:
    main_axes = getattr(trace, "xaxis", None) in (None, "x") and getattr(trace, "yaxis", None) in (None, "y")
    return trace.type in ("scatter", "scattergl", "bar") and trace.visible in (None, True) and main_axes


def _trace_data(trace: Any, max_points: int) -> dict[str, Any]:
    x = list(trace.x) if trace.x is not None else None
    y = list(trace.y) if trace.y is not None else []
    if x is None:
        x = list(range(len(y)))
    n = min(len(x), len(y))
    keep = _thin(n, max_points)
    color = None
    marker_color = getattr(getattr(trace, "marker", None), "color", None)
    line_color = getattr(getattr(trace, "line", None), "color", None) if trace.type != "bar" else None
    lines = trace.type != "bar" and "lines" in (trace.mode or "")
    for candidate in (line_color if lines else None, marker_color, line_color):
        if isinstance(candidate, str):
            color = candidate
            break
    bar = trace.type == "bar"
    return {
        "type": "bar" if bar else "scatter",
        "mode": "" if bar else trace.mode or "markers",
        "shape": None if bar else trace.line.shape,
        "name": _text(trace.name) if trace.showlegend is not False else "",
        "color": color,
        "x": [x[k] for k in keep],
        "y": [y[k] for k in keep],
    }


def _thin(n: int, max_points: int) -> list[int]:
    if n <= max_points:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max_points).round().astype(int).tolist()))


def _categories(traces: list[dict[str, Any]]) -> list[str]:
    """The x categories, when any x value is not a number (bars of decision values, task names)."""
    values = [x for t in traces for x in t["x"]]
    if all(_is_number(v) for v in values):
        return []
    return list(dict.fromkeys(str(v) for v in values))


def _x_positions(trace: dict[str, Any], categories: Sequence[str]) -> np.ndarray:
    if categories:
        index = {c: k for k, c in enumerate(categories)}
        return np.array([index[str(v)] for v in trace["x"]], dtype=float)
    return np.array([_float(v) for v in trace["x"]], dtype=float)


def _y_values(trace: dict[str, Any], log_y: bool) -> np.ndarray:
    y = np.array([_float(v) for v in trace["y"]], dtype=float)
    if log_y:
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.where(y > 0, np.log10(y), np.nan)
    return y


def _span(values: np.ndarray, *, pad: float) -> tuple[float, float]:
    if not len(values):
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        return lo - 0.5 if lo == 0 else lo - abs(lo) * 0.1, hi + 0.5 if hi == 0 else hi + abs(hi) * 0.1
    margin = (hi - lo) * pad if pad < 0.5 else pad
    return lo - margin, hi + margin


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = 10 ** math.floor(math.log10((hi - lo) / count))
    for factor in (1, 2, 5, 10):
        if (hi - lo) / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step) + 1)]


def _points(x: np.ndarray, y: np.ndarray, *, step: bool) -> str:
    if step:  # plotly's "hv": horizontal to the next x, then vertical
        xs, ys = np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]
        x, y = xs, ys
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _number(value: float) -> str:
    return f"{value:.4g}"


def _text(value: Any) -> str:
    """Plotly text without its HTML (``<br>``, ``<b>``)."""
    import re

    return re.sub(r"<[^>]+>", " ", str(value)).strip() if value else ""


