"""Static copies of the panels, so that a saved notebook shows a panel's last state without a kernel.

A widget's output holds only a reference to a model in the kernel: nbconvert, a notebook viewer or a reopened
notebook cannot draw it ("Error displaying widget"), and nbconvert even prefers that reference over a
``text/html`` in the same output whenever the notebook carries widget state, as nbclient saves it. So a panel
displayed as a cell's result (or with ``display()``) writes two outputs: its widget, then a static copy, plain
HTML (header, tables, the figure as an inline SVG, code highlighted with inline colours) with a display id.

The copy follows the panel: each change marks it stale, and it is published again with ``update_display`` at most
every ``min_interval_s`` (a live dashboard redraws four times a second; its copy only needs the last state), at
once when a run ends, and at the end of every cell (IPython's ``post_run_cell``), since an update sent while no
cell runs is dropped by nbclient. In JupyterLab the live widget is there: the panels' stylesheet hides a copy right
after a rendered panel (``HIDE_WHEN_LIVE_CSS``); where the widget cannot be drawn, the copy shows.

A limit: JupyterLab applies a display update only to the outputs of the cell whose execution it belongs to, so in
a notebook saved from JupyterLab a copy holds its panel's state as of the end of the panel's own cell (a run
opened from its folder: everything; a run displayed as it starts: its start). nbclient, and so
``jupyter nbconvert --execute``, applies updates to any earlier cell: there the copy holds the last state.
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from ._html import esc

__all__ = ["StaticFallback", "StaticCopy", "HIDE_WHEN_LIVE_CSS", "STATIC_CLASS", "static_page", "widget_html"]

STATIC_CLASS = "msx-static"
# An output right after an output holding a rendered panel (its root has the class msx-root) is its static copy.
HIDE_WHEN_LIVE_CSS = (
    f".jp-OutputArea-child:has(.msx-root) + .jp-OutputArea-child:has(.{STATIC_CLASS}) {{ display: none; }}\n"
)
# The copy's own look, scoped to it: nothing of msexplore's CSS is loaded where the widget is not drawn.
_STYLE = f"""<style>
.{STATIC_CLASS} {{ font: 13px/1.4 system-ui, sans-serif; max-width: 100%; overflow-x: auto; }}
.{STATIC_CLASS} table {{ border-collapse: collapse; margin: 4px 0 8px; font-size: 12px; }}
.{STATIC_CLASS} th, .{STATIC_CLASS} td {{ border: 1px solid #ddd; padding: 2px 6px; text-align: left; }}
.{STATIC_CLASS} td.msx-num, .{STATIC_CLASS} th.msx-num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.{STATIC_CLASS} pre {{ font-size: 12px; background: #f8f8f8; padding: 6px; overflow-x: auto; max-height: 40em; }}
.{STATIC_CLASS} .msx-static-title {{ color: #666; font-size: 11px; margin-bottom: 4px; }}
.{STATIC_CLASS} .msx-section-title {{ font-weight: 600; margin-top: 6px; }}
.{STATIC_CLASS} .msx-error, .{STATIC_CLASS} .msx-error-box {{ color: #b00020; }}
.{STATIC_CLASS} .msx-dashboard-header > span {{ margin-right: 12px; }}
.{STATIC_CLASS} .msx-label {{ color: #666; }}
</style>"""


def static_page(title: str, body: str) -> str:
    """The static copy's HTML: a scoped style, a line saying what it is, and ``body``."""
    note = f"{title} · static copy of the last state (the live panel needs a running kernel)"
    return f'<div class="{STATIC_CLASS}">{_STYLE}<div class="msx-static-title">{esc(note)}</div>{body}</div>'


class StaticCopy:
    """The static copy of one displayed panel: a ``display_data`` output with a display id, republished when stale.

    ``render`` returns the copy's HTML (called on whichever thread publishes: it reads the panel under the panel's
    own lock); ``publish(data, display_id, update)`` sends it (IPython's ``display``/``update_display`` by default);
    ``settle()``, called at a cell's end before the copy is flushed, lets the panel draw a state it is about to
    reach (a dashboard whose run has just ended).
    """

    def __init__(
        self,
        render: Callable[[], str],
        text: Callable[[], str],
        *,
        min_interval_s: float = 2.0,
        publish: Callable[[dict[str, str], str, bool], None] | None = None,
        settle: Callable[[], None] | None = None,
    ) -> None:
        self.render, self.text, self.settle = render, text, settle
        self.min_interval_s = min_interval_s
        self.display_id = f"msx-static-{uuid.uuid4().hex}"
        self.published = 0  # how many times it was sent (the first display included)
        self._publish = publish or _ipython_publish
        self._lock = threading.Lock()
        self._stale = False
        self._last = 0.0
        self._timer: threading.Timer | None = None

    def bundle(self) -> dict[str, str]:
        return {"text/html": self.render(), "text/plain": self.text()}

    def show(self) -> None:
        """The first output; the copy then follows ``changed``."""
        self._send(update=False)
        _watch_cells(self)

    def changed(self, *, now: bool = False) -> None:
        """The panel changed: publish now if the last publish is old enough (or ``now``), else soon."""
        with self._lock:
            self._stale = True
            wait = 0.0 if now else self._last + self.min_interval_s - time.monotonic()
            if wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self.flush()

    def flush(self) -> None:
        """Publish if stale (the timer's, and each cell's end)."""
        with self._lock:
            self._timer = None
            if not self._stale:
                return
            self._stale = False
        self._send(update=True)

    def _send(self, *, update: bool) -> None:
        self._last = time.monotonic()
        self._publish(self.bundle(), self.display_id, update)
        self.published += 1


def _ipython_publish(data: dict[str, str], display_id: str, update: bool) -> None:
    from IPython.display import display, update_display

    if update:
        update_display(data, raw=True, display_id=display_id)
    else:
        display(data, raw=True, display_id=display_id)


# ---- each cell's end: publish what went stale meanwhile ----
_COPIES: weakref.WeakSet[StaticCopy] = weakref.WeakSet()
_hooked: set[int] = set()  # the shells whose post_run_cell event flushes the copies


def _watch_cells(copy: StaticCopy) -> None:
    _COPIES.add(copy)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and id(shell) not in _hooked:
        shell.events.register("post_run_cell", _flush_all)
        _hooked.add(id(shell))


def _flush_all(*_result: Any) -> None:
    for copy in list(_COPIES):
        if copy.settle is not None:
            copy.settle()
        copy.flush()


def widget_html(widget: Any) -> str:
    """What a widget tree shows, as static HTML: HTML widgets' values, figures as SVG, the custom widgets' own
    ``_static_body()`` (code, tables), boxes by their visible children; controls (buttons, fields) are left out.
    A string is HTML already."""
    import ipywidgets as widgets
    import plotly.graph_objects as go

    from ._static_figure import figure_svg

    if isinstance(widget, str):
        return widget
    if isinstance(widget, go.FigureWidget):
        return f"<div>{figure_svg(widget)}</div>"
    layout = getattr(widget, "layout", None)
    if layout is not None and (layout.display == "none" or layout.visibility == "hidden"):
        return ""
    body = getattr(widget, "_static_body", None)
    if body is not None:
        return body()
    if isinstance(widget, widgets.HTML):
        return widget.value
    if isinstance(widget, widgets.Box):
        return "".join(widget_html(child) for child in widget.children)
    return ""


class StaticFallback:
    """Mixin of a panel (an ipywidgets ``DOMWidget``) displayed with a static copy after it.

    The copy is ``widget_html`` of the panel's children unless the panel has its own ``_static_body()``; a panel
    calls ``_static_changed()`` when what it shows changes. ``static_copies`` are the copies of its displays.
    """

    static_interval_s = 2.0
    _static_title = ""  # the copy's first line; the class name by default

    def _static_body(self) -> str:
        return "".join(widget_html(child) for child in getattr(self, "children", ()))

    def _static_html(self) -> str:
        return static_page(self._static_title or type(self).__name__, self._static_body())

    def _static_text(self) -> str:
        return f"{type(self).__name__} (a live panel: needs a running kernel)"

    @property
    def static_copies(self) -> list[StaticCopy]:
        return self.__dict__.setdefault("_static_copy_list", [])

    def _ipython_display_(self, **_kwargs: Any) -> None:
        """IPython's display: the widget, then its static copy."""
        self.display_with_copy()

    def display_with_copy(self, text: str | None = None) -> StaticCopy:
        """Display the widget (``text``: its plain-text fallback), then a static copy that follows it."""
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        if isinstance(bundle, tuple):  # (data, metadata) from some widget versions
            bundle = bundle[0]
        bundle = dict(bundle or {})
        if text is not None:
            bundle["text/plain"] = text
        display(bundle, raw=True)
        copy = StaticCopy(self._static_html, self._static_text, min_interval_s=self.static_interval_s,
                          settle=self._static_settle)
        self.static_copies.append(copy)
        copy.show()
        return copy

    def _static_settle(self) -> None:
        """At a cell's end, before the copy is published: draw what is due now (nothing by default)."""

    def _static_changed(self, *, now: bool = False) -> None:
        for copy in self.static_copies:
            copy.changed(now=now)
