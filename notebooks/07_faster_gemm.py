# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · A faster GEMM on x86: sample, inspect, search
#
# MetaSchedule's default CPU space tiles a matrix multiply in several levels and lets the search pick the sizes.
# On an AVX-512 machine the best kernels it found ran at about the speed of numpy, well below the FMA peak. This
# notebook retraces how the `x86-avx512` module that now ships with msexplore was found: **sample** the default
# space and measure the samples, **inspect** the assembly of the best one, write a module with the structure a
# BLAS micro-kernel has, then **search** both spaces at the same budget. On a CPU without AVX-512 (Zen 3, Haswell
# to Alder Lake) it runs the same micro-kernel on 8-lane ymm registers, the module `x86-avx2`:
# `mx.hardware.microkernel_module()` names the one this machine has.

# %% tags=["parameters"]
import os

# Budgets: a few minutes on a 2-core machine. The tests shrink them through the environment.
SIZE = int(os.environ.get("MSX_SIZE", 512))        # the GMM is SIZE x SIZE x SIZE, float32 (a multiple of 64)
SAMPLES = int(os.environ.get("MSX_SAMPLES", 16))   # samples measured per space
TRIALS = int(os.environ.get("MSX_TRIALS", 32))     # candidates measured per search
BATCH = int(os.environ.get("MSX_BATCH", 16))       # candidates per measured batch
POPULATION = int(os.environ.get("MSX_POPULATION", 64))  # evolutionary search population
print(f"GMM {SIZE}^3, {SAMPLES} samples, {TRIALS} trials in batches of {BATCH}, population {POPULATION}")

# %%
import re
import time

import numpy as np
import pandas as pd
import tvm

import msexplore as mx
import msexplore.hardware  # registers the hardware modules, "x86-avx512" and "x86-avx2" among them

workload = mx.workload("GMM", n=SIZE, m=SIZE, k=SIZE)
target = mx.host_target()
MICROKERNEL = mx.hardware.microkernel_module(target)  # "x86-avx512" or "x86-avx2": this CPU's widest vectors
isa = mx.hardware.isa_of(target)
print(f"{target.attrs['mcpu']}: {MICROKERNEL}, {isa.lanes} fp32 lanes per {isa.register} register, "
      f"{isa.registers} registers")


def numpy_gflops(repeats=20):
    x, y = [a for k, a in enumerate(workload.make_inputs(seed=0)) if k not in workload.outputs]
    x @ y
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        x @ y
        times.append(time.perf_counter() - start)
    return workload.flop / np.median(times) / 1e9


def measured(samples):
    """One row per sample: design space, its decisions, and the measured GFLOPS (NaN for a failure)."""
    results = mx.measure([s.schedule for s in samples], workload, target=target)
    return pd.DataFrame([
        {"sample": s.id, "design_space": s.design_space, "gflops": m.gflops if m.ok else float("nan"),
         **{k: str(v) for k, v in s.decisions.items()}}
        for s, m in zip(samples, results)
    ])


def inner_loop(schedule):
    """The assembly of the loop with the most vector FMAs: what the CPU runs almost all the time."""
    asm = tvm.tirx.build(schedule.mod, target).inspect_source("asm")
    blocks = re.split(r"\n(?=\.LBB)", asm)
    return max(blocks, key=lambda b: b.count("vfmadd"))


def fma_profile(loop):
    fmas = re.findall(r"vfmadd\w+\s+(\S+), (\S+), (\S+)", loop)
    full = f"%{isa.register}"
    return {
        "FMAs": len(fmas),
        f"{isa.register} ({isa.lanes} lanes)": sum(d.startswith(full) for *_, d in fmas),
        "narrower": sum(not d.startswith(full) for *_, d in fmas),
        "FMAs reading memory": sum("(" in a for a, *_ in fmas),
        "accumulators": len({d for *_, d in fmas}),
        "stores": len(re.findall(r"\tvmov\w+\s+%[xyz]mm\d+, \S*\(", loop)),
    }


print(f"numpy (OpenBLAS) on this machine: {numpy_gflops():.0f} GFLOPS for {workload}")

# %% [markdown]
# ## 1. Sample the default space
#
# `SAMPLES` random programs of MetaSchedule's own space, each built, checked against numpy and timed.

# %%
default_space = mx.Space(workload, modules=["default"], target=target)
default_samples = default_space.sample(SAMPLES, seed=0)
default_df = measured([s for s in default_samples if s.valid])
default_df["gflops"].describe()

# %% [markdown]
# ## 2. Inspect the best one
#
# The inner loop of its assembly says what the CPU does on every step: how many FMAs, on how wide registers,
# whether they read an operand from memory, how many separate accumulators they update, and whether the loop
# stores partial sums back on every step. A BLAS micro-kernel keeps a block of `rows x vectors` accumulators in
# vector registers for a whole k-panel: one broadcast of A per row and one load of B per vector feed
# `rows x vectors` FMAs, and nothing is stored until the panel ends.

# %%
best_default = default_samples[int(default_df.loc[default_df["gflops"].idxmax(), "sample"])]
print(best_default.decisions)
loop = inner_loop(best_default.schedule)
print(fma_profile(loop))
print(loop[:1500])

# %% [markdown]
# What the default space leaves to chance: the innermost tile is whatever the tile sampler drew (often not a
# multiple of the vector's lanes, so part of the work runs on narrower vectors), the register block (the two innermost
# spatial tiles) is as likely to need 60 accumulators as 6, and nothing reorganises B, whose rows sit 4 KiB apart
# for SIZE=1024, the same L1 set on every k step.
#
# ## 3. The module: a register-blocked micro-kernel
#
# `x86-avx512` (in `msexplore/hardware/microkernel.py`) builds that structure by construction and leaves the sizes
# to the search: the vector axis is split into 16-lane zmm vectors, a `rows x vecs` register block (at most 28
# accumulators), a long k-panel, cache blocks, one parallel loop; the panel width and whether B is *packed* into
# contiguous panels inside the kernel are fixed per design space, because a layout cannot depend on a sampled value.
# `x86-avx2` is the same on 8-lane ymm vectors, with at most 12 accumulators (6 x 2 or 4 x 3) of the 16 registers.
# Sampled rows must divide the matrix's rows (on 512 rows: 4 x 4 or 8 x 2 zmm), so each panel width also gets a
# design space whose register block fills the registers (6 x 4 or 14 x 2; `Z.tile_i_0` in the table below
# tiles its 86 row tiles): its last tile is guarded and TVM's lowering splits that tile off the others.

# %%
print(mx.registered_modules()[MICROKERNEL].doc)
avx_space = mx.Space(workload, modules=["default", MICROKERNEL], target=target)
print(avx_space)
avx_space.summary()

# %%
avx_samples = avx_space.sample(SAMPLES, seed=0)
avx_df = measured([s for s in avx_samples if s.valid])
packed = {ds.index: "transform_layout" in str(ds.trace) for ds in avx_space.design_spaces}
avx_df["packed B"] = avx_df["design_space"].map(packed)
pd.DataFrame({
    "default space": default_df["gflops"].describe(),
    f"{MICROKERNEL} space": avx_df["gflops"].describe(),
})

# %% tags=["packed"]
avx_df.groupby(["design_space", "packed B"])["gflops"].agg(["count", "median", "max"])

# %% [markdown]
# Random samples of the new space are already better on average than the default's: every one of them is a
# register-blocked micro-kernel, and the packed design spaces win as soon as B is wider than a panel.
# The inner loop of the best one is the textbook kernel: full-width FMAs, one accumulator register per
# (row, vector), no store inside the loop.

# %% tags=["avx-profile"]
best_avx = avx_samples[int(avx_df.loc[avx_df["gflops"].idxmax(), "sample"])]
print(best_avx.decisions)
loop = inner_loop(best_avx.schedule)
print(fma_profile(loop))
print(loop[:1500])

# %% [markdown]
# ## 4. Search both spaces at the same budget
#
# The evolutionary search mutates the sampled tiles (rows, cache blocks, k-panels) guided by the cost model.
# Same trials, seed and batch size for both; each best kernel is the fastest measured candidate that matched numpy.

# %% tags=["searched"]
runs = {}
for name, space in (("default", default_space), (MICROKERNEL, avx_space)):  # one after the other: same machine
    runs[name] = mx.search(space, trials=TRIALS, batch_size=BATCH, seed=1, population_size=POPULATION,
                           init_min_unmeasured=min(POPULATION, 32)).wait()
reference = numpy_gflops()
pd.DataFrame([
    {"space": name, "status": run.status, "best GFLOPS": run.best.gflops if run.best else None,
     "x numpy": (run.best.gflops / reference) if run.best else None}
    for name, run in runs.items()
])

# %% [markdown]
# On the project's AVX-512 machine (`benchmarks/kernels.py`, results in the README) the module's space reaches
# higher GFLOPS than the default space at the same budget; how much, against numpy, PyTorch and the measured FMA
# peak, is in the README's Benchmarks section. The remaining gap to the peak sits in memory traffic rather than in
# the inner loop, which is already the ideal one: `python -m benchmarks kernels` re-measures it all side by side.
#
# ## 5. The other half of the machine
#
# The biggest single gain was not in the schedule at all. Side by side with numpy, every TVM kernel looked half
# as fast as its assembly promised, and the cause was the runtime: TVM's thread pool starts
# `hardware_concurrency() / 2` threads on x86, assuming two hyper-threads per core. On a VM whose vCPUs are real
# cores that is half the machine, for every measurement of every search. msexplore now sets `TVM_NUM_THREADS` to
# the physical cores when it is imported (unless you set it yourself). The thread count is fixed when TVM's pool
# starts, so the comparison runs the exported kernel in fresh processes:

# %% tags=["threads"]
import os
import subprocess
import sys
import tempfile

from msexplore.target import kernel_threads

folder = os.path.join(tempfile.mkdtemp(), "gemm")
runs[MICROKERNEL].best.export(folder)
probe = ("import sys, tvm, msexplore as mx; k = mx.load_kernel(sys.argv[1]); "
         "print(tvm.runtime.num_threads(), k.benchmark()['gflops'])")
rows = []
for label, threads in (("one thread", "1"), ("msexplore's default", None)):
    env = {k: v for k, v in os.environ.items() if k not in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")}
    if threads:
        env["TVM_NUM_THREADS"] = threads
    out = subprocess.run([sys.executable, "-c", probe, folder], env=env, capture_output=True, text=True, check=True)
    used, gflops = out.stdout.split()
    rows.append({"run": label, "threads": int(used), "GFLOPS": float(gflops)})
print(f"physical cores: {kernel_threads()}, TVM alone would start {max(1, os.cpu_count() // 2)} thread(s)")
pd.DataFrame(rows)
