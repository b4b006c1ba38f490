"""The CLI's progress on stderr: a tqdm bar with an ETA when stderr is a terminal, plain lines otherwise, and a
stdout that stays the result (JSON that parses with ``--json``).

The bar's logic is tested on a fake terminal stream (fast); then ``msexplore tune`` and ``msexplore export`` run
for real with stderr on a pseudo-terminal (``os.openpty``), as a person at a terminal sees them.
"""

from __future__ import annotations

import argparse
import fcntl
import io
import json
import os
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from msexplore.cli._progress import StepProgress, TrialProgress, wants_bar

BAR = re.compile(r"(\d+)%\|")  # tqdm's "50%|████      | 4/8 [00:03<00:03, ...]"
ETA = re.compile(r"\[\d\d:\d\d<\d\d:\d\d")  # elapsed < remaining: the ETA
FAST = ["--strategy-option", "population_size=32,init_min_unmeasured=8"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _args(**flags: bool) -> argparse.Namespace:
    return argparse.Namespace(json=flags.get("json", False), quiet=flags.get("quiet", False))


# ---- the logic, on a fake terminal -----------------------------------------------------------------------------


def test_a_bar_only_for_a_terminal_without_json_or_quiet():
    assert wants_bar(_args(), FakeTerminal())
    assert not wants_bar(_args(json=True), FakeTerminal())
    assert not wants_bar(_args(quiet=True), FakeTerminal())
    assert not wants_bar(_args(), io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not wants_bar(_args(), closed)  # isatty raises ValueError on a closed stream


def test_trial_progress_draws_a_bar_with_an_eta_on_a_terminal():
    err = FakeTerminal()
    progress = TrialProgress(err, 8, bar=True, desc="tune")
    progress.update(4, "running: 4/8 trials", postfix="best 1 ms, 0 failed")
    progress.update(8, "running: 8/8 trials", postfix="best 0.5 ms, 1 failed")
    progress.close()
    text = err.getvalue()
    assert "tune:  50%|" in text and "4/8" in text and "tune: 100%|" in text and "8/8" in text
    assert ETA.search(text), text
    assert "best 0.5 ms, 1 failed" in text and "[msexplore]" not in text


def test_trial_progress_prints_lines_elsewhere_and_nothing_when_quiet():
    err = io.StringIO()
    progress = TrialProgress(err, 8, bar=False)
    progress.update(4, "running: 4/8 trials", postfix="ignored without a bar")
    progress.tick()
    progress.close()
    assert err.getvalue() == "[msexplore] running: 4/8 trials\n"
    quiet = io.StringIO()
    TrialProgress(quiet, 8, bar=False, lines=False).update(4, "running: 4/8 trials")
    assert quiet.getvalue() == ""


def test_step_progress_names_the_running_step_and_ends_full():
    err = FakeTerminal()
    with StepProgress(err, 2, bar=True, desc="export") as steps:
        steps.begin("reading the run")
        steps.begin("compiling")
    text = err.getvalue()
    assert "export: reading the run:   0%|" in text and "export: compiling:  50%|" in text
    assert "export: compiling: 100%|" in text and "2/2" in text
    lines = io.StringIO()
    with StepProgress(lines, 1, bar=False, lines=True) as steps:
        steps.begin("compiling the model")
    assert lines.getvalue() == "[msexplore] compiling the model\n"


def test_a_failing_step_leaves_the_bar_where_it_failed():
    err = FakeTerminal()
    with pytest.raises(RuntimeError, match="boom"), StepProgress(err, 2, bar=True) as steps:
        steps.begin("reading")
        raise RuntimeError("boom")
    assert "reading:   0%|" in err.getvalue() and "100%|" not in err.getvalue()


# ---- the real commands, stderr on a pseudo-terminal ---------------------------------------------------------------


def run_in_terminal(argv: list[str], cwd: Path, timeout: int = 600) -> SimpleNamespace:
    """``python -m msexplore ARGV`` with stderr on a pseudo-terminal (160 columns) and stdout on a pipe."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "msexplore", *map(str, argv)], cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def read_terminal() -> None:  # until the child closes it (EIO on Linux), so the child never blocks on it
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
        reader.join(10)
        os.close(master)
    return SimpleNamespace(code=proc.returncode, out=out.decode(), err=b"".join(chunks).decode(errors="replace"))


@pytest.mark.slow
def test_tune_and_export_in_a_terminal_draw_bars_and_json_stays_clean(tmp_path):
    work, bundle = tmp_path / "runs" / "gmm", tmp_path / "gmm-kernel"
    tuned = run_in_terminal(["tune", "GMM", "--shape", "n=32,m=32,k=32", "--trials", 8, "--batch-size", 4,
                             "--work-dir", work, "--export", bundle, *FAST], tmp_path)
    assert tuned.code == 0, tuned.err[-3000:]
    assert "tune:  50%|" in tuned.err and "tune: 100%|" in tuned.err and "8/8" in tuned.err, tuned.err[-3000:]
    assert ETA.search(tuned.err), tuned.err[-3000:]
    assert "[msexplore] running:" not in tuned.err  # the bar replaces the lines
    assert re.search(r"export: trial \d+: compiling, checking, writing .*100%\|", tuned.err), tuned.err[-2000:]
    assert tuned.out.startswith("status: done, 8/8 trials") and "%|" not in tuned.out

    exported = run_in_terminal(["export", work, tmp_path / "again"], tmp_path)
    assert exported.code == 0, exported.err
    assert "export: reading" in exported.err and "export: trial" in exported.err and "100%|" in exported.err
    assert "exported trial" in exported.out and "%|" not in exported.out

    as_json = run_in_terminal(["export", work, tmp_path / "third", "--json"], tmp_path)
    assert as_json.code == 0, as_json.err
    assert not BAR.search(as_json.err), as_json.err
    assert json.loads(as_json.out)["path"] == str(tmp_path / "third")


@pytest.mark.slow
def test_tune_on_a_pipe_prints_lines_and_no_bar(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "msexplore", "tune", "GMM", "--shape", "n=32,m=32,k=32", "--trials", "4",
         "--batch-size", "4", "--work-dir", str(tmp_path / "gmm"), *FAST],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "[msexplore] running: 4/4 trials" in result.stderr and not BAR.search(result.stderr), result.stderr
    assert result.stdout.startswith("status: done, 4/4 trials")


def test_tune_model_shows_the_task_and_the_estimate_on_its_bar():
    from msexplore.cli.tune_model import _show_progress

    progress = SimpleNamespace(status="running", trials_done=8, trials_total=16, tasks=2, tasks_verified=1,
                               estimated_latency_s=None, elapsed_s=3.0)
    run = SimpleNamespace(progress=progress)
    err = FakeTerminal()
    bar = TrialProgress(err, 16, bar=True, desc="tune-model")
    _show_progress(run, "fused_matmul_relu", bar)
    progress.trials_done, progress.tasks_verified, progress.estimated_latency_s = 16, 2, 2.5e-5
    _show_progress(run, "fused_matmul_add", bar)
    bar.close()
    text = err.getvalue()
    assert "tune-model:  50%|" in text and "8/16" in text and "fused_matmul_relu, 1/2 tasks verified" in text
    assert "tune-model: 100%|" in text and "fused_matmul_add, 2/2 tasks verified, model 0.025 ms" in text
    assert ETA.search(text)
    lines = io.StringIO()
    _show_progress(run, "fused_matmul_add", TrialProgress(lines, 16, bar=False))
    assert lines.getvalue().startswith("[msexplore] fused_matmul_add: running: 16/16 trials, estimated model latency")
