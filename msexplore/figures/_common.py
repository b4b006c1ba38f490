"""What every figure shares: the template and fonts, the colours, value labels, and the empty figure with a note."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from .. import common

# plotly_white draws its own white card, so a figure reads the same in JupyterLab's light and dark themes.
TEMPLATE = "plotly_white"
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif", "size": 13}

VALID_COLOR = "#636efa"  # plotly blue
INVALID_COLOR = "#ef553b"  # plotly red: invalid samples, failed candidates
NO_DATA_COLOR = "#c8ccd4"  # grey: bars with nothing to colour them by
BEST_COLOR = "#00a676"
# Qualitative colours for modules and sessions (plotly's default sequence).
PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880", "#ff97ff", "#fecb52")
# "Good" is yellow in both colour scales: higher predicted scores and lower latencies.
COLORSCALE = "Viridis"


def palette_color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def layout(title: str, **extra: Any) -> dict[str, Any]:
    """The shared layout (template, fonts, margins) with a title, as a dict; ``extra`` keys replace the defaults.

    Figures are built from one dict and validated once: setting the template on a finished figure copies it
    again, and plotly's per-call validation costs more than the data of a dozen panels.
    """
    return {
        "template": TEMPLATE,
        "font": FONT,
        "title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 16}},
        "margin": {"l": 60, "r": 30, "t": 70, "b": 50},
        "hoverlabel": {"font": {"family": FONT["family"], "size": 12}},
        **extra,
    }


def figure(data: list[Any], layout: dict[str, Any]) -> go.Figure:
    return go.Figure({"data": data, "layout": layout})


def empty_figure(note: str, *, title: str = "") -> go.Figure:
    """A figure with nothing to draw: hidden axes and the note in the middle, saying why and what to do."""
    return figure(
        [],
        layout(title, height=320, annotations=[note_annotation(note)], xaxis={"visible": False},
               yaxis={"visible": False}),
    )


def note_annotation(note: str) -> dict[str, Any]:
    return {
        "text": note,
        "xref": "paper",
        "yref": "paper",
        "x": 0.5,
        "y": 0.5,
        "showarrow": False,
        "font": {"size": 14, "color": "#5a6270"},
        "align": "center",
    }


def value_label(value: Any) -> str:
    """A decision value as people read it: tiles ``(8, 64)`` as ``"8×64"``, numbers as themselves."""
    if isinstance(value, (tuple, list)):
        return "×".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def error_line(text: Any, limit: int = 160) -> str:
    """An error's line for a hover or a note: ``msexplore.common.error_line``, headline first, at most ``limit``."""
    return common.error_line(text, prefer="first", limit=limit)


def format_count(n: int | float) -> str:
    """Counts that may be astronomically large: ``592,704`` or ``3.47 × 10^21``."""
    if n < 1e7:
        return f"{int(n):,}"
    mantissa, exponent = f"{float(n):.2e}".split("e")
    return f"{mantissa} × 10^{int(exponent)}"
