"""What the live dashboards share: a run drawn as it goes, a few redraws a second, off the kernel's thread.

How the live redraw works: the run calls the dashboard's ``_on_batch`` on its search thread with each measured
batch; that only notes the batch and sets an event (``_wake``). A redraw thread waits for that event (or a
``tick_s`` tick for the clock), then draws what changed and the header (``_flush``) under the draw lock. After a
redraw it sleeps until ``min_interval_s`` has passed, so batches that arrive meanwhile are drawn together: at most
``1 / min_interval_s`` redraws a second (4 by default), however fast events come. When the run has ended, the
redraw thread draws what is left, shows the final state (``_finish``) and exits. An error while drawing goes to the
error area and ``error_log``, never lost, never raised into the run.

``LiveDashboard`` holds that machinery, the Stop button, the header's progress bar and the error area; a dashboard
built on it draws: ``_draw_update`` (what changed, then the header), ``_refresh_header``, ``_run_ended`` and
``_close_parts``.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from traitlets import Bool, Unicode

from ..common import error_line
from ._html import error_box
from ._static import StaticFallback, widget_html
from ._task_panel import guarded

__all__ = ["LiveDashboard"]

_BAR_STYLE = {"done": "success", "stopped": "warning", "interrupted": "warning", "failed": "danger"}


class LiveDashboard(StaticFallback, widgets.VBox):
    """A dashboard that follows a run (a ``SearchRun`` or a ``ModelRun``): redraw thread, Stop, final state, errors.

    A subclass calls ``_setup_live`` before it lays out its widgets (it places ``header``, ``progress_bar``,
    ``stop_button`` and ``error_area``), then ``_go_live(run.subscribe(self._on_batch))`` once it is built.
    """

    status = Unicode("starting", help="the run's status as last shown: running, stopping, done, stopped, failed...")
    status_text = Unicode("", help="the header as one line of text: str(run.progress)")
    finished = Bool(False, help="the run has ended and its final state is drawn")

    _thread_name = "msexplore-dashboard"
    _run_noun = "run"  # "The <noun> failed: ..." when the run failed

    def _setup_live(self, run: Any, min_interval_s: float, *, stop_tooltip: str) -> None:
        """Check ``min_interval_s``, then make the shared state and widgets (nothing is drawn or started yet)."""
        if not isinstance(min_interval_s, (int, float)) or isinstance(min_interval_s, bool) or min_interval_s <= 0:
            raise ValueError(f"min_interval_s must be a positive number of seconds, got {min_interval_s!r}")
        self.run = run
        self.min_interval_s = float(min_interval_s)
        self.tick_s = 1.0  # header refresh (clock, ETA) when no batch arrives
        self.error_log: list[str] = []  # every error the dashboard caught while drawing (also shown)
        self._error_boxes: list[str] = []
        self._draw_lock = threading.RLock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

        self.header = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.progress_bar = widgets.IntProgress(min=0, max=1, value=0, layout=widgets.Layout(width="100%"))
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True, tooltip=stop_tooltip)
        self.error_area = widgets.HTML()  # the run's error when it failed, and the dashboard's own errors
        self.stop_button.on_click(self._on_stop)

    def _go_live(self, unsubscribe: Callable[[], None]) -> None:
        """Draw the run as it stands; while it runs, go on drawing on the redraw thread, else draw the final state."""
        self._unsubscribe = unsubscribe
        if not self._run_ended():
            self._flush()
            self.stop_button.disabled = False
            self._thread = threading.Thread(target=self._redraw_loop, name=self._thread_name, daemon=True)
            self._thread.start()
        else:
            self._finish()

    # ---- what a dashboard draws ----
    def _run_ended(self) -> bool:
        """The run's thread has ended (its last batch is published)."""
        raise NotImplementedError

    def _draw_update(self) -> None:
        """Under the draw lock: draw what changed since the last flush, then the header; may raise."""
        raise NotImplementedError

    def _refresh_header(self) -> None:
        """The header and its traits from ``run.progress`` (``_draw_progress_bar`` for the bar)."""
        raise NotImplementedError

    def _close_parts(self) -> None:
        """Close the widgets that hold resources (the figure, an opened sub-dashboard)."""

    # ---- the redraw thread ----
    def _redraw_loop(self) -> None:
        last = 0.0
        while not self._closed:
            self._wake.wait(self.tick_s)
            delay = self.min_interval_s - (time.monotonic() - last)
            if delay > 0:  # coalesce: whatever arrives during the pause is drawn with this redraw
                time.sleep(delay)
            if self._closed:
                return
            self._wake.clear()
            if self._run_ended():  # its last batch was published before its thread ended
                self._finish()
                return
            self._flush()
            last = time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ended and its final state is drawn; for scripts and tests, never in a handler."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.finished

    def _flush(self) -> None:
        """Draw what changed (if anything), then the header; errors are shown, never raised."""
        try:
            with self._draw_lock:
                if self.run.status in _BAR_STYLE:  # ended: the button before the header that says so
                    self.stop_button.disabled = True
                    self.stop_button.description = "Stop"
                self._draw_update()
        except Exception as err:  # noqa: BLE001 - the next batch redraws everything anyway
            self._report_error("redraw", err, traceback.format_exc())
        self._static_changed()  # a saved notebook's copy follows, every few seconds

    def _draw_progress_bar(self, done: int, total: int) -> None:
        """The bar under the header: ``done`` of ``total`` trials, coloured by ``status``."""
        self.progress_bar.max = max(1, total)
        self.progress_bar.value = min(done, self.progress_bar.max)
        self.progress_bar.bar_style = _BAR_STYLE.get(self.status, "info" if self.status == "stopping" else "")

    # ---- final state and errors ----
    def _finish(self) -> None:
        with self._draw_lock:  # the button first: the browser never shows a final header beside "Stopping…"
            self.stop_button.disabled = True
            self.stop_button.description = "Stop"
        self._flush()  # anything left, and a retry of a failed redraw
        try:
            with self._draw_lock:
                if self.run.status == "failed":
                    noun = self._run_noun
                    error = self.run.error or f"the {noun} failed without an error message"
                    self._show_error(error_box(f"The {noun} failed: {error_line(error, limit=160)}", error))
                self.finished = True
        except Exception as err:  # noqa: BLE001
            self._report_error("final redraw", err, traceback.format_exc())
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._static_changed(now=True)  # the final state, in the copy at once

    def _report_error(self, where: str, err: BaseException, trace: str) -> None:
        self.error_log.append(trace)
        self._show_error(error_box(f"Dashboard {where} failed: {error_line(err, with_type=True, limit=160)}", trace))

    def _show_error(self, html: str) -> None:
        """Add an error box; the last few stay (a redraw that keeps failing retries every second)."""
        self._error_boxes = [*self._error_boxes[-4:], html]
        self.error_area.value = "".join(self._error_boxes)

    # ---- a saved notebook's copy ----
    def _static_body(self) -> str:
        """What the dashboard shows, read under the draw lock (the redraw thread may be drawing)."""
        with self._draw_lock:
            return "".join(widget_html(child) for child in self._static_parts())

    def _static_text(self) -> str:
        return self.status_text or repr(self.run)

    def _static_settle(self) -> None:
        """At a cell's end (``run.wait()``'s, typically): a run that has ended has its final state drawn now, not a
        tick later, when no cell may be left to carry the copy's update into the saved notebook."""
        thread = self._thread
        if thread is not None and thread.is_alive() and self._run_ended():
            self._wake.set()
            thread.join(self.min_interval_s + 5.0)

    def _static_parts(self) -> list[Any]:
        """The widgets (or HTML strings) the static copy shows (default: all children; controls show nothing)."""
        return list(self.children)

    # ---- user events (main thread; quick) ----
    @guarded
    def _on_stop(self, _button: Any) -> None:
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        self.run.stop(wait=False)
        with self._draw_lock:  # a redraw may be under way (a few ms); the header then says "stopping"
            self._refresh_header()

    def close(self) -> None:
        """Stop listening to the run and close the widget (the run goes on)."""
        self._closed = True
        if hasattr(self, "_wake"):  # not when the constructor refused its arguments (Widget.__del__ closes)
            self._wake.set()
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._close_parts()
        super().close()
