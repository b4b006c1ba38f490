"""SearchDashboard at model level: a real search watched live and stopped, reopened, and synthetic fast streams."""

from __future__ import annotations

import re
import shutil
import time
import types

import numpy as np
import pytest
from IPython.core.formatters import DisplayFormatter

import msexplore as mx
from msexplore.figures import PROGRESS_TRACE_ORDER
from msexplore.search.run import Progress
from msexplore.ui._dashboard_parts import header_html
from msexplore.ui.dashboard import SearchDashboard
from msexplore.ui.display import register, unregister

CANDIDATES, BEST, FAILURES = (PROGRESS_TRACE_ORDER.index(name) for name in
                              ("candidates · trial", "best · trial", "failures · trial"))


def _x(dashboard: SearchDashboard, trace: int) -> list[int]:
    x = dashboard.figure.data[trace].x
    return [] if x is None else [int(v) for v in x]


def _assert_draws_exactly(dashboard: SearchDashboard, events) -> None:
    """The figure, the counters and the tables hold every event once, no more, no less."""
    ok = [e for e in events if e.ok]
    assert _x(dashboard, CANDIDATES) == [e.index for e in ok]
    assert _x(dashboard, FAILURES) == [e.index for e in events if not e.ok]
    values = np.asarray(dashboard.figure.data[CANDIDATES].y, dtype=float)
    assert np.allclose(values, [e.gflops for e in ok])
    if ok:
        assert float(dashboard.figure.data[BEST].y[-1]) == pytest.approx(max(e.gflops for e in ok))
        assert dashboard.best_latency_s == min(e.latency_s for e in ok)
    assert dashboard.events_drawn == len(events)
    assert dashboard.failures == sum(not e.ok for e in events)


def _assert_header_is_the_runs_progress(dashboard: SearchDashboard) -> None:
    """The header, its one line and its traits are the run's ``Progress``, not a second computation of it."""
    progress = dashboard.run.progress  # a finished run: the same every time it is read
    assert dashboard.progress == progress
    assert dashboard.status_text == str(progress)
    assert dashboard.header.value == header_html(progress)
    assert (dashboard.status, dashboard.trials_done, dashboard.trials_total, dashboard.failures) == (
        progress.status, progress.trials_done, progress.trials_total, progress.failures)
    assert (dashboard.best_latency_s, dashboard.best_gflops, dashboard.eta_s) == (
        progress.best_latency_s, progress.best_gflops, progress.eta_s)


# ---- a real search, watched while it runs and stopped with the button ----------------------------------------


def test_dashboard_made_while_running_draws_every_event_and_stop_keeps_the_records(live):
    run, dashboard = live.run, live.dashboard
    assert live.running_at_start and live.events_at_start == 0, "the dashboard must be made on a running search"
    assert live.status_before_stop == "running" and live.drawn_before_stop >= 1, "a batch is drawn while it runs"
    # Stop answers at once: the button is disabled and says so, the header says stopping
    assert live.after_click["disabled"] and live.after_click["description"] == "Stopping…"
    assert live.after_click["status"] == "stopping" and live.after_click["status_text"].startswith("stopping")
    assert live.finished and dashboard.finished
    assert run.status == "stopped" and dashboard.status == "stopped"
    events = run.events
    assert 0 < len(events) < 64, "stopped early"
    assert len(run.records) == len(events), "every measured record is kept"
    assert dashboard.trials_done == len(events) == dashboard.progress_bar.value
    _assert_draws_exactly(dashboard, events)
    assert 1 <= dashboard.redraw_count <= len({e.batch for e in events}) + 1
    assert dashboard.stop_button.disabled and dashboard.stop_button.description == "Stop"
    # Confirm re-times on the cores the search measures on: only once it has ended
    assert live.confirm_disabled_while_running and not dashboard.confirm_button.disabled
    assert dashboard.status_text.startswith("stopped") and "msx-status-stopped" in dashboard.header.value
    _assert_header_is_the_runs_progress(dashboard)
    assert "msx-dashboard" in dashboard._dom_classes
    best = min((e for e in events if e.ok), key=lambda e: e.latency_s)
    assert f">{best.index}<" in dashboard.top_table.value, "the best trial heads the top-k table"


def test_dashboard_for_a_reopened_folder_shows_the_whole_history_at_once(finished_run):
    reopened = mx.open_run(finished_run.work_dir)
    dashboard = SearchDashboard(reopened)
    # no waiting: the history is drawn in the constructor, and there is nothing left to watch
    assert dashboard.finished and dashboard._thread is None
    assert dashboard.status == "stopped" and dashboard.stop_button.disabled
    _assert_draws_exactly(dashboard, reopened.events)
    assert dashboard.trials_done == len(finished_run.events)
    assert dashboard.redraw_count == 1
    _assert_header_is_the_runs_progress(dashboard)


def test_confirm_re_times_the_best_off_the_kernel_thread_and_best_follows(finished_run, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(finished_run.work_dir, folder)  # the shared run stays unconfirmed
    run = mx.open_run(folder)
    dashboard = SearchDashboard(run, confirm_top=3, confirm_rounds=2)
    assert dashboard.confirmation.value == "" and dashboard.confirmed_latency_s is None
    assert not dashboard.confirm_button.disabled
    dashboard.confirm_button.click()
    # the click returns at once: the re-timing runs on a thread of its own, the button says so
    assert dashboard.confirming and dashboard.confirm_button.disabled
    assert dashboard.confirm_button.description == "Confirming…"
    assert dashboard.wait_confirmed(300)
    assert not dashboard.error_log, dashboard.error_log
    assert not dashboard.confirm_button.disabled and dashboard.confirm_button.description == "Confirm best"
    # what run.confirm wrote, drawn: the best by the median heads the table and is run.best from now on
    reopened = mx.open_run(folder)
    best = reopened.best
    assert best.confirmed_s is not None and dashboard.confirmed_latency_s == pytest.approx(best.confirmed_s)
    html = dashboard.confirmation.value
    assert f"Best: trial {best.index}," in html and "2 rounds" in html
    assert sorted(int(i) for i in re.findall(r'<tr><td class="msx-num">(\d+)</td>', html)) == sorted(
        c.index for c in finished_run.top(3))
    assert "Confirmed" in dashboard._static_body()
    # a dashboard made later on the folder shows the confirmation at once
    again = SearchDashboard(reopened)
    assert again.confirmation.value == html and again.confirmed_latency_s == dashboard.confirmed_latency_s


def test_a_failed_confirmation_is_shown_and_the_button_works_again(synthetic):
    fake = synthetic(trials=10)
    fake.publish(fake.events(6))
    fake.end("done")
    dashboard = SearchDashboard(fake.run)
    assert not dashboard.confirm_button.disabled
    dashboard.confirm_button.click()
    assert dashboard.wait_confirmed(60)
    # the stand-in events' decisions fit no design space: confirm cannot rebuild them, and says so
    assert "Dashboard confirmation failed" in dashboard.error_area.value
    assert not dashboard.confirm_button.disabled and dashboard.confirmation.value == ""
    assert len(fake.run.events) == 6  # nothing recorded is touched


def test_metric_toggle_redraws_latency_in_place(finished_run):
    dashboard = SearchDashboard(mx.open_run(finished_run.work_dir))
    ok = [e for e in finished_run.events if e.ok]
    dashboard.metric_toggle.value = "latency"
    assert dashboard.metric == "latency"
    assert np.allclose(np.asarray(dashboard.figure.data[CANDIDATES].y, dtype=float), [e.latency_s for e in ok])
    assert float(dashboard.figure.data[BEST].y[-1]) == min(e.latency_s for e in ok)
    assert "latency" in dashboard.figure.layout.yaxis.title.text
    dashboard.metric = "gflops"  # the trait works too, and the toggle follows
    assert dashboard.metric_toggle.value == "gflops"
    assert "GFLOPS" in dashboard.figure.layout.yaxis.title.text
    assert len(dashboard.figure.data) == len(PROGRESS_TRACE_ORDER)


# ---- synthetic streams: coalescing, errors, final states -----------------------------------------------------


def test_fast_events_are_coalesced_into_few_redraws_and_errors_never_break_it(synthetic):
    fake = synthetic(trials=300)
    fake.run.subscribe(lambda batch: 1 / 0)  # another subscriber's bug: logged by the run, the search goes on
    started = time.monotonic()
    dashboard = SearchDashboard(fake.run, min_interval_s=0.25)
    real_draw = dashboard._draw_figure
    calls = []

    def draw_once_broken():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected redraw failure")
        real_draw()

    dashboard._draw_figure = draw_once_broken
    events = fake.events(300)
    n_failed = sum(not e.ok for e in events)
    for k in range(0, 150, 2):  # 75 batches of 2, 10 ms apart: several redraw intervals
        fake.publish(events[k : k + 2])
        time.sleep(0.01)
    again = SearchDashboard(fake.run)  # displayed again mid-stream: the history so far, at once
    assert again.events_drawn == 150 and again.trials_done == 150 and again.redraw_count == 1
    for k in range(150, 300, 2):
        fake.publish(events[k : k + 2])
        time.sleep(0.01)
    fake.end("done")
    assert dashboard.wait(30) and again.wait(30)
    elapsed = time.monotonic() - started

    for d in (dashboard, again):
        _assert_draws_exactly(d, events)
        assert d.trials_done == 300 and d.status == "done" and d.finished
        _assert_header_is_the_runs_progress(d)
        assert d.failures == n_failed and "300/300" in d.status_text and f"{n_failed} failed" in d.status_text
    # at most one redraw per 0.25 s, plus the final one, however many batches came
    assert 1 <= dashboard.redraw_count <= elapsed / 0.25 + 2
    assert dashboard.redraw_count <= 150 / 5, "far fewer redraws than batches"
    # the failing redraw is shown, and a later one drew everything anyway
    assert len(calls) == dashboard.redraw_count + 1
    assert len(dashboard.error_log) == 1 and "injected redraw failure" in dashboard.error_log[0]
    assert "injected redraw failure" in dashboard.error_area.value
    assert fake.run.subscriber_errors and "ZeroDivisionError" in fake.run.subscriber_errors[0]
    # failures are listed with their first line, the whole error folded under it
    assert dashboard.failure_log.value.count("<details>") == n_failed
    assert "trial 6: build: TVMError: injected build failure 6" in dashboard.failure_log.value


def test_the_subscriber_only_buffers(synthetic):
    """The search thread's part is an append and an event: no drawing on the search thread."""
    fake = synthetic(trials=10)
    dashboard = SearchDashboard(fake.run, min_interval_s=5)
    assert dashboard._thread.is_alive()
    time.sleep(0.1)
    before = dashboard.redraw_count
    started = time.perf_counter()
    dashboard._on_batch(fake.events(10))
    assert time.perf_counter() - started < 0.01
    assert dashboard.redraw_count == before and dashboard.events_drawn == 0  # drawn later, by the redraw thread
    fake.end("done")
    assert dashboard.wait(30)
    assert dashboard.events_drawn == 10


def test_a_failed_search_shows_its_error(synthetic):
    fake = synthetic(trials=20)
    dashboard = SearchDashboard(fake.run)
    fake.publish(fake.events(3))
    fake.end("failed", error="RuntimeError: the builder pool died\nTraceback (most recent call last):\n"
             '  File "driver.py", line 9, in run\n    pool.map(build, batch)\nRuntimeError: the builder pool died')
    assert dashboard.wait(30)
    assert dashboard.status == "failed" and dashboard.progress_bar.bar_style == "danger"
    assert "The search failed: RuntimeError: the builder pool died" in dashboard.error_area.value
    assert "Traceback" in dashboard.error_area.value  # folded under the message
    assert dashboard.events_drawn == 3 and dashboard.stop_button.disabled


def test_bad_arguments_are_refused_with_what_is_accepted(synthetic):
    fake = synthetic()
    with pytest.raises(TypeError, match="expects a SearchRun"):
        SearchDashboard(fake.run.records)
    with pytest.raises(ValueError, match=r"metric must be one of \['gflops', 'latency'\]"):
        SearchDashboard(fake.run, metric="speed")
    with pytest.raises(ValueError, match=r"x must be one of \['trial', 'time'\]"):
        SearchDashboard(fake.run, x="epoch")
    with pytest.raises(ValueError, match="confirm_rounds must be a positive integer, got 0"):
        SearchDashboard(fake.run, confirm_rounds=0)


def test_the_header_shows_every_field_of_a_progress():
    running = Progress(status="running", trials_done=12, trials_total=64, measured_in_folder=40, failures=3,
                       best_latency_s=2.5e-5, best_gflops=21.0, elapsed_s=75.0, eta_s=325.0)
    html = header_html(running)
    for shown in ('msx-status-running">running<', ">12/64<", ">in folder<", ">40<", ">3<", ">25.0 µs<",
                  ">21.0 GFLOPS<", ">1 min 15 s<", ">ETA<", ">5 min 25 s<"):
        assert shown in html, shown
    first = Progress(status="starting", trials_done=0, trials_total=64, measured_in_folder=0, failures=0,
                     best_latency_s=None, best_gflops=None, elapsed_s=0.0, eta_s=None)
    html = header_html(first)
    assert ">starting…<" in html and ">0/64<" in html
    assert "in folder" not in html and "ETA" not in html and html.count(">–<") == 2  # no best yet


# ---- the display hook ------------------------------------------------------------------------------------------


def test_a_search_run_displays_as_a_dashboard_in_a_kernel(finished_run, monkeypatch):
    """The run as a cell's result: the dashboard's widget view (repr(run) as its text), then its static copy."""
    shown = []
    monkeypatch.setattr("IPython.display.display",
                        lambda data, raw=False, display_id=None: shown.append((data, display_id)))
    formatter = DisplayFormatter()
    kernel = types.SimpleNamespace(display_formatter=formatter, kernel=object())
    run = mx.open_run(finished_run.work_dir)
    assert formatter.format(run)[0] == {"text/plain": repr(run)} and not shown
    assert register(kernel)
    assert formatter.format(run) == ({}, {})  # displayed by the hook
    (widget, _), (copy, copy_id) = shown
    assert widget["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert widget["text/plain"] == repr(run)
    assert "SearchDashboard · static copy" in copy["text/html"] and copy_id.startswith("msx-static-")
    unregister(kernel)
    assert formatter.format(run)[0] == {"text/plain": repr(run)} and len(shown) == 2
    terminal = types.SimpleNamespace(display_formatter=DisplayFormatter())  # IPython without a kernel
    assert not register(terminal)
