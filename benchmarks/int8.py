"""Growing the space pays: an int8 dense (u8 x s8 -> s32) tuned with the default space and with the
``"x86-vnni"`` module added, against PyTorch's ``torch._int_mm`` on the same shape.

Each space gets the same ``mx.search`` budget (64 trials in full mode); the best kernel of each is then timed again
side by side with torch, interleaved repeat by repeat so all three see the same machine load. torch is optional
(``torch._int_mm`` is s8 x s8 -> s32 through oneDNN: the same multiply-adds, the nearest library kernel); without it
the two spaces are still compared. Goal of issue 6: the enriched space's kernel at least as fast as ``torch._int_mm``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

import numpy as np
import tvm

import msexplore as mx

from ._common import settle, table

SPACES = {"default": ["default"], "default + x86-vnni": ["default", "x86-vnni"]}


def run(quick: bool = False) -> dict:
    m, nk = (32, 256) if quick else (128, 768)
    trials, batch = (8, 8) if quick else (64, 16)
    repeats = 3 if quick else 7
    workload = mx.workload("DENSE_U8S8", m=m, n=nk, k=nk)
    target = mx.host_target()
    rows: list[dict[str, Any]] = []
    kernels: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="msexplore-int8-") as folder:
        for label, modules in SPACES.items():
            space = mx.Space(workload, modules=modules, target=target)
            samples = space.sample(32 if quick else 200, seed=0)
            started = time.perf_counter()
            search = mx.search(space, trials=trials, batch_size=batch, work_dir=f"{folder}/{len(rows)}").wait()
            events = search.events
            best = search.best
            rows.append({
                "space": label,
                "valid samples": f"{len(samples.valid)}/{len(samples)}",
                "valid trials": f"{sum(e.ok for e in events)}/{len(events)}",
                "search s": time.perf_counter() - started,
                "search best us": None if best is None else best.latency_s * 1e6,
            })
            if best is not None:
                kernels[label] = tvm.tirx.build(best.mod, target)
    timings = _side_by_side(workload, kernels, repeats)
    torch_s = statistics.median(timings["torch._int_mm"]) if "torch._int_mm" in timings else None
    for row in rows:
        seconds = timings.get(row["space"])
        row["us"] = None if not seconds else statistics.median(seconds) * 1e6
        row["GOPS"] = None if not seconds else workload.flop / statistics.median(seconds) / 1e9
        row["torch / this"] = None if not (seconds and torch_s) else torch_s / statistics.median(seconds)
    if torch_s is not None:
        rows.append({"space": "torch._int_mm", "us": torch_s * 1e6, "GOPS": workload.flop / torch_s / 1e9,
                     "torch / this": 1.0})
    columns = ["space", "valid samples", "valid trials", "search s", "search best us", "us", "GOPS", "torch / this"]
    print(f"int8 dense {m}x{nk}x{nk}, {trials} trials per space, {repeats} interleaved repeats "
          f"(torch / this >= 1.0: this is at least as fast as torch._int_mm; goal for default + x86-vnni)")
    print(table(rows, columns))
    return {"shape": [m, nk, nk], "trials": trials, "rows": rows, "timings_s": timings, "at": time.time()}


def _side_by_side(workload: mx.Workload, kernels: dict[str, Any], repeats: int) -> dict[str, list[float]]:
    """Median-of-runs seconds per repeat for every kernel (and torch when installed), interleaved."""
    device = tvm.cpu(0)
    arrays = workload.make_inputs(seed=0)
    tensors = [tvm.runtime.tensor(a, device) for a in arrays]
    timers = {
        label: lib.time_evaluator(lib.entry_name, device, number=5, repeat=1, min_repeat_ms=50)
        for label, lib in kernels.items()
    }
    torch_call = _torch_int_mm(workload)
    timings: dict[str, list[float]] = {label: [] for label in timers}
    if torch_call is not None:
        timings["torch._int_mm"] = []
    for _ in range(repeats):
        for label, timer in timers.items():
            settle()
            timings[label].append(float(timer(*tensors).mean))
        if torch_call is not None:
            settle()
            timings["torch._int_mm"].append(_time_python(torch_call))
    return timings


def _torch_int_mm(workload: mx.Workload) -> Any:
    """``torch._int_mm`` on the workload's shape (s8 x s8: torch has no u8 x s8 variant), or None."""
    try:
        import torch
    except ImportError:
        print("torch is not installed: comparing the two spaces only "
              "(`make bench` runs this suite in .venv-bench, which has it)")
        return None
    m, k = workload.args[0].shape
    n = workload.args[2].shape[1]
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.integers(-128, 128, (m, k), dtype=np.int8))
    b = torch.from_numpy(rng.integers(-128, 128, (k, n), dtype=np.int8))
    torch._int_mm(a, b)  # warm up (oneDNN picks its kernel on the first call)
    return lambda: torch._int_mm(a, b)


def _time_python(call: Any, min_s: float = 0.05) -> float:
    call()
    start, runs = time.perf_counter(), 0
    while time.perf_counter() - start < min_s:
        call()
        runs += 1
    return (time.perf_counter() - start) / runs
