"""The machine's measured fp32 FMA peak: a tiny C loop of independent vector FMAs, compiled at benchmark time
with ``cc -O2 -march=native`` and run on every core (one thread each) through ctypes.

The loop keeps 12 accumulators in flight (more than latency x throughput on any x86 core: 4 cycles x 2 FMA
ports = 8), so it is limited by FMA throughput alone. With AVX-512 each FMA is 16 lanes x 2 flops; without it,
AVX2 (8 lanes). No compiler, or a compile error: ``fma_peak()`` returns ``None`` with the reason, and the
benchmark reports "n/a" rather than a made-up peak.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any

_SOURCE = r"""
#include <immintrin.h>
#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define REDUCE(v) _mm512_reduce_add_ps(v)
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float REDUCE(__m256 v) {
    float t[8]; _mm256_storeu_ps(t, v); float s = 0; for (int i = 0; i < 8; ++i) s += t[i]; return s;
}
#endif

int lanes(void) { return LANES; }

/* iters x 12 independent FMAs of LANES lanes each; returns a value that depends on all of them */
float fma_loop(long iters) {
    vec a = SET1(0.999999f), b = SET1(1e-7f);
    vec c0 = SET1(0.f), c1 = SET1(1.f), c2 = SET1(2.f), c3 = SET1(3.f), c4 = SET1(4.f), c5 = SET1(5.f);
    vec c6 = SET1(6.f), c7 = SET1(7.f), c8 = SET1(8.f), c9 = SET1(9.f), c10 = SET1(10.f), c11 = SET1(11.f);
    for (long i = 0; i < iters; ++i) {
        c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);
        c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);
        c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
    }
    vec s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));
    s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));
    return REDUCE(s);
}
"""
_FMAS_PER_ITER = 12


def compile_loop(work_dir: str) -> ctypes.CDLL:
    """Compile the FMA loop with the system C compiler for this CPU; raises RuntimeError if that fails."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise RuntimeError("no C compiler (cc, gcc or clang) on PATH")
    src = os.path.join(work_dir, "fma.c")
    lib = os.path.join(work_dir, "libfma.so")
    with open(src, "w", encoding="utf-8") as f:
        f.write(_SOURCE)
    proc = subprocess.run(
        [cc, "-O2", "-march=native", "-shared", "-fPIC", "-o", lib, src], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{cc} failed: {proc.stderr.strip()[:400]}")
    dll = ctypes.CDLL(lib)
    dll.fma_loop.argtypes = [ctypes.c_long]
    dll.fma_loop.restype = ctypes.c_float
    dll.lanes.restype = ctypes.c_int
    return dll


class PeakLoop:
    """The compiled FMA loop, calibrated once; ``gflops()`` is one timed run on ``threads`` threads.

    Used for an interleaved contender in the kernel benchmark: this VM's clock varies from minute to minute, so a
    kernel's share of the peak is taken against the peak measured in the same round.
    """

    def __init__(self, work_dir: str, threads: int | None = None, seconds: float = 0.3) -> None:
        from msexplore.target import host_cores

        self.threads = threads or host_cores()
        self.dll = compile_loop(work_dir)
        self.lanes = int(self.dll.lanes())
        # calibrate: iterations for about `seconds` on one thread
        iters = 1_000_000
        while True:
            t0 = time.perf_counter()
            self.dll.fma_loop(iters)
            dt = time.perf_counter() - t0
            if dt > 0.05:
                break
            iters *= 4
        self.iters = max(1, int(iters * seconds / dt))

    def gflops(self) -> float:
        workers = [threading.Thread(target=self.dll.fma_loop, args=(self.iters,)) for _ in range(self.threads)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        return self.iters * _FMAS_PER_ITER * self.lanes * 2 * self.threads / elapsed / 1e9


def fma_peak(threads: int | None = None, repeats: int = 5, seconds: float = 0.3) -> dict[str, Any] | None:
    """Measured fp32 FMA peak in GFLOPS on ``threads`` threads (default: every core this process may use).

    Returns ``{"gflops_max", "gflops_median", "lanes", "threads", "per_repeat"}``, or ``{"error": ...}`` when
    the loop cannot be compiled. ctypes releases the GIL, so the threads run in parallel.
    """
    with tempfile.TemporaryDirectory(prefix="msx-fma-") as tmp:
        try:
            loop = PeakLoop(tmp, threads, seconds)
        except (RuntimeError, OSError) as err:
            return {"error": str(err)}
        results = sorted(loop.gflops() for _ in range(repeats))
    return {
        "gflops_max": results[-1],
        "gflops_median": results[len(results) // 2],
        "lanes": loop.lanes,
        "threads": loop.threads,
        "per_repeat": results,
    }


if __name__ == "__main__":
    print(fma_peak())
