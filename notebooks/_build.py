"""Writes the guided notebooks from the cells below, without outputs (what gets committed).

    .venv/bin/python notebooks/_build.py           # regenerate notebooks/0*.ipynb
    .venv/bin/python notebooks/_build.py --check   # exit 1 if a committed notebook differs from this script

The notebooks are reviewed here, as Python strings, and regenerated; never edit the .ipynb files by hand.
Cell ids are fixed (``n01-07``) so a regeneration without changes is byte-identical. Tags mark the cells the
tests look at (``tests/notebooks/test_notebooks.py``): ``parameters`` (the budget cell, shrunk by the tests
through ``MSX_*`` environment variables), ``diff``, ``illegal-edit``, ``dashboard``, ``while-searching``,
``stop``, ``widget`` (a cell whose result is a widget), ``kernel-check``, ``vnni-check``, ``side-by-side``,
``avx-profile``, ``packed``, ``searched``, ``threads``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

# The one visible budget cell of every notebook; the tests set MSX_TRIALS=8 and friends.
BUDGET = """\
import os

# Budgets: a couple of minutes on a 2-core laptop. The tests shrink them through the environment.
SIZE = int(os.environ.get("MSX_SIZE", 128))        # the GMM is SIZE x SIZE x SIZE, float32
SAMPLES = int(os.environ.get("MSX_SAMPLES", 64))   # traces drawn from a space
TRIALS = int(os.environ.get("MSX_TRIALS", 32))     # candidates measured per search
BATCH = int(os.environ.get("MSX_BATCH", 16))       # candidates per measured batch
POPULATION = int(os.environ.get("MSX_POPULATION", 64))  # evolutionary search population
print(f"GMM {SIZE}^3, {SAMPLES} samples, {TRIALS} trials in batches of {BATCH}, population {POPULATION}")"""

WORKLOAD = """\
import msexplore as mx

workload = mx.workload("GMM", n=SIZE, m=SIZE, k=SIZE)
target = mx.host_target()
workload"""


def md(text: str) -> dict:
    return {"cell_type": "markdown", "source": text.strip("\n")}


def code(text: str, *tags: str) -> dict:
    return {"cell_type": "code", "source": text.strip("\n"), "tags": list(tags)}


# ---- 01: authoring modules ---------------------------------------------------------------------------------
N01 = [
    md("""
# 1 · Authoring transformation modules

A MetaSchedule search space is built by **transformation modules**: functions that take a schedule and a block
and transform it, leaving some choices open as *random variables* (`sample_perfect_tile`, `sample_categorical`,
`sample_compute_location`). The target's default modules (multi-level tiling, auto-inline,
parallelize/vectorize/unroll...) give a good generic space; your own modules encode what you know about *this*
kernel.

In this notebook we:

1. pick a workload and look at its loop nest,
2. see what the target's default modules make of it,
3. write a module of our own, cell by cell, and redefine it,
4. compose a space and read its summary: every random variable, the loop it splits, how many values it can take,
5. toggle modules on and off in the `ModuleWorkbench`.

Nothing here measures anything: building a space only traces the modules, so it is cheap once TVM is loaded.
"""),
    code(BUDGET, "parameters"),
    md("""
## The workload

`mx.workload` gives one of the standard operators (GMM, C1D, C2D, ... as in the MetaSchedule paper) with its
shapes, its FLOP count and a numpy reference that every measured candidate is checked against. A batched matrix
multiply `Z[b, i, j] = sum_k X[b, i, k] * Y[b, k, j]` is the classic first kernel to schedule. The target is
this machine's CPU as TVM sees it: its `mcpu` decides the vector width, `num-cores` the parallelism. Kernels
run on every physical core (msexplore sets `TVM_NUM_THREADS`; TVM alone would use half of them on x86).
"""),
    code(WORKLOAD),
    code("""
print("target:", target)
print("operators:", ", ".join(mx.workload_names()))"""),
    md("""
The unscheduled program is the naive loop nest. Everything a schedule does (split, reorder, vectorize,
parallelize) rewrites this:
"""),
    code("print(workload.mod.script())"),
    md("""
## The target's default modules

These are MetaSchedule's own schedule rules for `llvm`, in the order TVM applies them to each block. Building a
space from them (`modules=["default"]`) reproduces what `tune_tir` would search. The first `mx.Space` of a
session takes a while (TVM registers its tensor intrinsics once); later ones take milliseconds.
"""),
    code("mx.default_module_names()"),
    code("""
default_space = mx.Space(workload, modules=["default"], target=target)
default_space"""),
    md("""
`summary()` has one row per random variable: which module made it, on which block, the loop it splits, and its
domain size (how many legal values it has). Multi-level tiling splits each spatial loop of `Z` in four and the
reduction loop in two (the `SSRSRS` structure); the unroll decision comes from parallelize-vectorize-unroll.
The tile domains are the products of the loop extents' factorizations, which is why the space is large even for
a 128³ GMM.
"""),
    code("default_space.summary()"),
    md("""
The same summary as a figure: one bar per random variable, its domain size on a log scale, coloured by module.
Tall bars are where the search has the most room; the product over all bars (per design space) is the number of
programs.
"""),
    code("mx.figures.plot_space_summary(default_space)"),
    md("""
## Writing a module, cell by cell

A module is a plain function decorated with `@mx.module`. It receives a `tvm.s_tir.Schedule` and a block, and
returns the schedules it produced (one, or several to fork the space). `blocks=["Z"]` restricts it to the
matmul's block. The first version: split `j` in two with a sampled perfect tile, move the reduction between the
two parts and vectorize the inner part.
"""),
    code("""
@mx.module(blocks=["Z"])
def tile_and_vectorize(sch, block):
    \"\"\"Split j in two, the reduction between the parts, the inner j vectorized.\"\"\"
    *_, i, j, k = sch.get_loops(block)
    j_outer, j_inner = sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=16))
    sch.reorder(i, j_outer, k, j_inner)
    sch.vectorize(j_inner)
    return [sch]


mine = mx.Space(workload, modules=["auto_inline", tile_and_vectorize, "parallelize_vectorize_unroll"], target=target)
mine.summary()"""),
    md("""
One random variable of our own, `Z.tile_j`, next to the unroll decision of the default module we kept.
`max_innermost_factor=16` keeps the vectorized part within one AVX-512 register (16 floats).

Now a second thought: tile `i` too, so that a block of `Z` stays in registers across the reduction. **Run the
same name again and the module is replaced**, not duplicated: the registry is keyed by name, so re-running a
cell while you iterate is always safe.
"""),
    code("""
@mx.module(blocks=["Z"])
def tile_and_vectorize(sch, block):
    \"\"\"Tile i and j in two, the reduction between the tiles, the inner j vectorized.\"\"\"
    *_, i, j, k = sch.get_loops(block)
    i_outer, i_inner = sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=8))
    j_outer, j_inner = sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=16))
    sch.reorder(i_outer, j_outer, k, i_inner, j_inner)
    sch.vectorize(j_inner)
    return [sch]


print("registered modules:", list(mx.registered_modules()))
mine = mx.Space(workload, modules=["auto_inline", tile_and_vectorize, "parallelize_vectorize_unroll"], target=target)
mine.summary()[["name", "module", "kind", "loop", "extent", "domain_size", "domain"]]"""),
    md("""
A module with a bug does not crash the cell: building the space records the failure with the module's name, the
block and the traceback (`failure.traceback`), and branches the module did not touch would still sample. Here
every branch went through the broken module (a block name copied from a tutorial whose matmul block is `C`), so
nothing is left to sample, and `sample` says so instead of returning an empty set:
"""),
    code("""
@mx.module(blocks=["Z"])
def from_the_tutorial(sch, block):
    c = sch.get_sblock("C")  # the tutorial's block name; ours is "Z"
    sch.parallel(sch.get_loops(c)[0])
    return [sch]


with_bug = mx.Space(workload, modules=[tile_and_vectorize, from_the_tutorial], target=target)
for failure in with_bug.failures:
    print(failure)
try:
    with_bug.sample(4)
except mx.SpaceError as err:
    print("SpaceError:", err)
mx.unregister("from_the_tutorial")"""),
    md("""
## The workbench

`ModuleWorkbench` lists the target's default modules and every registered one, with switches. Each switch
rebuilds the space on a thread (the notebook stays usable) and shows its summary table and figure; a module that
raised shows its error in its row. Redefine a module in another cell and the workbench picks it up after that
cell runs (or press *Reload modules*).
"""),
    code("""
mx.ui.ModuleWorkbench(workload, modules=["auto_inline", tile_and_vectorize, "parallelize_vectorize_unroll"],
                      target=target)""", "widget"),
    md("""
**Next:** `02_sampling_traces_decisions.ipynb` draws programs from a space and looks at their traces and
decisions.
"""),
]

# ---- 02: sampling, traces, decisions ----------------------------------------------------------------------
N02 = [
    md("""
# 2 · Samples, traces and decisions

A space is a program with holes; a **sample** fills every hole (every random variable gets a *decision*) and
replays the transformations, giving one concrete scheduled program. Its **trace** is the list of schedule
instructions that were run, with the decisions attached: the whole program is reproducible from it.

Here we draw samples, read one sample's TIR and trace, diff two samples, edit a decision and replay it (and see
what an illegal edit says), and look at how the decisions are distributed across samples.
"""),
    code(BUDGET, "parameters"),
    code(WORKLOAD),
    code("""
space = mx.Space(workload, modules=["default"], target=target)
samples = space.sample(SAMPLES, seed=0)
samples"""),
    md("""
`samples.df` is a plain DataFrame: one row per sample, one column per decision. Tiles are tuples of factors,
outer to inner; their product is the loop's extent. The same seed gives the same samples, every time.
"""),
    code("""
assert space.sample(SAMPLES, seed=0).df.equals(samples.df)  # determinism: same seed, same samples
samples.df.drop(columns=["error", "seed"]).head(10)"""),
    code("""
samples.df["design_space"].value_counts().rename("samples per design space")"""),
    md("""
## One sample: its decisions and its program

Read the tiles of `Z.tile_i` / `Z.tile_j` from outer to inner: the outer levels end up fused and parallel, the
innermost `j` factor is what gets vectorized. The TIR shows exactly that: a `T.parallel` loop over the fused
outer tiles, the reduction split in two, and a `T.vectorized` inner loop.
"""),
    code("""
sample = samples[0]
sample.decisions"""),
    code("mx.ui.CodeView(sample.tir)", "widget"),
    md("""
The trace, as a table (one row per instruction; sampling instructions carry their decision and the random
variable's name) and as the Python that replays it. Rows after `EnterPostproc` were added by the postprocessors
(they turn annotations into real `parallel`/`vectorize`/`unroll`).
"""),
    code("sample.instructions()"),
    code("print(sample.python())"),
    md("""
## Two samples side by side

`mx.diff` lists the decisions that differ and gives a unified diff of the two programs: a quick way to see what
one decision does to the loop nest.
"""),
    code("""
d = mx.diff(samples[0], samples[1])
print(d)""", "diff"),
    code('mx.ui.CodeView(d.tir, mode="diff")', "widget"),
    md("""
## Edit a decision, replay

`with_decisions` replays the trace with some decisions replaced. Every value is checked against the variable's
legal values first: TVM itself would silently "repair" a tile that does not divide its loop (into `[1, ..., n]`),
which is the last thing you want while reasoning about a schedule.
"""),
    code("""
tile_j = [1, SIZE // 32, 4, 8]   # 4-level tile of j: product SIZE, innermost 8 floats
edited = samples[0].with_decisions({"Z.tile_j": tile_j})
print(mx.diff(samples[0], edited))"""),
    md("""
An illegal edit raises a `ValueError` that says which decision, why, and what the legal values are:
"""),
    code("""
try:
    samples[0].with_decisions({"Z.tile_j": [3, 1, 1, SIZE]})
except ValueError as err:
    print("ValueError:", err)""", "illegal-edit"),
    md("""
## Decisions across samples

One panel per random variable, grouped by module: how often each value was drawn, stacked by validity (a
sample is invalid when a postprocessor rejects it, e.g. a vector width the target cannot do). A uniform-looking
panel means the sampler explores that variable freely; with a cost model (notebook 3) the same figure can be
coloured by the predicted score.
"""),
    code("mx.figures.plot_decision_distributions(samples)"),
    md("""
## The explorers

`TraceExplorer`: the samples as a table; click a row to see its TIR and trace side by side, ctrl/shift-click a
second row for the diff; change a decision in its dropdown to replay the edited trace; "Measure this one" builds
and times the shown program on a thread.
"""),
    code("mx.ui.TraceExplorer(space, samples=samples)", "widget"),
    md("""
`DecisionInspector`: the distribution figure above, live. Click a bar to keep only the samples with that value
(click again to drop the filter); the table below follows.
"""),
    code("mx.ui.DecisionInspector(samples)", "widget"),
    md("""
**Next:** `03_cost_model.ipynb` measures some of these programs and trains the cost model that guides the search.
"""),
]

# ---- 03: cost model ---------------------------------------------------------------------------------------
N03 = [
    md("""
# 3 · The cost model

Measuring a candidate costs a compile and a run (tens to hundreds of milliseconds, more on a remote device);
scoring it with a model costs microseconds. MetaSchedule's evolutionary search leans on an **XGBoost cost
model** over per-store features of the program (loop structure, arithmetic intensity, memory access patterns,
vectorization...) to choose which candidates are worth measuring.

Here we measure a small search, fit the model on its records, check how well it *ranks* held-out candidates (a
cost model only has to order candidates, not predict milliseconds), see which feature groups it relies on, and
use it to score fresh samples.
"""),
    code(BUDGET, "parameters"),
    code(WORKLOAD),
    md("""
## Records to learn from

A short evolutionary search (it runs on a background thread; `wait()` blocks until it is done). Every measured
candidate, including failures, is a row of `run.records`, and is kept in the run's folder: running this cell
again continues from there rather than starting over.
"""),
    code("""
space = mx.Space(workload, modules=["default"], target=target)
run = mx.search(space, trials=TRIALS, batch_size=BATCH, population_size=POPULATION, work_dir="runs/03-cost-model")
run.wait()
print(run.progress)
records = run.records
records.drop(columns=["trace"]).head(10)"""),
    md("""
## Fit, and check the ranking on held-out records

`quality` fits a fresh model on three quarters of the successful records and scores the rest: Spearman's rank
correlation between predicted score and measured throughput, and top-k recall (how many of the k fastest
held-out candidates the model also puts in its top k), next to what a random ranking would get. With a few dozen
records expect a noisy but positive correlation; it improves quickly with more.
"""),
    code("""
model = mx.CostModel(seed=0).fit(records)
quality = model.quality(records, top_k=(1, 5))
print(quality)"""),
    md("""
Predicted score against measured latency on the held-out records (faster to the right). A good model puts the
fastest candidates (highlighted) at the top; the ones in red are fast candidates it would have missed.
"""),
    code("mx.figures.plot_predicted_vs_measured(list(quality.predicted), list(quality.latency_s), k=3)"),
    md("""
## What the model looks at

XGBoost's total gain per feature group: which properties of the program the trees split on. On a CPU matmul the
buffer groups (how often and how far apart each buffer's data is reused, how many cache lines it touches) and the
vectorization features usually carry most of the gain: that is where tile sizes show up. With few records the
ranking is noisy; look at it again after a longer search.
"""),
    code("""
importance = model.feature_importance()
importance.head(8)"""),
    code("mx.figures.plot_feature_importance(importance)"),
    md("""
## Scoring fresh samples

`predict` scores a `SampleSet` (higher = predicted faster) and adds a `predicted` column to its table. Colouring
the decision distributions by the mean predicted score shows which values of each decision the model favours;
colouring the measured records by latency shows which the measurements reward.
"""),
    code("""
samples = space.sample(SAMPLES, seed=1)
model.predict(samples)
samples.df.sort_values("predicted", ascending=False).drop(columns=["error", "seed"]).head(5)"""),
    code('mx.figures.plot_decision_distributions(samples, color="predicted")'),
    code('mx.figures.plot_decision_distributions(records, color="latency")'),
    md("""
The model saves to one file and loads back with the same predictions:
"""),
    code("""
import numpy as np

model.save("runs/03-cost-model/model.tar")
again = mx.CostModel.load("runs/03-cost-model/model.tar")
np.testing.assert_array_equal(again.predict(samples), model.predict(samples))  # NaN for invalid samples
again"""),
    md("""
## The panel

`CostModelPanel` does the same with buttons: *Fit* trains on the run's latest records (on a thread), shows the
held-out quality, predicted vs measured and the feature importance; *Predict samples* scores the samples.
"""),
    code("mx.ui.CostModelPanel(run, samples)", "widget"),
    md("""
**Next:** `04_live_search.ipynb` runs the search itself and watches it live.
"""),
]

# ---- 04: live search --------------------------------------------------------------------------------------
N04 = [
    md("""
# 4 · A live search

`mx.search` starts MetaSchedule's evolutionary search on a background thread and returns at once. TVM builds
and runs the candidates in worker processes (a candidate that crashes does not take the kernel down), each
measured batch is recorded in the run's folder as it lands, and the run streams events to whoever listens.

Make the run the last line of a cell and you get the **live dashboard**: trials done, the best latency and
GFLOPS so far, every candidate and failure on the progress plot, the best candidates, and a Stop button. The
notebook stays yours while it runs.
"""),
    code(BUDGET, "parameters"),
    code(WORKLOAD),
    code("""
space = mx.Space(workload, modules=["default"], target=target)
run = mx.search(space, trials=TRIALS, batch_size=BATCH, population_size=POPULATION, work_dir="runs/04-live-search")
run""", "dashboard"),
    md("""
The cell above returned immediately. While the search measures, the kernel is free: this cell runs now, reads
the run's progress and draws a few more samples from the space.
"""),
    code("""
print("while searching:", run.progress)
extra = space.sample(16, seed=7)
print(extra, "- the kernel is not blocked by the search")""", "while-searching"),
    md("""
## Stop, resume

`stop()` asks the search to stop after the batch being measured; every measured record is kept (the Stop button
of the dashboard does the same). We let the first batch land, then stop. A new `mx.search` on the same folder
continues from the records there, without measuring them again: handy after a stop, a crash or a kernel restart.
The new dashboard starts with the history.
"""),
    code("""
import time

while run.running and run.progress.trials_done == 0:  # the first batch
    time.sleep(0.5)
print(run.stop())
print(f"{len(run.records)} records in {run.work_dir}")""", "stop"),
    code("""
resumed = mx.search(space, trials=TRIALS, batch_size=BATCH, population_size=POPULATION, work_dir="runs/04-live-search")
resumed""", "dashboard"),
    code("""
resumed.wait()
print(resumed.progress)
resumed.best"""),
    md("""
## Reopen a run from its folder

Everything is on disk: `mx.open_run` reads the folder back (a run from the CLI, another notebook, or a kernel
that died) and displays it like a live one.
"""),
    code("""
reopened = mx.open_run("runs/04-live-search")
reopened""", "dashboard"),
    code("""
progress = mx.figures.plot_search_progress(reopened.records, x="time")
progress"""),
    md("""
## Compare strategies

The same budget with `replay-trace` (random samples of the space, no cost model, no evolution) as a baseline.
`compare_runs` gives one row per run: trials, failures, best latency and GFLOPS, and how many trials it took to
get within 5% of its best. On a tiny budget the two are close; the evolutionary search pulls ahead as the budget
grows and its cost model learns.
"""),
    code("""
baseline = mx.search(space, trials=TRIALS, batch_size=BATCH, strategy="replay-trace", work_dir="runs/04-replay-trace")
baseline.wait()
mx.compare_runs({"evolutionary": reopened, "replay-trace": baseline})"""),
    md("""
**Next:** `05_export_kernel.ipynb` exports the best kernel and runs it on numpy arrays.
"""),
]

# ---- 05: export -------------------------------------------------------------------------------------------
N05 = [
    md("""
# 5 · Export the best kernel

A tuned schedule is only useful once it leaves the notebook. `export` compiles the best candidate, checks its
outputs against the reference once more, and writes a **bundle**: the compiled library, its TVMScript, the trace
as Python and JSON, the tuning record and a manifest with checksums. `mx.load_kernel` loads it back (checking
every file) as a function on numpy arrays, in a process that knows nothing about the search.
"""),
    code(BUDGET, "parameters"),
    code(WORKLOAD),
    code("""
space = mx.Space(workload, modules=["default"], target=target)
run = mx.search(space, trials=TRIALS, batch_size=BATCH, population_size=POPULATION, work_dir="runs/05-export")
run.wait()
print(run.progress)
best = run.best
best"""),
    code("""
bundle = best.export("runs/05-kernel", overwrite=True)
bundle"""),
    md("""
## What is in the bundle

`manifest.json` records the workload and its arguments, the target, the measured latency, the versions of TVM
and msexplore, the result of the correctness check and a sha256 per file; `load_kernel` refuses a bundle whose
files changed since export.
"""),
    code("""
manifest = bundle.manifest
for path in sorted(bundle.path.iterdir()):
    digest = manifest["files"].get(path.name, "")[:12]
    print(f"{path.name:14} {path.stat().st_size:>9,} bytes  sha256 {digest}...")
print()
print("arguments:", ", ".join(f"{a['name']}{a['shape']} {a['dtype']}{' (out)' if a['output'] else ''}" for a in manifest["args"]))
print("target:   ", manifest["target"])
print(f"latency:   {manifest['latency_s'] * 1e6:.1f} us ({manifest['gflops']:.1f} GFLOPS), checked: {manifest['verified']}")
print("built with TVM", manifest["tvm_version"], "and msexplore", manifest["msexplore_version"], "on", manifest["created"])"""),
    code('print((bundle.path / "trace.py").read_text())'),
    md("""
## Load it and run it on numpy arrays

Call the kernel with the inputs (outputs are allocated) or with every argument (outputs written in place):
"""),
    code("""
import numpy as np

kernel = mx.load_kernel("runs/05-kernel")
x, y, _ = workload.make_inputs(seed=1)
z = kernel(x, y)
np.testing.assert_allclose(z, x @ y, rtol=1e-4, atol=1e-3)
print(kernel)
print("matches numpy: max abs error", float(np.abs(z - x @ y).max()))""", "kernel-check"),
    md("""
## How fast, next to numpy

`benchmark` times the kernel with TVM's `time_evaluator`. numpy's `@` calls an optimized BLAS (OpenBLAS or MKL),
hand-tuned for years; a schedule found in a few dozen trials is usually within a small factor of it at these
sizes, and larger budgets close the gap. Both use every core.
"""),
    code("""
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
print(f"ratio kernel / numpy: {timing['median_s'] / numpy_s:.2f}x")"""),
    md("""
## A report that opens without a kernel

Plotly figures are self-contained HTML: this one opens in any browser, no Python needed.
"""),
    code("""
figure = mx.figures.plot_search_progress(run.records)
figure.write_html("runs/05-kernel-report.html", include_plotlyjs=True)
figure"""),
    md("""
## The panel

`ExportPanel` does the export with a button (on a thread), shows the manifest, then *Load and check* loads the
bundle back, compares it with the reference and times it.
"""),
    code('mx.ui.ExportPanel(run, folder="runs/05-kernel-panel")', "widget"),
]

# ---- 06: growing the space ----------------------------------------------------------------------------------
BUDGET_06 = """\
import os

# Budgets: a few minutes on a 2-core machine with AVX-512 VNNI. The tests shrink them through the environment.
M = int(os.environ.get("MSX_INT8_M", 128))         # the int8 dense is M x NK x NK (u8 data, s8 weights)
NK = int(os.environ.get("MSX_INT8_NK", 768))
SAMPLES = int(os.environ.get("MSX_SAMPLES", 64))   # traces drawn from each space
TRIALS = int(os.environ.get("MSX_TRIALS", 64))     # candidates measured per search (the paper's budget here)
BATCH = int(os.environ.get("MSX_BATCH", 16))       # candidates per measured batch
POPULATION = int(os.environ.get("MSX_POPULATION", 64))  # evolutionary search population
print(f"int8 dense {M}x{NK}x{NK}, {SAMPLES} samples, {TRIALS} trials in batches of {BATCH}, population {POPULATION}")"""

N06 = [
    md("""
# 6 · Growing the space

The paper's central claim is that a search space is *modular*: a domain expert can grow it with a module that
knows something the generic rules do not, and growing it pays. Its Experiment 3 adds a hardware module for a
tensorized instruction and gets +48% end to end.

On this CPU the instruction is AVX-512 VNNI's **`vpdpbusd`**: in one instruction, 16 int32 sums of 4 u8 x s8
products each, 64 multiply-adds. The generic space cannot find it, because no combination of tile sizes,
vectorization and unrolling of the scalar loop turns into that instruction; the compiler has to be told. This
notebook does Experiment 3 on an int8 dense layer: the default space, then the VNNI module built cell by cell,
what each space samples, a search on each, and the best latency of both side by side.
"""),
    code(BUDGET_06, "parameters"),
    code("""
import msexplore as mx
from msexplore.hardware import vnni

target = mx.host_target()
print(target)
print("AVX-512 VNNI on this CPU:", vnni.missing_vnni(target) is None)
workload = mx.workload("DENSE_U8S8", m=M, n=NK, k=NK)
workload"""),
    md("""
`DENSE_U8S8` computes `C[i, j] = sum_r A[i, r] * W[j, r]` with u8 data, s8 weights and int32 sums. The weights
are stored packed as `B[j/16, r/4, j%16, r%4]`: 16 output channels times 4 reduction elements side by side, the
64 bytes one `vpdpbusd` reads. Its reference is numpy in int64, and the inputs cover the whole u8 and s8
ranges, so a kernel that saturates (AVX-512's older `vpmaddubsw` path sums pairs in int16) is caught as a wrong
result rather than timed.

## The default space

`"default"` is the target's generic modules. (MetaSchedule's own "from-target" default would hand an int8
workload its built-in VNNI space, whose intrinsic the LLVM bundled with TVM 0.27 rejects: 0 valid programs. So
msexplore names the plain LLVM rules explicitly, and int8 gets a space that works.)
"""),
    code("""
default = mx.Space(workload, modules=["default"], target=target)
default_samples = default.sample(SAMPLES, seed=0)
print(default)
print(f"valid: {len(default_samples.valid)} of {len(default_samples)}")
default.summary()[["name", "module", "kind", "extent", "domain_size", "domain"]]"""),
    md("""
## A hardware module, cell by cell

MetaSchedule already has the pieces: a **tensor intrinsic** (what one instruction computes, as a tiny TIR
function, and how to emit it) and `MultiLevelTilingWithIntrin`, a tiling rule that makes the innermost tile of a
block exactly the intrinsic's shape and marks it for tensorization. TVM even ships a VNNI intrinsic. Let us
try it as a module: `mx.module(rule=...)` turns any MetaSchedule rule into a named module, with the
postprocessors its schedules need (`RewriteTensorize` swaps the marked tile for the instruction), and
`before=` so it tiles the block before the generic tiling does.

We compile a few samples of each attempt here, in the notebook, to see whether they build.
"""),
    code("""
import tvm
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.schedule_rule import MultiLevelTilingWithIntrin, ReuseType
from tvm.s_tir.tensor_intrin.x86 import VNNI_DOT_16x4_INTRIN  # TVM's own VNNI intrinsic


def vnni_tiling(intrinsic):
    \"\"\"TVM's recipe for CPU tensorization: the innermost tile is the intrinsic, SSRSRS tiles around it.\"\"\"
    return MultiLevelTilingWithIntrin(intrinsic, structure="SSRSRS", tile_binds=None, max_innermost_factor=64,
                                      vector_load_lens=None, reuse_read=None,
                                      reuse_write=ReuseType(req="may", levels=[1, 2], scope="global"))


def reason(err):
    \"\"\"The sentence of a compiler error that says what went wrong.\"\"\"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    known = [line for line in lines if "does not match" in line or "Cannot broadcast" in line]
    return (known or lines[-1:])[0].split("is false: ")[-1]


def compiles(space, n=8):
    \"\"\"Compile n samples here and count; each distinct error once.\"\"\"
    errors = []
    for sample in space.sample(n, seed=1).valid:
        try:
            tvm.tirx.build(sample.schedule.mod, target)
        except Exception as err:
            errors.append(reason(err))
    print(f"{n - len(errors)} of {n} samples compile")
    for error in sorted(set(errors)):
        print(f"  {errors.count(error)} x {error}")


stock = mx.module(name="vnni_stock", rule=vnni_tiling(VNNI_DOT_16x4_INTRIN),
                  postprocs=[ms.postproc.RewriteTensorize(vectorize_init_loop=True)], before=["multi_level_tiling"])
compiles(mx.Space(workload, modules=["default", stock], target=target))"""),
    md("""
Nothing compiles, for two reasons. The first ("Call parameter type does not match"): TVM's intrinsic passes
`<16 x i32>` operands to `llvm.x86.avx512.vpdpbusd.512`, and LLVM 22 declares it on bytes. The fix is an intrinsic with the **same description** and an implementation that hands the
instruction `<64 x u8>` and `<64 x i8>` (a reinterpretation in registers, no data movement). msexplore registers
it as `vnni.INTRIN_NAME`; here is its implementation, in TVMScript:
"""),
    code("""
import inspect

print(vnni.dot_16x4_vpdpbusd.script())
fixed = mx.module(name="vnni_fixed", rule=vnni_tiling(vnni.INTRIN_NAME),
                  postprocs=[ms.postproc.RewriteTensorize(vectorize_init_loop=True)], before=["multi_level_tiling"])
compiles(mx.Space(workload, modules=["default", fixed], target=target))"""),
    md("""
The instruction is accepted now; the second reason remains ("Cannot broadcast"). The default
`RewriteParallelVectorizeUnroll` vectorizes the innermost loops of every block, including a tile loop around the
block to be tensorized, and vectorizing code that is already 16 lanes wide fails. A small postprocessor,
`UnrollTensorizedVectorLoops`, unrolls such loops instead. It runs before `RewriteTensorize`:
"""),
    code("""
print(inspect.getsource(vnni.UnrollTensorizedVectorLoops.apply))
unroll_then_tensorize = [vnni.UnrollTensorizedVectorLoops(), ms.postproc.RewriteTensorize(vectorize_init_loop=True)]
grown = mx.module(name="vnni_grown", rule=vnni_tiling(vnni.INTRIN_NAME), postprocs=unroll_then_tensorize,
                  requires=vnni.missing_vnni, before=["multi_level_tiling"])
compiles(mx.Space(workload, modules=["default", grown], target=target))"""),
    md("""
Every sample compiles. With `requires=`, the module also checks that the target has the instruction: on a CPU
without VNNI, a space asking for it says so and names the targets that have it, rather than failing later in
LLVM. This is exactly what msexplore ships as the module `"x86-vnni"`
(`msexplore/hardware/vnni.py`, written to be read as an example):
"""),
    code("""
source = inspect.getsource(vnni)
print(source[source.index("VNNI = module("):])
try:
    mx.Space(workload, modules=["default", "x86-vnni"], target={"kind": "llvm", "mcpu": "skylake-avx512"})
except mx.ModuleNotApplicable as err:
    print("on a Skylake target:", err)"""),
    md("""
## The two spaces, side by side

Composing is one more name in the list. The enriched space has the same default modules; on the int8 block the
VNNI module tiles first, so its tile decisions replace the generic ones (fewer of them: the innermost 16x4 is
fixed by the instruction).
"""),
    code("""
enriched = mx.Space(workload, modules=["default", "x86-vnni"], target=target)
enriched_samples = enriched.sample(SAMPLES, seed=0)
print(enriched)
print(f"valid: {len(enriched_samples.valid)} of {len(enriched_samples)}")
enriched.summary()[["name", "module", "kind", "extent", "domain_size", "domain"]]"""),
    code('mx.figures.plot_decision_distributions(default_samples)'),
    code('mx.figures.plot_decision_distributions(enriched_samples)'),
    md("""
## A search on each

The same budget for both, one after the other (they would share the two cores otherwise). The dashboards
update live; every candidate is checked against the int64 reference before it is timed.
"""),
    code("""
run_default = mx.search(default, trials=TRIALS, batch_size=BATCH, population_size=POPULATION,
                        work_dir="runs/06-default")
run_default""", "dashboard"),
    code("""
run_default.wait()
print(run_default.progress)
run_enriched = mx.search(enriched, trials=TRIALS, batch_size=BATCH, population_size=POPULATION,
                         work_dir="runs/06-x86-vnni")
run_enriched""", "dashboard"),
    code("""
run_enriched.wait()
print(run_enriched.progress)
best = run_enriched.best
asm = tvm.tirx.build(best.mod, target).inspect_source("asm")
print("x86-vnni best:", best)
print("vpdpbusd in the kernel:", "vpdpbusd" in asm)
mx.compare_runs({"default": run_default, "default + x86-vnni": run_enriched})""", "vnni-check"),
    md("""
## Next to PyTorch

`torch._int_mm` is PyTorch's int8 matrix multiply (s8 x s8 -> s32, oneDNN on CPU): same shape, same number of
multiply-adds. It is optional here; without torch installed the figure shows the two spaces only.
"""),
    code("""
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
figure""", "side-by-side"),
    md("""
The enriched space wins by a wide margin at the same budget: the default space can only reach scalar or
widened int32 arithmetic, the enriched one starts from the instruction. Growing the space is a few lines of
Python once the instruction is described; the search does the rest (tile sizes around the instruction,
parallelism, unrolling). `benchmarks/int8.py` runs this comparison with the full budget.
"""),
]

from _cells_07 import N07  # noqa: E402  (notebook 07's cells live in their own file)

NOTEBOOKS = {
    "01_authoring_modules.ipynb": N01,
    "02_sampling_traces_decisions.ipynb": N02,
    "03_cost_model.ipynb": N03,
    "04_live_search.ipynb": N04,
    "05_export_kernel.ipynb": N05,
    "06_growing_the_space.ipynb": N06,
    "07_faster_gemm_avx512.ipynb": N07,
}


def build(name: str, cells: list[dict]) -> nbformat.NotebookNode:
    """A notebook without outputs, with stable cell ids (``n01-00``, ``n01-01``...)."""
    nb = nbformat.v4.new_notebook()
    prefix = "n" + name[:2]
    for index, cell in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if cell["cell_type"] == "markdown" else nbformat.v4.new_code_cell
        new = make(cell["source"], id=f"{prefix}-{index:02d}")
        if cell.get("tags"):
            new.metadata["tags"] = cell["tags"]
        nb.cells.append(new)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        text = render(build(name, cells))
        path = HERE / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(f"out of date (run notebooks/_build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
