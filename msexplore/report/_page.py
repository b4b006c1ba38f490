"""The report's page (styles and plotly.js inlined once), its sections, and the blocks they hold.

Nothing on the page is loaded from elsewhere: plotly.js and the stylesheets are inlined, each figure is its plotly
JSON in a ``<script type="application/json" class="msx-figure-data">`` that one small script draws, and links are
anchors within the page. A figure inside a closed ``<details>`` is drawn when it is first opened, at its real width.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import plotly.offline

from msexplore.widgets import asset

from .. import __version__
from ..ui._highlight import code_html
from ..ui._html import esc, note

__all__ = ["Section", "page", "section_html", "figure_html", "code_panes", "facts_table", "details", "notice", "slug"]

# The widgets' own stylesheets (tables, notes, the dashboard's header, the code view's tokens) and the page's layout.
WIDGET_CSS = ("msexplore.css", "dashboard.css", "panels.css", "code_view.css")
PAGE_CSS = """
body.msx-report { margin: 0; background: #f5f6f8; }
.msx-report main, .msx-report > header { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
.msx-report > header { padding-top: 20px; }
.msx-report h1 { font-size: 22px; margin: 0 0 4px; }
.msx-report h2 { font-size: 17px; margin: 0 0 10px; }
.msx-report h3 { font-size: 15px; margin: 14px 0 8px; }
.msx-report .msx-report-meta { color: #616161; font-size: 12px; margin-bottom: 10px; }
.msx-report nav { margin: 12px 0 4px; font-size: 13px; }
.msx-report nav a { margin-right: 14px; color: #1976d2; text-decoration: none; }
.msx-report section { background: #ffffff; border: 1px solid #e0e0e0; border-radius: 6px; padding: 14px 16px;
  margin: 14px 0; }
.msx-report section section { border: none; padding: 0; margin: 10px 0 18px; }
.msx-report details.msx-task > summary { cursor: pointer; font-weight: 600; font-size: 15px; padding: 4px 0; }
.msx-report .msx-facts th { text-align: left; white-space: nowrap; vertical-align: top; color: #616161;
  font-weight: 500; }
.msx-report .msx-facts td { word-break: break-word; }
.msx-report .msx-figure { width: 100%; }
.msx-report .msx-code-view .msx-cv-panes { flex-direction: column; gap: 12px; }
.msx-report .msx-code-view .msx-cv-pane { max-height: 560px; }
.msx-report .msx-failure summary { cursor: pointer; padding: 2px 0; }
.msx-report .msx-failure .msx-kind { display: inline-block; min-width: 8em; margin-right: 4px; color: #d32f2f;
  font-weight: 600; }
.msx-report .msx-failure .msx-count { font-variant-numeric: tabular-nums; font-weight: 600; margin-right: 6px; }
.msx-report .msx-pre { white-space: pre-wrap; font-size: 12px; max-height: 320px; overflow: auto; }
.msx-report .msx-notice { background: #fff4e5; border: 1px solid #f5c27a; border-radius: 4px; padding: 8px 12px;
  margin: 8px 0; }
"""
# Draws each figure once it is visible: at load, or when the <details> holding it is first opened.
DRAW_SCRIPT = """
(function () {
  var CONFIG = {responsive: true, displaylogo: false};
  function draw(data) {
    if (data.dataset.drawn) return;
    data.dataset.drawn = "1";
    var fig = JSON.parse(data.textContent);
    Plotly.newPlot(document.getElementById(data.dataset.target), fig.data, fig.layout || {}, CONFIG);
  }
  function drawVisible(root) {
    root.querySelectorAll("script.msx-figure-data").forEach(function (data) {
      if (!data.parentElement.closest("details:not([open])")) draw(data);
    });
  }
  drawVisible(document);
  document.querySelectorAll("details").forEach(function (d) {
    d.addEventListener("toggle", function () { if (d.open) drawVisible(d); });
  });
})();
"""


class Section(NamedTuple):
    """A titled part of the page; ``id`` is its anchor, linked from the page's contents line."""

    id: str
    title: str
    body: str


def page(title: str, subtitle: str, header: str, sections: Sequence[Section]) -> str:
    """The whole document: styles and plotly.js inlined once, a contents line, the sections, the drawing script."""
    css = "\n".join(asset(name).read_text(encoding="utf-8") for name in WIDGET_CSS) + PAGE_CSS
    written = _dt.datetime.now().isoformat(timespec="seconds")
    contents = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(section_html(s) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="msexplore {esc(__version__)}">'
        f"<style>{css}</style>"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>'
        "</head>\n"
        '<body class="msx-root msx-report">'
        f'<header><h1>{esc(title)}</h1>'
        f'<div class="msx-report-meta">{esc(subtitle)} · written {esc(written)} by msexplore {esc(__version__)}</div>'
        f"{header}<nav>{contents}</nav></header>\n"
        f"<main>{body}</main>\n"
        f"<script>{DRAW_SCRIPT}</script></body></html>\n"
    )


def section_html(section: Section, level: int = 2) -> str:
    return f'<section id="{esc(section.id)}"><h{level}>{esc(section.title)}</h{level}>{section.body}</section>'


def figure_html(fig: Any, figure_id: str) -> str:
    """A place for the figure and its plotly JSON (``<`` escaped, so no text in it can end the script)."""
    data = fig.to_json().replace("<", "\\u003c")
    return (
        f'<div class="msx-figure" id="{esc(figure_id)}"></div>'
        f'<script type="application/json" class="msx-figure-data" data-target="{esc(figure_id)}">{data}</script>'
    )


def code_panes(panes: Iterable[tuple[str, str | None, str]]) -> str:
    """One under the other, each ``(title, code, why_not)``: the code highlighted as Python with numbered lines, or,
    when ``code`` is None, the note ``why_not``."""
    boxes = []
    for title, code, why_not in panes:
        inner = (f'<div class="msx-cv-pane">{code_html(code, "python")}</div>' if code is not None
                 else note(why_not))
        boxes.append(f'<div class="msx-cv-box"><div class="msx-cv-title">{esc(title)}</div>{inner}</div>')
    return f'<div class="msx-code-view"><div class="msx-cv-panes">{"".join(boxes)}</div></div>'


def facts_table(facts: Iterable[tuple[str, str]]) -> str:
    """A two-column table of labels and already formatted values."""
    rows = "".join(f"<tr><th>{esc(label)}</th><td>{esc(value)}</td></tr>" for label, value in facts)
    return f'<table class="msx-table msx-facts"><tbody>{rows}</tbody></table>'


def details(summary: str, body: str, *, css_class: str = "", id_: str = "") -> str:
    """A folded block: ``summary`` (HTML) always shown, ``body`` (HTML) when opened."""
    attrs = (f' id="{esc(id_)}"' if id_ else "") + (f' class="{esc(css_class)}"' if css_class else "")
    return f"<details{attrs}><summary>{summary}</summary>{body}</details>"


def notice(text: str) -> str:
    """A highlighted note the reader should not miss (an interrupted run, a failed session)."""
    return f'<div class="msx-notice">{esc(text)}</div>'


def slug(text: str) -> str:
    """``text`` as an HTML id: letters, digits, ``_`` and ``-`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"
