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
# # 4 · A live search
#
# `mx.search` starts MetaSchedule's evolutionary search on a background thread and returns at once. TVM builds
# and runs the candidates in worker processes (a candidate that crashes does not take the kernel down), each
# measured batch is recorded in the run's folder as it lands, and the run streams events to whoever listens.
#
# Make the run the last line of a cell and you get the **live dashboard**: trials done, the best latency and
# GFLOPS so far, every candidate and failure on the progress plot, the best candidates, and a Stop button. The
# notebook stays yours while it runs.

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

# %% tags=["dashboard"]
space = mx.Space(workload, modules=["default"], target=target)
run = mx.search(space, trials=TRIALS, batch_size=BATCH, population_size=POPULATION, work_dir="runs/04-live-search")
run

# %% [markdown]
# The cell above returned immediately. While the search measures, the kernel is free: this cell runs now, reads
# the run's progress and draws a few more samples from the space.

# %% tags=["while-searching"]
print("while searching:", run.progress)
extra = space.sample(16, seed=7)
print(extra, "- the kernel is not blocked by the search")

# %% [markdown]
# ## Stop, resume
#
# `stop()` asks the search to stop after the batch being measured; every measured record is kept (the Stop button
# of the dashboard does the same). We let the first batch land, then stop. A new `mx.search` on the same folder
# continues from the records there, without measuring them again: handy after a stop, a crash or a kernel restart.
# The new dashboard starts with the history.

# %% tags=["stop"]
import time

while run.running and run.progress.trials_done == 0:  # the first batch
    time.sleep(0.5)
print(run.stop())
print(f"{len(run.records)} records in {run.work_dir}")

# %% tags=["dashboard"]
resumed = mx.search(space, trials=TRIALS, batch_size=BATCH, population_size=POPULATION, work_dir="runs/04-live-search")
resumed

# %%
resumed.wait()
print(resumed.progress)
resumed.best

# %% [markdown]
# ## Reopen a run from its folder
#
# Everything is on disk: `mx.open_run` reads the folder back (a run from the CLI, another notebook, or a kernel
# that died) and displays it like a live one.

# %% tags=["dashboard"]
reopened = mx.open_run("runs/04-live-search")
reopened

# %%
progress = mx.figures.plot_search_progress(reopened.records, x="time")
progress

# %% [markdown]
# ## Compare strategies
#
# The same budget with `replay-trace` (random samples of the space, no cost model, no evolution) as a baseline.
# `compare_runs` gives one row per run: trials, failures, best latency and GFLOPS, and how many trials it took to
# get within 5% of its best. On a tiny budget the two are close; the evolutionary search pulls ahead as the budget
# grows and its cost model learns.

# %%
baseline = mx.search(space, trials=TRIALS, batch_size=BATCH, strategy="replay-trace", work_dir="runs/04-replay-trace")
baseline.wait()
mx.compare_runs({"evolutionary": reopened, "replay-trace": baseline})

# %% [markdown]
# **Next:** `05_export_kernel.ipynb` exports the best kernel and runs it on numpy arrays.
