"""ModelDashboard at model level: a real tiny model tuned while watched, its tasks opened, a longer run stopped with
the button, the same run reopened from its folder, and the display hook."""

from __future__ import annotations

import dataclasses
import html
import shutil
import time
import types

import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter
from traitlets import TraitError
from tvm.script import ir as I
from tvm.script import relax as R

import msexplore as mx
from msexplore.models.folder import ModelFolder
from msexplore.ui._model_dashboard_parts import model_header_html, task_table_html
from msexplore.ui.dashboard import SearchDashboard
from msexplore.ui.display import register, unregister
from msexplore.ui.model_dashboard import ModelDashboard

SMALL = dict(batch_size=4)  # tune_model's default strategy, the beam
RUN_TIMEOUT_S = 300  # the machine is shared: 8 trials take 25 s alone, a first batch up to a minute when loaded


@I.ir_module
class MLP:
    @R.function
    def main(x: R.Tensor((1, 64), "float32"), w1: R.Tensor((64, 128), "float32"), w2: R.Tensor((128, 128), "float32")):
        with R.dataflow():
            h1 = R.nn.relu(R.matmul(x, w1))
            h2 = R.nn.relu(R.matmul(h1, w2))
            R.output(h2)
        return h2


@pytest.fixture(scope="module")
def model() -> mx.Model:
    rng = np.random.default_rng(0)
    weights = {n: rng.uniform(-1, 1, shape).astype("float32") for n, shape in (("w1", (64, 128)), ("w2", (128, 128)))}
    return mx.Model.from_relax(MLP, weights, name="mlp")


@pytest.fixture(scope="module")
def watched(model, tmp_path_factory) -> types.SimpleNamespace:
    """An 8-trial run of the two-task MLP with a dashboard made while it runs, watched to the end."""
    run = mx.tune_model(model, trials=8, work_dir=tmp_path_factory.mktemp("model-ui") / "mlp", **SMALL)
    dashboard = ModelDashboard(run)
    state = types.SimpleNamespace(run=run, dashboard=dashboard, running_at_start=run.running,
                                  stop_enabled_at_start=not dashboard.stop_button.disabled)
    state.finished = dashboard.wait(RUN_TIMEOUT_S)
    run.wait(60)
    return state


def _assert_header_is_the_runs_progress(dashboard: ModelDashboard) -> None:
    """The header, its one line and its traits are the run's ``ModelProgress``, not a second computation of it."""
    progress = dashboard.run.progress  # an ended run: the same every time it is read
    assert dashboard.progress == progress
    assert dashboard.status_text == str(progress)
    assert dashboard.header.value == model_header_html(progress)
    assert (dashboard.status, dashboard.trials_done, dashboard.trials_total, dashboard.tasks,
            dashboard.tasks_verified, dashboard.failures, dashboard.estimated_latency_s, dashboard.elapsed_s) == (
        progress.status, progress.trials_done, progress.trials_total, progress.tasks, progress.tasks_verified,
        progress.failures, progress.estimated_latency_s, progress.elapsed_s)


def _assert_table_is_the_runs_tasks(dashboard: ModelDashboard) -> None:
    tasks = dashboard.run.tasks
    rows = dashboard.task_rows
    assert [r["task"] for r in rows] == list(tasks["task"])
    assert [r["trials"] for r in rows] == list(tasks["trials"])
    assert [r["calls"] for r in rows] == list(tasks["weight"])
    assert [r["failures"] for r in rows] == list(tasks["failures"])
    for column in ("best_latency_s", "gflops", "time_share"):  # None in the rows where the frame has NaN
        assert [r[column] for r in rows] == [None if np.isnan(v) else v for v in tasks[column]], column
    html = dashboard.task_table.value
    assert html.count("<tr data-task=") == len(tasks)
    for name in tasks["task"]:
        assert f'data-task="{name}"' in html


def test_a_live_run_draws_its_tasks_its_estimate_and_its_progress(watched):
    run, dashboard = watched.run, watched.dashboard
    assert watched.running_at_start and watched.stop_enabled_at_start, "the dashboard must be made on a running run"
    assert watched.finished and dashboard.finished and dashboard._thread is not None
    assert run.status == "done" == dashboard.status, run.error
    _assert_table_is_the_runs_tasks(dashboard)
    assert sum(r["trials"] for r in dashboard.task_rows) == dashboard.trials_done == dashboard.measured_in_folder == 8
    assert "in folder" not in dashboard.header.value  # a first session: nothing measured before it
    # one point per measured batch, in place in the figure (gaps before every task had an estimate)
    history = run.latency_history
    assert len(history) >= 2 and dashboard.batches_drawn == len(history)
    assert list(dashboard.figure.data[0].x) == list(history["trials"])
    drawn = np.asarray(dashboard.figure.data[0].y, dtype=float)
    assert np.allclose(drawn, history["estimated_latency_s"].to_numpy(dtype=float), equal_nan=True)
    assert drawn[-1] == pytest.approx(run.progress.estimated_latency_s)
    assert "Estimated model latency:" in dashboard.figure.layout.title.text
    assert 1 <= dashboard.redraw_count <= len(history) + 2, "batches are coalesced, one redraw at most each"
    _assert_header_is_the_runs_progress(dashboard)
    assert dashboard.status_text.startswith("done: 8/8 trials over 2 tasks")
    assert dashboard.progress_bar.value == 8 and dashboard.progress_bar.bar_style == "success"
    assert dashboard.stop_button.disabled and dashboard.error_area.value == "" and not dashboard.error_log
    assert dashboard.figure_box.layout.display is None
    assert {"msx-model-dashboard", "msx-dashboard"} <= set(dashboard._dom_classes)
    assert not run.subscriber_errors


def test_the_subscriber_only_marks_the_dashboard_dirty(watched):
    dashboard = watched.dashboard
    before = dashboard.redraw_count
    started = time.perf_counter()
    dashboard._on_batch("fused_matmul_relu", [])
    assert time.perf_counter() - started < 0.01 and dashboard.redraw_count == before


def test_opening_a_task_shows_its_search_dashboard(watched):
    run, dashboard = watched.run, watched.dashboard
    for name in run.task_names:
        dashboard.task_picker.value = name
        dashboard.open_button.click()
        assert dashboard.opened_task == name and not dashboard.close_button.disabled
        task_dashboard = dashboard.task_dashboard
        assert isinstance(task_dashboard, SearchDashboard) and task_dashboard in dashboard.task_area.children
        assert task_dashboard.run is run.task_runs[name] and task_dashboard.finished
        events = run.task_runs[name].events
        trials = int(run.tasks.set_index("task").loc[name, "trials"])
        assert task_dashboard.trials_done == len(events) == trials == task_dashboard.events_drawn
        assert f'<tr data-task="{name}" class="msx-selected"' in dashboard.task_table.value
    dashboard.close_button.click()
    assert dashboard.opened_task == "" and dashboard.task_dashboard is None and dashboard.task_area.children == ()
    assert dashboard.close_button.disabled and "msx-selected" not in dashboard.task_table.value
    with pytest.raises(TraitError, match=r"opened_task must be one of the model's tasks \[.*\] or '', got 'conv'"):
        dashboard.opened_task = "conv"
    assert not dashboard.error_log


def test_a_reopened_run_draws_the_same_table_at_once(watched):
    reopened = mx.open_model_run(watched.run.work_dir)
    dashboard = ModelDashboard(reopened)
    assert dashboard.finished and dashboard._thread is None and dashboard.redraw_count == 1
    assert dashboard.status == "done" and dashboard.stop_button.disabled
    assert dashboard.task_rows == watched.dashboard.task_rows
    _assert_table_is_the_runs_tasks(dashboard)
    _assert_header_is_the_runs_progress(dashboard)
    # the latency history is rebuilt from the tasks' events: the same curve as the live dashboard drew
    assert dashboard.batches_drawn == watched.dashboard.batches_drawn > 0
    drawn, live = (np.asarray(d.figure.data[0].y, dtype=float) for d in (dashboard, watched.dashboard))
    assert np.array_equal(drawn, live, equal_nan=True)
    assert reopened.progress.elapsed_s >= 0
    name = reopened.task_names[0]
    dashboard.opened_task = name
    assert dashboard.task_dashboard.trials_done == dashboard.task_rows[0]["trials"]
    # a task searched again gets a new SearchRun (a new session on its folder): the opened dashboard follows it
    first = dashboard.task_dashboard
    reopened.task_runs[name] = mx.open_run(reopened.task_runs[name].work_dir)
    dashboard._flush()
    assert dashboard.task_dashboard is not first and dashboard.task_dashboard.run is reopened.task_runs[name]
    assert dashboard.task_area.children[-1] is dashboard.task_dashboard and not dashboard.error_log


def test_a_failed_run_and_a_failing_redraw_are_shown(watched, tmp_path):
    folder = tmp_path / "failed"
    shutil.copytree(watched.run.work_dir, folder)
    line = "RuntimeError: the search of task(s) ['fused_matmul_relu'] failed: builder died"
    error = f"{line}\nTraceback (most recent call last):\n  File \"tuning.py\", line 1, in _session\n{line}"
    ModelFolder(folder).write_status(status="failed", error=error, ended=time.time())
    dashboard = ModelDashboard(mx.open_model_run(folder))
    assert dashboard.status == "failed" and dashboard.progress_bar.bar_style == "danger"
    shown = html.unescape(dashboard.error_area.value)
    assert f"The model run failed: {line}" in shown
    assert "Traceback" in dashboard.error_area.value  # folded under the message
    real_draw = dashboard._draw

    def broken() -> None:
        raise ValueError("injected redraw failure")

    dashboard._draw, dashboard._dirty = broken, True
    dashboard._flush()
    assert "Dashboard redraw failed: ValueError: injected redraw failure" in dashboard.error_area.value
    assert dashboard._dirty, "retried at the next tick"
    dashboard._draw = real_draw
    dashboard._flush()
    assert not dashboard._dirty and len(dashboard.error_log) == 1


def test_stop_ends_a_longer_run_as_stopped(model, tmp_path):
    run = mx.tune_model(model, trials=400, work_dir=tmp_path / "long", **SMALL)
    try:
        _stop_from_the_dashboard(run)
    finally:  # a run left going would abort the interpreter at exit
        run.stop(timeout=RUN_TIMEOUT_S)


def _stop_from_the_dashboard(run):
    dashboard = ModelDashboard(run)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while dashboard.trials_done == 0 and run.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dashboard.status == "running" and dashboard.trials_done > 0, "a batch is drawn while it runs"
    searching = None  # between two task searches none runs: wait for the next one
    while searching is None and run.running and time.monotonic() < deadline:
        searching = next((name for name, task_run in run.task_runs.items() if task_run.running), None)
        time.sleep(0.02)
    assert searching is not None, "no task search started after the first batch"
    dashboard.opened_task = searching  # its live search dashboard, under the table
    assert dashboard.task_dashboard.run is run.task_runs[searching]
    dashboard.stop_button.click()
    assert dashboard.stop_button.disabled and dashboard.stop_button.description == "Stopping…"
    assert dashboard.status == "stopping" and dashboard.status_text.startswith("stopping")
    assert dashboard.wait(RUN_TIMEOUT_S) and run.wait(60).status == "stopped" == dashboard.status
    assert dashboard.stop_button.disabled and dashboard.stop_button.description == "Stop"
    assert 0 < dashboard.trials_done < 400 and dashboard.progress_bar.bar_style == "warning"
    _assert_table_is_the_runs_tasks(dashboard)
    _assert_header_is_the_runs_progress(dashboard)
    assert dashboard.batches_drawn == len(run.latency_history) and not dashboard.error_log
    # the opened task's session ended too: stopped, or done when its batch was its last and the next task's stopped
    assert dashboard.task_dashboard.wait(60) and dashboard.task_dashboard.status in ("stopped", "done")
    assert dashboard.task_dashboard.run is run.task_runs[searching]


def test_the_header_and_the_table_show_every_field(watched):
    done = watched.run.progress
    running = dataclasses.replace(done, status="running", trials_done=3, trials_total=8, tasks_verified=1,
                                  failures=2, estimated_latency_s=None, elapsed_s=75.0)
    header = model_header_html(running)
    for shown in ('msx-status-running">running<', ">3/8<", ">tasks verified<", ">1/2<", ">2<", ">1 min 15 s<",
                  ">estimated model latency<", ">–<"):
        assert shown in header, shown
    assert ">12.5 µs<" in model_header_html(dataclasses.replace(done, estimated_latency_s=1.25e-5))
    if hasattr(done, "measured_in_folder"):  # a resumed run counts this session's trials, and says how many in all
        resumed = model_header_html(dataclasses.replace(running, measured_in_folder=11))
        assert ">in folder<" in resumed and ">11<" in resumed
    rows = [
        {"task": "conv<1>", "calls": 2, "trials": 4, "failures": 1, "best_latency_s": 2.5e-5, "gflops": 12.25,
         "time_share": 0.75},
        {"task": "dense", "calls": 1, "trials": 0, "failures": 0, "best_latency_s": None, "gflops": None,
         "time_share": None},
    ]
    table = task_table_html(rows, opened="dense")
    for shown in ("<code>conv&lt;1&gt;</code>", ">2<", ">25.0 µs<", ">12.2<", "width: 75.0%", ">75.0%<",
                  '<tr data-task="dense" class="msx-selected"', "▸ <code>dense</code>"):
        assert shown in table, shown
    assert table.count(">–<") == 3 and table.count("%; border-radius") == 1  # dense: no bar yet


def test_bad_arguments_are_refused_with_what_is_accepted(watched):
    with pytest.raises(TypeError, match="expects a ModelRun"):
        ModelDashboard(watched.run.task_runs[watched.run.task_names[0]])
    with pytest.raises(ValueError, match=r"x must be one of \['trials', 'time'\]"):
        ModelDashboard(watched.run, x="trial")
    with pytest.raises(ValueError, match="min_interval_s must be a positive number"):
        ModelDashboard(watched.run, min_interval_s=0)


def test_a_model_run_displays_as_a_model_dashboard_in_a_kernel(watched, monkeypatch):
    """The run as a cell's result: the model dashboard's widget view, then its static copy (figure, task table)."""
    shown = []
    monkeypatch.setattr("IPython.display.display",
                        lambda data, raw=False, display_id=None: shown.append((data, display_id)))
    formatter = DisplayFormatter()
    kernel = types.SimpleNamespace(display_formatter=formatter, kernel=object())
    run = mx.open_model_run(watched.run.work_dir)
    assert formatter.format(run)[0] == {"text/plain": repr(run)} and not shown
    assert register(kernel)
    assert formatter.format(run) == ({}, {})
    (widget, _), (copy, _) = shown
    assert widget["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert widget["text/plain"] == repr(run)
    page = copy["text/html"]
    assert "ModelDashboard · static copy" in page and "<svg" in page and "Tasks" in page
    assert all(name in page for name in run.task_names)
    unregister(kernel)
    assert formatter.format(run)[0] == {"text/plain": repr(run)} and len(shown) == 2
