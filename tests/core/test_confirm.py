"""Re-timing a finished search's fastest candidates in turn (``SearchRun.confirm``, ``mx.measure(rounds=...)``)."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest

import msexplore as mx
from msexplore.measure import MEASURE_EVALUATOR
from msexplore.search.folder import CONFIRMED_FILE

measure_module = importlib.import_module("msexplore.measure")  # ``msexplore.measure`` is also the function

SMALL = dict(population_size=32, init_min_unmeasured=8)


@pytest.fixture(scope="module")
def space():
    return mx.Space(mx.workload("GMM", n=64, m=64, k=64))


@pytest.fixture(scope="module")
def searched(space, tmp_path_factory):
    """A finished 16-trial search; tests copy its folder before confirming in it."""
    run = mx.search(space, trials=16, batch_size=8, work_dir=tmp_path_factory.mktemp("runs") / "gmm", **SMALL).wait()
    assert run.status == "done", run.error
    return run.work_dir


def _copy(work_dir, tmp_path):
    shutil.copytree(work_dir, tmp_path / "run")
    return mx.open_run(tmp_path / "run")


def test_confirm_re_times_the_fastest_in_rounds_and_best_follows_the_medians(searched, tmp_path):
    run = _copy(searched, tmp_path)
    by_search = sorted((e for e in run.events if e.ok), key=lambda e: e.latency_s)
    assert run.best.confirmed_s is None

    table = run.confirm(top=3, rounds=2)

    assert sorted(table["index"]) == sorted(e.index for e in by_search[:3])
    assert (table["timings"] == 2 * MEASURE_EVALUATOR.repeat).all() and table["error"].isna().all()
    assert table["confirmed_ms"].is_monotonic_increasing
    assert (table["min_ms"] <= table["confirmed_ms"]).all() and (table["confirmed_ms"] <= table["max_ms"]).all()
    best = run.best
    assert best.index == table["index"][0]
    assert best.confirmed_s * 1e3 == pytest.approx(table["confirmed_ms"][0])
    saved = json.loads((tmp_path / "run" / CONFIRMED_FILE).read_text())
    assert saved["measured"] == 16 and saved["rounds"] == 2 and len(saved["entries"]) == 3
    assert mx.open_run(run.work_dir).best.index == best.index  # kept in the folder
    bundle = best.export(tmp_path / "kernel")
    assert bundle.manifest["latency_s"] == pytest.approx(best.confirmed_s)


def test_best_takes_the_confirmed_median_over_the_search_timing(searched, tmp_path):
    run = _copy(searched, tmp_path)
    by_search = sorted((e for e in run.events if e.ok), key=lambda e: e.latency_s)
    slowest, fastest = by_search[-1], by_search[0]
    # a confirmation that found the search's slowest candidate the fastest: best must follow it
    run.folder.write_confirmation({"measured": 16, "entries": [
        {"index": fastest.index, "search_s": fastest.latency_s, "latency_s": 2e-3, "latencies": [2e-3], "error": None},
        {"index": slowest.index, "search_s": slowest.latency_s, "latency_s": 1e-3, "latencies": [1e-3], "error": None},
    ]})
    assert run.best.index == slowest.index and run.best.confirmed_s == 1e-3
    assert "confirmed 1.0000 ms" in repr(run.best)


def test_a_later_session_makes_the_confirmation_stale(searched, space, tmp_path):
    run = _copy(searched, tmp_path)
    run.confirm(top=2, rounds=1)
    more = mx.search(space, trials=8, batch_size=8, work_dir=run.work_dir, **SMALL).wait()
    assert more.status == "done", more.error
    best = more.best
    assert best.confirmed_s is None
    assert best.latency_s == min(e.latency_s for e in more.events if e.ok)


def test_measure_rounds_start_one_further_along_each_time(space, monkeypatch):
    orders = []
    real = measure_module.make_runner

    class Recording:
        def __init__(self, runner):
            self.runner, self.pool = runner, getattr(runner, "pool", None)

        def run(self, inputs):
            orders.append([item.artifact_path for item in inputs])
            return self.runner.run(inputs)

    monkeypatch.setattr(measure_module, "make_runner", lambda *a, **k: Recording(real(*a, **k)))
    schedules = [s.schedule for s in space.sample(3, seed=2)]

    results = mx.measure(schedules, space.workload, rounds=3)

    assert all(r.ok and len(r.latencies) == 3 * MEASURE_EVALUATOR.repeat for r in results)
    first = orders[0]
    assert orders == [first, first[1:] + first[:1], first[2:] + first[:2]]


def test_confirm_refuses_a_running_search_and_a_run_without_a_verified_candidate(space, tmp_path):
    run = mx.search(space, trials=16, batch_size=8, work_dir=tmp_path / "running", **SMALL)
    try:
        with pytest.raises(RuntimeError, match=r"call it after run.wait\(\) or run.stop\(\)"):
            run.confirm()
    finally:
        run.stop()

    @mx.module(name="bind_to_gpu_thread_confirm", scope="program")
    def bind_to_gpu_thread(sch):
        sch.bind(sch.get_loops(sch.get_sblock("Z"))[1], "threadIdx.x")  # legal TIR, but LLVM cannot build it

    broken = mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=["bind_to_gpu_thread_confirm"])
    failed = mx.search(broken, trials=1, batch_size=1, work_dir=tmp_path / "failed", strategy="replay-trace").wait()
    with pytest.raises(ValueError, match="no candidate whose outputs matched the reference"):
        failed.confirm()
    with pytest.raises(ValueError, match="top must be a positive integer, got 0"):
        failed.confirm(top=0)
