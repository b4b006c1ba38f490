"""A whole model (Relax, no torch) tuned under one budget, compiled with no task untuned, exported and loaded."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from tvm.script import ir as I
from tvm.script import relax as R

import msexplore as mx

SMALL = dict(batch_size=4)  # tune_model's default strategy, the beam


@I.ir_module
class MLP:
    @R.function
    def main(x: R.Tensor((1, 64), "float32"), w1: R.Tensor((64, 128), "float32"), w2: R.Tensor((128, 128), "float32")):
        with R.dataflow():
            h1 = R.nn.relu(R.matmul(x, w1))
            h2 = R.nn.relu(R.matmul(h1, w2))
            R.output(h2)
        return h2


@I.ir_module
class DeeperMLP:  # the same layer shapes, one more layer: the same two tasks, the second called twice
    @R.function
    def main(
        x: R.Tensor((1, 64), "float32"),
        w1: R.Tensor((64, 128), "float32"),
        w2: R.Tensor((128, 128), "float32"),
        w3: R.Tensor((128, 128), "float32"),
    ):
        with R.dataflow():
            h1 = R.nn.relu(R.matmul(x, w1))
            h2 = R.nn.relu(R.matmul(h1, w2))
            h3 = R.nn.relu(R.matmul(h2, w3))
            R.output(h3)
        return h3


def _weights(*names):
    rng = np.random.default_rng(0)
    shapes = {"w1": (64, 128), "w2": (128, 128), "w3": (128, 128)}
    return {n: rng.uniform(-1, 1, shapes[n]).astype("float32") for n in names}


def _numpy_mlp(x, weights):
    for name in sorted(weights):
        x = np.maximum(x @ weights[name], 0)
    return x


@pytest.fixture(scope="module")
def weights():
    return _weights("w1", "w2")


@pytest.fixture(scope="module")
def model(weights):
    return mx.Model.from_relax(MLP, weights, name="mlp")


@pytest.fixture(scope="module")
def tuned(model, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("models") / "mlp"
    batches = []
    run = mx.tune_model(model, trials=12, work_dir=work_dir, **SMALL)
    run.subscribe(lambda task, batch: batches.append((task, len(batch))))
    run.wait()
    return run, batches


def test_every_task_is_tuned_within_the_budget(tuned, model):
    run, batches = tuned
    assert run.status == "done", run.error
    tasks = run.tasks
    assert list(tasks["task"]) == [t.name for t in model.task_list]
    assert tasks["best_latency_s"].notna().all(), tasks  # every task got a verified candidate
    assert 2 <= tasks["trials"].sum() <= 12
    assert {task for task, _ in batches} == set(tasks["task"])  # progress from every task's batches
    progress = run.progress
    assert progress.tasks_verified == 2 and progress.trials_done == tasks["trials"].sum()
    assert progress.estimated_latency_s == pytest.approx((tasks["weight"] * tasks["best_latency_s"]).sum())
    history = run.latency_history
    assert len(history) == len(batches) and history["trials"].is_monotonic_increasing
    assert history["estimated_latency_s"].iloc[-1] == pytest.approx(progress.estimated_latency_s)


def test_model_timings_add_up_every_task_search(tuned):
    run, _ = tuned
    t = run.timings
    sessions = run.sessions
    assert len(sessions) > len(run.task_runs)  # tasks searched twice count both sessions, not only the last
    assert t.generate_s == pytest.approx(sum(r.timings.generate_s for r in sessions))
    assert t.measure_s == pytest.approx(sum(r.timings.measure_s for r in sessions)) and t.measure_s > 0
    assert t.wall_s >= sum(r.timings.wall_s for r in sessions)  # the model's wall: its tasks' and what is between
    assert mx.open_model_run(run.work_dir).timings.wall_s == 0.0


def test_a_tasks_second_session_is_ranked_by_the_model_its_first_session_trained(tuned):
    run, _ = tuned
    again = [r for r in run.task_runs.values() if len({e.session for e in r.events}) > 1]
    assert again, "the budget left no second session for any task; the test needs one"
    for task_run in again:
        second = min(e.session for e in task_run.events if e.session > min(x.session for x in task_run.events))
        first_batch = min(e.batch for e in task_run.events if e.session == second)
        ranked = [e for e in task_run.events if e.session == second and e.batch == first_batch]
        # an untrained model predicts nothing for its first batch; the task's model from the first pass does
        assert ranked and all(e.predicted is not None for e in ranked)


def test_compiled_model_matches_and_checks_its_inputs(tuned, model, weights):
    run, _ = tuned
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: every task has a record
        compiled = run.compile()
    assert compiled.fallbacks == () and compiled.check.ok, compiled.check
    assert compiled.check.against == "the untuned Relax build"
    assert [r["source"] for r in compiled.records] == ["tuned", "tuned"]
    x = np.random.default_rng(1).uniform(-1, 1, (1, 64)).astype("float32")
    np.testing.assert_allclose(compiled(x), _numpy_mlp(x, weights), rtol=1e-4, atol=1e-4)
    wrong_shape = r"input 0 \(x\): expected shape \(1, 64\) float32, got shape \(2, 64\) float32"
    with pytest.raises(ValueError, match=wrong_shape):
        compiled(np.zeros((2, 64), "float32"))
    with pytest.raises(ValueError, match=r"expected shape \(1, 64\) float32, got shape \(1, 64\) float64"):
        compiled(np.zeros((1, 64)))
    with pytest.raises(TypeError, match=r"mlp takes 1 input\(s\) \(x\[1,64\]f32\), got 2"):
        compiled(x, x)
    with pytest.raises(TypeError, match="input 0 \\(x\\): expected a numpy array or a torch tensor, got list"):
        compiled([0.0] * 64)
    timing = compiled.benchmark(repeat=3)
    assert timing["median_s"] > 0 and len(timing["results_s"]) == 3 and "torch_median_s" not in timing


def test_confirm_re_times_each_task_and_compile_takes_the_confirmed_pick(tuned, model, weights, tmp_path):
    run, _ = tuned
    work = tmp_path / "mlp"
    shutil.copytree(run.work_dir, work)  # the shared run stays unconfirmed
    copy = mx.open_model_run(work, model=model)
    assert copy.tasks["confirmed_latency_s"].isna().all()
    table = copy.confirm(2, rounds=2)
    assert list(table["task"]) == copy.task_names
    for row in table.itertuples():
        task_run = copy.task_runs[row.task]
        assert row.search_pick == task_run.top(1)[0].index and row.search_latency_s == task_run.top(1)[0].latency_s
        assert row.candidates == min(2, sum(e.ok for e in task_run.events))
        assert row.confirmed_latency_s > 0 and row.changed == (row.pick != row.search_pick)
        assert task_run.best.index == row.pick  # the task's folder holds the ranking
    reopened = mx.open_model_run(work, model=model)
    assert reopened.tasks["confirmed_latency_s"].tolist() == pytest.approx(table["confirmed_latency_s"].tolist())
    compiled = reopened.compile()
    assert [r["source"] for r in compiled.records] == ["confirmed", "confirmed"]
    assert [r["latency_s"] for r in compiled.records] == pytest.approx(table["confirmed_latency_s"].tolist())
    assert compiled.check.ok
    # compile follows the folder's ranking, not the search's timings: make a task's slowest candidate the
    # confirmed best and the compiled model carries its trace
    name = copy.task_names[0]
    folder = reopened.task_runs[name].folder
    confirmation = folder.read_confirmation()
    slowest = max(confirmation["entries"], key=lambda e: e["search_s"])
    slowest["latency_s"] = 1e-9
    folder.write_confirmation(confirmation)
    picked = next(e for e in reopened.task_runs[name].events if e.index == slowest["index"])
    records = {r["task"]: r for r in reopened.compile().records}
    assert records[name]["trace"] == picked.trace and records[name]["latency_s"] == 1e-9
    x = np.random.default_rng(1).uniform(-1, 1, (1, 64)).astype("float32")
    np.testing.assert_allclose(reopened.compile()(x), _numpy_mlp(x, weights), rtol=1e-4, atol=1e-4)


def test_confirm_refuses_bad_arguments_with_what_is_accepted(tuned):
    run, _ = tuned
    with pytest.raises(ValueError, match="top must be a positive integer, got 0"):
        run.confirm(0)
    with pytest.raises(ValueError, match="rounds must be a positive integer, got -1"):
        run.confirm(2, rounds=-1)
    with pytest.raises(ValueError, match=r"tasks must be a list of this model's task names, got \['nope'\]; its tasks"):
        run.confirm(2, tasks=["nope"])
    with pytest.raises(ValueError, match="tasks must be a list of this model's task names, got 'fused"):
        run.confirm(2, tasks=run.task_names[0])
    assert run.tasks["confirmed_latency_s"].isna().all()  # nothing was re-timed


def test_a_task_without_records_gets_a_measured_fallback_and_a_warning(model, weights):
    with pytest.warns(UserWarning, match=r"2 task\(s\) of mlp had no tuning record and got a fallback schedule"):
        compiled = mx.compile_model(model)
    assert sorted(f.task for f in compiled.fallbacks) == sorted(t.name for t in model.task_list)
    assert all(f.latency_s is not None and f.latency_s > 0 for f in compiled.fallbacks)
    assert "the fastest of" in compiled.fallbacks[0].how
    assert compiled.check.ok
    x = np.ones((1, 64), "float32")
    np.testing.assert_allclose(compiled(x), _numpy_mlp(x, weights), rtol=1e-4, atol=1e-4)


def test_records_of_one_model_compile_another_with_the_same_tasks(tuned):
    run, _ = tuned
    deeper = mx.Model.from_relax(DeeperMLP, _weights("w1", "w2", "w3"), name="deeper")
    assert sorted(deeper.tasks["weight"]) == [1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = mx.compile_model(deeper, run.work_dir)  # zero new trials
    assert compiled.fallbacks == () and compiled.check.ok


def test_reopened_run_and_resume_without_remeasuring(tuned, model):
    run, _ = tuned
    reopened = mx.open_model_run(run.work_dir)
    assert reopened.status == "done"
    assert reopened.tasks.equals(run.tasks)
    assert reopened.latency_history.equals(run.latency_history)  # rebuilt from the tasks' events
    assert reopened.progress.elapsed_s == pytest.approx(run.progress.elapsed_s, abs=1.0)
    with pytest.raises(ValueError, match="opened from its folder without its model"):
        reopened.compile()
    before = {name: len(r.events) for name, r in run.task_runs.items()}
    again = mx.tune_model(model, trials=8, work_dir=run.work_dir, **SMALL).wait()
    assert again.status == "done", again.error
    for name, task_run in again.task_runs.items():
        traces = [json.dumps(e.trace) for e in task_run.events]
        assert len(traces) >= before[name]
        assert len(set(traces)) == len(traces), f"{name}: a program was measured twice"
    assert again.tasks["trials"].sum() <= sum(before.values()) + 8


def test_export_then_load_in_a_process_without_torch(tuned, tmp_path, weights):
    run, _ = tuned
    compiled = run.compile()
    bundle = compiled.export(tmp_path / "bundle")
    assert set(bundle.manifest["files"]) == {"model.so", "records.json"}
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        compiled.export(tmp_path / "bundle")
    x = np.random.default_rng(2).uniform(-1, 1, (1, 64)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None  # a process without torch
        import numpy as np
        import msexplore as mx
        m = mx.load_model({str(tmp_path / "bundle")!r})
        np.save({str(tmp_path / "y.npy")!r}, m(np.load({str(tmp_path / "x.npy")!r})))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), _numpy_mlp(x, weights), rtol=1e-4, atol=1e-4)
    records = json.loads((tmp_path / "bundle" / "records.json").read_text())
    assert [r["task"] for r in records] == [r["task"] for r in compiled.records]
    with open(tmp_path / "bundle" / "records.json", "a") as f:
        f.write(" ")
    with pytest.raises(ValueError, match=r"records.json: checksum mismatch"):
        mx.load_model(tmp_path / "bundle")


def test_stop_keeps_what_was_measured(model, tmp_path):
    run = mx.tune_model(model, trials=400, work_dir=tmp_path / "stopped", **SMALL)
    deadline = 300
    import time

    start = time.time()
    while run.progress.trials_done == 0 and time.time() - start < deadline:
        time.sleep(0.1)
    run.stop(timeout=120)
    assert run.status == "stopped", run.error
    done = run.progress.trials_done
    assert 1 <= done < 400
    assert mx.open_model_run(tmp_path / "stopped").progress.trials_done == done


def test_bad_arguments_fail_before_any_work(model, tmp_path):
    with pytest.raises(TypeError, match="tune_model expects an mx.Model"):
        mx.tune_model("mlp", trials=8)
    with pytest.raises(ValueError, match="trials must be a positive integer, got 0"):
        mx.tune_model(model, trials=0, work_dir=tmp_path / "a")
    with pytest.raises(ValueError, match=r"task_modules names task\(s\) \['nope'\] that mlp does not have"):
        mx.tune_model(model, trials=8, work_dir=tmp_path / "b", task_modules={"nope": ["default"]})
    with pytest.raises(ValueError, match="unknown module"):
        mx.tune_model(model, trials=8, work_dir=tmp_path / "c", modules=["no-such-module"])
    with pytest.raises(ValueError, match=r"screen must be None or a factor above 1 \(e.g. 1.5\), got 0.5"):
        mx.tune_model(model, trials=8, work_dir=tmp_path / "d", screen=0.5)
    # the evolutionary search's knobs with the default strategy: refused up front, saying which strategy takes them
    with pytest.raises(ValueError, match=r"strategy 'beam' has no option\(s\) \['population_size'\].*"
                                         r"need strategy='evolutionary'"):
        mx.tune_model(model, trials=8, work_dir=tmp_path / "e", population_size=16)
    with pytest.raises(ValueError, match=r"unknown strategy 'genetic'; accepted: \['evolutionary'"):
        mx.tune_model(model, trials=8, work_dir=tmp_path / "f", strategy="genetic")
    assert not any((tmp_path / d).exists() for d in "abcdef")
    with pytest.raises(ValueError, match="is neither an mx.tune_model folder nor an mx.search folder"):
        mx.compile_model(model, tmp_path)


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    import msexplore as mx
    from test_model_tuning import MLP, _weights
    model = mx.Model.from_relax(MLP, _weights("w1", "w2"), name="mlp")
    mx.tune_model(model, trials=400, work_dir=sys.argv[1], batch_size=4).wait()
    """
)


def test_killed_model_run_loses_no_record_and_resumes_without_remeasuring(model, tmp_path):
    import os
    import signal
    import time
    from pathlib import Path

    from msexplore.search.folder import RunFolder

    work_dir = tmp_path / "killed"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(work_dir), str(Path(__file__).parent)])
    try:
        deadline = time.time() + 240
        while time.time() < deadline:  # until the second task has measured something
            logs = sorted((work_dir / "tasks").glob("*/events.jsonl")) if (work_dir / "tasks").exists() else []
            if len(logs) == 2 and all(len(p.read_text().splitlines()) >= 4 for p in logs):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the child model run measured nothing in 4 minutes")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    folders = sorted(p for p in (work_dir / "tasks").iterdir())
    in_databases = sum(len(RunFolder(p).database_lines()) for p in folders)
    reopened = mx.open_model_run(work_dir)
    assert reopened.status == "interrupted"
    assert reopened.progress.trials_done == in_databases  # every record in a database counts, none lost
    resumed = mx.tune_model(model, trials=8, work_dir=work_dir, **SMALL).wait()
    assert resumed.status == "done", resumed.error
    # a task may be searched twice in one model session (first pass, then the spread): count by folder, not session
    new = sum(len(r.events) for r in resumed.task_runs.values()) - in_databases
    assert 1 <= new <= 8 and resumed.progress.trials_done == new
    assert resumed.progress.measured_in_folder == in_databases + new
    assert f"{new}/8 trials ({in_databases + new} in the folder)" in str(resumed.progress)
    for name, task_run in resumed.task_runs.items():
        assert len(task_run.events) == len(RunFolder(task_run.work_dir).database_lines())
        traces = [json.dumps(e.trace) for e in task_run.events]
        assert len(set(traces)) == len(traces), f"{name}: a program was measured twice"


def _tiny_task_model():
    """Two tasks: a 1x4 by 4x4 matmul called 30 times (most of the estimated time, but a space of a handful of
    programs) and one 1x64 by 64x128 matmul."""
    from tvm import relax

    rng = np.random.default_rng(0)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 64), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            w = relax.const(rng.uniform(-1, 1, (64, 128)).astype("float32"))
            h = bb.emit(relax.op.nn.relu(relax.op.matmul(x, w)))
            h = bb.emit(relax.op.strided_slice(h, axes=[1], begin=[0], end=[4]))
            for _ in range(30):
                w = relax.const(rng.uniform(-1, 1, (4, 4)).astype("float32"))
                h = bb.emit(relax.op.nn.relu(relax.op.matmul(h, w)))
            out = bb.emit_output(h)
        bb.emit_func_output(out)
    return mx.Model.from_relax(bb.get(), name="tiny")


def test_a_task_whose_space_runs_out_gives_its_share_to_the_others(tmp_path):
    model = _tiny_task_model()
    tiny, big = (t.name for t in sorted(model.task_list, key=lambda t: -t.weight))
    run = mx.tune_model(model, trials=200, work_dir=tmp_path / "tiny", **SMALL).wait()
    assert run.status == "done", run.error
    trials = dict(zip(run.tasks["task"], run.tasks["trials"]))
    shares = dict(zip(run.tasks["task"], run.tasks["time_share"]))
    assert shares[tiny] > 0.5, "the test needs the small space to hold most of the estimated time"
    # by estimated time the big task's share was ~10 % of 200; the tiny one ran out of new programs (~90 here)
    assert trials[tiny] < 150, trials
    assert sum(trials.values()) == 200, trials  # ... and what it left was measured on the other task
    assert trials[big] > 50, trials


def test_a_microsecond_model_s_progress_reads_in_microseconds(tuned):
    run, _ = tuned
    assert run.progress.estimated_latency_s < 1e-3  # the test needs a model faster than a millisecond
    assert re.search(r"estimated model latency \d+\.\d µs", str(run.progress)), str(run.progress)  # not "0.000 ms"


def test_tasks_are_searched_with_the_beam_unless_told_and_evolutionary_when_told(model, tuned, tmp_path):
    run, _ = tuned
    assert {f.read_config()["strategy"] for f in run.folder.task_folders()} == {"beam"}
    told = mx.tune_model(model, trials=4, work_dir=tmp_path / "evo", batch_size=2, strategy="evolutionary",
                         population_size=16, init_min_unmeasured=2).wait()
    assert told.status == "done", told.error
    configs = [f.read_config() for f in told.folder.task_folders()]
    assert configs and {c["strategy"] for c in configs} == {"evolutionary"}
    assert {c["strategy_options"]["population_size"] for c in configs} == {16}


def test_a_beam_model_run_keeps_one_strategy_per_task_across_its_sessions(model, tmp_path):
    """strategy="beam" with a knob: every task is searched by the beam (its folder says so, with the knob), and a
    task searched in two sessions is searched by one strategy object (its time-share account spans both)."""
    run = mx.tune_model(model, trials=12, work_dir=tmp_path / "beam", batch_size=4, strategy="beam", beam_size=2)
    run.wait()
    assert run.status == "done", run.error
    assert run.tasks["best_latency_s"].notna().all()
    for folder in run.folder.task_folders():
        config = folder.read_config()
        assert (config["strategy"], config["strategy_options"]) == ("beam", {"beam_size": 2})
    again = [name for name, r in run.task_runs.items() if len({e.session for e in r.events}) > 1]
    assert again, "the budget left no second session for any task; the test needs one"
    for name in again:
        strategy = run._strategies[name]
        batches = {(e.session, e.batch) for e in run.task_runs[name].events}
        assert strategy.beam_size == 2 and strategy.stats.batches == len(batches)  # every session's batches
