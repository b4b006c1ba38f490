"""Builder, checking runner and ``measure``: real TVM on tiny kernels (LocalRunner and RPC through 127.0.0.1)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import tvm
from tvm import te
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.testing.local_rpc import LocalRPC

from msexplore.measure import (
    MEASURE_EVALUATOR,
    Measurement,
    RPCSettings,
    make_runner,
    measure,
    parse_wrong_result,
    verify,
    write_reference,
)
from msexplore.workloads import workload


def _elementwise(op):
    a = te.placeholder((32, 32), name="A")
    b = te.placeholder((32, 32), name="B")
    return workload([a, b, te.compute((32, 32), lambda i, j: op(a[i, j], b[i, j]), name="C")])


@pytest.fixture(scope="module")
def gmm():
    return workload("GMM", n=32, m=32, k=32)


@pytest.fixture(scope="module")
def add():
    """``C = A + B``: the workload whose reference is the truth in the wrong-kernel tests."""
    return _elementwise(lambda x, y: x + y)


@pytest.fixture(scope="module")
def subtract():
    """``C = A - B``: same signature as ``add``, so its module is a wrong kernel for ``add``."""
    return _elementwise(lambda x, y: x - y)


def _tiled(workload_):
    sch = tvm.s_tir.Schedule(workload_.mod)
    block = sch.get_sblock("Z")
    _, i, _, _ = sch.get_loops(block)
    outer, _ = sch.split(i, [None, 8])
    sch.parallel(outer)
    return sch


def _unbuildable(workload_):
    """Binding a GPU thread axis on an LLVM target: scheduling accepts it, the build raises."""
    sch = tvm.s_tir.Schedule(workload_.mod)
    _, i, _, _ = sch.get_loops(sch.get_sblock("Z"))
    sch.bind(i, "threadIdx.x")
    return sch


@pytest.mark.slow
def test_measure_records_latency_and_build_error_and_cleans_up(gmm, monkeypatch):
    removed = []
    real_remove = ms.utils.remove_build_dir
    monkeypatch.setattr(ms.utils, "remove_build_dir", lambda path: (removed.append(path), real_remove(path)))

    good, broken = measure([_tiled(gmm), _unbuildable(gmm)], gmm)

    assert good.ok and good.build_error is None and good.run_error is None
    assert good.latency_s > 0 and len(good.latencies) == MEASURE_EVALUATOR.repeat
    assert good.latency_s == sorted(good.latencies)[1]  # the median of three
    assert good.gflops == pytest.approx(gmm.flop / good.latency_s / 1e9)
    assert not broken.ok and broken.latency_s is None and broken.run_error is None
    assert broken.build_error.startswith("LocalBuilder: An exception occurred")
    assert len(removed) == 1 and not os.path.exists(os.path.dirname(removed[0]))


@pytest.mark.slow
def test_wrong_kernel_is_a_run_error_with_its_max_error(add, subtract):
    right, wrong = measure([add.mod, subtract.mod], add)

    assert right.ok and right.max_abs_error is None
    assert not wrong.ok and wrong.latency_s is None and wrong.build_error is None
    assert wrong.run_error.startswith("LocalRunner: An exception occurred")
    assert "WrongResultError: wrong result: output 0 (C) max abs error" in wrong.run_error
    _, b, _ = add.make_inputs(0)
    assert wrong.max_abs_error == pytest.approx(np.abs(2 * b).max(), rel=1e-3)  # (A - B) - (A + B)
    assert wrong.wrong_result and parse_wrong_result(wrong.run_error) == wrong.max_abs_error


@pytest.mark.slow
def test_without_check_a_wrong_kernel_is_timed(add, subtract):
    (result,) = measure(subtract.mod, add, check=False)
    assert result.ok and result.latency_s > 0


def test_make_runner_needs_a_check_dir_and_an_evaluator_config(add):
    with pytest.raises(ValueError, match="needs check_dir"):
        make_runner(add, check_dir=None)
    with pytest.raises(TypeError, match="EvaluatorConfig"):
        make_runner(add, check_dir=None, check=False, evaluator={"number": 3})
    with pytest.raises(TypeError, match="RPCSettings"):
        make_runner(add, check_dir=None, check=False, rpc=("127.0.0.1", 9190, "key"))


def test_measure_rejects_other_inputs(add):
    with pytest.raises(TypeError, match=r"measure\(\): item 1 is a str; pass a tvm.s_tir.Schedule or an IRModule"):
        measure([add.mod, "main"], add)
    with pytest.raises(TypeError, match="evaluator must be a ms.runner.EvaluatorConfig"):
        measure(add.mod, add, evaluator=(3, 1, 50))
    assert measure([], add) == []


@pytest.mark.slow
def test_runner_timeout_is_a_run_error():
    slow = workload("GMM", n=1024, m=1024, k=1024)  # unscheduled: seconds per run, the limit is 1 s
    start = time.perf_counter()
    (result,) = measure(slow.mod, slow, timeout_sec=1)
    assert not result.ok and result.max_abs_error is None
    assert "Timeout, killed after 1 seconds" in result.run_error
    assert time.perf_counter() - start < 30


@pytest.mark.slow
def test_measure_through_rpc_checks_results_on_this_side(add, subtract):
    with LocalRPC(tracker_key="msexplore-test", silent=True) as rpc:
        settings = RPCSettings("127.0.0.1", rpc.tracker_port, rpc.tracker_key, session_timeout_sec=30)
        right, wrong = measure([add.mod, subtract.mod], add, rpc=settings)
    assert right.ok and right.latency_s > 0
    assert wrong.run_error.startswith("RPCRunner: An exception occurred")
    assert wrong.max_abs_error == pytest.approx(np.abs(2 * add.make_inputs(0)[1]).max(), rel=1e-3)


def test_reference_file_holds_inputs_and_expected_outputs(gmm, add, tmp_path):
    path = write_reference(gmm, tmp_path, seed=3)
    other = write_reference(add, tmp_path, seed=3)
    assert path != other and os.path.basename(path).endswith("-seed3.npz")
    arrays = gmm.make_inputs(3)
    with np.load(path) as data:
        assert sorted(data.files) == ["arg0", "arg1", "arg2", "expected2"]
        for index, array in enumerate(arrays):
            np.testing.assert_array_equal(data[f"arg{index}"], array)
        np.testing.assert_array_equal(data["expected2"], gmm.reference(arrays)[0])
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in (path, other))  # no temp left


def test_verify_compares_a_module_with_the_reference(gmm, add, subtract):
    assert verify(_tiled(gmm), gmm).ok
    assert verify(tvm.tirx.build(gmm.mod, "llvm"), gmm).ok
    wrong = verify(subtract.mod, add)
    assert not wrong.ok and wrong.max_abs_error > 1.0


def test_parse_wrong_result():
    message = (
        "LocalRunner: An exception occurred\nTraceback ...\nmsexplore.measure.WrongResultError: "
        "wrong result: output 0 (C) max abs error 3.100e+00 > atol 1.0e-04 (rtol 1.0e-04, max rel error 2e+00); "
        "wrong result: output 1 (D) max abs error inf > atol 1.0e-04 (rtol 1.0e-04, max rel error inf)"
    )
    assert parse_wrong_result(message) == float("inf")
    assert parse_wrong_result(message.split(";")[0]) == 3.1
    assert parse_wrong_result("LocalRunner: Timeout, killed after 1 seconds") is None
    assert parse_wrong_result(None) is None


def test_measurement_from_metaschedule_results():
    built = ms.builder.BuilderResult("/tmp/x/tvm_tmp_mod.tar", None)
    timed = Measurement.from_results(built, ms.runner.RunnerResult([2e-3, 1e-3, 4e-3], None), flop=2e6)
    assert (timed.latency_s, timed.latencies, timed.gflops, timed.ok) == (2e-3, (2e-3, 1e-3, 4e-3), 1.0, True)
    failed = Measurement.from_results(ms.builder.BuilderResult(None, "LocalBuilder: boom"), None, flop=2e6)
    assert failed == Measurement(None, build_error="LocalBuilder: boom") and not failed.ok
    assert "build error: LocalBuilder: boom" in repr(failed)


def test_rpc_settings_from_env(monkeypatch):
    for name in ("TVM_TRACKER_HOST", "TVM_TRACKER_PORT", "TVM_TRACKER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TVM_TRACKER_HOST", "10.0.0.2")
    with pytest.raises(ValueError, match=r"TVM_TRACKER_PORT, TVM_TRACKER_KEY not set"):
        RPCSettings.from_env()
    monkeypatch.setenv("TVM_TRACKER_PORT", "nine")
    monkeypatch.setenv("TVM_TRACKER_KEY", "rasp")
    with pytest.raises(ValueError, match="TVM_TRACKER_PORT must be an integer"):
        RPCSettings.from_env()
    monkeypatch.setenv("TVM_TRACKER_PORT", "9190")
    settings = RPCSettings.from_env(session_timeout_sec=5)
    assert settings == RPCSettings("10.0.0.2", 9190, "rasp", 5)
    assert settings.to_config().tracker_port == 9190
    with pytest.raises(ValueError, match="port must be an integer in 1..65535"):
        RPCSettings("localhost", 0, "rasp")


def test_the_timing_batch_is_sized_to_last_min_repeat_ms_at_once():
    """TVM grows ``number`` from 3 cold calls and, when the grown batch falls short of ``min_repeat_ms``, runs a
    second, longer one; the batch is sized from warm calls instead (a 40 µs kernel: 782 calls = 31 ms)."""
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig

    from msexplore.measure import SEARCH_EVALUATOR, _sized

    sized = _sized(SEARCH_EVALUATOR, 40e-6)
    assert sized.number == 782 and sized.number * 40e-6 * 1e3 > SEARCH_EVALUATOR.min_repeat_ms
    assert (sized.repeat, sized.min_repeat_ms) == (SEARCH_EVALUATOR.repeat, SEARCH_EVALUATOR.min_repeat_ms)
    assert _sized(SEARCH_EVALUATOR, 0.1) is SEARCH_EVALUATOR  # a 100 ms kernel: 3 calls are plenty
    no_minimum = EvaluatorConfig(number=3, repeat=1, min_repeat_ms=0, enable_cpu_cache_flush=False)
    assert _sized(no_minimum, 40e-6) is no_minimum  # the user asked for exactly 3 calls


def test_a_sized_batch_still_reports_seconds_per_call():
    """A few-µs kernel timed in one sized batch (thousands of calls) against TVM's own evaluator in-process: the
    same per-call figure (a batch total, or a count off by the batch size, would be ~1000x off)."""
    import msexplore as mx
    from msexplore.measure import SEARCH_EVALUATOR

    wl = workload("GMM", n=1, m=256, k=256)
    sample = next(s for s in mx.Space(wl).sample(4, seed=0) if s.valid)
    (searched,) = measure(sample.schedule.mod, wl, evaluator=SEARCH_EVALUATOR)
    lib = tvm.tirx.build(sample.schedule.mod, mx.resolve_target(None))
    arrays = [tvm.runtime.tensor(a) for a in wl.make_inputs(0)]
    plain = lib.time_evaluator(lib.entry_name, tvm.cpu(), number=1000, repeat=3)(*arrays)
    assert searched.ok
    assert 0.33 < searched.latency_s / float(np.median(plain.results)) < 3.0


def test_a_screen_cuts_off_at_its_factor_times_the_best_seen():
    from msexplore.measure import Screen
    from msexplore.search.run import Spent

    tally = Spent()
    screen = Screen(2.0, tally=tally)
    assert screen.cutoff_s() is None  # nothing seen: every candidate is timed in full
    screen.saw([1e-3])
    assert screen.cutoff_s() == pytest.approx(2e-3)
    screen.saw([3e-3])  # over the cutoff when it was sent
    screen.saw([1.5e-3])  # within it
    assert (screen.screened, tally.screened, screen.seen) == (1, 1, 3)
    screen.saw([0.5e-3])
    assert screen.cutoff_s() == pytest.approx(1e-3)
    assert Screen(3, best_s=1e-3).cutoff_s() == pytest.approx(3e-3)  # a resumed search starts from its best
    for bad in (1.0, 0.5, True, "2"):
        with pytest.raises(ValueError, match="Screen factor must be a number above 1"):
            Screen(bad)


@pytest.mark.parametrize("best_s, repeats, screened", [(1e-12, 1, 1), (10.0, 3, 0)])
def test_a_screened_candidate_gets_its_brief_timing_and_the_others_the_full_one(gmm, tmp_path, best_s, repeats,
                                                                                screened):
    """Below the cutoff the full timing runs (three repeats here); above it only the brief one (one figure)."""
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig

    import msexplore as mx
    from msexplore.measure import Screen, make_builder
    from msexplore.workers import Workers

    evaluator = EvaluatorConfig(number=3, repeat=3, min_repeat_ms=5, enable_cpu_cache_flush=False)
    sample = next(s for s in mx.Space(gmm).sample(4, seed=0) if s.valid)
    screen = Screen(2.0, best_s=best_s)
    with Workers(1) as workers:
        (built,) = make_builder(workers=workers).build([ms.builder.BuilderInput(sample.schedule.mod,
                                                                                 mx.resolve_target(None))])
        runner = make_runner(gmm, check_dir=tmp_path, evaluator=evaluator, workers=workers, screen=screen)
        args_info = ms.arg_info.ArgInfo.from_prim_func(gmm.func)
        (result,) = [f.result() for f in runner.run([ms.runner.RunnerInput(built.artifact_path, "cpu", args_info)])]
    assert result.error_msg is None, result.error_msg
    assert len(result.run_secs) == repeats and screen.screened == screened
    assert 0 < float(result.run_secs[0]) < 1e-2


def test_a_screen_needs_the_workers_and_the_check(gmm, tmp_path):
    from msexplore.measure import Screen
    from msexplore.workers import Workers

    with pytest.raises(ValueError, match=r"make_runner\(screen=...\) measures in Workers with the reference check"):
        make_runner(gmm, check_dir=tmp_path, screen=Screen())
    with Workers(1) as workers, pytest.raises(ValueError, match="pass workers=, check=True and no rpc"):
        make_runner(gmm, check_dir=None, check=False, workers=workers, screen=Screen())
