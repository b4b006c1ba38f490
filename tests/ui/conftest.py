"""Shared by the widget tests: one real search with a dashboard attached while it runs, and synthetic runs.

The real search is small (GMM 32^3, batches of 4) and is stopped with the dashboard's own Stop button once its
first batch is drawn, so one search serves the dashboard, export and cost-model tests. Synthetic runs are real
``SearchRun`` objects started on a stand-in search thread and fed with made-up events through the same
``BatchRecorder`` a search gets: they test what a real search cannot make deterministic.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable

import pytest

import msexplore as mx
from msexplore.search.events import TrialEvent
from msexplore.search.run import BatchRecorder, SearchRun

SMALL = dict(batch_size=4, population_size=32, init_min_unmeasured=8)
FIRST_BATCH_TIMEOUT_S = 300  # the machine is shared: a first batch has taken 25-60 s


@pytest.fixture(scope="session")
def gmm32() -> mx.Workload:
    return mx.workload("GMM", n=32, m=32, k=32)


@pytest.fixture(scope="session")
def search_space(gmm32: mx.Workload) -> mx.Space:
    """Default modules on the host CPU: its candidates are measured on this machine."""
    return mx.Space(gmm32)


@pytest.fixture(scope="session")
def live(search_space: mx.Space, tmp_path_factory: pytest.TempPathFactory) -> types.SimpleNamespace:
    """A 64-trial search (batches of 4), a dashboard made while it runs, Stop clicked once a batch is drawn."""
    from msexplore.ui.dashboard import SearchDashboard

    work_dir = tmp_path_factory.mktemp("ui-runs") / "gmm"
    run = mx.search(search_space, trials=64, work_dir=work_dir, **SMALL)
    state = types.SimpleNamespace(run=run, running_at_start=run.running, events_at_start=len(run.events))
    dashboard = SearchDashboard(run)
    state.dashboard = dashboard
    deadline = time.monotonic() + FIRST_BATCH_TIMEOUT_S
    while dashboard.trials_done == 0 and run.running and time.monotonic() < deadline:
        time.sleep(0.05)
    state.drawn_before_stop = dashboard.trials_done
    state.status_before_stop = dashboard.status
    state.confirm_disabled_while_running = dashboard.confirm_button.disabled
    dashboard.stop_button.click()
    state.after_click = dict(disabled=dashboard.stop_button.disabled, description=dashboard.stop_button.description,
                             status=dashboard.status, status_text=dashboard.status_text)
    state.finished = dashboard.wait(FIRST_BATCH_TIMEOUT_S)
    run.wait(60)
    return state


@pytest.fixture(scope="session")
def finished_run(live: types.SimpleNamespace) -> SearchRun:
    assert live.run.status == "stopped", live.run.error
    return live.run


# ---- synthetic runs ------------------------------------------------------------------------------------------


class SyntheticRun:
    """A real SearchRun on a stand-in search thread; ``publish`` goes through the recorder a search gets."""

    def __init__(self, work_dir, workload: mx.Workload, trials: int) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        config = {"workload": workload.to_json(), "target": "llvm", "trials": trials, "check": True}
        self.flop = workload.flop
        self.run = SearchRun(str(work_dir), config=config)
        self._release = threading.Event()
        self._error: str | None = None
        started = threading.Event()

        def work(recorder: BatchRecorder) -> None:
            self.recorder = recorder
            started.set()
            self._release.wait()
            if self._error is not None:  # the run records "RuntimeError: <text>" and the traceback
                raise RuntimeError(self._error.removeprefix("RuntimeError: "))

        self.run.start(work)
        started.wait(10)

    def publish(self, events: list[TrialEvent]) -> None:
        self.recorder.record(events)

    def events(self, n: int, *, start: int = 0, fail_every: int = 7) -> list[TrialEvent]:
        return make_events(n, flop=self.flop, start=start, fail_every=fail_every)

    def end(self, status: str = "done", error: str | None = None) -> None:
        """End the stand-in session the way a search ends: "done", "stopped" (a stop was asked) or "failed"."""
        if status not in ("done", "stopped", "failed"):
            raise ValueError(f"status must be 'done', 'stopped' or 'failed', got {status!r}")
        if status == "stopped":
            self.run.stop(wait=False)
        self._error = (error or "the stand-in search failed") if status == "failed" else None
        self._release.set()
        self.run.wait(10)


def make_events(n: int, *, flop: float, fail_every: int = 7, start: int = 0) -> list[TrialEvent]:
    """Candidates with varied latencies; every ``fail_every``-th fails to build."""
    events = []
    for i in range(start, start + n):
        failed = fail_every and i % fail_every == fail_every - 1
        latency = None if failed else 1e-5 * (1 + ((i * 37) % 101) / 50)
        events.append(TrialEvent(
            index=i, session=0, batch=i, time_s=0.01 * i, timestamp=1.7e9 + i, design_space=0,
            decisions={"Z.tile_i": (1, 2, 4, 4), "Z.tile_j": (i % 4 + 1, 1, 1, 32 // (i % 4 + 1))},
            latencies_s=() if failed else (latency,), latency_s=latency,
            gflops=None if failed else flop / latency / 1e9,
            build_error=f"TVMError: injected build failure {i}\n  at line 1" if failed else None,
        ))
    return events


@pytest.fixture
def synthetic(tmp_path, gmm32) -> Callable[..., SyntheticRun]:
    made: list[SyntheticRun] = []

    def make(trials: int = 100, name: str = "run") -> SyntheticRun:
        fake = SyntheticRun(tmp_path / name, gmm32, trials)
        made.append(fake)
        return fake

    yield make
    for fake in made:  # never leave a stand-in thread waiting
        fake._release.set()
