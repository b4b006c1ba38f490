"""Space summary: one bar per random variable, its domain size on a log scale, coloured by module."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import pandas as pd
import plotly.graph_objects as go

from ._common import empty_figure, figure, format_count, layout, palette_color

__all__ = ["plot_space_summary"]

_COLUMNS = ("name", "module", "kind", "domain_size", "domain")


class _SpaceSummaryInfo(NamedTuple):
    names: tuple[str, ...]  # grouped by module (modules in order of first appearance), then in table order
    modules: tuple[str, ...]
    kinds: tuple[str, ...]
    domain_sizes: tuple[int, ...]
    domains: tuple[str, ...]  # the domain as text: "4 factors of 64, innermost <= 64", "[0, 16, 64, 512]"
    size: int | None  # distinct decision assignments over all design spaces (summary.attrs["size"])
    failures: tuple[str, ...]  # modules that failed to build a design space
    note: str | None


def plot_space_summary(space_or_summary: Any) -> go.Figure:
    """The random variables of a space and the sizes of their domains, titled with the space's size.

    ``space_or_summary`` is a ``Space`` or its ``summary()`` DataFrame.
    """
    info = _get_space_summary_info(space_or_summary)
    return _get_space_summary_plot(info)


def _get_space_summary_info(space_or_summary: Any) -> _SpaceSummaryInfo:
    summary = space_or_summary
    if not isinstance(summary, pd.DataFrame):
        if not callable(getattr(summary, "summary", None)):
            raise TypeError(f"expected a Space or space.summary(), got {type(space_or_summary).__name__}")
        summary = summary.summary()
    missing = [c for c in _COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"the summary must have the columns of space.summary(); missing {missing}")
    order = {m: k for k, m in enumerate(dict.fromkeys(summary["module"]))}
    df = summary.assign(_group=summary["module"].map(order)).sort_values("_group", kind="stable")
    size = summary.attrs.get("size")
    failures = tuple(str(f) for f in summary.attrs.get("failures", ()))
    note = None
    if len(df) == 0:
        note = "This space has no random variables: every program it makes is the same."
        if failures:
            note = f"This space has no design space: {len(failures)} module failure(s)."
    return _SpaceSummaryInfo(
        names=tuple(str(v) for v in df["name"]),
        modules=tuple(str(v) for v in df["module"]),
        kinds=tuple(str(v) for v in df["kind"]),
        domain_sizes=tuple(int(v) for v in df["domain_size"]),
        domains=tuple(str(v) for v in df["domain"]),
        size=None if size is None else int(size),
        failures=failures,
        note=note,
    )


def _get_space_summary_plot(info: _SpaceSummaryInfo) -> go.Figure:
    n = len(info.names)
    title = f"Search space: {n} random variable{'s' if n != 1 else ''}"
    if info.size is not None:
        title += f", {format_count(info.size)} programs"
    if info.failures:
        title += f" ({len(info.failures)} module failure{'s' if len(info.failures) != 1 else ''})"
    if not info.names:
        return empty_figure(info.note or "Nothing to draw.", title=title)
    data = []
    for k, module in enumerate(dict.fromkeys(info.modules)):  # one trace per module: the legend names them
        rows = [j for j, m in enumerate(info.modules) if m == module]
        data.append({
            "type": "bar",
            "x": [info.domain_sizes[j] for j in rows],
            "y": [info.names[j] for j in rows],
            "customdata": [[info.kinds[j], info.domains[j]] for j in rows],
            "text": [f"{info.domain_sizes[j]:,}" for j in rows],
            "textposition": "outside",
            "orientation": "h",
            "name": module,
            "marker": {"color": palette_color(k)},
            "hovertemplate": f"<b>%{{y}}</b> ({module})<br>%{{customdata[0]}}: %{{x:,}} values<br>"
            "%{customdata[1]}<extra></extra>",
        })
    top = math.log10(max(1, *info.domain_sizes))
    lay = layout(
        title,
        height=max(280, 120 + 26 * n),
        xaxis={"type": "log", "title": {"text": "domain size (values, log scale)"}, "range": [-0.3, top + 0.6]},
        # the first random variable at the top
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": list(info.names)[::-1],
               "automargin": True},
        legend={"title": {"text": "module"}, "traceorder": "normal"},
    )
    return figure(data, lay)
