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
# # 1 · Authoring transformation modules
#
# A MetaSchedule search space is built by **transformation modules**: functions that take a schedule and a block
# and transform it, leaving some choices open as *random variables* (`sample_perfect_tile`, `sample_categorical`,
# `sample_compute_location`). The target's default modules (multi-level tiling, auto-inline,
# parallelize/vectorize/unroll...) give a good generic space; your own modules encode what you know about *this*
# kernel.
#
# In this notebook we:
#
# 1. pick a workload and look at its loop nest,
# 2. see what the target's default modules make of it,
# 3. write a module of our own, cell by cell, and redefine it,
# 4. compose a space and read its summary: every random variable, the loop it splits, how many values it can take,
# 5. toggle modules on and off in the `ModuleWorkbench`.
#
# Nothing here measures anything: building a space only traces the modules, so it is cheap once TVM is loaded.

# %% tags=["parameters"]
import os

# Budgets: a couple of minutes on a 2-core laptop. The tests shrink them through the environment.
SIZE = int(os.environ.get("MSX_SIZE", 128))        # the GMM is SIZE x SIZE x SIZE, float32
SAMPLES = int(os.environ.get("MSX_SAMPLES", 64))   # traces drawn from a space
TRIALS = int(os.environ.get("MSX_TRIALS", 32))     # candidates measured per search
BATCH = int(os.environ.get("MSX_BATCH", 16))       # candidates per measured batch
POPULATION = int(os.environ.get("MSX_POPULATION", 64))  # evolutionary search population
print(f"GMM {SIZE}^3, {SAMPLES} samples, {TRIALS} trials in batches of {BATCH}, population {POPULATION}")

# %% [markdown]
# ## The workload
#
# `mx.workload` gives one of the standard operators (GMM, C1D, C2D, ... as in the MetaSchedule paper) with its
# shapes, its FLOP count and a numpy reference that every measured candidate is checked against. A batched matrix
# multiply `Z[b, i, j] = sum_k X[b, i, k] * Y[b, k, j]` is the classic first kernel to schedule. The target is
# this machine's CPU as TVM sees it: its `mcpu` decides the vector width, `num-cores` the parallelism. Kernels
# run on every physical core (msexplore sets `TVM_NUM_THREADS`; TVM alone would use half of them on x86).

# %%
import msexplore as mx

workload = mx.workload("GMM", n=SIZE, m=SIZE, k=SIZE)
target = mx.host_target()
workload

# %%
print("target:", target)
print("operators:", ", ".join(mx.workload_names()))

# %% [markdown]
# The unscheduled program is the naive loop nest. Everything a schedule does (split, reorder, vectorize,
# parallelize) rewrites this:

# %%
print(workload.mod.script())

# %% [markdown]
# ## The target's default modules
#
# These are MetaSchedule's own schedule rules for `llvm`, in the order TVM applies them to each block. Building a
# space from them (`modules=["default"]`) reproduces what `tune_tir` would search. The first `mx.Space` of a
# session takes a while (TVM registers its tensor intrinsics once); later ones take milliseconds.

# %%
mx.default_module_names()

# %%
default_space = mx.Space(workload, modules=["default"], target=target)
default_space

# %% [markdown]
# `summary()` has one row per random variable: which module made it, on which block, the loop it splits, and its
# domain size (how many legal values it has). Multi-level tiling splits each spatial loop of `Z` in four and the
# reduction loop in two (the `SSRSRS` structure); the unroll decision comes from parallelize-vectorize-unroll.
# The tile domains are the products of the loop extents' factorizations, which is why the space is large even for
# a 128³ GMM.

# %%
default_space.summary()

# %% [markdown]
# The same summary as a figure: one bar per random variable, its domain size on a log scale, coloured by module.
# Tall bars are where the search has the most room; the product over all bars (per design space) is the number of
# programs.

# %%
mx.figures.plot_space_summary(default_space)


# %% [markdown]
# ## Writing a module, cell by cell
#
# A module is a plain function decorated with `@mx.module`. It receives a `tvm.s_tir.Schedule` and a block, and
# returns the schedules it produced (one, or several to fork the space). `blocks=["Z"]` restricts it to the
# matmul's block. The first version: split `j` in two with a sampled perfect tile, move the reduction between the
# two parts and vectorize the inner part.

# %%
@mx.module(blocks=["Z"])
def tile_and_vectorize(sch, block):
    """Split j in two, the reduction between the parts, the inner j vectorized."""
    *_, i, j, k = sch.get_loops(block)
    j_outer, j_inner = sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=16))
    sch.reorder(i, j_outer, k, j_inner)
    sch.vectorize(j_inner)
    return [sch]


mine = mx.Space(workload, modules=["auto_inline", tile_and_vectorize, "parallelize_vectorize_unroll"], target=target)
mine.summary()


# %% [markdown]
# One random variable of our own, `Z.tile_j`, next to the unroll decision of the default module we kept.
# `max_innermost_factor=16` keeps the vectorized part within one AVX-512 register (16 floats).
#
# Now a second thought: tile `i` too, so that a block of `Z` stays in registers across the reduction. **Run the
# same name again and the module is replaced**, not duplicated: the registry is keyed by name, so re-running a
# cell while you iterate is always safe.

# %%
@mx.module(blocks=["Z"])
def tile_and_vectorize(sch, block):
    """Tile i and j in two, the reduction between the tiles, the inner j vectorized."""
    *_, i, j, k = sch.get_loops(block)
    i_outer, i_inner = sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=8))
    j_outer, j_inner = sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=16))
    sch.reorder(i_outer, j_outer, k, i_inner, j_inner)
    sch.vectorize(j_inner)
    return [sch]


print("registered modules:", list(mx.registered_modules()))
mine = mx.Space(workload, modules=["auto_inline", tile_and_vectorize, "parallelize_vectorize_unroll"], target=target)
mine.summary()[["name", "module", "kind", "loop", "extent", "domain_size", "domain"]]


# %% [markdown]
# A module with a bug does not crash the cell: building the space records the failure with the module's name, the
# block and the traceback (`failure.traceback`), and branches the module did not touch would still sample. Here
# every branch went through the broken module (a block name copied from a tutorial whose matmul block is `C`), so
# nothing is left to sample, and `sample` says so instead of returning an empty set:

# %%
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
mx.unregister("from_the_tutorial")

# %% [markdown]
# ## The workbench
#
# `ModuleWorkbench` lists the target's default modules and every registered one, with switches. Each switch
# rebuilds the space on a thread (the notebook stays usable) and shows its summary table and figure; a module that
# raised shows its error in its row. Redefine a module in another cell and the workbench picks it up after that
# cell runs (or press *Reload modules*).

# %% tags=["widget"]
mx.ui.ModuleWorkbench(workload, modules=["auto_inline", tile_and_vectorize, "parallelize_vectorize_unroll"],
                      target=target)

# %% [markdown]
# **Next:** `02_sampling_traces_decisions.ipynb` draws programs from a space and looks at their traces and
# decisions.
