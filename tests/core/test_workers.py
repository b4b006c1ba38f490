"""Worker processes kept across batches and searches: reuse, sharing, timeouts, their stderr, closing."""

from __future__ import annotations

import os
import time

import psutil
import pytest
from tvm.s_tir import meta_schedule as ms

import msexplore as mx
from msexplore.measure import fast_build
from msexplore.workers import Workers

SMALL = dict(population_size=16, init_min_unmeasured=4)


@pytest.fixture(scope="module")
def space():
    return mx.Space(mx.workload("GMM", n=32, m=32, k=32))


def _inputs(space, n):
    return [ms.builder.BuilderInput(sample.schedule.mod, space.target) for sample in space.sample(n, seed=0)]


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_builds_reuse_the_same_processes_and_close_stops_them(space, tmp_path):
    with Workers(2) as workers:
        assert workers.pids() == []  # nothing starts before there is work
        builder = workers.builder(fast_build)
        first = builder.build(_inputs(space, 4))
        pids = workers.pids()
        second = builder.build(_inputs(space, 4))
        assert all(r.error_msg is None for r in first + second)
        assert len(pids) == 2 and workers.pids() == pids  # the second batch ran in the first batch's processes
    assert workers.closed
    deadline = time.time() + 10
    while any(_running(pid) for pid in pids):
        assert time.time() < deadline, f"worker processes {pids} still alive after close()"
        time.sleep(0.1)
    with pytest.raises(RuntimeError, match="closed"):
        workers.builder()


def test_searches_sharing_workers_leave_them_running(space, tmp_path):
    with Workers(2, log_path=tmp_path / "workers.log") as workers:
        mx.search(space, trials=4, batch_size=4, work_dir=tmp_path / "a", workers=workers, **SMALL).wait()
        pids = workers.pids()
        assert len(pids) == 3  # two build processes and the runner's
        run = mx.search(space, trials=4, batch_size=4, work_dir=tmp_path / "b", workers=workers, **SMALL).wait()
        assert run.status == "done" and len(run.events) == 4 and all(e.ok for e in run.events)
        assert workers.pids() == pids and not workers.closed
    # a search given workers does not start its own, so it writes no log of its own
    assert not (tmp_path / "a" / "workers.log").exists()


def test_a_search_alone_logs_its_workers_stderr_in_its_folder(space, tmp_path):
    run = mx.search(space, trials=4, batch_size=4, work_dir=tmp_path / "run", **SMALL).wait()
    assert run.status == "done"
    assert (tmp_path / "run" / "workers.log").exists()


def test_worker_stderr_goes_to_the_log_and_a_timeout_is_a_recorded_failure(space, tmp_path):
    def noisy_build(mod, target, params):
        import sys

        sys.stderr.write("warning from a build worker\n")
        sys.stderr.flush()
        return fast_build(mod, target, params)

    def slow_build(mod, target, params):
        import time

        time.sleep(30)

    log = tmp_path / "workers.log"
    with Workers(1, build_timeout_s=2, log_path=log) as workers:
        assert workers.builder(noisy_build).build(_inputs(space, 1))[0].error_msg is None
        timed_out = workers.builder(slow_build).build(_inputs(space, 1))
        assert "Timeout, killed after 2 seconds" in timed_out[0].error_msg
        again = workers.builder(fast_build).build(_inputs(space, 1))  # a fresh process replaces the killed one
        assert again[0].error_msg is None
    assert "warning from a build worker" in log.read_text()


def test_model_run_task_searches_share_the_given_workers(tmp_path):
    import numpy as np
    from tvm.script import ir as I
    from tvm.script import relax as R

    @I.ir_module
    class Two:
        @R.function
        def main(x: R.Tensor((1, 32), "float32"), w1: R.Tensor((32, 32), "float32"), w2: R.Tensor((32, 16), "float32")):
            with R.dataflow():
                h = R.nn.relu(R.matmul(x, w1))
                y = R.matmul(h, w2)
                R.output(y)
            return y

    weights = {"w1": np.ones((32, 32), "float32"), "w2": np.ones((32, 16), "float32")}
    model = mx.Model.from_relax(Two, weights, name="two")
    with Workers(2) as workers:
        run = mx.tune_model(model, trials=6, work_dir=tmp_path / "m", batch_size=4, workers=workers,
                            strategy="evolutionary", **SMALL)
        run.wait()
        assert run.status == "done", run.error
        assert len(run.task_runs) == len(model.task_list) >= 2
        assert len(workers.pids()) == 3 and not workers.closed
    for task_run in run.task_runs.values():
        assert not os.path.exists(os.path.join(task_run.work_dir, "workers.log"))


def test_bad_arguments(space, tmp_path):
    with pytest.raises(ValueError, match="build_workers"):
        Workers(0)
    with pytest.raises(ValueError, match="run_timeout_s must be a positive number"):
        Workers(1, run_timeout_s=0)
    closed = Workers(1)
    closed.close()
    with pytest.raises(TypeError, match="workers must be open"):
        mx.search(space, trials=4, work_dir=tmp_path / "x", workers=closed)
    with pytest.raises(TypeError, match="workers must be open"):
        mx.search(space, trials=4, work_dir=tmp_path / "y", workers="two")


def test_a_local_builder_links_the_candidate_and_a_remote_one_leaves_the_objects(space):
    """Linked in the build workers, the runner only opens the library; for an RPC server MetaSchedule's ``.tar``."""
    import tvm

    from msexplore.measure import make_builder

    with Workers(1) as workers:
        (local,) = make_builder(workers=workers).build(_inputs(space, 1))
        (remote,) = make_builder(workers=workers, local=False).build(_inputs(space, 1))
    try:
        assert local.artifact_path.endswith(".so") and remote.artifact_path.endswith(".tar")
        lib = tvm.runtime.load_module(local.artifact_path)
        assert lib.implements_function(lib.entry_name or "main") or lib["main"] is not None
    finally:
        for result in (local, remote):
            ms.utils.remove_build_dir(result.artifact_path)
