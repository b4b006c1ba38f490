"""The named operator set against PyTorch: ``python -m benchmarks operators [--only SFM,NRM] [--quick]``.

Every operator of the paper's set (``PAPER_NAMES``) at its default shape is tuned by ``mx.search`` twice at the
same budget: in MetaSchedule's default space, and with the hardware modules msexplore ships for this CPU
(``x86-avx512``, ``x86-row-reduction``; the search is not repeated where they leave the default space as it is).
The best kernel of each is re-timed beside PyTorch CPU in both layouts where there are two (channels-last views
of the same memory, and contiguous NC... copies made once outside the timing; a ratio is taken against the faster
of the two) and numpy where it has a reasonable implementation. All contenders run in interleaved rounds, each
after a pause so no other thread pool is still spinning (``benchmarks/kernels.py`` times the same way; its
helpers are reused), on every core and again on one core: on a shared machine the one-core figures are the ones a
neighbour's load disturbs least. PyTorch comes from ``.venv-torch`` (``make bench``); without it those columns stay
empty.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._common import settle, stats, table
from .fma_peak import PeakLoop
from .kernels import QUICK_STRATEGY, numpy_fn, per_call, tune, tvm_timer, wl_threads

TRIALS = 256
QUICK_TRIALS = 8
# --quick: shapes small enough for a smoke run of the plumbing (the default shapes of the convolutions take minutes)
QUICK_PARAMS = {
    "GMM": {"n": 128, "m": 128, "k": 128}, "C2D": {"h": 56, "w": 56}, "C3D": {"d": 4, "h": 32, "w": 32},
    "DIL": {"h": 56, "w": 56}, "CBR": {"h": 56, "w": 56},
}
COLUMNS = ["operator", "impl", "threads", "us median", "us min", "x torch", "x numpy", "GFLOPS", "% peak", "trials",
           "valid"]


# ---- the contenders besides TVM ------------------------------------------------------------------------------


def numpy_fns(op: str, wl: Any, inputs: list[np.ndarray]) -> Callable[[], Any] | None:
    """numpy where it has a reasonable implementation: kernels.py's GEMM/convolutions, and the row operators."""
    if op in ("GMM", "C1D", "C2D", "DEP"):
        return numpy_fn(op, wl, inputs)
    if op == "SFM":
        (x,) = inputs

        def softmax() -> np.ndarray:
            e = np.exp(x - x.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        return softmax
    if op == "NRM":
        (a,) = inputs
        return lambda: np.sqrt(np.einsum("bij,bij->b", a, a))
    if op == "TBG":
        q, v = inputs
        return lambda: np.matmul(q.transpose(0, 2, 1, 3), v.transpose(0, 2, 3, 1))
    return None


def torch_fns(op: str, wl: Any, inputs: list[np.ndarray]) -> dict[str, Callable[[], Any]]:
    """PyTorch CPU, each returning the result in the workload's layout (a view); {} without torch.

    ``torch:channels-last`` reads the workload's channels-last memory through permuted views, ``torch:contiguous``
    copies made once (NCW/NCHW/NCDHW), as a PyTorch model would hold them.
    """
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    torch.set_num_threads(wl_threads())
    p, t = wl.params, [torch.from_numpy(a) for a in inputs]
    if op == "GMM":
        return {"torch": lambda: torch.matmul(t[0], t[1])}
    if op == "SFM":
        return {"torch": lambda: torch.softmax(t[0], dim=1)}
    if op == "NRM":
        return {"torch": lambda: torch.linalg.vector_norm(t[0], dim=(1, 2))}
    if op == "TBG":
        return {"torch": lambda: torch.matmul(t[0].permute(0, 2, 1, 3), t[1].permute(0, 2, 3, 1))}
    if op == "CAP":
        return _torch_capsule(torch, F, p, t)
    conv, dims = {"C1D": (F.conv1d, 1), "C3D": (F.conv3d, 3), "T2D": (F.conv_transpose2d, 2)}.get(op, (F.conv2d, 2))
    x = t[0].permute(0, dims + 1, *range(1, dims + 1))  # (N, C, *spatial) view of channels-last memory
    kernel = t[1]
    if op == "DEP":
        kernel = kernel[0].unsqueeze(-2)  # (K, K, 1, C): one input channel per group
    # (*K, CI/g, CO) -> (CO, CI/g, *K); a transposed convolution's weight is (CI, CO, *K)
    order = (dims, dims + 1) if op == "T2D" else (dims + 1, dims)
    w = kernel.permute(*order, *range(dims))
    kw: dict[str, Any] = {"stride": p.get("stride", p.get("strides")), "padding": p["padding"]}
    if op != "T2D":
        kw["dilation"] = p.get("dilation", 1)
        kw["groups"] = x.shape[1] if op == "DEP" else p.get("groups", 1)
    memory = {1: torch.contiguous_format, 2: torch.channels_last, 3: torch.channels_last_3d}[dims]
    back = (0, *range(2, dims + 2), 1)  # (N, C, *spatial) -> the workload's (N, *spatial, C)
    variants = {
        "torch:channels-last": (x, w.contiguous(memory_format=memory)),
        "torch:contiguous": (x.contiguous(), w.contiguous()),
    }
    if op == "CBR":
        bias, offset, scale = (a.view(1, -1, 1, 1) for a in t[2:5])

        def conv_bn_relu(xx: Any, ww: Any) -> Any:
            return torch.relu_(torch.addcmul(offset, conv(xx, ww, **kw) + bias, scale)).permute(*back)

        return {name: (lambda xx=xx, ww=ww: conv_bn_relu(xx, ww)) for name, (xx, ww) in variants.items()}
    return {name: (lambda xx=xx, ww=ww: conv(xx, ww, **kw).permute(*back)) for name, (xx, ww) in variants.items()}


def _torch_capsule(torch: Any, F: Any, p: dict, t: list) -> dict[str, Callable[[], Any]]:
    """Capsule conv as one conv2d: batch (n, i), input channels (k, c), output channels (j, o)."""
    x, w = t  # x (N, H, W, I, K, C); w (KH, KW, K, J, C, O)
    n, h, wd, i, k, c = x.shape
    _, _, _, j, _, o = w.shape
    weight = w.permute(3, 5, 2, 4, 0, 1).reshape(j * o, k * c, w.shape[0], w.shape[1]).contiguous()
    kw = {"stride": p["stride"], "padding": p["padding"]}

    def unbatch(y: Any) -> Any:  # (N*I, J*O, OH, OW) -> (N, OH, OW, I, J, O)
        return y.reshape(n, i, j, o, *y.shape[2:]).permute(0, 4, 5, 1, 2, 3)

    def batched() -> Any:  # (N*I, K*C, H, W): a view where the memory allows, else a copy
        return x.permute(0, 3, 4, 5, 1, 2).reshape(n * i, k * c, h, wd)

    contiguous = batched().contiguous()
    return {
        "torch:channels-last": lambda: unbatch(F.conv2d(batched(), weight, **kw)),
        "torch:contiguous": lambda: unbatch(F.conv2d(contiguous, weight, **kw)),
    }


# ---- one run -------------------------------------------------------------------------------------------------


def _set_threads(count: int) -> None:
    import tvm

    tvm.get_global_func("runtime.config_threadpool")(0, count)
    try:
        import torch

        torch.set_num_threads(count)
    except ImportError:
        pass


def run(quick: bool = False, only: list[str] | None = None) -> dict:
    import msexplore as mx
    import msexplore.hardware  # registers the hardware modules
    from msexplore.workloads._operators import PAPER_NAMES

    names = [n for n in PAPER_NAMES if not only or any(text.upper() in n for text in only)]
    if not names:
        raise SystemExit(f"--only {only} matches none of the operators {list(PAPER_NAMES)}")
    trials, rounds, min_s = (QUICK_TRIALS, 3, 0.05) if quick else (TRIALS, 9, 0.1)
    batch, strategy = (4, QUICK_STRATEGY) if quick else (16, {})
    target = mx.host_target()
    shipped = ["default", *msexplore.hardware.cpu_modules(target)]  # the fp32 modules this CPU can run
    cores = wl_threads()
    thread_counts = (cores, 1) if cores > 1 else (1,)
    load_before = os.getloadavg()
    root = tempfile.mkdtemp(prefix="msx-bench-operators-")
    rows, details = [], []
    t_suite = time.perf_counter()
    try:
        # the FMA peak on the same threads in every round: this VM's clock varies, so "% peak" is taken round by round
        try:
            peak_loops: dict[int, PeakLoop] = {n: PeakLoop(root, threads=n, seconds=0.1) for n in thread_counts}
        except (RuntimeError, OSError) as err:
            print(f"no FMA peak: {err}")
            peak_loops = {}
        for op in names:
            wl = mx.workload(op, **(QUICK_PARAMS.get(op, {}) if quick else {}))
            arrays = wl.make_inputs(seed=0)
            inputs = [a for k, a in enumerate(arrays) if k not in wl.outputs]
            expected = wl.reference(arrays)[0]
            rtol, atol = wl.tolerance
            info: dict[str, Any] = {"operator": op, "workload": repr(wl), "trials": trials, "modules": shipped}
            kernels: dict[str, Callable[[], float]] = {}
            searched: dict[tuple, tuple] = {}
            for name, modules in (("tvm:default", ["default"]), ("tvm:shipped", shipped)):
                signature = tuple(sorted(d.signature for d in mx.Space(wl, modules=modules).design_spaces))
                if signature not in searched:  # the modules left this workload's space as it was
                    work_dir = os.path.join(root, f"{op}-{name[4:]}")
                    searched[signature] = tune(wl, modules, trials, work_dir, batch, strategy)
                else:
                    info["shipped_is_default_space"] = True
                mod, wall, valid, info[f"spent:{name}"] = searched[signature]
                kernels[name], out = tvm_timer(mod, wl, target, inputs)
                np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)
                info[f"search_s:{name}"], info[f"valid:{name}"] = wall, valid
            others: dict[str, Callable[[], Any]] = dict(torch_fns(op, wl, inputs))
            fn = numpy_fns(op, wl, inputs)
            if fn is not None:
                others["numpy"] = fn
            for name, fn in others.items():
                got = fn()
                got = got.numpy() if hasattr(got, "numpy") else np.asarray(got)
                tolerance = {"rtol": max(rtol, 1e-4), "atol": max(atol, 1e-3)}
                np.testing.assert_allclose(got.reshape(expected.shape), expected, **tolerance)
            samples: dict[tuple[str, int], list[float]] = {}
            peaks: dict[int, list[float]] = {n: [] for n in peak_loops}
            for _ in range(rounds):  # interleaved: load from other processes hits every contender alike
                for threads in thread_counts:
                    _set_threads(threads)
                    if threads in peak_loops:
                        settle()
                        peaks[threads].append(peak_loops[threads].gflops())
                    contenders = {**kernels, **{k: (lambda f=f: per_call(f, min_s)) for k, f in others.items()}}
                    if threads != cores:
                        contenders.pop("numpy", None)  # its BLAS threads are fixed at start-up
                    for name, timer in contenders.items():
                        settle()
                        samples.setdefault((name, threads), []).append(timer())
            _set_threads(cores)
            info["seconds"] = {f"{name}@{threads}": stats(v) for (name, threads), v in samples.items()}
            info["flop"], info["fma_peak_per_round"] = wl.flop, {f"threads={n}": v for n, v in peaks.items()}
            details.append(info)
            rows.extend(_rows(op, samples, trials, info, wl.flop, peaks))
            print(table(rows[-len(samples):], COLUMNS), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = _summary(rows, thread_counts)
    suite_s = time.perf_counter() - t_suite
    print(f"\nsuite {suite_s:.0f} s; load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f} on {cores} cores")
    print(table(rows, COLUMNS))
    print("\nPyTorch time / msexplore time (shipped modules), the faster PyTorch layout:", summary)
    return {
        "rows": rows,
        "details": details,
        "summary": summary,
        "rounds": rounds,
        "batch": batch,
        "trials": trials,
        "strategy": strategy,
        "suite_seconds": suite_s,
        # the machine is shared: the 1-minute load average before and after says how much else ran
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
    }


def _rows(
    op: str, samples: dict[tuple[str, int], list[float]], trials: int, info: dict, flop: float,
    peaks: dict[int, list[float]],
) -> list[dict[str, Any]]:
    """One row per contender and thread count; ratios of medians (> 1: this one is faster). "% peak" is the median
    over rounds of the contender's GFLOPS against the FMA peak on as many threads in the same round."""
    out = []
    for (name, threads), values in samples.items():
        med = float(np.median(values))
        shares = [100 * flop / t / 1e9 / p for t, p in zip(values, peaks.get(threads, []))]
        torch_meds = [float(np.median(v)) for (n, th), v in samples.items() if n.startswith("torch") and th == threads]
        numpy_med = [float(np.median(v)) for (n, th), v in samples.items() if n == "numpy" and th == threads]
        out.append({
            "operator": op,
            "impl": name,
            "threads": threads,
            "us median": med * 1e6,
            "us min": min(values) * 1e6,
            "x torch": min(torch_meds) / med if torch_meds else None,
            "x numpy": numpy_med[0] / med if numpy_med else None,
            "GFLOPS": flop / med / 1e9 if flop else None,
            "% peak": float(np.median(shares)) if shares and flop else None,
            "trials": trials if name.startswith("tvm") else None,
            "valid": info.get(f"valid:{name}"),
        })
    return out


def _summary(rows: list[dict[str, Any]], thread_counts: tuple[int, ...]) -> dict[str, Any]:
    """Per thread count: each operator's ``x torch`` with the shipped modules, and their geometric mean."""
    out: dict[str, Any] = {}
    for threads in thread_counts:
        ratios = {r["operator"]: r["x torch"] for r in rows if r["impl"] == "tvm:shipped" and r["threads"] == threads
                  and r["x torch"]}
        geomean = math.exp(sum(math.log(v) for v in ratios.values()) / len(ratios)) if ratios else None
        out[f"threads={threads}"] = {"x torch": ratios, "geomean": geomean}
    return out
