"""Interactive speed: samples/s of ``space.sample`` vs TVM's own replay sampling on the same design spaces;
time to build the decision-distribution figure at 1k and 10k samples; time from a decision edit to new TIR.

TVM's side is ``ReplayTrace.generate_measure_candidates`` (C++, ``num_threads`` = cores), which returns only
valid candidates after postprocessors; msexplore's side draws the same number and keeps the invalid ones with
their reason, so the ratio is counted in valid samples per second.
"""

from __future__ import annotations

import time

from tvm.s_tir import meta_schedule as ms

import msexplore as mx

from ._common import stats, table, timed


def tvm_replay(space: mx.Space, n: int, threads: int) -> int:
    context = space._tune_context(
        space.space_generator(), search_strategy=ms.search_strategy.ReplayTrace(max_fail_count=100), num_threads=threads
    )
    design_spaces = context.generate_design_space()
    context.pre_tuning(max_trials=n, num_trials_per_iter=n, design_spaces=design_spaces)
    candidates = context.generate_measure_candidates()
    context.post_tuning()
    return len(candidates)


def run(quick: bool = False) -> dict:
    shape = 256 if quick else 512
    n = 200 if quick else 1000
    repeats = 3 if quick else 5
    threads = mx.host_target().attrs["num-cores"]
    space = mx.Space(mx.workload("GMM", n=shape, m=shape, k=shape))
    space.sample(20, seed=99)  # warm caches on both sides
    tvm_replay(space, 20, threads)
    rows = []
    ours_t, ours = [], []
    theirs_t, theirs = [], []
    for rep in range(repeats):  # interleaved, so both see the same machine load
        t, samples = timed(lambda: space.sample(n, seed=rep), 1)
        ours_t += t
        ours.append(sum(s.valid for s in samples))
        t, count = timed(lambda: tvm_replay(space, n, threads), 1)
        theirs_t += t
        theirs.append(count)
    ours_rate = [v / t for v, t in zip(ours, ours_t)]
    theirs_rate = [v / t for v, t in zip(theirs, theirs_t)]
    ratios = [a / b for a, b in zip(ours_rate, theirs_rate)]
    rows.append({"what": f"valid samples/s, GMM {shape}^3 (msexplore)", **_s(ours_rate)})
    rows.append({"what": f"valid samples/s, GMM {shape}^3 (TVM ReplayTrace)", **_s(theirs_rate)})
    rows.append({"what": "ratio msexplore / TVM (goal >= 1.0)", **_s(ratios)})

    for count in (1000, 10000):
        big = space.sample(count, seed=7)
        big.df  # the table is built once per SampleSet; the figure is what is timed
        t, _ = timed(lambda: mx.figures.plot_decision_distributions(big), repeats)
        rows.append({"what": f"decision-distribution figure, {count} samples, s (goal <= 0.5 at 10k)", **_s(t)})

    sample = space.sample(1, seed=3)[0]
    name = next(
        rv.name
        for rv in space.design_spaces[sample.design_space].random_variables
        if rv.kind == "tile" and rv.extent > 1
    )
    legal = space.design_spaces[sample.design_space].by_name()[name].domain

    def edit() -> str:
        return sample.with_decisions({name: legal[len(legal) // 2]}).tir

    t, _ = timed(edit, repeats)
    rows.append({"what": "decision edit -> new TIR, s", **_s(t)})
    print(table(rows, ["what", "min", "median", "max"]))
    return {"rows": rows, "n": n, "shape": shape, "threads": threads, "at": time.time()}


def _s(values: list[float]) -> dict:
    s = stats(values)
    return {"min": s["min"], "median": s["median"], "max": s["max"]}
