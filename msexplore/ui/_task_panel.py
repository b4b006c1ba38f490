"""What the panels share: long work on a daemon thread (one job at a time), its outcome in traits, errors shown.

A button handler only calls ``_start(label, work, done)``: ``work`` runs on the thread (core calls: export, fit,
building a space), ``done(result)`` turns the result into widget state there too. Nothing that takes more than a
moment runs in a handler, so the kernel stays free; an exception anywhere ends up in the panel's error box.
"""

from __future__ import annotations

import functools
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from traitlets import Bool, Unicode

from ..common import error_line
from ._html import error_box, esc
from ._static import StaticFallback
from ._stylesheet import stylesheet

__all__ = ["TaskPanel", "guarded", "row"]


def row(children: list[Any]) -> widgets.HBox:
    """Controls side by side, spaced by ``.msx-row`` (ipywidgets' Layout has no ``gap``)."""
    box = widgets.HBox(children)
    box.add_class("msx-row")
    return box


def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an observer or click handler so that an exception is shown in the widget, not lost in the log."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as err:  # noqa: BLE001 - shown to the user, who can act on it
            where = method.__name__.removeprefix("_").removeprefix("on_").replace("_", " ")
            self._report_error(where, err, traceback.format_exc())
            return None

    return wrapper


class TaskPanel(StaticFallback, widgets.VBox):
    """A panel whose buttons start background jobs; ``wait()`` joins the current one (tests, scripts).

    Displayed, it writes a static copy of itself after it (``StaticFallback``), brought up to date whenever the
    status line changes, i.e. when a job starts and ends.
    """

    status = Unicode("idle", help="'idle', the running job ('exporting', ...), 'ok' or 'error'")
    busy = Bool(False, help="a job is running; buttons that start another are refused until it ends")
    message = Unicode("", help="the outcome of the last job, as the status line shows it")
    error_text = Unicode("", help="the last error's message ('' after a job that succeeded)")

    def __init__(self, css_class: str, **kwargs: Any) -> None:
        self.status_line = widgets.HTML()
        self.error_area = widgets.HTML()
        self._job: threading.Thread | None = None
        self._start_lock = threading.Lock()
        super().__init__(**kwargs)
        self.stylesheet = stylesheet()
        self.add_class("msx-root")
        self.add_class("msx-panel")
        self.add_class(css_class)

    # ---- jobs ----
    def _start(self, label: str, work: Callable[[], Any], done: Callable[[Any], None]) -> bool:
        """Run ``work()`` then ``done(result)`` on a thread; refuse (and say so) while another job runs."""
        with self._start_lock:  # check-and-set: handlers and job threads may both start jobs
            if self.busy:
                self._say(f"Still {self.status}; wait until it finishes.", kind="warning")
                return False
            self.busy = True
        self.status = label
        self.error_text = ""
        self.error_area.value = ""
        self._say(f"{label.capitalize()}…", kind="busy")

        def target() -> None:
            try:
                done(work())
                self.status = "ok"
            except Exception as err:  # noqa: BLE001 - shown in the panel
                self._report_error(label, err, traceback.format_exc())
            finally:
                self.busy = False

        self._job = threading.Thread(target=target, name=f"msexplore-{label}", daemon=True)
        self._job.start()
        return True

    def wait(self, timeout: float | None = None) -> TaskPanel:
        """Block until the current job ends (or ``timeout`` seconds pass); for scripts and tests, not handlers."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # a job may start a follow-up job as it ends (the workbench's latest-toggles rebuild)
            job = self._job
            if job is None:
                return self
            job.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if self._job is job or (deadline is not None and time.monotonic() >= deadline):
                return self

    # ---- what the user reads ----
    def _say(self, text: str, *, kind: str = "info") -> None:
        self.message = text
        self.status_line.value = f'<div class="msx-status-line msx-{kind}">{esc(text)}</div>'
        self._static_changed()

    def _report_error(self, where: str, err: BaseException, trace: str) -> None:
        line = error_line(err, with_type=True, limit=400)
        self.status = "error"
        self.error_text = line
        self._say(f"{where.capitalize()} failed.", kind="error")
        self.error_area.value = error_box(line, trace)
