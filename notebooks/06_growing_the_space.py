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
# # 6 · Growing the space
#
# The paper's central claim is that a search space is *modular*: a domain expert can grow it with a module that
# knows something the generic rules do not, and growing it pays. Its Experiment 3 adds a hardware module for a
# tensorized instruction and gets +48% end to end.
#
# On this CPU the instruction is AVX-512 VNNI's **`vpdpbusd`**: in one instruction, 16 int32 sums of 4 u8 x s8
# products each, 64 multiply-adds. The generic space cannot find it, because no combination of tile sizes,
# vectorization and unrolling of the scalar loop turns into that instruction; the compiler has to be told. This
# notebook does Experiment 3 on an int8 dense layer: the default space, then the VNNI module built cell by cell,
# what each space samples, a search on each, and the best latency of both side by side.

# %% tags=["parameters"]
import os

# Budgets: a few minutes on a 2-core machine with AVX-512 VNNI. The tests shrink them through the environment.
M = int(os.environ.get("MSX_INT8_M", 128))         # the int8 dense is M x NK x NK (u8 data, s8 weights)
NK = int(os.environ.get("MSX_INT8_NK", 768))
SAMPLES = int(os.environ.get("MSX_SAMPLES", 64))   # traces drawn from each space
TRIALS = int(os.environ.get("MSX_TRIALS", 64))     # candidates measured per search (the paper's budget here)
BATCH = int(os.environ.get("MSX_BATCH", 16))       # candidates per measured batch
POPULATION = int(os.environ.get("MSX_POPULATION", 64))  # evolutionary search population
print(f"int8 dense {M}x{NK}x{NK}, {SAMPLES} samples, {TRIALS} trials in batches of {BATCH}, population {POPULATION}")

# %%
import msexplore as mx
from msexplore.hardware import vnni

target = mx.host_target()
print(target)
print("AVX-512 VNNI on this CPU:", vnni.missing_vnni(target) is None)
workload = mx.workload("DENSE_U8S8", m=M, n=NK, k=NK)
workload

# %% [markdown]
# `DENSE_U8S8` computes `C[i, j] = sum_r A[i, r] * W[j, r]` with u8 data, s8 weights and int32 sums. The weights
# are stored packed as `B[j/16, r/4, j%16, r%4]`: 16 output channels times 4 reduction elements side by side, the
# 64 bytes one `vpdpbusd` reads. Its reference is numpy in int64, and the inputs cover the whole u8 and s8
# ranges, so a kernel that saturates (AVX-512's older `vpmaddubsw` path sums pairs in int16) is caught as a wrong
# result rather than timed.
#
# ## The default space
#
# `"default"` is the target's generic modules. (MetaSchedule's own "from-target" default would hand an int8
# workload its built-in VNNI space, whose intrinsic the LLVM bundled with TVM 0.27 rejects: 0 valid programs. So
# msexplore names the plain LLVM rules explicitly, and int8 gets a space that works.)

# %%
default = mx.Space(workload, modules=["default"], target=target)
default_samples = default.sample(SAMPLES, seed=0)
print(default)
print(f"valid: {len(default_samples.valid)} of {len(default_samples)}")
default.summary()[["name", "module", "kind", "extent", "domain_size", "domain"]]

# %% [markdown]
# ## A hardware module, cell by cell
#
# MetaSchedule already has the pieces: a **tensor intrinsic** (what one instruction computes, as a tiny TIR
# function, and how to emit it) and `MultiLevelTilingWithIntrin`, a tiling rule that makes the innermost tile of a
# block exactly the intrinsic's shape and marks it for tensorization. TVM even ships a VNNI intrinsic. Let us
# try it as a module: `mx.module(rule=...)` turns any MetaSchedule rule into a named module, with the
# postprocessors its schedules need (`RewriteTensorize` swaps the marked tile for the instruction), and
# `before=` so it tiles the block before the generic tiling does.
#
# We compile a few samples of each attempt here, in the notebook, to see whether they build: `build_check`
# compiles 8 samples of a space and lists each distinct error, with the warnings TVM's compiler logged meanwhile.

# %%
import tvm
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.schedule_rule import MultiLevelTilingWithIntrin, ReuseType
from tvm.s_tir.tensor_intrin.x86 import VNNI_DOT_16x4_INTRIN  # TVM's own VNNI intrinsic

from msexplore.hardware import build_check


def vnni_tiling(intrinsic):
    """TVM's recipe for CPU tensorization: the innermost tile is the intrinsic, SSRSRS tiles around it."""
    return MultiLevelTilingWithIntrin(intrinsic, structure="SSRSRS", tile_binds=None, max_innermost_factor=64,
                                      vector_load_lens=None, reuse_read=None,
                                      reuse_write=ReuseType(req="may", levels=[1, 2], scope="global"))


stock = mx.module(name="vnni_stock", rule=vnni_tiling(VNNI_DOT_16x4_INTRIN),
                  postprocs=[ms.postproc.RewriteTensorize(vectorize_init_loop=True)], before=["multi_level_tiling"])
build_check(mx.Space(workload, modules=["default", stock], target=target))

# %% [markdown]
# Nothing compiles, for two reasons. The first ("Call parameter type does not match"): TVM's intrinsic passes
# `<16 x i32>` operands to `llvm.x86.avx512.vpdpbusd.512`, and LLVM 22 declares it on bytes. (The second, with
# TVM's warning, comes next.) The fix is an intrinsic with the **same description** and an implementation that
# hands the instruction `<64 x u8>` and `<64 x i8>` (a reinterpretation in registers, no data movement).
# msexplore registers it as `vnni.INTRIN_NAME`; here is its implementation, in TVMScript:

# %%
import inspect

print(vnni.dot_16x4_vpdpbusd.script())
fixed = mx.module(name="vnni_fixed", rule=vnni_tiling(vnni.INTRIN_NAME),
                  postprocs=[ms.postproc.RewriteTensorize(vectorize_init_loop=True)], before=["multi_level_tiling"])
build_check(mx.Space(workload, modules=["default", fixed], target=target))

# %% [markdown]
# The instruction is accepted now; the second reason remains ("Cannot broadcast"), and TVM's warning on the same
# samples says why: "Detect vectorize inside vectorized loop". The default `RewriteParallelVectorizeUnroll`
# vectorizes the innermost loops of every block, including a tile loop around the block to be tensorized (and
# around its initialisation, which `RewriteTensorize` vectorizes too). The vectorizer then meets a vectorized loop
# inside a vectorized one, and code that is already 16 lanes wide, which it cannot widen again. A small
# postprocessor, `UnrollTensorizedVectorLoops`, unrolls such loops instead, so that no vectorized loop holds
# vector code. It runs before `RewriteTensorize`:

# %%
print(inspect.getsource(vnni.unroll_vector_loops_around_tensorized_blocks))  # the postprocessor's apply
unroll_then_tensorize = [vnni.UnrollTensorizedVectorLoops(), ms.postproc.RewriteTensorize(vectorize_init_loop=True)]
grown = mx.module(name="vnni_grown", rule=vnni_tiling(vnni.INTRIN_NAME), postprocs=unroll_then_tensorize,
                  requires=vnni.missing_vnni, before=["multi_level_tiling"])
build_check(mx.Space(workload, modules=["default", grown], target=target))

# %% [markdown]
# Every sample compiles, and TVM has nothing to warn about. With `requires=`, the module also checks that the
# target has the instruction: on a CPU without VNNI, a space asking for it says so and names the targets that have
# it, rather than failing later in LLVM. This is exactly what msexplore ships as the module `"x86-vnni"`
# (`msexplore/hardware/vnni.py`, written to be read as an example):

# %%
source = inspect.getsource(vnni)
print(source[source.index("VNNI = module("):])
try:
    mx.Space(workload, modules=["default", "x86-vnni"], target={"kind": "llvm", "mcpu": "skylake-avx512"})
except mx.ModuleNotApplicable as err:
    print("on a Skylake target:", err)

# %% [markdown]
# ## The two spaces, side by side
#
# Composing is one more name in the list. The enriched space has the same default modules; on the int8 block the
# VNNI module tiles first, so its tile decisions replace the generic ones (fewer of them: the innermost 16x4 is
# fixed by the instruction).

# %%
enriched = mx.Space(workload, modules=["default", "x86-vnni"], target=target)
enriched_samples = enriched.sample(SAMPLES, seed=0)
print(enriched)
print(f"valid: {len(enriched_samples.valid)} of {len(enriched_samples)}")
enriched.summary()[["name", "module", "kind", "extent", "domain_size", "domain"]]

# %%
mx.figures.plot_decision_distributions(default_samples)

# %%
mx.figures.plot_decision_distributions(enriched_samples)

# %% [markdown]
# ## A search on each
#
# The same budget for both, one after the other (they would share the two cores otherwise). The dashboards
# update live; every candidate is checked against the int64 reference before it is timed.

# %% tags=["dashboard"]
run_default = mx.search(default, trials=TRIALS, batch_size=BATCH, population_size=POPULATION,
                        work_dir="runs/06-default")
run_default

# %% tags=["dashboard"]
run_default.wait()
print(run_default.progress)
run_enriched = mx.search(enriched, trials=TRIALS, batch_size=BATCH, population_size=POPULATION,
                         work_dir="runs/06-x86-vnni")
run_enriched

# %% tags=["vnni-check"]
run_enriched.wait()
print(run_enriched.progress)
best = run_enriched.best
asm = tvm.tirx.build(best.mod, target).inspect_source("asm")
print("x86-vnni best:", best)
print("vpdpbusd in the kernel:", "vpdpbusd" in asm)
mx.compare_runs({"default": run_default, "default + x86-vnni": run_enriched})

# %% [markdown]
# ## Next to PyTorch
#
# `torch._int_mm` is PyTorch's int8 matrix multiply (s8 x s8 -> s32, oneDNN on CPU): same shape, same number of
# multiply-adds. It is optional here; without torch installed the figure shows the two spaces only.

# %% tags=["side-by-side"]
import time

import numpy as np
import plotly.graph_objects as go

best_s = {"default": run_default.best.latency_s, "default + x86-vnni": run_enriched.best.latency_s}
try:
    import torch
except ImportError:
    print("torch is not installed: comparing the two spaces only")
else:
    a = torch.randint(-128, 128, (M, NK), dtype=torch.int8)
    b = torch.randint(-128, 128, (NK, NK), dtype=torch.int8)
    torch._int_mm(a, b)  # warm up
    time.sleep(0.25)  # TVM's worker threads spin for a while after a kernel: let them sleep before timing torch
    repeats = []
    for _ in range(5):
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < 0.05:
            torch._int_mm(a, b)
            n += 1
        repeats.append((time.perf_counter() - start) / n)
    best_s["torch._int_mm"] = float(np.median(repeats))

for name, seconds in best_s.items():
    print(f"{name:20} {seconds * 1e6:9.1f} us  {workload.flop / seconds / 1e9:7.1f} GOPS  "
          f"{best_s['default'] / seconds:5.1f}x the default space")
figure = go.Figure(go.Bar(x=list(best_s), y=[s * 1e6 for s in best_s.values()],
                          text=[f"{s * 1e6:.0f} us" for s in best_s.values()], textposition="outside"))
figure.update_layout(title=f"int8 dense {M}x{NK}x{NK}: best latency after {TRIALS} trials per space",
                     yaxis_title="latency (us, lower is better)", template="plotly_white", height=400)
figure

# %% [markdown]
# The enriched space wins by a wide margin at the same budget: the default space can only reach scalar or
# widened int32 arithmetic, the enriched one starts from the instruction. Growing the space is a few lines of
# Python once the instruction is described; the search does the rest (tile sizes around the instruction,
# parallelism, unrolling). `benchmarks/int8.py` runs this comparison with the full budget.
