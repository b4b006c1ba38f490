"""The search engine on real TVM with tiny budgets: events, stop, resume, reopen, crash recovery, faults."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import msexplore as mx
from msexplore.measure import SCREEN_FACTOR
from msexplore.search.folder import RECORDS_FILE, RunFolder
from msexplore.search.run import SearchTimings

SMALL = dict(population_size=32, init_min_unmeasured=8)


@pytest.fixture(scope="module")
def space():
    return mx.Space(mx.workload("GMM", n=64, m=64, k=64))


def _programs(work_dir):
    """The measured programs in the run's database, in commit order: each record's trace (instructions and
    decisions) as JSON. Not the tile decisions alone: ``MutateParallel`` changes the parallel extent, an
    annotation rather than a decision, so two different programs can share every decision."""
    return [json.dumps(line[1][0], sort_keys=True) for line in RunFolder(work_dir).database_lines()]


@pytest.fixture(scope="module")
def finished(space, tmp_path_factory):
    """One 16-trial search shared by the read-only tests, with a subscriber that records batch sizes."""
    work_dir = tmp_path_factory.mktemp("runs") / "gmm"
    started = time.perf_counter()
    run = mx.search(space, trials=16, batch_size=8, work_dir=work_dir, **SMALL)
    returned_after = time.perf_counter() - started
    batches: list[int] = []
    run.subscribe(lambda batch: batches.append(len(batch)))
    run.wait()
    return run, returned_after, batches


def test_search_returns_at_once_and_publishes_whole_batches(finished):
    run, returned_after, batches = finished
    assert returned_after < 2.0, "search() must return before measuring"
    assert run.status == "done", run.error
    assert len(run.events) == 16
    # every batch arrives whole (8 + 8); a subscriber attached a moment late may miss the first one
    assert batches in ([8, 8], [8]), batches
    assert [e.index for e in run.events] == list(range(16))


def test_timings_say_where_the_wall_time_went(finished):
    run, _, _ = finished
    t = run.timings
    parts = {"generate": t.generate_s, "build": t.build_s, "measure": t.measure_s, "record": t.record_s,
             "publish": t.publish_s}
    assert all(seconds > 0 for seconds in parts.values()), parts  # every part is wired to its clock
    assert sum(parts.values()) + t.predict_s + t.other_s == pytest.approx(t.wall_s)
    assert t.other_s < 0.2 * t.wall_s, t  # the parts cover the session: little is left unattributed
    assert t.generations == _generations(run) + 1  # TVM's evolutions (its log counts them) and the random batch
    assert "measuring" in str(t) and f"{t.generations} generations" in str(t)
    # an opened run did not run this session: nothing to attribute
    assert mx.open_run(run.work_dir).timings == SearchTimings()


def test_events_are_frozen_and_on_disk(finished):
    run, _, _ = finished
    event = run.events[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.latency_s = 1.0
    with pytest.raises(TypeError):
        event.decisions["x"] = 1  # read-only mapping
    lines = open(os.path.join(run.work_dir, "events.jsonl")).read().splitlines()
    assert len(lines) == 16
    assert json.loads(lines[3])["index"] == 3
    assert len(RunFolder(run.work_dir).database_lines()) == 16  # every event has its MetaSchedule record


def test_events_carry_decisions_by_name(finished, space):
    run, _, _ = finished
    names = {rv.name for ds in space.design_spaces for rv in ds.random_variables}
    for event in run.events:
        assert event.design_space >= 0
        assert set(event.decisions) <= names and "Z.tile_i" in event.decisions
        assert len(event.decisions["Z.tile_i"]) == 4


def test_best_is_the_fastest_verified_candidate(finished):
    run, _, _ = finished
    best = run.best
    ok = [e for e in run.events if e.ok]
    assert best.latency_s == min(e.latency_s for e in ok)
    assert best.verified
    assert best.gflops == pytest.approx(run.workload.flop / best.latency_s / 1e9)
    assert "T.prim_func" in best.tir and "sch.sample_perfect_tile" in best.python()


def test_records_frame(finished):
    run, _, _ = finished
    df = run.records
    assert len(df) == 16 and df["trial"].tolist() == list(range(16))
    assert df["ok"].all()
    assert (df["latency_min_s"] <= df["latency_s"]).all() and (df["latency_s"] <= df["latency_max_s"]).all()
    assert "Z.tile_i" in df.columns and df.attrs["workload"]["name"] == "GMM"


def test_progress(finished):
    run, _, _ = finished
    p = run.progress
    assert (p.status, p.trials_done, p.trials_total, p.failures) == ("done", 16, 16, 0)
    assert p.best_latency_s == run.best.latency_s and p.eta_s is None
    assert "16/16 trials" in str(p)


def test_open_run_gives_the_same_history(finished):
    run, _, _ = finished
    again = mx.open_run(run.work_dir)
    assert again.status == "done"
    assert [e.to_json() for e in again.events] == [e.to_json() for e in run.events]
    assert again.best.latency_s == run.best.latency_s
    assert again.best.tir == run.best.tir


def _snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_opening_a_killed_run_changes_nothing_on_disk(finished, space, tmp_path):
    """A folder whose log lags the database (killed between the two writes), its last record torn: reading it
    rebuilds the missing events in memory only; reconciling (asked, or by resuming) writes them."""
    run, _, _ = finished
    work = tmp_path / "killed"
    shutil.copytree(run.work_dir, work)
    (work / "status.json").unlink()
    log = work / "events.jsonl"
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines()[:10]))
    with open(work / RECORDS_FILE, "a") as f:
        f.write('[0, [["torn')
    before = _snapshot(work)

    opened = mx.open_run(work)
    records = mx.read_records(work)
    with_space = mx.open_run(work, space=space)
    assert _snapshot(work) == before, "reading a run folder wrote to it"
    assert opened.status == "interrupted" and len(opened.events) == len(records) == 16
    assert [e.latency_s for e in opened.events] == [e.latency_s for e in run.events]
    # rebuilt from the database: decisions only when the space is given to match the traces against
    assert opened.events[12].decisions == {} and opened.events[12].design_space == -1
    assert [dict(e.decisions) for e in with_space.events] == [dict(e.decisions) for e in run.events]
    assert [e.design_space for e in with_space.events] == [e.design_space for e in run.events]

    repaired = mx.open_run(work, reconcile=True)
    assert len(repaired.events) == 16
    assert len(log.read_text().splitlines()) == 16
    assert (work / (RECORDS_FILE + ".torn")).read_text() == '[0, [["torn\n'
    assert len(RunFolder(work).database_lines()) == 16


def test_resume_continues_without_remeasuring(space, tmp_path):
    work_dir = tmp_path / "resume"
    first = mx.search(space, trials=8, batch_size=8, work_dir=work_dir, **SMALL).wait()
    assert first.status == "done", first.error
    second = mx.search(space, trials=8, batch_size=8, work_dir=work_dir, **SMALL).wait()
    assert second.status == "done", second.error
    assert len(second.events) == 16
    assert [e.session for e in second.events] == [0] * 8 + [1] * 8
    programs = _programs(work_dir)
    assert len(programs) == 16
    assert not set(programs[:8]) & set(programs[8:]), "a program of the first session was measured again"
    assert len(set(programs)) == 16
    assert len(RunFolder(work_dir).database_lines()) == 16


def test_a_search_measures_no_more_than_its_trials(space, tmp_path):
    """Batches of 4 for 6 trials, twice on one folder (the second session drops programs already measured)."""
    first = mx.search(space, trials=6, batch_size=4, work_dir=tmp_path / "budget", **SMALL).wait()
    second = mx.search(space, trials=6, batch_size=4, work_dir=tmp_path / "budget", **SMALL).wait()
    assert first.status == second.status == "done", (first.error, second.error)
    assert len(first.events) <= 6 and 1 <= len(second.events) - len(first.events) <= 6
    assert len(RunFolder(tmp_path / "budget").database_lines()) == len(second.events)


def _generations(run) -> int:
    """How many times TVM's evolutionary search evolved a population in this run (its task log says each time)."""
    logs = [f for f in os.listdir(os.path.join(run.work_dir, "logs")) if "task_0" in f]
    with open(os.path.join(run.work_dir, "logs", logs[0])) as f:
        return f.read().count("Generating candidates")


@pytest.mark.parametrize("per_generation, generations", [(1, range(3, 9)), (None, range(1, 3))])
def test_one_generation_fills_several_batches(space, tmp_path, per_generation, generations):
    """16 trials in batches of 4: the first batch is sampled (the cost model knows nothing yet); the other 12 take
    3 generations of one batch each, or one generation by default (64 candidates; a second one at most when TVM's
    evolution re-picks programs the first batch measured, which the guard drops)."""
    run = mx.search(space, trials=16, batch_size=4, batches_per_generation=per_generation, work_dir=tmp_path / "g",
                    **SMALL)
    sizes = []
    run.subscribe(lambda batch: sizes.append(len(batch)), replay=True)
    run.wait()
    assert run.status == "done", run.error
    assert sum(sizes) == 16 and max(sizes) == 4 and len(sizes) >= 4, "batches are published one by one, <= 4 each"
    assert _generations(run) in generations
    assert run.timings.generations == _generations(run) + 1  # TVM's evolutions and the random first batch
    assert len({json.dumps(e.trace, sort_keys=True) for e in run.events}) == 16
    expected = per_generation or 16  # 64 // 4
    assert json.loads((tmp_path / "g" / "run.json").read_text())["batches_per_generation"] == expected


def test_an_untrained_cost_model_gets_a_random_first_batch_not_an_evolution(space, tmp_path):
    """Evolving 32 programs by an XGBoost model that has seen nothing is random sampling at a higher price."""
    fresh = mx.search(space, trials=4, batch_size=4, work_dir=tmp_path / "xgb", **SMALL).wait()
    assert fresh.status == "done" and len(fresh.events) == 4
    assert _generations(fresh) == 0
    # with cost_model="random" the user asked for TVM's evolution by random scores: it is left alone
    scored = mx.search(space, trials=4, batch_size=4, cost_model="random", work_dir=tmp_path / "rnd", **SMALL).wait()
    assert scored.status == "done" and _generations(scored) == 1


def test_stop_returns_within_a_batch_and_keeps_records(space, tmp_path):
    first_batch = threading.Event()
    run = mx.search(space, trials=200, batch_size=8, work_dir=tmp_path / "stop", **SMALL)
    run.subscribe(lambda batch: first_batch.set())
    assert first_batch.wait(120), "no batch within 2 minutes"
    run.stop(timeout=120)
    assert not run.running
    assert run.status == "stopped"
    n = len(run.events)
    assert 8 <= n <= 24, n  # the batch being measured, and at most one TVM had already scheduled
    assert len(RunFolder(run.work_dir).database_lines()) == n
    assert mx.open_run(run.work_dir).status == "stopped"


def test_subscriber_exception_is_reported_and_search_goes_on(space, tmp_path):
    run = mx.search(space, trials=16, batch_size=8, work_dir=tmp_path / "sub", **SMALL)

    def broken(batch):
        raise RuntimeError("subscriber bug")

    run.subscribe(broken)
    run.wait()
    assert run.status == "done" and len(run.events) == 16
    assert run.subscriber_errors and "subscriber bug" in run.subscriber_errors[0]


def test_wrong_results_are_recorded_failures(tmp_path):
    from tvm import te

    gmm = mx.workload("GMM", n=32, m=32, k=32)
    a = te.placeholder((1, 32, 32), name="X")
    b = te.placeholder((1, 32, 32), name="Y")
    k = te.reduce_axis((0, 32), name="k")
    off_by_one = te.compute((1, 32, 32), lambda n, i, j: te.sum(a[n, i, k] * b[n, k, j] + 1.0, axis=k), name="Z")
    # named GMM (numpy reference) but a kernel computing something else: every candidate must be rejected
    liar = dataclasses.replace(gmm, func=mx.workload([a, b, off_by_one]).func)
    run = mx.search(mx.Space(liar), trials=8, batch_size=8, work_dir=tmp_path / "wrong", **SMALL).wait()
    assert run.status == "done", run.error
    assert len(run.events) == 8
    assert all(not e.ok and "wrong result" in e.run_error for e in run.events)
    assert all(e.max_abs_error == pytest.approx(32.0, rel=1e-3) for e in run.events)
    assert run.best is None
    assert run.progress.failures == 8


def test_build_failure_is_a_recorded_failure(tmp_path):
    @mx.module(name="bind_to_gpu_thread", scope="program")
    def bind_to_gpu_thread(sch):
        loops = sch.get_loops(sch.get_sblock("Z"))
        sch.bind(loops[1], "threadIdx.x")  # legal TIR, but LLVM cannot build it

    space = mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=["bind_to_gpu_thread"])
    run = mx.search(space, trials=1, batch_size=1, work_dir=tmp_path / "build", strategy="replay-trace").wait()
    assert run.status == "done", run.error
    assert len(run.events) == 1 and run.events[0].build_error
    assert run.best is None


def test_module_failing_in_one_branch_does_not_stop_the_search(tmp_path):
    @mx.module(name="no_cached_writes")
    def no_cached_writes(sch, block):
        if sch.get(block).name_hint != "Z":
            return [sch]
        blocks = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
        if "Z_global" in blocks:  # multi-level tiling made this branch with a write cache
            raise RuntimeError("this module does not handle a cached write")
        return [sch]

    space = mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=["default", "no_cached_writes"])
    assert len(space.design_spaces) == 1 and len(space.failures) == 2
    assert {f.module for f in space.failures} == {"no_cached_writes"}
    assert "does not handle a cached write" in space.failures[0].traceback
    run = mx.search(space, trials=8, batch_size=8, work_dir=tmp_path / "fork", **SMALL).wait()
    assert run.status == "done", run.error
    assert sum(e.ok for e in run.events) == 8


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"trials": 0}, "trials must be a positive integer"),
        ({"trials": 8, "strategy": "annealing"}, r"unknown strategy 'annealing'; accepted: \['evolutionary'"),
        ({"trials": 8, "population": 3}, r"has no option\(s\) \['population'\]; its options are population_size="),
        ({"trials": 8, "cost_model": "mlp"}, r"unknown cost_model 'mlp'; accepted: \['xgb', 'random'\]"),
        ({"trials": 8, "batch_size": -1}, "batch_size must be a positive integer"),
        ({"trials": 8, "batches_per_generation": 0}, "batches_per_generation must be a positive integer"),
        ({"trials": 8, "screen": 1.0}, r"screen must be None or a factor above 1 \(e.g. 1.5\), got 1.0"),
        ({"trials": 8, "screen": True}, r"screen must be None or a factor above 1 \(e.g. 1.5\), got True"),
    ],
)
def test_bad_arguments_fail_before_any_work(space, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mx.search(space, work_dir=tmp_path / "bad", **kwargs)
    assert not (tmp_path / "bad").exists()


def test_work_dir_that_is_a_file(space, tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        mx.search(space, trials=8, work_dir=path)


def test_work_dir_of_another_workload(space, tmp_path, finished):
    run, _, _ = finished
    other = mx.Space(mx.workload("GMM", n=32, m=32, k=32))
    with pytest.raises(ValueError, match="holds a run of workload GMM"):
        mx.search(other, trials=8, work_dir=run.work_dir)


def test_open_run_on_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(ValueError, match="not the folder of an mx.search run"):
        mx.open_run(tmp_path)


CHILD = textwrap.dedent(
    """
    import sys, time
    import msexplore as mx
    space = mx.Space(mx.workload("GMM", n=64, m=64, k=64))
    run = mx.search(space, trials=400, batch_size=8, work_dir=sys.argv[1], population_size=32, init_min_unmeasured=8)
    run.wait()
    """
)


def test_killed_process_loses_no_measured_record(tmp_path, space):
    work_dir = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(work_dir)])
    events = work_dir / "events.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if events.exists() and len(events.read_text().splitlines()) >= 16:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the child search measured nothing in 4 minutes")
        os.kill(child.pid, signal.SIGKILL)  # mid-search: a batch is usually being built or measured
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    measured = len(RunFolder(work_dir).database_lines())
    logged = (work_dir / "events.jsonl").read_text()
    run = mx.open_run(work_dir, space=space)
    assert run.status == "interrupted"
    assert len(run.events) == measured >= 16  # every record in the database is an event, none lost
    assert (work_dir / "events.jsonl").read_text() == logged  # reading wrote nothing
    resumed = mx.search(space, trials=8, batch_size=8, work_dir=work_dir, **SMALL).wait()
    assert resumed.status == "done", resumed.error
    assert len(resumed.events) == measured + 8
    assert len((work_dir / "events.jsonl").read_text().splitlines()) == measured + 8  # reconciled on resume
    programs = _programs(work_dir)
    assert len(programs) == measured + 8
    assert not set(programs[:measured]) & set(programs[measured:])


def test_search_through_an_rpc_tracker(space, tmp_path):
    from tvm.s_tir.meta_schedule.testing.local_rpc import LocalRPC

    from msexplore.measure import RPCSettings

    with LocalRPC(tracker_key="msx-test", silent=True) as rpc:
        settings = RPCSettings(host=rpc.tracker_host, port=rpc.tracker_port, key=rpc.tracker_key)
        run = mx.search(space, trials=8, batch_size=8, work_dir=tmp_path / "rpc", rpc=settings, **SMALL).wait()
    assert run.status == "done", run.error
    assert len(run.events) == 8 and all(e.ok for e in run.events)
    assert run.config["rpc"] is not None


def _timed_in_full(event, repeats):
    return len(event.latencies_s) == repeats


def test_a_search_times_in_full_only_candidates_near_the_best(space, tmp_path):
    """With three repeats in the full timing, a screened candidate is one with a single latency: each is over
    1.5x the best measured before it (the folder's earlier session included), every candidate within 1.5x
    the best was timed in full, and each session reports how many went over."""
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig

    evaluator = EvaluatorConfig(number=3, repeat=3, min_repeat_ms=5, enable_cpu_cache_flush=False)
    work_dir = tmp_path / "screened"
    first = mx.search(space, trials=16, batch_size=8, work_dir=work_dir, evaluator=evaluator, **SMALL).wait()
    second = mx.search(space, trials=16, batch_size=8, work_dir=work_dir, evaluator=evaluator, **SMALL).wait()
    assert (first.status, second.status) == ("done", "done"), (first.error, second.error)
    assert second.config["screen"] == SCREEN_FACTOR
    best = float("inf")
    over, brief = {0: 0, 1: 0}, 0
    for event in second.events:
        if not event.ok:
            continue
        if event.latency_s > SCREEN_FACTOR * best:
            over[event.session] += 1
        else:
            assert _timed_in_full(event, 3), event
        if not _timed_in_full(event, 3):
            assert len(event.latencies_s) == 1 and event.latency_s > SCREEN_FACTOR * best, event
            brief += 1
        best = min(best, event.latency_s)
    assert over == {0: first.timings.screened, 1: second.timings.screened}
    assert brief > 0  # random GEMM schedules differ by far more than 1.5x
    assert "candidates screened" in str(second.timings) or second.timings.screened == 0


def test_screen_none_times_every_candidate_in_full(space, tmp_path):
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig

    evaluator = EvaluatorConfig(number=3, repeat=3, min_repeat_ms=5, enable_cpu_cache_flush=False)
    run = mx.search(space, trials=16, batch_size=8, work_dir=tmp_path / "full", evaluator=evaluator, screen=None,
                    **SMALL).wait()
    assert run.status == "done", run.error
    assert run.config["screen"] is None and run.timings.screened == 0
    assert all(_timed_in_full(e, 3) for e in run.events if e.ok)
