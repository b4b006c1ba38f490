"""The ``msexplore`` command: tune, show, confirm, export, workloads, their --help, their errors and exit codes.

Real TVM with a tiny budget: one 8-trial tune of a 32x32x32 GMM, shared by the tests through a module fixture.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import press_ctrl_c

import msexplore as mx
from msexplore.cli import main
from msexplore.export import load_kernel
from msexplore.search.events import EventLog, TrialEvent
from msexplore.search.folder import RunFolder

pytestmark = pytest.mark.slow

SHAPE = "n=32,m=32,k=32"
# a smaller evolutionary population than TVM's 512 keeps each batch's generation quick
FAST = ["--strategy-option", "population_size=32,init_min_unmeasured=8"]
BUNDLE_FILES = {"kernel.so", "manifest.json", "record.json", "schedule.py", "trace.json", "trace.py", "workload.json"}


def _run(argv: list[str]) -> SimpleNamespace:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return SimpleNamespace(code=code, out=out.getvalue(), err=err.getvalue())


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """``msexplore tune GMM ... --export`` once; its work dir and bundle are read (never written) by the tests."""
    root = tmp_path_factory.mktemp("cli")
    work, bundle = root / "runs" / "gmm", root / "out" / "gmm"
    result = _run(["tune", "GMM", "--shape", SHAPE, "--trials", 8, "--batch-size", 8, "--work-dir", work,
                   "--export", bundle, "--json", *FAST])
    assert result.code == 0, result.err
    return SimpleNamespace(root=root, work=work, bundle=bundle, summary=json.loads(result.out), err=result.err)


def _assert_kernel_runs(folder: Path) -> None:
    kernel = load_kernel(folder)
    workload = mx.workload("GMM", n=32, m=32, k=32)
    x, y, z = workload.make_inputs(seed=3)
    (expected,) = workload.reference([x, y, z])
    np.testing.assert_allclose(kernel(x, y), expected, rtol=1e-4, atol=1e-4)


def test_tune_prints_a_json_summary_and_progress(tuned):
    s = tuned.summary
    assert s["status"] == "done" and s["interrupted"] is False and s["error"] is None
    assert s["workload"] == {"kind": "named", "name": "GMM", "params": {"b": 1, "n": 32, "m": 32, "k": 32}}
    assert s["trials"] == s["trials_budget"] == s["measured_in_folder"] == 8
    assert 0 <= s["failures"] < 8
    assert s["best_latency_s"] > 0 and s["best_gflops"] > 0
    assert s["best"]["latency_s"] == s["best_latency_s"] and s["best"]["verified"] is True
    assert "Z.tile_i" in s["best"]["decisions"]
    assert s["work_dir"] == str(tuned.work) and s["export"] == str(tuned.bundle)
    assert "[msexplore] building the search space of Workload(GMM b=1 n=32 m=32 k=32" in tuned.err
    assert "[msexplore] running: 8/8 trials" in tuned.err  # the live line of the batch that finished
    assert "%|" not in tuned.err  # no progress bar: stderr is no terminal (test_cli_progress.py draws one)


def test_tune_export_writes_a_bundle_that_runs_on_numpy(tuned):
    assert {p.name for p in tuned.bundle.iterdir()} == BUNDLE_FILES
    manifest = json.loads((tuned.bundle / "manifest.json").read_text())
    assert manifest["latency_s"] == pytest.approx(tuned.summary["best_latency_s"])
    assert set(manifest["files"]) == BUNDLE_FILES - {"manifest.json"}
    _assert_kernel_runs(tuned.bundle)


def test_show_json_matches_the_run(tuned, capsys):
    assert main(["show", str(tuned.work), "--json", "--top", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "done" and data["work_dir"] == str(tuned.work)
    assert data["config"]["trials"] == 8 and data["config"]["batch_size"] == 8
    assert data["config"]["strategy_options"] == {"population_size": 32, "init_min_unmeasured": 8}
    assert data["progress"]["measured_in_folder"] == len(data["records"]) == 8
    assert data["progress"]["failures"] == sum(not r["ok"] for r in data["records"]) == tuned.summary["failures"]
    assert sum(data["failure_kinds"].values()) == data["progress"]["failures"]
    assert data["best"]["latency_s"] == tuned.summary["best_latency_s"]
    assert [r["trial"] for r in data["records"]] == list(range(8))
    assert all("trace" not in r for r in data["records"])
    latencies = [r["latency_s"] for r in data["top"]]
    assert len(latencies) == min(3, 8 - data["progress"]["failures"]) and latencies == sorted(latencies)
    assert latencies[0] == data["best"]["latency_s"]
    assert isinstance(data["records"][0]["Z.tile_i"], list) and isinstance(data["records"][0]["timestamp"], str)


def test_show_text_has_status_trials_and_the_top_table(tuned, capsys):
    assert main(["show", str(tuned.work), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "status:    done" in out
    assert "trials:    8 measured (8/8 in the last session)" in out
    best = tuned.summary["best"]
    assert f"best:      trial {best['trial']}, {best['latency_s'] * 1e3:.4f} ms" in out
    assert "top 2:" in out and "latency_ms" in out and "Z.tile_i" in out


def test_export_writes_another_bundle_and_refuses_to_overwrite(tuned, capsys):
    target = tuned.root / "out" / "second"
    assert main(["export", str(tuned.work), str(target), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["path"] == str(target) and data["trial"] == tuned.summary["best"]["trial"]
    assert set(data["manifest"]["files"]) == BUNDLE_FILES - {"manifest.json"}
    assert all((target / name).is_file() for name in BUNDLE_FILES)
    _assert_kernel_runs(target)

    assert main(["export", str(tuned.work), str(target)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(tuned.work), str(target), "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert f"bundle:   {target}" in out and "load_kernel" in out
    _assert_kernel_runs(target)


def test_confirm_re_times_the_fastest_and_show_and_export_follow(tuned, tmp_path, capsys):
    work = tmp_path / "gmm"
    shutil.copytree(tuned.work, work)
    assert main(["confirm", str(work), "--top", "3", "--rounds", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    confirmed = data["confirmed"]
    assert len(confirmed) == 3 and all(row["timings"] == 6 for row in confirmed)
    assert data["best"]["trial"] == confirmed[0]["index"]
    assert data["best"]["confirmed_s"] * 1e3 == pytest.approx(confirmed[0]["confirmed_ms"])

    assert main(["show", str(work)]) == 0
    out = capsys.readouterr().out
    assert f"best:      trial {confirmed[0]['index']}, " in out and " GFLOPS, confirmed " in out
    assert main(["export", str(work), str(tmp_path / "out"), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["trial"] == confirmed[0]["index"]
    assert exported["manifest"]["latency_s"] == pytest.approx(data["best"]["confirmed_s"])

    assert main(["confirm", str(work), "--top", "2", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "re-timed the 2 fastest" in out and "confirmed_ms" in out and "best:      trial" in out


def test_tune_again_continues_and_ctrl_c_stops_keeping_every_record(tuned, tmp_path, monkeypatch, sigint_raises):
    work = tmp_path / "gmm"
    shutil.copytree(tuned.work, work)
    real_search = mx.search

    def search_then_press_ctrl_c(*args, **kwargs):
        run = real_search(*args, **kwargs)
        pressed = []

        def press_once(batch):  # as if Ctrl-C came once the first batch is in (a second one would quit at once)
            if not pressed:
                pressed.append(True)
                press_ctrl_c()

        run.subscribe(press_once)
        return run

    monkeypatch.setattr(mx, "search", search_then_press_ctrl_c)
    result = _run(["tune", "GMM", "--shape", SHAPE, "--trials", 64, "--batch-size", 4, "--work-dir", work,
                   "--json", *FAST])
    assert result.code == 130, result.err
    assert "continuing: the work dir already holds 8 measured candidates" in result.err
    assert "stopping after the batch being measured" in result.err
    s = json.loads(result.out)
    assert s["status"] == "stopped" and s["interrupted"] is True and s["export"] is None
    assert 1 <= s["trials"] < 64 and s["measured_in_folder"] == 8 + s["trials"]
    run = mx.open_run(work)
    assert run.status == "stopped" and run.config["sessions"] == 2
    before = mx.open_run(tuned.work).events
    assert [(e.index, e.latency_s) for e in run.events[:8]] == [(e.index, e.latency_s) for e in before]


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ([], ["tune", "show", "confirm", "export", "workloads", "Exit codes"]),
        (["tune"], ["--shape", "--trials", "--work-dir", "--strategy", "--batch-size", "--seed", "--target",
                    "--modules", "--export", "--overwrite", "--rpc-tracker", "--rpc-key", "--no-check", "--screen",
                    "--json"]),
        (["show"], ["WORK_DIR", "--top", "--json"]),
        (["confirm"], ["WORK_DIR", "--top", "--rounds", "--json"]),
        (["export"], ["WORK_DIR", "OUT_DIR", "--overwrite", "--json"]),
        (["workloads"], ["NAME", "--json"]),
    ],
)
def test_help_exits_0_and_names_the_options(command, options, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tune", "FOO"], "unknown operator 'FOO'; valid names: GMM, C1D, C2D"),
        (["tune", "GMM", "--shape", "n512"], "--shape: expected KEY=VALUE pairs"),
        (["tune", "GMM", "--shape", "n=big"], "--shape: n='big' is not an integer"),
        (["tune", "GMM", "--shape", "q=4"], "GMM has no parameter 'q'; its parameters (with defaults) are: b=1 n=512"),
        (["tune", "GMM", "--shape", "n=0"], "GMM parameter 'n' must be a positive integer"),
        (["tune", "GMM", "--target", "llvm -num-cores two"], "--target: target option -num-cores takes an integer"),
        (["tune", "GMM", "--target", "{'kind': 'llvm'"], "--target: "),
        (["tune", "GMM", "--rpc-tracker", "localhost"], "--rpc-tracker: expected HOST:PORT"),
        (["tune", "GMM", "--rpc-key", "board"], "--rpc-key needs --rpc-tracker"),
        (["tune", "GMM", "--rpc-tracker", "localhost:9190"], "--rpc-tracker needs --rpc-key"),
        (["tune", "GMM", "--overwrite"], "--overwrite applies to --export"),
        (["tune", "GMM", "--modules", ","], "--modules: give at least one module name"),
        (["tune", "GMM", "--modules", "no_such_module"],
         "--modules: unknown module 'no_such_module'; accepted: 'default'"),
        (["tune", "GMM", "--strategy-option", "population_size=many"], "population_size='many' is not a number"),
        (["workloads", "FOO"], "unknown operator 'FOO'"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"msexplore {argv[0]}: error: "), err
    assert message in err


@pytest.mark.parametrize(
    "argv",
    [["tune", "GMM", "--trials", "0"], ["tune", "GMM", "--strategy", "annealing"], ["tune"], ["frobnicate"], [],
     ["tune", "GMM", "--screen", "1"], ["tune", "GMM", "--screen", "twice"]],
)
def test_usage_errors_from_argparse_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: msexplore" in err and "error:" in err
    if "--screen" in argv:
        assert "expected a factor above 1 (e.g. 1.5) or 'none'" in err


def test_screen_reaches_the_search(tuned, monkeypatch):
    """The default factor is recorded in the run; ``--screen none`` and ``--screen 3`` reach ``mx.search``."""
    assert json.loads((tuned.work / "run.json").read_text())["screen"] == 1.5
    seen = []

    def search(*args, **kwargs):
        seen.append(kwargs["screen"])
        raise mx.SpaceError("stop here")

    monkeypatch.setattr(mx, "search", search)
    for flag, expected in (("none", None), ("3", 3.0)):
        assert _run(["tune", "GMM", "--shape", SHAPE, "--screen", flag]).code != 0
        assert seen[-1] == expected


def test_debug_shows_the_traceback(capsys):
    assert main(["tune", "FOO", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith(
        "valid names: GMM, C1D, C2D, C3D, DEP, DIL, GRP, T2D, CAP, NRM, SFM, CBR, TBG, DENSE_U8S8, C2D_U8S8"
    )


def test_folders_that_are_files_or_exist_are_refused_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a run")
    assert main(["tune", "GMM", "--work-dir", str(a_file)]) == 2
    assert f"--work-dir {str(a_file)!r} is a file" in capsys.readouterr().err
    taken = tmp_path / "taken"
    taken.mkdir()
    assert main(["tune", "GMM", "--work-dir", str(tmp_path / "w"), "--export", str(taken)]) == 2
    assert f"export folder {str(taken)!r} already exists; pass --overwrite" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
    assert main(["export", str(tmp_path), str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_show_and_export_refuse_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["show", str(tmp_path)]) == 2
    assert "has no run.json: it is not the folder of an mx.search run" in capsys.readouterr().err
    assert main(["show", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["export", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "not the folder of an mx.search run" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_run_without_a_valid_candidate_exits_3_on_export_and_confirm(tmp_path, capsys):
    gmm = mx.workload("GMM", n=32, m=32, k=32)
    RunFolder(tmp_path).write_config({"workload": gmm.to_json(), "target": "llvm", "trials": 2, "check": True})
    EventLog(tmp_path / "events.jsonl").append(
        TrialEvent(index=k, session=0, batch=0, time_s=1.0, timestamp=0.0, design_space=0, decisions={},
                   run_error=f"Traceback ...\nRuntimeError: boom {k}")
        for k in range(2)
    )
    assert main(["show", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 failed (0 build, 2 run, 0 wrong result)" in out and "best:      no valid candidate" in out
    assert main(["export", str(tmp_path), str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "no valid candidate among the 2 measured" in err and "trial 1: RuntimeError: boom 1" in err
    assert main(["confirm", str(tmp_path)]) == 3
    assert "no valid candidate among the 2 measured" in capsys.readouterr().err


def test_workloads_lists_names_parameters_and_defaults(capsys):
    assert main(["workloads"]) == 0
    out = capsys.readouterr().out
    for name in mx.workload_names():
        assert f"\n{name:<4} " in f"\n{out}"
    assert "GMM  b=1 n=512 m=512 k=512\n     X[1,512,512]f32 Y[1,512,512]f32 -> Z[1,512,512]f32" in out
    assert main(["workloads", "GMM", "SFM", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data] == ["GMM", "SFM"]
    assert data[0]["params"] == {"b": 1, "n": 512, "m": 512, "k": 512} and data[0]["flop"] == 2 * 512**3
    assert data[0]["args"][2] == {"name": "Z", "shape": [1, 512, 512], "dtype": "float32", "output": True}


def test_the_installed_command_and_python_m():
    script = Path(sys.executable).with_name("msexplore")
    assert script.exists(), "run `pip install -e .` to install the console script"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage: msexplore" in result.stdout and "tune" in result.stdout
    result = subprocess.run([sys.executable, "-m", "msexplore", "tune", "FOO"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "msexplore tune: error: unknown operator 'FOO'; valid names: GMM, C1D, C2D, C3D, DEP, DIL, GRP, T2D, CAP, "
        "NRM, SFM, CBR, TBG, DENSE_U8S8, C2D_U8S8"
    )
