"""Kernel quality: tuned fp32 kernels vs numpy, PyTorch CPU and the machine's measured FMA peak.

Every operator is tuned twice through ``mx.search`` at the same budget: once in MetaSchedule's default space
(``modules=["default"]``) and once with the AVX-512 micro-kernel module in front of the defaults
(``modules=["default", "x86-avx512"]``, on CPUs that have AVX-512). The best kernel of each search is
rebuilt and timed with TVM's ``time_evaluator``; numpy and PyTorch run the same operator on the same arrays.
All contenders are timed in interleaved rounds (kernel A, kernel B, numpy, torch, then again), so a burst of
load from other processes on this shared machine hits all of them; each figure is the min and the median over
the rounds, and every ratio is taken between numbers of the same run.

numpy: ``a @ b`` for GEMM; for the convolutions im2col (strided window views, one copy) + ``@``, and for the
depthwise convolution a sum of nine shifted, broadcast multiplies. PyTorch (optional: ``make bench`` runs this
suite in .venv-bench, with the [bench] extra): ``torch.matmul`` and ``F.conv{1,2}d`` on channels-last views of
the same memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import settle, stats, table
from .fma_peak import PeakLoop, fma_peak


@dataclass(frozen=True)
class Case:
    label: str
    op: str
    params: dict[str, int]
    trials: int


FULL = [
    Case("GEMM 512^3", "GMM", {"n": 512, "m": 512, "k": 512}, 64),
    Case("GEMM 1024^3", "GMM", {"n": 1024, "m": 1024, "k": 1024}, 64),
    Case("C2D (ResNet conv1)", "C2D", {}, 64),
    Case("C1D", "C1D", {}, 64),
    Case("DEP (depthwise)", "DEP", {}, 64),
]
QUICK = [
    Case("GEMM 256^3", "GMM", {"n": 256, "m": 256, "k": 256}, 4),
    Case("C2D 56x56", "C2D", {"h": 56, "w": 56}, 4),
]
# a smaller evolutionary population in --quick: a smoke run of the plumbing, not a search worth reporting
QUICK_STRATEGY = {"population_size": 64, "init_min_unmeasured": 16}


# ---- the contenders -------------------------------------------------------------------------------------


def numpy_fn(op: str, wl: Any, inputs: list[np.ndarray]) -> Callable[[], Any] | None:
    """A reasonable numpy implementation of ``op`` on ``inputs`` (a zero-argument callable)."""
    p = wl.params
    if op == "GMM":
        x, y = inputs
        return lambda: np.matmul(x, y)
    if op == "C2D":
        x, w = inputs
        s, pad, kh = p["stride"], p["padding"], p["kernel_size"]
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        w2 = np.ascontiguousarray(w.reshape(-1, w.shape[-1]))  # (KH*KW*CI, CO)

        def conv2d():
            win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kh), axis=(1, 2))[:, ::s, ::s]  # N,OH,OW,CI,KH,KW
            cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(-1, w2.shape[0])  # im2col: one copy
            return (cols @ w2).reshape(*win.shape[:3], -1)

        return conv2d
    if op == "C1D":
        x, w = inputs
        s, pad, k = p["stride"], p["padding"], p["kernel_size"]
        xp = np.pad(x, ((0, 0), (pad, pad), (0, 0)))
        w2 = np.ascontiguousarray(w.reshape(-1, w.shape[-1]))

        def conv1d():
            win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=1)[:, ::s]  # N,OL,CI,K
            cols = win.transpose(0, 1, 3, 2).reshape(-1, w2.shape[0])
            return (cols @ w2).reshape(*win.shape[:2], -1)

        return conv1d
    if op == "DEP":
        x, w = inputs
        pad, k = p["padding"], p["kernel_size"]
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        h, wd = x.shape[1], x.shape[2]

        def depthwise():
            out = xp[:, :h, :wd, :] * w[0, 0, 0]
            for r in range(k):
                for c in range(k):
                    if r or c:
                        out += xp[:, r : r + h, c : c + wd, :] * w[0, r, c]
            return out

        return depthwise
    return None


def torch_fn(op: str, wl: Any, inputs: list[np.ndarray]) -> Callable[[], Any] | None:
    """PyTorch CPU on the same memory (channels-last views), or None without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(wl_threads())
    p = wl.params
    t = [torch.from_numpy(a) for a in inputs]
    if op == "GMM":
        return lambda: torch.matmul(t[0], t[1])
    if op == "C2D":
        x = t[0].permute(0, 3, 1, 2)  # NCHW shape, NHWC memory: torch's channels_last
        w = t[1].permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)  # (CO, CI, KH, KW)
        return lambda: F.conv2d(x, w, stride=p["stride"], padding=p["padding"]).permute(0, 2, 3, 1)  # NHWC view
    if op == "C1D":
        x = t[0].permute(0, 2, 1)  # (N, CI, L) view of NLC memory
        w = t[1].permute(2, 1, 0).contiguous()  # (CO, CI, K)
        return lambda: F.conv1d(x, w, stride=p["stride"], padding=p["padding"]).permute(0, 2, 1)  # NLC view
    if op == "DEP":
        x = t[0].permute(0, 3, 1, 2)
        w = t[1][0].permute(2, 0, 1).unsqueeze(1).contiguous(memory_format=torch.channels_last)  # (C, 1, KH, KW)
        return lambda: F.conv2d(x, w, stride=p["stride"], padding=p["padding"], groups=x.shape[1]).permute(0, 2, 3, 1)
    return None


def wl_threads() -> int:
    from msexplore.target import host_cores

    return host_cores()


def _as_numpy(out: Any) -> np.ndarray:
    return out.numpy() if hasattr(out, "numpy") else np.asarray(out)


# ---- tuning and timing ----------------------------------------------------------------------------------


def tune(
    wl: Any, modules: list[str], trials: int, work_dir: str, batch: int, strategy: dict[str, Any]
) -> tuple[Any, float, int, dict[str, Any]]:
    """Best kernel's IRModule, the search wall time, the number of valid candidates, and where the search spent
    its trials (``spent``)."""
    import msexplore as mx

    space = mx.Space(wl, modules=modules)
    t0 = time.perf_counter()
    run = mx.search(space, trials=trials, batch_size=batch, seed=1, work_dir=work_dir, **strategy)
    run.wait()
    wall = time.perf_counter() - t0
    if run.status != "done" or run.best is None:
        raise RuntimeError(f"search of {wl.name} with {modules} ended {run.status}: {run.error}")
    # the fastest few re-timed in turn, as a user is told to before exporting: the search's single timings pick
    # the luckiest of near-equal candidates (README, "Confirming the best")
    confirmed = run.confirm()
    best = run.best
    used = spent(space, run.events, best.index)
    used["confirmed"] = confirmed.drop(columns=["error"]).round(4).to_dict(orient="records")
    return best.mod, wall, sum(1 for e in run.events if e.ok), used


def spent(space: Any, events: Any, best_index: int | None = None) -> dict[str, Any]:
    """Per design space (its index and the modules that made it): trials, valid trials and the best latency, and
    the best candidate's design space and decisions (``best_index``, else the fastest by the search's timing).
    Where a search's best came from, and how many of its trials went where, is what says whether a module's space
    or the search's budget is the limit."""
    origin = {ds.index: "+".join(sorted({rv.module for rv in ds.random_variables})) for ds in space.design_spaces}
    per: dict[int, dict[str, Any]] = {}
    for e in events:
        row = per.setdefault(e.design_space, {"modules": origin.get(e.design_space, "?"), "trials": 0, "valid": 0,
                                              "best_us": None})
        row["trials"] += 1
        if e.ok:
            row["valid"] += 1
            us = e.latency_s * 1e6
            row["best_us"] = us if row["best_us"] is None else min(row["best_us"], us)
    ok = [e for e in events if e.ok]
    best = min(ok, key=lambda e: e.latency_s) if ok else None
    if best_index is not None:
        best = next(e for e in ok if e.index == best_index)
    return {
        "design_spaces": {str(k): v for k, v in sorted(per.items())},
        "best_design_space": None if best is None else best.design_space,
        "best_decisions": None if best is None else {k: _plain(v) for k, v in best.decisions.items()},
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def per_call(fn: Callable[[], Any], min_seconds: float) -> float:
    """Seconds per call of ``fn``, averaged over as many calls as fill ``min_seconds``."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def tvm_timer(mod: Any, wl: Any, target: Any, inputs: list[np.ndarray]) -> tuple[Callable[[], float], np.ndarray]:
    """A function returning one time_evaluator repeat (seconds per call), and the kernel's output."""
    import tvm

    lib = tvm.tirx.build(mod, target)
    dev = tvm.cpu(0)
    arrays = wl.make_inputs(seed=0)
    pos = [k for k in range(len(arrays)) if k not in wl.outputs]
    for k, a in zip(pos, inputs):
        arrays[k] = a
    args = [tvm.runtime.tensor(a, dev) for a in arrays]
    lib["main"](*args)
    out = args[wl.outputs[0]].numpy()
    evaluator = lib.time_evaluator("main", dev, number=1, repeat=1, min_repeat_ms=100)
    return (lambda: float(evaluator(*args).mean)), out


def run(quick: bool = False, only: list[str] | None = None, strategy: str = "evolutionary") -> dict:
    """``strategy``: mx.search's (``--strategy beam``, written as ``kernels-...-beam.json``)."""
    import msexplore as mx
    import msexplore.hardware

    cases = [c for c in (QUICK if quick else FULL) if not only or any(t in c.label for t in only)]
    if not cases:
        labels = [c.label for c in (QUICK if quick else FULL)]
        raise SystemExit(f"--only {only} matches none of the cases {labels}")
    rounds = 3 if quick else 9
    min_s = 0.05 if quick else 0.1
    batch = 4 if quick else 16
    options = {"strategy": strategy, **(QUICK_STRATEGY if quick and strategy == "evolutionary" else {})}
    load_before = os.getloadavg()
    target = mx.host_target()
    spaces = {"default": ["default"]}
    isa = msexplore.hardware.isa_of(target)
    if isa is not None:  # the micro-kernel module of this CPU's widest vector ISA
        spaces[isa.name] = ["default", isa.module]
    peak_before = fma_peak(repeats=5, seconds=0.1 if quick else 0.3)
    root = tempfile.mkdtemp(prefix="msx-bench-kernels-")
    rows, details = [], []
    t_suite = time.perf_counter()
    try:
        try:  # the peak again in every round: this VM's clock varies, so "% of peak" is taken round by round
            peak_loop: PeakLoop | None = PeakLoop(root, seconds=0.1)
        except (RuntimeError, OSError):
            peak_loop = None
        for index, case in enumerate(cases):
            wl = mx.workload(case.op, **case.params)
            inputs = [a for k, a in enumerate(wl.make_inputs(seed=0)) if k not in wl.outputs]
            expected = wl.reference(wl.make_inputs(seed=0))[0]
            rtol, atol = wl.tolerance
            timers: dict[str, Callable[[], float]] = {}
            info: dict[str, Any] = {"case": case.label, "workload": repr(wl), "trials": case.trials}
            for name, modules in spaces.items():
                mod, wall, valid, info[f"spent:{name}"] = tune(
                    wl, modules, case.trials, os.path.join(root, f"{index}-{case.op}-{name}"), batch, options
                )
                timers[f"tvm:{name}"], out = tvm_timer(mod, wl, target, inputs)
                np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)
                info[f"search_s:{name}"] = wall
                info[f"valid:{name}"] = valid
            for name, make in (("numpy", numpy_fn), ("torch", torch_fn)):
                fn = make(case.op, wl, inputs)
                if fn is None:
                    continue
                np.testing.assert_allclose(_as_numpy(fn()), expected, rtol=max(rtol, 1e-4), atol=max(atol, 1e-3))
                timers[name] = lambda fn=fn: per_call(fn, min_s)
            samples: dict[str, list[float]] = {k: [] for k in timers}
            peaks: list[float] = []
            for _ in range(rounds):  # interleaved: load from other processes hits every contender alike
                for name, timer in timers.items():
                    settle()  # the previous contender's spinning threads would share the cores
                    samples[name].append(timer())
                if peak_loop is not None:
                    settle()
                    peaks.append(peak_loop.gflops())
            info["seconds"] = {k: stats(v) for k, v in samples.items()}
            info["fma_peak_per_round"] = peaks
            details.append(info)
            rows.extend(_rows(case, wl.flop, samples, peaks))
            print(table(rows[-len(samples):], COLUMNS), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    peak_after = fma_peak(repeats=5, seconds=0.1 if quick else 0.3)
    peaks_seen = [r["gflops_max"] for r in (peak_before, peak_after) if r and "gflops_max" in r]
    peaks_seen += [g for d in details for g in d["fma_peak_per_round"]]
    peak = max(peaks_seen) if peaks_seen else None
    for row in rows:
        row["% peak"] = None if peak is None else 100 * row["GFLOPS best"] / peak
    suite_s = time.perf_counter() - t_suite
    print(
        f"\nFMA peak (all cores, max of every run): {peak and round(peak)} GFLOPS; suite {suite_s:.0f} s; "
        f"load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f} on {wl_threads()} cores"
    )
    print(table(rows, COLUMNS))
    return {
        "rows": rows,
        "details": details,
        "fma_peak": {"before": peak_before, "after": peak_after, "gflops": peak},
        "rounds": rounds,
        "batch": batch,
        "suite_seconds": suite_s,
        "spaces": spaces,
        "strategy": options,
        # the machine is shared: the 1-minute load average before and after says how much else ran
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
    }


COLUMNS = [
    "kernel", "impl", "GFLOPS best", "GFLOPS median", "x numpy", "x torch", "% peak", "% peak median", "trials",
]


def _rows(case: Case, flop: float, samples: dict[str, list[float]], peaks: list[float]) -> list[dict[str, Any]]:
    """One row per contender. "% peak" (filled in later) is the best round against the highest peak seen;
    "% peak median" the median over rounds of the GFLOPS against the FMA peak measured in the same round."""
    med = {k: float(np.median(v)) for k, v in samples.items()}
    out = []
    for name, values in samples.items():
        shares = [100 * flop / t / 1e9 / p for t, p in zip(values, peaks)]
        out.append({
            "% peak median": float(np.median(shares)) if shares else None,
            "kernel": case.label,
            "impl": name,
            "GFLOPS best": flop / min(values) / 1e9,
            "GFLOPS median": flop / med[name] / 1e9,
            # ratios of medians: >1 means this implementation is faster
            "x numpy": med["numpy"] / med[name] if "numpy" in med else None,
            "x torch": med["torch"] / med[name] if "torch" in med else None,
            "trials": case.trials if name.startswith("tvm") else None,
        })
    return out
