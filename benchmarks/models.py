"""Whole models from PyTorch: msexplore's tune_model + compile against PyTorch eager and plain TVM tune_relax.

Runs in .venv-torch (`make bench`, or `.venv-torch/bin/python -m benchmarks models`). For each model, at the same
trial budget: msexplore's tuning wall time, its first progress event, trials per task, the compiled latency
against PyTorch eager (median of interleaved rounds, same threads), and plain ``tune_relax`` + ``compile_relax``
(TVM's own path, exact math, its default task scheduler) on the same model.
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import os
import re
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from ._common import SETTLE_S, table

TRIALS, QUICK_TRIALS = 1000, 48


def modules() -> list[str]:
    """msexplore's side uses every fp32 CPU module it ships that this CPU can run (each applies only where its
    ``when`` matches a block)."""
    import msexplore.hardware

    return ["default", *msexplore.hardware.cpu_modules()]


ROUNDS = 9


def _models(quick: bool) -> dict[str, tuple[Any, tuple, dict[str, Any]]]:
    """label -> (module, example inputs, msexplore's Model options)."""
    import torch

    class MLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(512, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                torch.nn.Linear(1024, 10),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers(x)

    class BasicBlock(torch.nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = torch.nn.BatchNorm2d(c)
            self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = torch.nn.BatchNorm2d(c)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + x)

    torch.manual_seed(0)
    side = 14 if quick else 56
    encoder = torch.nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, activation="gelu", batch_first=True)
    return {
        "MLP 512-1024-1024-10": (MLP().eval(), (torch.randn(1, 512),), {}),
        # channels-last convolutions: the layout the x86-avx512 micro-kernel needs (plain TVM keeps NCHW)
        f"ResNet basic block 64x{side}x{side}": (
            BasicBlock(64).eval(), (torch.randn(1, 64, side, side),), {"conv_layout": "NHWC"}
        ),
        "encoder layer (seq 128, hidden 256, 4 heads)": (encoder.eval(), (torch.randn(1, 128, 256),), {}),
    }


def run(quick: bool = False, only: list[str] | None = None, strategy: str = "evolutionary") -> dict[str, Any]:
    import torch

    import msexplore as mx

    torch.set_num_threads(mx.target.host_cores())
    trials = QUICK_TRIALS if quick else TRIALS
    rows = []
    columns = [
        "model", "tasks", "trials", "tune_s", "first_event_s", "msx_us", "torch_us", "torch/msx", "plain_tune_s",
        "plain_us", "torch/plain", "tune_s/plain", "max_abs_error",
    ]
    for label, (module, inputs, options) in _models(quick).items():
        if only and not any(text in label for text in only):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(_one(label, module, inputs, options, trials, tmp, strategy))
        # each model takes up to an hour at the real budget: its row is shown (with its trials per task) as it ends
        print(table(rows[-1:], columns), "\ntrials per task:", rows[-1]["trials_per_task"], flush=True)
        print("where msexplore's time went:", rows[-1]["msx_time"], "\nplain tune_relax (from its log):",
              rows[-1]["plain_time"], flush=True)
    print(table(rows, columns))
    return {"trials": trials, "modules": modules(), "strategy": strategy, "rows": rows}


def _one(label: str, module: Any, inputs: tuple, options: dict[str, Any], trials: int, tmp: str,
         strategy: str) -> dict[str, Any]:
    import msexplore as mx

    model = mx.Model.from_torch(module, inputs, name=label.split(" ")[0], **options)
    started = time.perf_counter()
    run = mx.tune_model(model, trials=trials, modules=modules(), work_dir=os.path.join(tmp, "msx"), strategy=strategy)
    first = None
    while not run.ended:
        if first is None and len(run.latency_history):
            first = time.perf_counter() - started
        time.sleep(0.05)
    tune_s = time.perf_counter() - started
    if run.status != "done":
        raise RuntimeError(f"{label}: {run.status}: {run.error}")
    compiled = run.compile()
    plain_s, plain = _plain_tvm(model, module, inputs, trials, os.path.join(tmp, "plain"))
    ours, theirs, plains = _interleaved(compiled, plain, module, inputs)
    per_task = {row.task: int(row.trials) for row in run.tasks.itertuples()}
    return {
        "model": label,
        "model_options": options,
        "tasks": len(model.task_list),
        "trials": int(run.tasks["trials"].sum()),
        "trials_per_task": per_task,
        "tune_s": tune_s,
        "first_event_s": first,
        "msx_us": ours * 1e6,
        "torch_us": theirs * 1e6,
        "torch/msx": theirs / ours,
        "plain_tune_s": plain_s,
        "plain_us": plains * 1e6,
        "torch/plain": theirs / plains,
        "tune_s/plain": tune_s / plain_s,
        "max_abs_error": compiled.check.max_abs_error,
        "fallbacks": [str(f) for f in compiled.fallbacks],
        "msx_time": {**dataclasses.asdict(run.timings), "other_s": run.timings.other_s},
        "plain_time": _plain_breakdown(os.path.join(tmp, "plain")),
    }


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\S* \[INFO\] \[task_scheduler\.cc:\d+\] (.*)$")


def _plain_breakdown(work_dir: str) -> dict[str, float] | None:
    """Plain tune_relax's seconds generating, building and measuring (+ its callbacks), from the timestamps of its
    task scheduler's log lines ("picks Task" -> "to builder" -> "to runner" -> the next pick); 1 s resolution."""
    steps: list[tuple[float, str]] = []
    for path in glob.glob(os.path.join(work_dir, "logs", "*")):
        with open(path, errors="replace") as f:
            for line in f:
                m = _LOG_LINE.match(line.strip())
                if not m:
                    continue
                kind = ("pick" if "picks Task" in m.group(2) else "build" if "to builder" in m.group(2)
                        else "run" if "to runner" in m.group(2) else None)
                if kind:
                    stamp = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
                    steps.append((stamp, kind))
    steps.sort(key=lambda step: step[0])
    out = {"generate_s": 0.0, "build_s": 0.0, "measure_and_update_s": 0.0, "iterations": 0}
    for k in range(len(steps) - 3):
        (t0, a), (t1, b), (t2, c), (t3, _) = steps[k : k + 4]
        if (a, b, c) == ("pick", "build", "run"):
            out["generate_s"] += t1 - t0
            out["build_s"] += t2 - t1
            out["measure_and_update_s"] += t3 - t2
            out["iterations"] += 1
    return out if out["iterations"] else None


def _plain_tvm(model: Any, module: Any, inputs: tuple, trials: int, work_dir: str) -> tuple[float, Any]:
    """TVM's own path on the same model: tune_relax with its defaults (64 candidates per iteration, its gradient task
    scheduler, its evolutionary search), then compile_relax (exact math).

    With msexplore's builder (no re-import of TVM's tensor intrinsics per build): with TVM's default one every build
    of the first task timed out here, so the comparison would say nothing about the search itself.
    """
    import tvm
    from tvm import relax
    from tvm.s_tir import meta_schedule as ms

    from msexplore.measure import make_builder
    from msexplore.models.torch_import import import_torch

    mod = import_torch(module, inputs)
    prepared = mx_prepare(mod, model.target)
    started = time.perf_counter()
    database = ms.relax_integration.tune_relax(
        prepared, None, model.target, work_dir, max_trials_global=trials, builder=make_builder(local=False)
    )
    tune_s = time.perf_counter() - started
    with tvm.transform.PassContext(opt_level=3):
        executable = ms.relax_integration.compile_relax(database, mod, model.target, None)
    return tune_s, relax.VirtualMachine(executable, tvm.cpu())


def mx_prepare(mod: Any, target: Any) -> Any:
    from msexplore.models.model import prepare

    return prepare(mod, target)


def _interleaved(compiled: Any, plain_vm: Any, module: Any, inputs: tuple) -> tuple[float, float, float]:
    """Median seconds per call of msexplore's build, PyTorch eager and plain TVM, timed round by round."""
    import torch
    import tvm

    arrays = [x.numpy() for x in inputs]
    tensors = [tvm.runtime.tensor(a) for a in arrays]
    ours = compiled.timer(number=10, min_repeat_ms=100)
    plain = plain_vm.time_evaluator("main", tvm.cpu(), number=10, repeat=1, min_repeat_ms=100)
    a, b, c = [], [], []
    for _ in range(ROUNDS):
        time.sleep(SETTLE_S)
        a.append(float(ours(*tensors).results[0]))
        time.sleep(SETTLE_S)
        with torch.no_grad():
            start = time.perf_counter()
            n = 0
            while time.perf_counter() - start < 0.1 or n < 10:
                module(*inputs)
                n += 1
            b.append((time.perf_counter() - start) / n)
        time.sleep(SETTLE_S)
        c.append(float(plain(*tensors).results[0]))
    return statistics.median(a), statistics.median(b), statistics.median(c)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    run(quick=True)
