"""Shared helpers: timing with repeats, a results table, the machine description, the JSON results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Wall times of ``repeats`` calls (seconds) and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


# After a parallel call both TVM's and OpenMP's worker threads keep spinning for a while before they sleep; a
# contender timed in that window shares the cores with them (measured: torch._int_mm right after a TVM kernel
# took 1.3-3.4 ms instead of 0.3 ms, 50 ms after it 1.3-1.8 ms, 200 ms after it 0.3 ms). Interleaved timings
# pause this long before each contender, so each one is timed with the cores to itself.
SETTLE_S = 0.25


def settle() -> None:
    """Wait until the previous contender's spinning worker threads have gone to sleep."""
    time.sleep(SETTLE_S)


def stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def machine() -> dict[str, Any]:
    import tvm

    from msexplore.target import host_cores, host_target

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {
        "cpu": model,
        "mcpu": str(host_target().attrs["mcpu"]),
        "cores": host_cores(),
        "tvm_threads": tvm.runtime.num_threads(),  # threads TVM's kernels ran on (msexplore sets every core)
        "python": platform.python_version(),
        "tvm": tvm.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = " | ".join(c.ljust(w) for c, w in zip(columns, widths))
    sep = "-|-".join("-" * w for w in widths)
    body = "\n".join(" | ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells)
    return f"{line}\n{sep}\n{body}"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return "" if v is None else str(v)


def write_results(name: str, payload: dict[str, Any]) -> str:
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"machine": machine(), **payload}, f, indent=1, default=str)
    return path
