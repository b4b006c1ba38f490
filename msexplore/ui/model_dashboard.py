"""ModelDashboard: live progress of a whole model's tuning (header, estimated model latency, task table, drill-down).

The live redraw is ``LiveDashboard``'s (``_live.py``), as in ``SearchDashboard``: the run calls ``_on_batch`` on its
search thread with each measured batch of any task; it only marks the dashboard dirty and wakes the redraw thread,
which draws the run as it stands, at most ``1 / min_interval_s`` times a second: the latency figure in place
(``update_model_latency``: one message to the browser), the task table from ``run.tasks``, the header from
``run.progress``. Everything is read from the run, so a dashboard made for a running, finished or reopened
(``mx.open_model_run``) run draws everything so far at once.

A task's row opens that task's own ``SearchDashboard`` below the table (``opened_task``). Each budget pass gives a
task a new search session (a new ``SearchRun`` on the same folder); the opened dashboard follows it.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from traitlets import Float, Int, List, TraitError, Unicode, validate

from ..figures import plot_model_latency, update_model_latency
from ..models.tuning import ModelProgress, ModelRun
from ._html import esc, note
from ._live import LiveDashboard
from ._model_dashboard_parts import model_header_html, task_rows, task_table_html
from ._stylesheet import stylesheet
from ._task_panel import guarded, row
from .dashboard import SearchDashboard

__all__ = ["ModelDashboard"]

_XS = ("trials", "time")


class ModelDashboard(LiveDashboard):
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

    # The header's traits (with ``status``, ``status_text``): the fields of the run's ``ModelProgress`` as last shown.
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

    _thread_name = "msexplore-model-dashboard"
    _run_noun = "model run"

    def __init__(self, run: ModelRun, *, x: str = "trials", min_interval_s: float = 0.25) -> None:
        if not isinstance(run, ModelRun):
            raise TypeError(
                f"ModelDashboard expects a ModelRun (mx.tune_model or mx.open_model_run), got {type(run).__name__}"
            )
        if x not in _XS:
            raise ValueError(f"x must be one of {list(_XS)}, got {x!r}")
        self._setup_live(
            run, min_interval_s,
            stop_tooltip="Stop after the batch being measured; no further task starts; every record is kept",
        )
        self.progress: ModelProgress | None = None  # the run's progress as the header shows it
        self.task_dashboard: SearchDashboard | None = None  # the opened task's dashboard
        self._dirty = True  # a batch arrived since the last redraw (or nothing is drawn yet)

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

        self.open_button.on_click(self._on_open)
        self.close_button.on_click(self._on_close)
        self.observe(self._on_opened_task, names=["opened_task"])

        self._go_live(run.subscribe(self._on_batch))

    # ---- the search thread's side: as short as possible ----
    def _on_batch(self, task: str, batch: list[Any]) -> None:
        self._dirty = True
        self._wake.set()

    # ---- the redraw thread's side (under the draw lock) ----
    def _run_ended(self) -> bool:
        return self.run.ended

    def _draw_update(self) -> None:
        """Redraw if a batch arrived (or the last redraw failed), then the header and the opened task."""
        if self._dirty:
            self._dirty = False
            try:
                self._draw()
            except Exception:
                self._dirty = True  # the next tick tries again
                raise
        self._refresh_header()
        self._follow_opened_task()

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
        self._draw_progress_bar(self.trials_done, self.trials_total)

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
        super()._finish()

    # ---- user events (main thread; quick) ----
    @validate("opened_task")
    def _valid_task(self, proposal: dict) -> str:
        name = proposal["value"]
        if name and name not in self.run.task_names:
            raise TraitError(f"opened_task must be one of the model's tasks {self.run.task_names} or '', got {name!r}")
        return name

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

    def _close_parts(self) -> None:
        if self.task_dashboard is not None:
            self.task_dashboard.close()
        self.figure.close()
