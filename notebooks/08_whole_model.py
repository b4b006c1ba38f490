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
#     display_name: Python 3 (msexplore + PyTorch)
#     language: python
#     name: msexplore-torch
# ---

# %% [markdown]
# # 8 · A whole model
#
# A model is many kernels. `mx.Model.from_torch` takes a PyTorch module through `torch.export` into TVM's Relax,
# then legalizes and fuses it the way TVM's compiler does: each fused TIR function left is a **task**, and each
# task's `workload` is an ordinary `mx.Workload`, open to everything of notebooks 1 to 5. `mx.tune_model` tunes all
# the tasks under one budget with one live dashboard; `run.compile()` builds the model with no task left untuned,
# checks it against PyTorch and times it beside PyTorch; the export loads again without torch.
#
# The model here is one PyTorch transformer encoder layer: self-attention, layer norms, a GELU feed-forward.
#
# This notebook needs PyTorch: it opens with the kernel **Python 3 (msexplore + PyTorch)** (`.venv-torch`'s Python),
# which `make lab` installs.

# %% tags=["parameters"]
import os

# Budgets: a few minutes on a 2-core laptop. The tests shrink them through the environment.
SEQ = int(os.environ.get("MSX_SEQ", 128))          # tokens of the input sequence (a batch of one)
HIDDEN = int(os.environ.get("MSX_HIDDEN", 256))    # the model width; the feed-forward layer is 4 x HIDDEN wide
HEADS = int(os.environ.get("MSX_HEADS", 4))        # attention heads
SAMPLES = int(os.environ.get("MSX_SAMPLES", 64))   # traces drawn from one task's space
TRIALS = int(os.environ.get("MSX_TRIALS", 200))    # candidates measured over all the tasks together
BATCH = int(os.environ.get("MSX_BATCH", 16))       # candidates per measured batch
print(f"encoder layer: seq {SEQ}, hidden {HIDDEN}, {HEADS} heads; {SAMPLES} samples; {TRIALS} trials in batches "
      f"of {BATCH}")

# %%
import numpy as np
import torch

import msexplore as mx

torch.manual_seed(0)
layer = torch.nn.TransformerEncoderLayer(
    HIDDEN, HEADS, 4 * HIDDEN, dropout=0.0, activation="gelu", batch_first=True
).eval()
x = torch.randn(1, SEQ, HIDDEN)
model = mx.Model.from_torch(layer, (x,), name="encoder")
model

# %% [markdown]
# ## Its tasks
#
# One row per task: how often one inference calls it (`weight`), its FLOP per call and its share of the model's
# FLOP, its arguments. The matrix multiplies (the Q/K/V projection, the attention scores and their sum, the output
# projection, the two feed-forward layers) hold most of the FLOP; GELU counts too, its fast `erf` being a polynomial.
# Many tasks are reshapes and transposes with no FLOP at all: their space often holds one program (`programs` = 1),
# and the budget gives them one trial.

# %%
tasks = model.tasks.drop(columns="workload")
tasks["programs"] = [mx.Space(w).size() for w in model.tasks["workload"]]
tasks = tasks.sort_values("flop_share", ascending=False, ignore_index=True)
print(f"{len(tasks)} tasks, {model.flop / 1e6:.1f} MFLOP per inference; "
      f"{(tasks['programs'] == 1).sum()} tasks with a one-program space")
tasks.round({"flop_share": 3})

# %% [markdown]
# ## One task, as a workload
#
# The task with the largest FLOP share among those with more than one program (a one-program space has nothing to
# explore), opened like any workload: its TIR function, a space over it, samples. This is where a custom
# transformation module would go (`tune_model(..., task_modules={name: [...]})`).

# %%
name = tasks[tasks["programs"] > 1]["task"].iloc[0]
workload = model.task(name).workload
workload

# %%
space = mx.Space(workload)
samples = space.sample(SAMPLES, seed=0)
samples

# %% [markdown]
# The `TraceExplorer` of notebook 2, on this task: click a sample to read its TIR and trace, ctrl/shift-click a
# second one for the diff, edit a decision and replay it.

# %% tags=["widget"]
mx.ui.TraceExplorer(space, samples=samples)

# %% [markdown]
# ## Tune the model, live
#
# `tune_model` runs one `mx.search` per task, one after another, on a background thread, and returns at once. The
# budget is spent in two passes:
#
# 1. **every task first**: a batch each (up to three, until one candidate is verified; one trial for a one-program
#    space), so no task is left without a measured schedule while others take the budget;
# 2. **then by estimated time**: the rest in proportion to each task's share of the estimated model latency (calls x
#    best latency so far).
#
# Each task is searched with the beam search of notebook 09 (`strategy="beam"`, tune_model's default): it measured
# fewer candidates to reach a kernel as fast, and a model tuned in about a third of plain `tune_relax`'s time, where
# the evolutionary search (`strategy="evolutionary"`) took two thirds (README, "Whole models").
#
# The dashboard shows the estimated model latency once every task has a verified candidate, the task table with
# each task's share of that time, and a Stop button; pick a task and *Open* to see its own search dashboard. Every
# task's search is a run folder under `runs/08-encoder/tasks/`: a new `tune_model` on the folder continues
# without measuring a program twice.

# %% tags=["model-dashboard"]
run = mx.tune_model(model, TRIALS, work_dir="runs/08-encoder", batch_size=BATCH)
run

# %% [markdown]
# Waiting for the end: which tasks carry the model's time now? The largest shares are where more trials (or a
# better module) pay.

# %%
run.wait()
print(run.progress)
run.tasks.sort_values("time_share", ascending=False, ignore_index=True).head(8)

# %% [markdown]
# ## Compile, check against PyTorch
#
# `compile` gives each task the best verified record of the run. A task without one (a stopped run, a budget
# smaller than the number of tasks) would not be lowered TVM's naive way, 100-200x slower and silently: it gets
# the fastest of a few measured samples of its space instead, listed in `fallbacks` with its cost (and a warning).
# The compiled model is then run on random inputs and compared with PyTorch eager.
#
# Each candidate was timed once by its search, and a task's fastest single timing is often its luckiest. Before a
# model you mean to keep, `run.confirm(3)` re-times each task's three fastest in turn (five rounds) and `compile`
# then takes each task's fastest by the median; it costs a few seconds per task, so this tour skips it.

# %% tags=["model-check"]
compiled = run.compile()
print(compiled)
print(compiled.check)
print("fallbacks:", "; ".join(str(f) for f in compiled.fallbacks) or "none, every task was tuned")

# %% [markdown]
# It takes PyTorch tensors or numpy arrays and returns numpy arrays:

# %%
with torch.no_grad():
    expected = layer(x).numpy()
got = compiled(x)
print(f"output {got.shape} {got.dtype}, max abs error against PyTorch {np.abs(got - expected).max():.2e}")

# %% [markdown]
# ## Beside PyTorch
#
# `benchmark` times the compiled model with TVM's time evaluator and PyTorch eager on the same inputs, round by
# round alternately (a noisy machine slows both alike), and reports the medians.

# %% tags=["versus-torch"]
timing = compiled.benchmark()
print(f"msexplore     : {timing['median_s'] * 1e3:8.3f} ms  ({mx.target.kernel_threads()} threads)")
print(f"PyTorch eager : {timing['torch_median_s'] * 1e3:8.3f} ms  ({torch.get_num_threads()} threads)")
print(f"speedup over PyTorch eager: {timing['speedup_vs_torch']:.2f}x")

# %% [markdown]
# **What was measured, and fast math.** One inference of the layer, batch of one, weights fixed, on this CPU;
# latency only (the import and compilation are not counted). PyTorch eager runs each operator through its own
# kernels (oneDNN, MKL or OpenBLAS); the compiled model runs the fused tasks as tuned here. Fast math is on by
# default: GELU's `erf` (with exp, tanh and softmax) goes through TVM's vectorizable approximations, since
# TVM lowers `erf` to a scalar libm call otherwise, which alone took most of the layer's time. The check above
# reports what that costs in accuracy. `mx.Model.from_torch(layer, (x,), fast_math=False)` computes them exactly,
# for a slower model. With a few hundred trials the matmuls are far from their best: a larger budget keeps
# closing the gap (the dashboard's latency curve shows how fast).
#
# ## Export, reload without torch
#
# `export` writes a bundle: the compiled library (the weights inside as constants), the tuning records it was
# compiled with, a manifest with a sha256 per file. `mx.load_model` checks every file and loads it in any
# process, no PyTorch and no tuning run needed.

# %%
bundle = compiled.export("runs/08-encoder-bundle", overwrite=True)
bundle

# %% tags=["reload"]
reloaded = mx.load_model("runs/08-encoder-bundle")
print(reloaded)
same = np.array_equal(reloaded(x.numpy()), compiled(x))
print("reloaded outputs equal the compiled model's:", same)
print(f"max abs error against PyTorch: {np.abs(reloaded(x.numpy()) - expected).max():.2e}")

# %% [markdown]
# **Next:** `msexplore tune-model FILE.py:FACTORY` does all of this headless, from a terminal.
