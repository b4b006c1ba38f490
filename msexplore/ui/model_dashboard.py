"""ModelDashboard: live progress of a whole model's tuning (header, estimated model latency, task table, drill-down).

The live redraw works as in ``SearchDashboard``: the run calls ``_on_batch`` on its search thread with each measured
batch of any task; it only marks the dashboard dirty and sets an event. A redraw thread waits for that event (or a
one-second tick for the clock), then draws the run as it stands: the latency figure in place
(``update_model_latency``: one message to the browser), the task table from ``run.tasks``, the header from
``run.progress``. It then sleeps until ``min_interval_s`` has passed, so the batches that arrive meanwhile are drawn
together. When the run has ended, the thread draws the final state and exits. Everything is read from the run, so a
dashboard made for a running, finished or reopened (``mx.open_model_run``) run draws everything so far at once.

A task's row opens that task's own ``SearchDashboard`` below the table (``opened_task``). Each budget pass gives a
task a new search session (a new ``SearchRun`` on the same folder); the opened dashboard follows it.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from traitlets import Bool, Float, Int, List, TraitError, Unicode, validate

from ..common import error_line
from ..figures import plot_model_latency, update_model_latency
from ..models.tuning import ModelProgress, ModelRun
from ._html import error_box, esc, note
from ._model_dashboard_parts import model_header_html, task_rows, task_table_html
from ._stylesheet import stylesheet
from ._task_panel import guarded, row
from .dashboard import SearchDashboard

__all__ = ["ModelDashboard"]

_BAR_STYLE = {"done": "success", "stopped": "warning", "interrupted": "warning", "failed": "danger"}
_XS = ("trials", "time")


class ModelDashboard(widgets.VBox):
    """Live view of a ``ModelRun``: status, trials, estimated model latency over trials, the tasks, Stop.

    Parameters
    ----------
    run
        A running ``mx.tune_model(...)`` or a finished ``mx.open_model_run(folder)``.
    x
        ``"trials"`` or ``"time"``: the x axis of the latency figure drawn first (its buttons switch).
    min_interval_s
        The shortest time between two redraws; batches arriving meanwhile are drawn together.
    """

    # The header's traits: the fields of the run's ``ModelProgress`` as last shown (``progress``).
    status = Unicode("starting", help="the run's status as last shown: running, stopping, done, stopped, failed...")
    status_text = Unicode("", help="the header as one line of text: str(run.progress)")
    trials_done = Int(0, help="this session's measured trials, every task")
    trials_total = Int(0, help="this session's budget of trials")
    measured_in_folder = Int(0, help="measured trials of every session on the folder")
    tasks = Int(0, help="tasks of the model")
    tasks_verified = Int(0, help="tasks with a verified schedule")
    failures = Int(0, help="failed candidates of every task")
    estimated_latency_s = Float(None, allow_none=True, help="calls x best latency summed over tasks")
    elapsed_s = Float(0.0)
    # What the figure and the table hold.
    task_rows = List(help="the task table as drawn: one dict per task (run.tasks, None where not known yet)")
    batches_drawn = Int(0, help="points in the latency figure: one per measured batch")
    opened_task = Unicode("", help="the task whose search dashboard is shown under the table ('' for none)")
    redraw_count = Int(0, help="times the figure and the table were redrawn (coalesced batches)")
    finished = Bool(False, help="the run has ended and its final state is drawn")

    def __init__(self, run: ModelRun, *, x: str = "trials", min_interval_s: float = 0.25) -> None:
        if not isinstance(run, ModelRun):
            raise TypeError(
                f"ModelDashboard expects a ModelRun (mx.tune_model or mx.open_model_run), got {type(run).__name__}"
            )
        if x not in _XS:
            raise ValueError(f"x must be one of {list(_XS)}, got {x!r}")
        if not isinstance(min_interval_s, (int, float)) or isinstance(min_interval_s, bool) or min_interval_s <= 0:
            raise ValueError(f"min_interval_s must be a positive number of seconds, got {min_interval_s!r}")
        self.run = run
        self.min_interval_s = float(min_interval_s)
        self.tick_s = 1.0  # header refresh (clock) when no batch arrives
        self.progress: ModelProgress | None = None  # the run's progress as the header shows it
        self.task_dashboard: SearchDashboard | None = None  # the opened task's dashboard
        self.error_log: list[str] = []  # every error the dashboard caught (also shown)
        self._error_boxes: list[str] = []
        self._dirty = True  # a batch arrived since the last redraw (or nothing is drawn yet)
        self._draw_lock = threading.RLock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: Any = None

        self.header = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.progress_bar = widgets.IntProgress(min=0, max=1, value=0, layout=widgets.Layout(width="100%"))
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", disabled=True,
            tooltip="Stop after the batch being measured; no further task starts; every record is kept",
        )
        self.error_area = widgets.HTML()  # the run's error when it failed, and the dashboard's own errors
        self.figure = go.FigureWidget(plot_model_latency(run.latency_history.iloc[:0], x=x))
        self.figure_box = widgets.Box([self.figure])
        self.task_table = widgets.HTML()
        longest = max((len(name) for name in run.task_names), default=10)
        self.task_picker = widgets.Dropdown(  # wide enough for the longest task name
            options=list(run.task_names), description="Task", style={"description_width": "initial"},
            layout=widgets.Layout(width=f"calc({longest + 4}ch + 60px)", max_width="100%"),
        )
        self.open_button = widgets.Button(description="Open", icon="search",
                                          tooltip="Show this task's search dashboard under the table")
        self.close_button = widgets.Button(description="Close", icon="times", disabled=True,
                                           tooltip="Hide the task's search dashboard")
        # the opened task's title and SearchDashboard, set off from the model's own parts by a rule on the left
        self.task_area = widgets.VBox(layout=widgets.Layout(
            border_left="3px solid var(--jp-border-color2, #e0e0e0)", padding="0 0 0 12px", margin="6px 0 0 2px"))
        tasks_title = widgets.HTML('<div class="msx-section-title">Tasks</div>')
        super().__init__([
            stylesheet(), self.header, self.progress_bar, row([self.stop_button]), self.error_area, self.figure_box,
            tasks_title, self.task_table,
            row([self.task_picker, self.open_button, self.close_button]), self.task_area,
        ])
        self.add_class("msx-root")
        self.add_class("msx-dashboard")
        self.add_class("msx-model-dashboard")

        self.stop_button.on_click(self._on_stop)
        self.open_button.on_click(self._on_open)
        self.close_button.on_click(self._on_close)
        self.observe(self._on_opened_task, names=["opened_task"])

        self._unsubscribe = run.subscribe(self._on_batch)
        if not run.ended:
            self._flush()
            self.stop_button.disabled = False
            self._thread = threading.Thread(target=self._redraw_loop, name="msexplore-model-dashboard", daemon=True)
            self._thread.start()
        else:
            self._finish()

    # ---- the search thread's side: as short as possible ----
    def _on_batch(self, task: str, batch: list[Any]) -> None:
        self._dirty = True
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
            if self.run.ended:  # its last batch was published before it ended
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
        """Redraw if a batch arrived (or the last redraw failed), then the header; errors are shown, never raised."""
        try:
            with self._draw_lock:
                if self._dirty:
                    self._dirty = False
                    try:
                        self._draw()
                    except Exception:
                        self._dirty = True  # the next tick tries again
                        raise
                self._refresh_header()
                self._follow_opened_task()
        except Exception as err:  # noqa: BLE001 - the next batch redraws everything anyway
            self._report_error("redraw", err, traceback.format_exc())

    def _draw(self) -> None:
        """The figure and the task table from the run as it stands."""
        history = self.run.latency_history
        rows = task_rows(self.run.tasks)
        update_model_latency(self.figure, history)
        self.task_rows = rows
        self.task_table.value = task_table_html(rows, self.opened_task)
        self.batches_drawn = len(history)
        self.redraw_count += 1

    # ---- header, opened task and final state ----
    def _refresh_header(self) -> None:
        """The header, its traits and the progress bar, all from the run's ``ModelProgress`` (its fields, its text)."""
        progress = self.progress = self.run.progress
        self.status = progress.status
        self.trials_done = progress.trials_done
        self.trials_total = progress.trials_total
        self.measured_in_folder = getattr(progress, "measured_in_folder", progress.trials_done)
        self.tasks = progress.tasks
        self.tasks_verified = progress.tasks_verified
        self.failures = progress.failures
        self.estimated_latency_s = progress.estimated_latency_s
        self.elapsed_s = progress.elapsed_s
        self.status_text = str(progress)
        self.header.value = model_header_html(progress)
        self.progress_bar.max = max(1, self.trials_total)
        self.progress_bar.value = min(self.trials_done, self.progress_bar.max)
        self.progress_bar.bar_style = _BAR_STYLE.get(self.status, "info" if self.status == "stopping" else "")

    def _follow_opened_task(self) -> None:
        """A task searched again gets a new session (a new ``SearchRun``): show that one."""
        name = self.opened_task
        if name and self.run.task_runs.get(name) is not getattr(self.task_dashboard, "run", None):
            self._show_task(name)

    def _show_task(self, name: str) -> None:
        old, self.task_dashboard = self.task_dashboard, None
        title = widgets.HTML(f'<div class="msx-section-title">Task <code>{esc(name)}</code></div>')
        task_run = self.run.task_runs.get(name) if name else None
        if not name:
            self.task_area.children = []
        elif task_run is None:
            self.task_area.children = [title, widgets.HTML(note(
                f"{name} has no search yet: the budget reaches every task in turn; it shows here when it starts."))]
        else:
            dashboard = SearchDashboard(task_run)
            dashboard.stop_button.tooltip = "Stop this task's search session; the model run goes on with the next"
            self.task_dashboard = dashboard
            self.task_area.children = [title, dashboard]
        if old is not None:
            old.close()

    def _finish(self) -> None:
        self._dirty = True  # the final state, whatever was drawn before
        self._flush()
        try:
            with self._draw_lock:
                self.stop_button.disabled = True
                self.stop_button.description = "Stop"
                if self.run.status == "failed":
                    error = self.run.error or "the model run failed without an error message"
                    self._show_error(error_box(f"The model run failed: {error_line(error, limit=160)}", error))
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
    @validate("opened_task")
    def _valid_task(self, proposal: dict) -> str:
        name = proposal["value"]
        if name and name not in self.run.task_names:
            raise TraitError(f"opened_task must be one of the model's tasks {self.run.task_names} or '', got {name!r}")
        return name

    @guarded
    def _on_stop(self, _button: Any) -> None:
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        self.run.stop(wait=False)
        with self._draw_lock:  # a redraw may be under way (a few ms); the header then says "stopping"
            self._refresh_header()

    @guarded
    def _on_open(self, _button: Any) -> None:
        self.opened_task = self.task_picker.value or ""

    @guarded
    def _on_close(self, _button: Any) -> None:
        self.opened_task = ""

    @guarded
    def _on_opened_task(self, change: dict) -> None:
        """Show the task's search dashboard (drawn at once from its history) and mark its row."""
        name = change["new"]
        with self._draw_lock:
            self._show_task(name)
            if name:
                self.task_picker.value = name
            self.close_button.disabled = not name
            self.task_table.value = task_table_html(self.task_rows, name)

    def close(self) -> None:
        """Stop listening to the run and close the widget (the run goes on)."""
        self._closed = True
        if hasattr(self, "_wake"):  # not when the constructor refused its arguments (Widget.__del__ closes)
            self._wake.set()
            if self._unsubscribe is not None:
                self._unsubscribe()
            if self.task_dashboard is not None:
                self.task_dashboard.close()
            self.figure.close()
        super().close()
