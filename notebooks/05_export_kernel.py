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
# # 5 · Export the best kernel
#
# A tuned schedule is only useful once it leaves the notebook. `export` compiles the best candidate, checks its
# outputs against the reference once more, and writes a **bundle**: the compiled library, its TVMScript, the trace
# as Python and JSON, the tuning record and a manifest with checksums. `mx.load_kernel` loads it back (checking
# every file) as a function on numpy arrays, in a process that knows nothing about the search.

# %% tags=["parameters"]
import os

# Budgets: a couple of minutes on a 2-core laptop. The tests shrink them through the environment.
SIZE = int(os.environ.get("MSX_SIZE", 128))        # the GMM is SIZE x SIZE x SIZE, float32
SAMPLES = int(os.environ.get("MSX_SAMPLES", 64))   # traces drawn from a space
TRIALS = int(os.environ.get("MSX_TRIALS", 32))     # candidates measured per search
BATCH = int(os.environ.get("MSX_BATCH", 16))       # candidates per measured batch
POPULATION = int(os.environ.get("MSX_POPULATION", 64))  # evolutionary search population
print(f"GMM {SIZE}^3, {SAMPLES} samples, {TRIALS} trials in batches of {BATCH}, population {POPULATION}")

# %%
import msexplore as mx

workload = mx.workload("GMM", n=SIZE, m=SIZE, k=SIZE)
target = mx.host_target()
workload

# %%
space = mx.Space(workload, modules=["default"], target=target)
run = mx.search(space, trials=TRIALS, batch_size=BATCH, population_size=POPULATION, work_dir="runs/05-export")
run.wait()
print(run.progress)
best = run.best
best

# %% [markdown]
# ## Confirm the best before exporting
#
# The search times each candidate once, and the fastest of many single timings is often the luckiest: kernels
# within a few percent of each other swap places from one timing to the next. `confirm` builds the fastest few
# again and times them all in turn, several rounds, and ranks them by the median; `run.best` then follows that
# ranking (its `confirmed_s` is the median), and the export records the confirmed latency. The ranking is kept in
# the run's folder (`confirmed.json`) until another search on the folder measures more. The dashboard of a run
# (`run` as a cell's result) does the same with its **Confirm best** button once the search has ended.

# %%
confirmed = run.confirm(top=4, rounds=3)
best = run.best
print(best)
confirmed

# %%
bundle = best.export("runs/05-kernel", overwrite=True)
bundle

# %% [markdown]
# ## What is in the bundle
#
# `manifest.json` records the workload and its arguments, the target, the measured latency, the versions of TVM
# and msexplore, the result of the correctness check and a sha256 per file; `load_kernel` refuses a bundle whose
# files changed since export.

# %%
manifest = bundle.manifest
for path in sorted(bundle.path.iterdir()):
    digest = manifest["files"].get(path.name, "")[:12]
    print(f"{path.name:14} {path.stat().st_size:>9,} bytes  sha256 {digest}...")
print()
arguments = [f"{a['name']}{a['shape']} {a['dtype']}{' (out)' if a['output'] else ''}" for a in manifest["args"]]
print("arguments:", ", ".join(arguments))
print("target:   ", manifest["target"])
print(f"latency:   {manifest['latency_s'] * 1e6:.1f} us ({manifest['gflops']:.1f} GFLOPS),",
      f"checked: {manifest['verified']}")
print("built with TVM", manifest["tvm_version"], "and msexplore", manifest["msexplore_version"],
      "on", manifest["created"])

# %%
print((bundle.path / "trace.py").read_text())

# %% [markdown]
# ## Load it and run it on numpy arrays
#
# Call the kernel with the inputs (outputs are allocated) or with every argument (outputs written in place):

# %% tags=["kernel-check"]
import numpy as np

kernel = mx.load_kernel("runs/05-kernel")
x, y, _ = workload.make_inputs(seed=1)
z = kernel(x, y)
np.testing.assert_allclose(z, x @ y, rtol=1e-4, atol=1e-3)
print(kernel)
print("matches numpy: max abs error", float(np.abs(z - x @ y).max()))

# %% [markdown]
# ## How fast, next to numpy
#
# `benchmark` times the kernel with TVM's `time_evaluator`. numpy's `@` calls an optimized BLAS (OpenBLAS or MKL),
# hand-tuned for years; a schedule found in a few dozen trials is usually within a small factor of it at these
# sizes, and larger budgets close the gap. Both use every core.

# %%
import time

timing = kernel.benchmark()
x_np, y_np = workload.make_inputs(seed=0)[:2]
repeats = []
for _ in range(5):
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 0.05:
        x_np @ y_np
        n += 1
    repeats.append((time.perf_counter() - start) / n)
numpy_s = sorted(repeats)[len(repeats) // 2]
print(f"msexplore kernel: {timing['median_s'] * 1e6:9.1f} us  ({timing['gflops']:.1f} GFLOPS)")
print(f"numpy (BLAS)    : {numpy_s * 1e6:9.1f} us  ({workload.flop / numpy_s / 1e9:.1f} GFLOPS)")
print(f"ratio kernel / numpy: {timing['median_s'] / numpy_s:.2f}x")

# %% [markdown]
# ## A report that opens without a kernel
#
# Plotly figures are self-contained HTML: this one opens in any browser, no Python needed.

# %%
figure = mx.figures.plot_search_progress(run.records)
figure.write_html("runs/05-kernel-report.html", include_plotlyjs=True)
figure

# %% [markdown]
# ## The panel
#
# `ExportPanel` does the export with a button (on a thread), shows the manifest, then *Load and check* loads the
# bundle back, compares it with the reference and times it.

# %% tags=["widget"]
mx.ui.ExportPanel(run, folder="runs/05-kernel-panel")
