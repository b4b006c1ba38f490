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
# # 2 · Samples, traces and decisions
#
# A space is a program with holes; a **sample** fills every hole (every random variable gets a *decision*) and
# replays the transformations, giving one concrete scheduled program. Its **trace** is the list of schedule
# instructions that were run, with the decisions attached: the whole program is reproducible from it.
#
# Here we draw samples, read one sample's TIR and trace, diff two samples, edit a decision and replay it (and see
# what an illegal edit says), and look at how the decisions are distributed across samples.

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
samples = space.sample(SAMPLES, seed=0)
samples

# %% [markdown]
# `samples.df` is a plain DataFrame: one row per sample, one column per decision. Tiles are tuples of factors,
# outer to inner; their product is the loop's extent. The same seed gives the same samples, every time.

# %%
assert space.sample(SAMPLES, seed=0).df.equals(samples.df)  # determinism: same seed, same samples
samples.df.drop(columns=["error", "seed"]).head(10)

# %%
samples.df["design_space"].value_counts().rename("samples per design space")

# %% [markdown]
# ## One sample: its decisions and its program
#
# Read the tiles of `Z.tile_i` / `Z.tile_j` from outer to inner: the outer levels end up fused and parallel, the
# innermost `j` factor is what gets vectorized. The TIR shows exactly that: a `T.parallel` loop over the fused
# outer tiles, the reduction split in two, and a `T.vectorized` inner loop.

# %%
sample = samples[0]
sample.decisions

# %% tags=["widget"]
mx.ui.CodeView(sample.tir)

# %% [markdown]
# The trace, as a table (one row per instruction; sampling instructions carry their decision and the random
# variable's name) and as the Python that replays it. Rows after `EnterPostproc` were added by the postprocessors
# (they turn annotations into real `parallel`/`vectorize`/`unroll`).

# %%
sample.instructions()

# %%
print(sample.python())

# %% [markdown]
# ## Two samples side by side
#
# `mx.diff` lists the decisions that differ and gives a unified diff of the two programs: a quick way to see what
# one decision does to the loop nest.

# %% tags=["diff"]
d = mx.diff(samples[0], samples[1])
print(d)

# %% tags=["widget"]
mx.ui.CodeView(d.tir, mode="diff")

# %% [markdown]
# ## Edit a decision, replay
#
# `with_decisions` replays the trace with some decisions replaced. Every value is checked against the variable's
# legal values first: TVM itself would silently "repair" a tile that does not divide its loop (into `[1, ..., n]`),
# which is the last thing you want while reasoning about a schedule.

# %%
tile_j = [1, SIZE // 32, 4, 8]   # 4-level tile of j: product SIZE, innermost 8 floats
edited = samples[0].with_decisions({"Z.tile_j": tile_j})
print(mx.diff(samples[0], edited))

# %% [markdown]
# An illegal edit raises a `ValueError` that says which decision, why, and what the legal values are:

# %% tags=["illegal-edit"]
try:
    samples[0].with_decisions({"Z.tile_j": [3, 1, 1, SIZE]})
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ## Decisions across samples
#
# One panel per random variable, grouped by module: how often each value was drawn, stacked by validity (a
# sample is invalid when a postprocessor rejects it, e.g. a vector width the target cannot do). A uniform-looking
# panel means the sampler explores that variable freely; with a cost model (notebook 3) the same figure can be
# coloured by the predicted score.

# %%
mx.figures.plot_decision_distributions(samples)

# %% [markdown]
# ## The explorers
#
# `TraceExplorer`: the samples as a table; click a row to see its TIR and trace side by side, ctrl/shift-click a
# second row for the diff; change a decision in its dropdown to replay the edited trace; "Measure this one" builds
# and times the shown program on a thread.

# %% tags=["widget"]
mx.ui.TraceExplorer(space, samples=samples)

# %% [markdown]
# `DecisionInspector`: the distribution figure above, live. Click a bar to keep only the samples with that value
# (click again to drop the filter); the table below follows.

# %% tags=["widget"]
mx.ui.DecisionInspector(samples)

# %% [markdown]
# **Next:** `03_cost_model.ipynb` measures some of these programs and trains the cost model that guides the search.
