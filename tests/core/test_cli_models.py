"""``msexplore tune-model FILE.py:FACTORY``: a whole model tuned, compiled, checked and exported from the shell.

Real TVM with a tiny budget: one 4-trial tune of a two-layer Relax MLP, shared by the tests through a module fixture.
The torch variant is tests/pytorch_models/test_cli_torch.py (it needs .venv-torch).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
import shutil
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import press_ctrl_c

import msexplore as mx
from msexplore.cli import main
from msexplore.models.torch_import import TORCH_MISSING

pytestmark = pytest.mark.slow

# a smaller evolutionary population than TVM's 512 keeps each batch's generation quick
FAST = ["--batch-size", "4"]  # tune-model's default strategy, the beam
TASKS = ["fused_matmul1_relu", "fused_matmul_relu"]
TORCH_INSTALLED = importlib.util.find_spec("torch") is not None

FACTORIES = textwrap.dedent(
    '''
    import numpy as np
    import tvm
    from tvm.script import ir as I
    from tvm.script import relax as R


    @I.ir_module
    class MLP:
        @R.function
        def main(x: R.Tensor((1, 64), "float32"), w1: R.Tensor((64, 128), "float32"),
                 w2: R.Tensor((128, 128), "float32")):
            with R.dataflow():
                h1 = R.nn.relu(R.matmul(x, w1))
                h2 = R.nn.relu(R.matmul(h1, w2))
                R.output(h2)
            return h2


    def make():
        rng = np.random.default_rng(0)
        return MLP, {"w1": rng.uniform(-1, 1, (64, 128)).astype("float32"),
                     "w2": rng.uniform(-1, 1, (128, 128)).astype("float32")}


    def broken():
        raise RuntimeError("no weights here")


    def answer():
        return 42


    def pair():
        return "mlp", {}


    def no_main():
        return tvm.IRModule({})


    def bad_params():
        return MLP, [1, 2]


    class FakeModule:  # a torch.nn.Module as far as the CLI can tell without importing torch
        pass


    FakeModule.__module__, FakeModule.__qualname__ = "torch.nn.modules.module", "Module"


    def fake_torch():
        return FakeModule(), ()


    VALUE = 3
    '''
)


def _run(argv: list) -> SimpleNamespace:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return SimpleNamespace(code=code, out=out.getvalue(), err=err.getvalue())


def _numpy_mlp(x: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    w1, w2 = rng.uniform(-1, 1, (64, 128)).astype("float32"), rng.uniform(-1, 1, (128, 128)).astype("float32")
    return np.maximum(np.maximum(x @ w1, 0) @ w2, 0)


@pytest.fixture(scope="module")
def factories(tmp_path_factory):
    path = tmp_path_factory.mktemp("factories") / "models.py"
    path.write_text(FACTORIES)
    return path


@pytest.fixture(scope="module")
def tuned(factories, tmp_path_factory):
    """``msexplore tune-model models.py:make ... --export --json`` once; the tests only read its folders."""
    root = tmp_path_factory.mktemp("cli-models")
    work, bundle = root / "runs" / "mlp", root / "out" / "mlp"
    result = _run(["tune-model", f"{factories}:make", "--trials", 4, "--work-dir", work, "--export", bundle,
                   "--json", *FAST])
    assert result.code == 0, result.err
    return SimpleNamespace(root=root, work=work, bundle=bundle, summary=json.loads(result.out), err=result.err)


def test_tune_model_prints_a_json_summary_and_progress(tuned, factories):
    s = tuned.summary
    assert s["status"] == "done" and s["interrupted"] is False and s["error"] is None
    assert s["compile_error"] is None and s["export_error"] is None
    assert (s["model"], s["factory"], s["source"]) == ("make", f"{factories}:make", "relax")
    assert s["inputs"] == ["x[1,64]f32"]
    assert s["work_dir"] == str(tuned.work) and s["export"] == str(tuned.bundle)
    assert s["trials"] == s["trials_budget"] == s["measured_in_folder"] == 4 and s["failures"] == 0
    assert [t["task"] for t in s["tasks"]] == TASKS and sum(t["trials"] for t in s["tasks"]) == 4
    assert s["estimated_latency_s"] == pytest.approx(sum(t["weight"] * t["best_latency_s"] for t in s["tasks"]))
    assert s["check"]["ok"] is True and s["check"]["against"] == "the untuned Relax build"
    assert s["fallbacks"] == []
    assert "[msexplore] building the model: " in tuned.err
    assert "[msexplore] tuning Model(make, from relax, inputs x[1,64]f32, 2 task(s))" in tuned.err
    assert "[msexplore] fused_matmul1_relu: running: 2/4 trials, 1/2 tasks with a verified schedule" in tuned.err
    assert "[msexplore] fused_matmul_relu: running: 4/4 trials, estimated model latency " in tuned.err


def test_the_work_dir_is_the_notebooks_model_run_and_the_export_loads(tuned):
    run = mx.open_model_run(tuned.work)
    assert run.status == "done" and run.config["model"] == "make" and run.task_names == TASKS
    assert sorted(p.name for p in (tuned.work / "tasks").iterdir()) == sorted(TASKS)
    assert run.tasks["best_latency_s"].tolist() == [t["best_latency_s"] for t in tuned.summary["tasks"]]
    model = mx.load_model(tuned.bundle)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 64)).astype("float32")
    np.testing.assert_allclose(model(x), _numpy_mlp(x), rtol=1e-4, atol=1e-4)


def test_tune_model_again_continues_and_prints_the_tasks_and_the_check(tuned, factories, tmp_path):
    work = tmp_path / "mlp"
    shutil.copytree(tuned.work, work)
    result = _run(["tune-model", f"{factories}:make", "--trials", 1, "--work-dir", work, *FAST])
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith("status: done, 1/1 trials this session over 2 tasks (5 in the work dir, 0 failed), ")
    assert "[msexplore] continuing: the work dir already holds 4 measured candidates" in result.err
    assert ": running: 1/1 trials, estimated model latency " in result.err
    assert "estimated model latency: " in out and " ms\n" in out
    assert "task  weight  trials  failures  best_latency_ms" in out
    assert "check: outputs match the untuned Relax build (max abs error " in out
    assert "fallbacks: none, every task has a tuning record" in out and f"work dir: {work}\n" in out
    assert "exported" not in out
    assert mx.open_model_run(work).tasks["trials"].sum() == 5  # the 4 of the first session are kept


def test_confirm_on_a_model_folder_re_times_every_task_and_compile_follows(tuned, tmp_path):
    work = tmp_path / "mlp"
    shutil.copytree(tuned.work, work)
    result = _run(["confirm", work, "--top", 2, "--rounds", 2, "--json"])
    assert result.code == 0, result.err
    confirmed = json.loads(result.out)["confirmed"]
    assert [row["task"] for row in confirmed] == TASKS and all(row["confirmed_latency_s"] > 0 for row in confirmed)
    run = mx.open_model_run(work)
    assert [run.task_runs[t].best.index for t in TASKS] == [row["pick"] for row in confirmed]
    assert run.tasks["confirmed_latency_s"].tolist() == pytest.approx([row["confirmed_latency_s"] for row in confirmed])
    text = _run(["confirm", work, "--top", 1, "--rounds", 1])
    assert text.code == 0, text.err
    assert text.out.startswith(f"re-timed the 1 fastest of each of 2 task(s) of {work}, 1 rounds in turn; the pick "
                               "changed in 0\n")
    assert "compile() now takes each task's confirmed pick" in text.out


def test_ctrl_c_stops_the_tuning_and_keeps_every_record(tuned, factories, tmp_path, monkeypatch, sigint_raises):
    work = tmp_path / "mlp"
    shutil.copytree(tuned.work, work)
    real_tune_model = mx.tune_model

    def tune_model_then_press_ctrl_c(*args, **kwargs):
        run = real_tune_model(*args, **kwargs)
        pressed = []

        def press_once(task, batch):  # as if Ctrl-C came once the first batch is in (a second one would quit at once)
            if not pressed:
                pressed.append(True)
                press_ctrl_c()

        run.subscribe(press_once)
        return run

    monkeypatch.setattr(mx, "tune_model", tune_model_then_press_ctrl_c)
    result = _run(["tune-model", f"{factories}:make", "--trials", 64, "--work-dir", work,
                   "--export", tmp_path / "out", *FAST])
    assert result.code == 130, result.err
    assert "stopping after the batch being measured; every record is kept" in result.err
    assert f"interrupted, nothing compiled; the records are kept: run again with --work-dir {work}" in result.err
    status = re.match(r"status: stopped, (\d+)/64 trials this session over 2 tasks \((\d+) in the work dir", result.out)
    # a first batch holds up to 4 candidates (fewer when the strategy drops programs already measured)
    assert status and 1 <= int(status[1]) < 64 and int(status[2]) == 4 + int(status[1]), result.out
    # the first batch's live line (the Ctrl-C lands while that batch is reported: it may already say "stopping")
    assert re.search(r": (running|stopping): [1-4]/64 trials, estimated model latency ", result.err), result.err
    assert "task  weight  trials" in result.out
    assert "check:" not in result.out and not (tmp_path / "out").exists()
    run = mx.open_model_run(work)
    assert run.status == "stopped" and run.config["sessions"] == 2
    assert run.tasks["trials"].sum() == int(status[2])


def test_help_names_the_options(capsys):
    assert main(["tune-model", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ["FILE.py:FACTORY", "--trials", "--work-dir", "--modules", "--batch-size", "--seed", "--export",
                   "--overwrite", "--strategy-option", "--json", "(torch.nn.Module in eval mode", "--conv-layout"]:
        assert option in out
    assert main(["--help"]) == 0
    assert "tune-model" in capsys.readouterr().out


ACCEPTED = ("a model factory returns (torch.nn.Module in eval mode, example inputs tuple), a Relax tvm.IRModule, or "
            "(IRModule, params dict)")


@pytest.mark.parametrize(
    ("factory", "extra", "message"),
    [
        ("{file}", [], "expected FILE.py:FACTORY, a Python file and the function in it that returns the model "
                       "(e.g. models/mlp.py:make), got '{file}'"),
        ("{dir}/nope.py:make", [], "no file '{dir}/nope.py'; give FILE.py:FACTORY, the Python file that defines make"),
        ("{file}:build", [], "{file} has no 'build'; the functions and classes it defines: make, broken, answer, pair, "
                             "no_main, bad_params, fake_torch"),
        ("{file}:VALUE", [], "{file}:VALUE is not a function (it is 3); give the function that returns the model"),
        ("{file}:broken", [], "broken() failed: RuntimeError: no weights here"),
        ("{file}:answer", [], f"answer() returned 42 of type int; {ACCEPTED}"),
        ("{file}:pair", [], f"pair() returned ('mlp', {{}}) of type (str, dict); {ACCEPTED}"),
        ("{file}:no_main", [], "Model expects a Relax IRModule with a 'main' function, got an IRModule without 'main'"),
        ("{file}:bad_params", [], "params must be a dict of parameter name -> array, got list"),
        ("{file}:make", ["--modules", "no_such_module"], "--modules: unknown module 'no_such_module'; accepted: "),
        ("{file}:make", ["--overwrite"], "--overwrite applies to --export DIR; give --export too"),
        ("{file}:make", ["--strategy-option", "population_size=many"], "population_size='many' is not a number"),
        ("{file}:make", ["--strategy-option", "population_size=16"], "--strategy evolutionary in the CLI"),
        ("{dir}/nope.py:make", ["--work-dir", "{file}"], "--work-dir '{file}' is a file"),  # checked before loading
        ("{dir}/nope.py:make", ["--export", "{dir}"], "export folder '{dir}' already exists; pass --overwrite"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(factory, extra, message, factories, capsys):
    def fill(text):
        return text.replace("{file}", str(factories)).replace("{dir}", str(factories.parent))

    assert main(["tune-model", fill(factory), "--trials", "4", *[fill(a) for a in extra]]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[-1].startswith("msexplore tune-model: error: "), err
    assert fill(message) in lines[-1]
    assert len([line for line in lines if not line.startswith("[msexplore] ")]) == 1, err


def test_a_broken_file_is_reported_in_one_line(tmp_path, capsys):
    broken = tmp_path / "broken.py"
    broken.write_text("def make(:\n    pass\n")
    assert main(["tune-model", f"{broken}:make", "--trials", "4", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"msexplore tune-model: error: loading {broken} failed: SyntaxError: ") and err.count(
        "\n") == 1


@pytest.mark.skipif(TORCH_INSTALLED, reason="tells what to install when torch is missing: run in the torch-free .venv")
def test_a_torch_model_without_torch_says_what_to_install(factories, tmp_path, capsys):
    importing = tmp_path / "torch_model.py"
    importing.write_text("import torch\n\n\ndef make():\n    return torch.nn.Linear(4, 4).eval(), (torch.ones(1, 4),)")
    for factory in [f"{importing}:make", f"{factories}:fake_torch"]:  # the file imports torch; from_torch does
        assert main(["tune-model", factory, "--trials", "4", "-q"]) == 2
        assert capsys.readouterr().err == f"msexplore tune-model: error: {TORCH_MISSING}\n"


def test_usage_errors_from_argparse_exit_2(factories, capsys):
    for argv in (["tune-model", f"{factories}:make"], ["tune-model", f"{factories}:make", "--trials", "0"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "usage: msexplore tune-model" in err and "error:" in err
    assert main(["tune-model", f"{factories}:make", "--trials", "4", "--conv-layout", "NCHWc"]) == 2
    assert "argument --conv-layout: invalid choice: 'NCHWc' (choose from 'NHWC')" in capsys.readouterr().err


def test_debug_shows_the_traceback_of_the_factory(factories, capsys):
    assert main(["tune-model", f"{factories}:broken", "--trials", "4", "--debug", "-q"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and 'raise RuntimeError("no weights here")' in err
    assert err.rstrip().endswith("broken() failed: RuntimeError: no weights here")
