"""Search speed: ``mx.search`` vs plain ``ms.tune_tir`` with MetaSchedule's default builder, same workload,
seed, trials, batch size and strategy settings, run back to back; wall-time ratio and best-latency ratio
(both bests re-measured with the same evaluator). Also the live-progress plumbing's share of the search
wall time, with a dashboard-like subscriber attached (events, disk writes, subscriber calls, timed inside).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np
import tvm
from tvm.s_tir import meta_schedule as ms

import msexplore as mx
from msexplore import _quiet

from ._common import table


def plain_tune_tir(wl: mx.Workload, target, work_dir: str, trials: int, batch: int, seed: int, strategy: dict) -> float:
    _quiet.install()
    db = ms.tune_tir(
        wl.func,
        target,
        work_dir=work_dir,
        max_trials_global=trials,
        num_trials_per_iter=batch,
        strategy=ms.search_strategy.EvolutionarySearch(**strategy),
        space=ms.space_generator.PostOrderApply(sch_rules="llvm", postprocs="llvm", mutator_probs="llvm"),
        task_scheduler="round-robin",
        num_tuning_cores=int(target.attrs["num-cores"]),
        seed=seed,
    )
    sch = ms.tir_integration.compile_tir(db, wl.func, target)
    if sch is None:  # every candidate failed (e.g. builds timing out while workers re-import the intrinsics)
        errors = [r.run_secs for r in db.get_all_tuning_records()]
        raise RuntimeError(f"plain tune_tir found no valid candidate in {len(errors)} records; machine too loaded?")
    return remeasure(sch.mod, wl, target)


def remeasure(mod, wl: mx.Workload, target) -> float:
    lib = tvm.tirx.build(mod, target)
    dev = tvm.cpu(0)
    args = [tvm.runtime.tensor(a, dev) for a in wl.make_inputs(seed=0)]
    res = lib.time_evaluator("main", dev, number=10, repeat=5, min_repeat_ms=50)(*args)
    return float(np.median(res.results))


def run(quick: bool = False) -> dict:
    shape = 256 if quick else 512
    trials = 16 if quick else 64
    batch = 16
    seed = 1
    strategy = {"population_size": 128, "init_min_unmeasured": 32} if quick else {}
    wl = mx.workload("GMM", n=shape, m=shape, k=shape)
    space = mx.Space(wl)
    target = space.target
    root = tempfile.mkdtemp(prefix="msx-bench-search-")
    try:
        t0 = time.perf_counter()
        plain_best = plain_tune_tir(wl, target, os.path.join(root, "plain"), trials, batch, seed, strategy)
        plain_wall = time.perf_counter() - t0

        calls = []

        def dashboard_like(batch_events):  # what a live dashboard does per batch: copy and summarise
            calls.append(len(batch_events))
            _ = mx.records.events_frame(batch_events)

        t0 = time.perf_counter()
        run = mx.search(
            space, trials=trials, batch_size=batch, seed=seed, work_dir=os.path.join(root, "mx"), **strategy
        )
        run.subscribe(dashboard_like)
        run.wait()
        mx_wall = time.perf_counter() - t0
        if run.status != "done":
            raise RuntimeError(f"mx.search ended {run.status}: {run.error}")
        mx_best = remeasure(run.best.mod, wl, target)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = [
        {"what": f"wall time, {trials} trials GMM {shape}^3, plain tune_tir (s)", "value": plain_wall},
        {"what": "wall time, mx.search (s)", "value": mx_wall},
        {"what": "wall-time ratio mx / plain (goal <= 0.35)", "value": mx_wall / plain_wall},
        {"what": "best latency plain (ms, re-measured)", "value": plain_best * 1e3},
        {"what": "best latency mx (ms, re-measured)", "value": mx_best * 1e3},
        {"what": "best-latency ratio mx / plain (goal ~1.0 or lower)", "value": mx_best / plain_best},
        {"what": "live-progress plumbing share of wall time (goal <= 2%)", "value": run.timings.publish_s / mx_wall},
        {
            "what": "cost-model scoring of measured batches, share of wall time",
            "value": run.timings.predict_s / mx_wall,
        },
    ]
    print(table(rows, ["what", "value"]))
    return {"rows": rows, "trials": trials, "batch": batch, "shape": shape, "strategy": strategy}
