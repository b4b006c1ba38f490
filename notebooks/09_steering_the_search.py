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
# # 9 · Steering the search
#
# MetaSchedule's evolutionary search mutates whole programs: mostly tile sizes (90 % of its mutations), seldom the
# structure (where a block is computed, how the outer loops are split across cores). Once its population has settled
# on a structure, its best-so-far can stay flat for many trials: it *stalls*. Halide's Adams2019 autoscheduler searches
# differently: a **beam search** over partial schedules, the coarse decisions first, each partial choice scored by a
# learned cost model. msexplore has both: `strategy="beam"` takes a trace's decisions coarse to fine (design space,
# outer tiles, compute locations, inner tiles, reduction tiles, unroll), scoring a partial choice by the cost model's
# best prediction over a few random completions. Half of each of its batches refines the fastest programs measured
# so far (one decision re-drawn, the cost model's favourites among the neighbours), as Adams2019's later passes
# refine the earlier ones' winners. It keeps to 8 % of the search's wall time (`time_share`): where building and
# measuring a batch is quick next to a full pass, later passes narrow.
#
# And Halide's `HL_CYOS=1` ("choose your own schedule") lets a person take each step by hand. Here that is
# `ChooseSchedule`: each decision's values with the score of the program each leads to, its TIR and its diff; you
# choose, go back, measure, or hand the rest to the beam.

# %% tags=["parameters"]
import os

# Budgets: about three minutes on a 2-core laptop. The tests shrink them through the environment.
SIZE = int(os.environ.get("MSX_SIZE", 128))  # the GMM is SIZE x SIZE x SIZE, float32
TRIALS = int(os.environ.get("MSX_TRIALS", 64))  # candidates measured per search
BATCH = int(os.environ.get("MSX_BATCH", 16))  # candidates per measured batch
POPULATION = int(os.environ.get("MSX_POPULATION", 128))  # evolutionary search population
BEAM = int(os.environ.get("MSX_BEAM", 4))  # the beam's width
FINISH = int(os.environ.get("MSX_FINISH", 4))  # programs "finish from here" measures
print(f"GMM {SIZE}^3, {TRIALS} trials per search in batches of {BATCH}, population {POPULATION}, beam {BEAM}")

# %%
import shutil

import msexplore as mx

workload = mx.workload("GMM", n=SIZE, m=SIZE, k=SIZE)
space = mx.Space(workload, modules=["default"], target=mx.host_target())
for folder in ("runs/09-evolutionary", "runs/09-beam"):  # fresh runs: the same folder would resume
    shutil.rmtree(folder, ignore_errors=True)
space

# %% [markdown]
# ## The evolutionary search, then the beam
#
# Two searches with the same budget, batch size, seed and cost model (XGB, trained from the first batch on). The
# first batch of each is random programs (the cost model knows nothing yet); from the second on, the evolutionary
# search mutates its best predicted programs and the beam descends through the decisions.

# %%
evolutionary = mx.search(space, trials=TRIALS, batch_size=BATCH, population_size=POPULATION,
                         work_dir="runs/09-evolutionary")
evolutionary.wait()
print(evolutionary.progress)

# %% [markdown]
# A beam run is a run like any other: its dashboard, records, resume and export work the same.

# %% tags=["dashboard"]
beam = mx.search(space, trials=TRIALS, batch_size=BATCH, strategy="beam", beam_size=BEAM, work_dir="runs/09-beam")
beam

# %%
beam.wait()
print(beam.progress)

# %% [markdown]
# ## Side by side
#
# The best GFLOPS so far after each measured trial. A stall is a long flat stretch. In the `search_quality`
# benchmark's quick run (GMM 128³, 64 trials in batches of 16, two seeds; `benchmarks/results/`) the evolutionary
# search needed a median of 40 trials to come within 5 % of its own final best, the beam 8.5. At this notebook's
# budget one run of each is noisy: raise `MSX_TRIALS` to see the plateau.

# %% tags=["side-by-side"]
import plotly.graph_objects as go

runs = {"evolutionary": evolutionary, "beam": beam}
figure = go.Figure()
for label, run in runs.items():
    records = run.records.sort_values("trial")
    best_so_far = records["gflops"].where(records["ok"]).cummax()
    figure.add_scatter(x=records["trial"] + 1, y=best_so_far, name=label, mode="lines+markers", line_shape="hv")
figure.update_layout(title=f"Best GFLOPS so far, GMM {SIZE}³", xaxis_title="trials measured",
                     yaxis_title="best GFLOPS so far", height=360, margin=dict(t=50, b=40, l=60, r=10))
print(mx.compare_runs(runs).to_string())
figure

# %% [markdown]
# ## Choose your own schedule
#
# `ChooseSchedule` starts from a whole program and shows the next decision, in the beam's order. Each of its legal
# values comes with the score the cost model gives the program that choosing it leads to (the current program with
# that decision changed), the spread over a few random completions, and that program's TIR or its diff to the current
# one (the toggle under the buttons). Here the model is the beam run's, trained on its measurements.
#
# In the list, **↑/↓** preview a value, **Enter** or a click chooses it, **Backspace** goes back. *Measure this* builds
# and runs the current program (the model learns from it); *Finish from here* hands the remaining decisions to the
# beam: one beam pass restricted to the path so far, its best predicted programs measured, the fastest taken.

# %% tags=["widget"]
from msexplore.ui.choose_schedule import ChooseSchedule

steer = ChooseSchedule(space, cost_model=beam.cost_model, trials=FINISH)
steer

# %% [markdown]
# Click through the values above. So that this notebook also runs top to bottom, the next cell does what clicking
# the best-scored value of every decision does, then *Measure this*.

# %% tags=["chosen"]
steer.wait()
steering = steer.steering
while not steering.done:
    best = max(steering.options(), key=lambda option: -1.0 if option.score is None else option.score)
    steer.choose(best.value)
    steer.wait()
print("path:", " › ".join(steer.path_labels))
steer.measure()
steer.wait()
print("chosen by hand:", steer.measurement_text)
for label, run in runs.items():
    print(f"{label} best: {run.best}")

# %% [markdown]
# Back to the structure (the design space, the outer tiles, the compute locations), then *Finish from here*: the beam
# takes the finer decisions.

# %% tags=["finish"]
structure = ("design space", "outer spatial tiles", "compute locations")
keep = sum(choice.slot.phase in structure for choice in steering.path)
while len(steering.path) > keep:
    steer.back()
    steer.wait()
steer.finish()
steer.wait()
print(steer.measurement_text)
print("path:", " › ".join(steer.path_labels))

# %% [markdown]
# The path taken is a trace like a search candidate's: it replays, and it exports as a kernel bundle.

# %% tags=["kernel-check"]
import numpy as np

bundle = steer.export("out/09-steered", overwrite=True)
kernel = mx.load_kernel(bundle.path)
x, y, _ = workload.make_inputs(seed=1)
print(bundle)
print("the steered kernel matches numpy:", np.allclose(kernel(x, y), x @ y, rtol=1e-4, atol=1e-4))

# %% [markdown]
# **Next:** the beam's knobs (`beam_size`, `completions`, `epsilon`, `time_share`, ...) are in
# `msexplore.search.beam.BeamSearch`; `mx.search(..., strategy="beam")` takes them as keywords, and the CLI as
# `--strategy beam --strategy-option`.
