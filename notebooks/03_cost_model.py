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
# # 3 · The cost model
#
# Measuring a candidate costs a compile and a run (tens to hundreds of milliseconds, more on a remote device);
# scoring it with a model costs microseconds. MetaSchedule's evolutionary search leans on an **XGBoost cost
# model** over per-store features of the program (loop structure, arithmetic intensity, memory access patterns,
# vectorization...) to choose which candidates are worth measuring.
#
# Here we measure a small search, fit the model on its records, check how well it *ranks* held-out candidates (a
# cost model only has to order candidates, not predict milliseconds), see which feature groups it relies on, and
# use it to score fresh samples.

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

# %% [markdown]
# ## Records to learn from
#
# A short evolutionary search (it runs on a background thread; `wait()` blocks until it is done). Every measured
# candidate, including failures, is a row of `run.records`, and is kept in the run's folder: running this cell
# again continues from there rather than starting over.

# %%
space = mx.Space(workload, modules=["default"], target=target)
run = mx.search(space, trials=TRIALS, batch_size=BATCH, population_size=POPULATION, work_dir="runs/03-cost-model")
run.wait()
print(run.progress)
records = run.records
records.drop(columns=["trace"]).head(10)

# %% [markdown]
# ## Fit, and check the ranking on held-out records
#
# `quality` fits a fresh model on three quarters of the successful records and scores the rest: Spearman's rank
# correlation between predicted score and measured throughput, and top-k recall (how many of the k fastest
# held-out candidates the model also puts in its top k), next to what a random ranking would get. With a few dozen
# records expect a noisy but positive correlation; it improves quickly with more.

# %%
model = mx.CostModel(seed=0).fit(records)
quality = model.quality(records, top_k=(1, 5))
print(quality)

# %% [markdown]
# Predicted score against measured latency on the held-out records (faster to the right). A good model puts the
# fastest candidates (highlighted) at the top; the ones in red are fast candidates it would have missed.

# %%
mx.figures.plot_predicted_vs_measured(list(quality.predicted), list(quality.latency_s), k=3)

# %% [markdown]
# ## What the model looks at
#
# XGBoost's total gain per feature group: which properties of the program the trees split on. On a CPU matmul the
# buffer groups (how often and how far apart each buffer's data is reused, how many cache lines it touches) and the
# vectorization features usually carry most of the gain: that is where tile sizes show up. With few records the
# ranking is noisy; look at it again after a longer search.

# %%
importance = model.feature_importance()
importance.head(8)

# %%
mx.figures.plot_feature_importance(importance)

# %% [markdown]
# ## Scoring fresh samples
#
# `predict` scores a `SampleSet` (higher = predicted faster) and adds a `predicted` column to its table. Colouring
# the decision distributions by the mean predicted score shows which values of each decision the model favours;
# colouring the measured records by latency shows which the measurements reward.

# %%
samples = space.sample(SAMPLES, seed=1)
model.predict(samples)
samples.df.sort_values("predicted", ascending=False).drop(columns=["error", "seed"]).head(5)

# %%
mx.figures.plot_decision_distributions(samples, color="predicted")

# %%
mx.figures.plot_decision_distributions(records, color="latency")

# %% [markdown]
# The model saves to one file and loads back with the same predictions:

# %%
import numpy as np

model.save("runs/03-cost-model/model.tar")
again = mx.CostModel.load("runs/03-cost-model/model.tar")
np.testing.assert_array_equal(again.predict(samples), model.predict(samples))  # NaN for invalid samples
again

# %% [markdown]
# ## The panel
#
# `CostModelPanel` does the same with buttons: *Fit* trains on the run's latest records (on a thread), shows the
# held-out quality, predicted vs measured and the feature importance; *Predict samples* scores the samples.

# %% tags=["widget"]
mx.ui.CostModelPanel(run, samples)

# %% [markdown]
# **Next:** `04_live_search.ipynb` runs the search itself and watches it live.
