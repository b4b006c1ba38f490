"""SearchDashboard: live progress of a search (header, progress figure, best candidates, failures, stop).

How the live redraw works: the run calls ``_on_batch`` on the search thread with each measured batch; it only
appends the batch to a buffer and sets an event. A redraw thread of the dashboard waits for that event (or a
one-second tick for the clock), takes the whole buffer, and redraws once: the progress figure is updated in place
(``update_search_progress``: one message to the browser), then the tables; the header shows ``run.progress``.
After a redraw it sleeps until ``min_interval_s`` has passed, so batches that arrive meanwhile are drawn together:
at most ``1 / min_interval_s`` redraws a second (4 by default), however fast events come. When the run's thread
has ended, the redraw thread draws what is left, shows the final state and exits.

A dashboard subscribes with ``replay=True``: made for a running run, an ``mx.open_run(folder)`` or displayed a
second time, it draws the whole history at once.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from traitlets import Bool, Enum, Float, Int, Unicode

from ..common import error_line
from ..figures import PROGRESS_METRICS, PROGRESS_XS, plot_search_progress, update_search_progress
from ..search.run import Progress, SearchRun
from ._dashboard_parts import failure_log_html, header_html, progress_frame, top_table_html
from ._html import error_box
from ._stylesheet import stylesheet
from ._task_panel import guarded, row

__all__ = ["SearchDashboard"]

_BAR_STYLE = {"done": "success", "stopped": "warning", "interrupted": "warning", "failed": "danger"}


class SearchDashboard(widgets.VBox):
    """Live view of a ``SearchRun``: status, trials, best, ETA, the progress figure, top-k, failures, Stop.

    Parameters
    ----------
    run
        A running ``mx.search(...)`` or a finished ``mx.open_run(folder)``.
    metric
        ``"gflops"`` or ``"latency"`` on the y axis (a toggle switches; the figure's buttons switch x and log y).
    x
        ``"trial"`` or ``"time"``: the x axis drawn first.
    top_k
        Rows of the best-candidates table.
    min_interval_s
        The shortest time between two redraws; batches arriving meanwhile are drawn together.
    """

    # The header's traits: the fields of the run's ``Progress`` as last shown (``progress``).
    status = Unicode("starting", help="the run's status as last shown: running, stopping, done, stopped, failed...")
    status_text = Unicode("", help="the header as one line of text: str(run.progress)")
    trials_done = Int(0, help="this session's measured trials")
    trials_total = Int(0, help="this session's budget of trials")
    failures = Int(0, help="failed candidates (every session)")
    best_latency_s = Float(None, allow_none=True)
    best_gflops = Float(None, allow_none=True)
    elapsed_s = Float(0.0)
    eta_s = Float(None, allow_none=True)
    events_drawn = Int(0, help="events in the figure (every session of the folder)")
    metric = Enum(PROGRESS_METRICS, default_value="gflops", help="y axis of the progress figure")
    redraw_count = Int(0, help="times the figure was redrawn (coalesced batches)")
    finished = Bool(False, help="the run has ended and its final state is drawn")

    def __init__(
        self,
        run: SearchRun,
        *,
        metric: str = "gflops",
        x: str = "trial",
        top_k: int = 10,
        min_interval_s: float = 0.25,
    ) -> None:
        if not isinstance(run, SearchRun):
            raise TypeError(f"SearchDashboard expects a SearchRun (mx.search or mx.open_run), got {type(run).__name__}")
        if metric not in PROGRESS_METRICS:
            raise ValueError(f"metric must be one of {list(PROGRESS_METRICS)}, got {metric!r}")
        if x not in PROGRESS_XS:
            raise ValueError(f"x must be one of {list(PROGRESS_XS)}, got {x!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if not isinstance(min_interval_s, (int, float)) or isinstance(min_interval_s, bool) or min_interval_s <= 0:
            raise ValueError(f"min_interval_s must be a positive number of seconds, got {min_interval_s!r}")
        self.run = run
        self.top_k = top_k
        self.min_interval_s = float(min_interval_s)
        self.tick_s = 1.0  # header refresh (clock, ETA) when no batch arrives
        self.progress: Progress | None = None  # the run's progress as the header shows it
        self.error_log: list[str] = []  # every error the dashboard caught while drawing (also shown)
        self._error_boxes: list[str] = []

        self._events: list[Any] = []  # drawn, in index order
        self._seen: set[int] = set()
        self._stale = False  # the figure lags the drawn events (a redraw failed)
        self._pending: list[Any] = []  # filled by the search thread, drained by the redraw thread
        self._pending_lock = threading.Lock()
        self._draw_lock = threading.RLock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: Any = None

        self.header = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.progress_bar = widgets.IntProgress(min=0, max=1, value=0, layout=widgets.Layout(width="100%"))
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          tooltip="Stop after the batch being measured; every record is kept")
        self.metric_toggle = widgets.ToggleButtons(
            options=[("GFLOPS", "gflops"), ("latency", "latency")], value=metric, style={"button_width": "80px"}
        )
        self.figure = go.FigureWidget(plot_search_progress(progress_frame([]), metric=metric, x=x))
        self.top_table = widgets.HTML()
        self.failure_log = widgets.HTML()
        self.failure_log.add_class("msx-dashboard-failures")
        self.error_area = widgets.HTML()  # the run's error when it failed, and the dashboard's own errors
        controls = row([self.stop_button, self.metric_toggle])
        super().__init__(
            [stylesheet(), self.header, self.progress_bar, controls, self.figure, self.top_table,
             self.failure_log, self.error_area],
            metric=metric,
        )
        self.add_class("msx-root")
        self.add_class("msx-dashboard")

        self.stop_button.on_click(self._on_stop)
        self.metric_toggle.observe(self._on_metric_toggle, names=["value"])
        self.observe(self._on_metric, names=["metric"])

        self._unsubscribe = run.subscribe(self._on_batch, replay=True)  # the history arrives as one batch
        if run.running:
            self._flush()
            self.stop_button.disabled = False
            self._thread = threading.Thread(target=self._redraw_loop, name="msexplore-dashboard", daemon=True)
            self._thread.start()
        else:
            self._finish()

    # ---- the search thread's side: as short as possible ----
    def _on_batch(self, batch: list[Any]) -> None:
        with self._pending_lock:
            self._pending.extend(batch)
        self._wake.set()

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
            if not self.run.running:  # its last batch was published before its thread ended
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
        """Draw what the buffer holds (if anything), then refresh the header; errors are shown, never raised."""
        try:
            with self._draw_lock:
                with self._pending_lock:
                    new, self._pending = self._pending, []
                fresh = [e for e in new if e.index not in self._seen]
                if fresh:
                    self._seen.update(e.index for e in fresh)
                    self._events.extend(fresh)
                    if any(a.index > b.index for a, b in zip(self._events, self._events[1:])):
                        self._events.sort(key=lambda e: e.index)
                    self._stale = True
                if self._stale:  # new events, or a redraw that failed: draw everything again
                    self._draw()
                    self._stale = False
                self._refresh_header()
        except Exception as err:  # noqa: BLE001 - the next batch redraws everything anyway
            self._report_error("redraw", err, traceback.format_exc())

    def _draw(self) -> None:
        self._draw_figure()
        self.top_table.value = top_table_html(self._events, self.top_k)
        self.failure_log.value = failure_log_html(self._events)
        self.events_drawn = len(self._events)
        self.redraw_count += 1

    def _draw_figure(self) -> None:
        """The events drawn so far, in place; the x axis and y scale chosen with the figure's buttons stay."""
        update_search_progress(self.figure, progress_frame(self._events), metric=self.metric)

    # ---- header and final state ----
    def _refresh_header(self) -> None:
        """The header, its traits and the progress bar, all from the run's ``Progress`` (its fields, its text)."""
        progress = self.progress = self.run.progress
        self.status = progress.status
        self.trials_done = progress.trials_done
        self.trials_total = progress.trials_total
        self.failures = progress.failures
        self.best_latency_s = progress.best_latency_s
        self.best_gflops = progress.best_gflops
        self.elapsed_s = progress.elapsed_s
        self.eta_s = progress.eta_s
        self.status_text = str(progress)
        self.header.value = header_html(progress)
        self.progress_bar.max = max(1, self.trials_total)
        self.progress_bar.value = min(self.trials_done, self.progress_bar.max)
        self.progress_bar.bar_style = _BAR_STYLE.get(self.status, "info" if self.status == "stopping" else "")

    def _finish(self) -> None:
        self._flush()  # anything left, and a retry of a failed redraw
        try:
            with self._draw_lock:
                self.stop_button.disabled = True
                self.stop_button.description = "Stop"
                if self.run.status == "failed":
                    error = self.run.error or "the search failed without an error message"
                    self._show_error(error_box(f"The search failed: {error_line(error, limit=160)}", error))
                self.finished = True
        except Exception as err:  # noqa: BLE001
            self._report_error("final redraw", err, traceback.format_exc())
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()

    def _report_error(self, where: str, err: BaseException, trace: str) -> None:
        self.error_log.append(trace)
        self._show_error(error_box(f"Dashboard {where} failed: {error_line(err, with_type=True, limit=160)}", trace))

    def _show_error(self, html: str) -> None:
        """Add an error box; the last few stay (a redraw that keeps failing retries every second)."""
        self._error_boxes = [*self._error_boxes[-4:], html]
        self.error_area.value = "".join(self._error_boxes)

    # ---- user events (main thread; quick) ----
    @guarded
    def _on_stop(self, _button: Any) -> None:
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        self.run.stop(wait=False)
        with self._draw_lock:  # a redraw may be under way (a few ms); the header then says "stopping"
            self._refresh_header()

    @guarded
    def _on_metric_toggle(self, change: dict) -> None:
        self.metric = change["new"]

    @guarded
    def _on_metric(self, change: dict) -> None:
        """A new y metric changes axis titles and hover texts too: rebuild the figure's contents in place."""
        self.metric_toggle.value = change["new"]
        with self._draw_lock:
            self._draw_figure()

    def close(self) -> None:
        """Stop listening to the run and close the widget (the run goes on)."""
        self._closed = True
        if hasattr(self, "_wake"):  # not when the constructor refused its arguments (Widget.__del__ closes)
            self._wake.set()
            if self._unsubscribe is not None:
                self._unsubscribe()
            self.figure.close()
        super().close()
