"""SearchDashboard: live progress of a search (header, progress figure, best candidates, failures, stop), and
once it has ended, the confirmation of its best (the Confirm button: ``run.confirm`` off the kernel's thread).

The live redraw is ``LiveDashboard``'s (``_live.py``): the run calls ``_on_batch`` on the search thread with each
measured batch; it only appends the batch to a buffer and wakes the redraw thread, which takes the whole buffer and
redraws once, at most ``1 / min_interval_s`` times a second: the progress figure in place (``update_search_progress``:
one message to the browser), then the tables; the header shows ``run.progress``.

A dashboard subscribes with ``replay=True``: made for a running run, an ``mx.open_run(folder)`` or displayed a
second time, it draws the whole history at once.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from traitlets import Bool, Enum, Float, Int

from ..common import check_positive_int
from ..figures import PROGRESS_METRICS, PROGRESS_XS, plot_search_progress, update_search_progress
from ..search.confirm import confirmation_frame
from ..search.run import Progress, SearchRun
from ._dashboard_parts import (
    confirmation_html,
    failure_log_html,
    failure_summary_html,
    header_html,
    progress_frame,
    top_table_html,
)
from ._live import LiveDashboard
from ._stylesheet import stylesheet
from ._task_panel import guarded, row

__all__ = ["SearchDashboard"]


class SearchDashboard(LiveDashboard):
    """Live view of a ``SearchRun``: status, trials, best, ETA, the progress figure, top-k, failures, Stop, and
    Confirm once the search has ended.

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
    confirm_top, confirm_rounds
        What the Confirm button re-times: the ``confirm_top`` fastest verified candidates, all in turn,
        ``confirm_rounds`` times (``run.confirm``); ``run.best`` then follows the medians.
    """

    # The header's traits (with ``status``, ``status_text``): the fields of the run's ``Progress`` as last shown.
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
    confirming = Bool(False, help="the Confirm button's re-timing is under way")
    confirmed_latency_s = Float(None, allow_none=True, help="the confirmed best's median, once confirmed")

    _thread_name = "msexplore-dashboard"
    _run_noun = "search"

    def __init__(
        self,
        run: SearchRun,
        *,
        metric: str = "gflops",
        x: str = "trial",
        top_k: int = 10,
        min_interval_s: float = 0.25,
        confirm_top: int = 5,
        confirm_rounds: int = 5,
    ) -> None:
        if not isinstance(run, SearchRun):
            raise TypeError(f"SearchDashboard expects a SearchRun (mx.search or mx.open_run), got {type(run).__name__}")
        if metric not in PROGRESS_METRICS:
            raise ValueError(f"metric must be one of {list(PROGRESS_METRICS)}, got {metric!r}")
        if x not in PROGRESS_XS:
            raise ValueError(f"x must be one of {list(PROGRESS_XS)}, got {x!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        check_positive_int("confirm_top", confirm_top)
        check_positive_int("confirm_rounds", confirm_rounds)
        self._setup_live(run, min_interval_s,
                         stop_tooltip="Stop after the batch being measured; every record is kept")
        self.top_k = top_k
        self.confirm_top, self.confirm_rounds = confirm_top, confirm_rounds
        self._confirm_thread: threading.Thread | None = None
        self.progress: Progress | None = None  # the run's progress as the header shows it

        self._events: list[Any] = []  # drawn, in index order
        self._seen: set[int] = set()
        self._stale = False  # the figure lags the drawn events (a redraw failed)
        self._pending: list[Any] = []  # filled by the search thread, drained by the redraw thread
        self._pending_lock = threading.Lock()

        self.metric_toggle = widgets.ToggleButtons(
            options=[("GFLOPS", "gflops"), ("latency", "latency")], value=metric, style={"button_width": "80px"}
        )
        self.figure = go.FigureWidget(plot_search_progress(progress_frame([]), metric=metric, x=x))
        self.top_table = widgets.HTML()
        self.failure_log = widgets.HTML()
        self.failure_log.add_class("msx-dashboard-failures")
        self.confirm_button = widgets.Button(
            description="Confirm best", icon="check", disabled=True,
            tooltip=f"Re-time the {confirm_top} fastest verified candidates in turn, {confirm_rounds} rounds, and "
                    "rank them by the median (the search timed each once); once the search has ended",
        )
        self.confirm_button.on_click(self._on_confirm)
        self.confirmation = widgets.HTML()  # the last confirmation of the run's events, if any
        controls = row([self.stop_button, self.confirm_button, self.metric_toggle])
        super().__init__(
            [stylesheet(), self.header, self.progress_bar, controls, self.figure, self.confirmation,
             self.top_table, self.failure_log, self.error_area],
            metric=metric,
        )
        self.add_class("msx-root")
        self.add_class("msx-dashboard")

        self.metric_toggle.observe(self._on_metric_toggle, names=["value"])
        self.observe(self._on_metric, names=["metric"])

        self._go_live(run.subscribe(self._on_batch, replay=True))  # the history arrives as one batch

    # ---- the search thread's side: as short as possible ----
    def _on_batch(self, batch: list[Any]) -> None:
        with self._pending_lock:
            self._pending.extend(batch)
        self._wake.set()

    # ---- the redraw thread's side (under the draw lock) ----
    def _run_ended(self) -> bool:
        return not self.run.running

    def _draw_update(self) -> None:
        """Draw what the buffer holds (if anything), then refresh the header."""
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

    def _draw(self) -> None:
        self._draw_figure()
        self.top_table.value = top_table_html(self._events, self.top_k)
        self.failure_log.value = failure_log_html(self._events)
        self.events_drawn = len(self._events)
        self.redraw_count += 1

    def _draw_figure(self) -> None:
        """The events drawn so far, in place; the x axis and y scale chosen with the figure's buttons stay."""
        update_search_progress(self.figure, progress_frame(self._events), metric=self.metric)

    # ---- header ----
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
        self._draw_progress_bar(self.trials_done, self.trials_total)

    # ---- user events (main thread; quick) ----
    @guarded
    def _on_metric_toggle(self, change: dict) -> None:
        self.metric = change["new"]

    @guarded
    def _on_metric(self, change: dict) -> None:
        """A new y metric changes axis titles and hover texts too: rebuild the figure's contents in place."""
        self.metric_toggle.value = change["new"]
        with self._draw_lock:
            self._draw_figure()

    # ---- confirming the best (after the search) ----
    def _finish(self) -> None:
        """The folder's confirmation and the Confirm button, then the final state (``finished`` after both)."""
        try:
            with self._draw_lock:
                self._draw_confirmation()
                self._enable_confirm()
        except Exception as err:  # noqa: BLE001 - an unreadable confirmation must not keep the final state away
            self._report_error("confirmation redraw", err, traceback.format_exc())
        super()._finish()

    def _enable_confirm(self) -> None:
        """The button works once the search has ended and holds a verified candidate, and not while confirming."""
        ended = self.run.status not in ("starting", "running", "stopping")
        self.confirm_button.disabled = self.confirming or not ended or not any(e.ok for e in self.run.events)

    def _draw_confirmation(self) -> None:
        """The folder's confirmation of the run's events as they stand (none, or stale: nothing shown)."""
        saved = self.run.folder.read_confirmation()
        if saved is None or saved.get("measured") != len(self.run.events):
            self.confirmation.value, self.confirmed_latency_s = "", None
            return
        frame = confirmation_frame(saved["entries"])
        self.confirmation.value = confirmation_html(frame, int(saved["rounds"]))
        medians = frame["confirmed_ms"].dropna()
        self.confirmed_latency_s = float(medians.iloc[0]) / 1e3 if len(medians) else None

    @guarded
    def _on_confirm(self, _button: Any) -> None:
        """Re-time on a thread of its own (seconds to minutes): the kernel stays free, the button says so."""
        if self.confirming:
            return
        self.confirming = True
        self.confirm_button.disabled = True
        self.confirm_button.description = "Confirming…"
        self._confirm_thread = threading.Thread(target=self._confirm, name="msexplore-confirm", daemon=True)
        self._confirm_thread.start()

    def _confirm(self) -> None:
        try:
            self.run.confirm(self.confirm_top, rounds=self.confirm_rounds)
        except Exception as err:  # noqa: BLE001 - shown in the error area; the run and its records are untouched
            self._report_error("confirmation", err, traceback.format_exc())
        finally:
            with self._draw_lock:
                self.confirming = False
                self.confirm_button.description = "Confirm best"
                try:
                    self._draw_confirmation()
                except Exception as err:  # noqa: BLE001
                    self._report_error("confirmation redraw", err, traceback.format_exc())
                self._enable_confirm()
            self._static_changed(now=True)

    def wait_confirmed(self, timeout: float | None = None) -> bool:
        """Block until a confirmation started with the button has ended; for scripts and tests."""
        thread = self._confirm_thread
        if thread is not None:
            thread.join(timeout)
        return not self.confirming

    # ---- a saved notebook's copy ----
    def _static_parts(self) -> list[Any]:
        """Header, figure, the confirmation, best candidates, errors, and the failures by their one line (no
        tracebacks)."""
        return [self.header, self.figure, self.confirmation, self.top_table, failure_summary_html(self._events),
                self.error_area]

    def _close_parts(self) -> None:
        self.figure.close()
