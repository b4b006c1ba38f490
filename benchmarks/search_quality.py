"""Search quality: how many measured trials each strategy needs to come within 5 % of the evolutionary search's best.

For each workload, the evolutionary search runs ``budget`` trials per seed; the median of its bests is the
reference, and ``1.05 x reference`` the target. Then evolutionary, beam and replay-trace each run ``budget`` trials
per seed, and the trial at which a run's best-so-far first reaches the target is its *trials to target* (``None``:
not within the budget). Reported per strategy: median and spread over seeds. The issue's goal: the beam reaches the
target in at most 60 % of the budget (median over workloads and seeds), with its Python overhead (time inside the
strategy's methods: passes, replays, the cost model's predictions) at most 10 % of the search's wall time.

Every search is a plain ``mx.search`` (XGB cost model, default strategy settings, outputs not checked against the
reference to save time); runs are sequential on this machine. Each strategy is wrapped in ``TimedStrategy``, which
adds up the wall time spent in its methods, so the overhead share is measured the same way for all three (the
evolutionary search's own generation is C++ on the tuning threads; the beam's is Python plus the cost model).

``--strategy beam --reference FILE`` runs the beam alone and takes the evolutionary runs (the target) from an
earlier result of this suite on the same kind of machine (its ``machine`` is written beside this run's): a change
to the beam is measured in a quarter of the time.

The full run is hours (5 workloads x 3 strategies x 5 seeds x 256 trials, batches of 32); ``--quick`` is GMM 128^3,
2 seeds, 64 trials in batches of 16 (a smoke run: its kernels take microseconds, so timing noise dominates).
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import tempfile
import time
from typing import Any

from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.search_strategy import PySearchStrategy

import msexplore as mx
from msexplore.search.beam import BeamSearch
from msexplore.search.strategies import create_strategy

from ._common import table

STRATEGIES = ("evolutionary", "beam", "replay-trace")
WORKLOADS = {  # label -> (operator, shape parameters)
    "GMM 512^3": ("GMM", {"n": 512, "m": 512, "k": 512}),
    "GMM 1024^3": ("GMM", {"n": 1024, "m": 1024, "k": 1024}),
    "C2D (ResNet conv1)": ("C2D", {}),  # n=1 224x224x3 -> 64, 7x7, stride 2 (the operator's defaults)
    "DEP": ("DEP", {}),
    "SFM": ("SFM", {}),
}
QUICK_WORKLOADS = {"GMM 128^3": ("GMM", {"n": 128, "m": 128, "k": 128})}
WITHIN = 1.05  # "within 5 % of the evolutionary search's best"
GOAL_SHARE = 0.6  # the beam's goal: the target in <= 60 % of the budget
QUICK_EVOLUTIONARY = {"population_size": 128, "init_min_unmeasured": 32}


def run(quick: bool = False, only: list[str] | None = None, strategy: str | None = None,
        reference: str | None = None) -> dict[str, Any]:
    workloads = QUICK_WORKLOADS if quick else WORKLOADS
    if only:
        workloads = {k: v for k, v in workloads.items() if any(text in k for text in only)}
    seeds = [1, 2] if quick else [1, 2, 3, 4, 5]
    budget, batch = (64, 16) if quick else (256, 32)
    strategies, earlier = _strategies_and_reference(strategy, reference, list(workloads), budget)
    root = tempfile.mkdtemp(prefix="msx-bench-quality-")
    runs: list[dict[str, Any]] = list(earlier.get("runs", []))
    try:
        for label, (name, params) in workloads.items():
            space = mx.Space(mx.workload(name, **params))
            for strategy in strategies:
                for seed in seeds:
                    runs.append(_one_search(space, label, strategy, seed, budget, batch, quick, root))
                    _print_run(runs[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = summarise(runs, budget)
    print()
    print(table(rows, ["workload", "strategy", "seeds", "reached", "trials_median", "trials_min", "trials_max",
                       "best_ms_median", "wall_s_median", "overhead_share"]))
    goal = _goal(runs, budget)
    print(f"\nbeam: median trials to target {goal['beam_median_trials']} of {budget} "
          f"({goal['beam_median_share']}, goal <= {GOAL_SHARE}); median overhead share "
          f"{goal['beam_overhead_share']} (goal <= 0.1)")
    out = {"budget": budget, "batch": batch, "seeds": seeds, "within": WITHIN, "rows": rows, "goal": goal,
           "runs": runs}
    if earlier:
        out["reference"] = {"file": reference, "machine": earlier.get("machine")}
    return out


def _strategies_and_reference(strategy: str | None, reference: str | None, labels: list[str],
                              budget: int) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The strategies to run, and the earlier result whose evolutionary runs set the target (``--reference``)."""
    if strategy is None:
        if reference is not None:
            raise SystemExit("search_quality: --reference goes with --strategy (the strategy run against it)")
        return STRATEGIES, {}
    if strategy not in STRATEGIES:
        raise SystemExit(f"search_quality: --strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    if strategy == "evolutionary":
        return (strategy,), {}
    if reference is None:
        raise SystemExit(f"search_quality --strategy {strategy} needs --reference FILE: an earlier result of this "
                         "suite whose evolutionary runs set the target")
    with open(reference) as f:
        earlier = json.load(f)
    evolutionary = [r for r in earlier.get("runs", []) if r["strategy"] == "evolutionary" and r["workload"] in labels]
    missing = [label for label in labels if not any(r["workload"] == label for r in evolutionary)]
    if missing or earlier.get("budget") != budget:
        raise SystemExit(f"search_quality: {reference} has no evolutionary runs of {missing} at {budget} trials"
                         if missing else f"search_quality: {reference} ran {earlier.get('budget')} trials, not "
                         f"{budget}")
    for r in evolutionary:
        r["from"] = reference
    return (strategy,), {"machine": earlier.get("machine"), "runs": evolutionary}


@derived_object
class TimedStrategy(PySearchStrategy):
    """A search strategy with the wall time spent in its methods added up in ``spent[0]`` (shared with clones)."""

    def __init__(self, inner: Any, spent: list[float]) -> None:
        self.inner = inner
        self.spent = spent

    def _timed(self, method: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args)
        finally:
            self.spent[0] += time.perf_counter() - started

    def _initialize_with_tune_context(self, context: Any) -> None:
        self._timed(self.inner._initialize_with_tune_context, context)

    def pre_tuning(self, *args: Any) -> None:
        self._timed(self.inner.pre_tuning, *args)

    def post_tuning(self) -> None:
        self._timed(self.inner.post_tuning)

    def generate_measure_candidates(self) -> Any:
        return self._timed(self.inner.generate_measure_candidates)

    def notify_runner_results(self, candidates: Any, results: Any) -> None:
        self._timed(self.inner.notify_runner_results, candidates, results)

    def clone(self) -> TimedStrategy:
        return TimedStrategy(self.inner.clone(), self.spent)


def _one_search(space: Any, label: str, strategy: str, seed: int, budget: int, batch: int, quick: bool,
                root: str) -> dict[str, Any]:
    beam = BeamSearch() if strategy == "beam" else None  # made here: its stats tell what its passes did
    options = QUICK_EVOLUTIONARY if strategy == "evolutionary" and quick else {}
    spent = [0.0]
    timed = TimedStrategy(beam if beam is not None else create_strategy(strategy, options), spent)
    work_dir = tempfile.mkdtemp(prefix=f"{strategy}-{seed}-", dir=root)
    started = time.perf_counter()
    search = mx.search(space, trials=budget, batch_size=batch, seed=seed, strategy=timed, work_dir=work_dir,
                       check=False).wait()
    wall = time.perf_counter() - started
    if search.status != "done":
        raise RuntimeError(f"{label} {strategy} seed {seed}: the search ended {search.status}: {search.error}")
    latencies = [e.latency_s if e.ok else math.inf for e in search.events]
    out: dict[str, Any] = {
        "workload": label, "strategy": strategy, "seed": seed, "trials": len(latencies),
        "best_so_far_s": _best_so_far(latencies), "failed": sum(not e.ok for e in search.events), "wall_s": wall,
        "strategy_s": spent[0], "overhead_share": spent[0] / wall,
        "overhead_ms_per_trial": 1e3 * spent[0] / max(1, len(latencies)),
    }
    if beam is not None:
        s = beam.stats
        out.update(predict_s=s.predict_s, passes=s.passes, programs=s.programs, rejected=s.rejected)
    shutil.rmtree(work_dir, ignore_errors=True)
    return out


def summarise(runs: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """One row per workload and strategy: the target from the evolutionary runs, trials to it, best, wall time."""
    rows = []
    for label in dict.fromkeys(r["workload"] for r in runs):
        mine = [r for r in runs if r["workload"] == label]
        reference = statistics.median(_best(r) for r in mine if r["strategy"] == "evolutionary")
        target = WITHIN * reference
        for r in mine:
            r["target_s"] = target
            r["trials_to_target"] = _trials_to(r["best_so_far_s"], target)
        for strategy in STRATEGIES:
            group = [r for r in mine if r["strategy"] == strategy]
            if not group:
                continue
            reached = sorted(r["trials_to_target"] for r in group if r["trials_to_target"] is not None)
            needed = sorted(r["trials_to_target"] or math.inf for r in group)
            shares = [r["overhead_share"] for r in group]
            rows.append({
                "workload": label,
                "strategy": strategy,
                "seeds": len(group),
                "reached": f"{len(reached)}/{len(group)}",
                "trials_median": _count(statistics.median(needed), budget),
                "trials_min": _count(needed[0], budget),
                "trials_max": _count(needed[-1], budget),
                "best_ms_median": 1e3 * statistics.median(_best(r) for r in group),
                "reference_ms": 1e3 * reference,
                "wall_s_median": statistics.median(r["wall_s"] for r in group),
                "overhead_share": statistics.median(shares),
            })
    return rows


def _goal(runs: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    beam = [r for r in runs if r["strategy"] == "beam"]
    needed = [r["trials_to_target"] or math.inf for r in beam]
    median = statistics.median(needed) if needed else math.inf
    shares = [r["overhead_share"] for r in beam]
    return {
        "beam_median_trials": _count(median, budget),
        "beam_median_share": None if math.isinf(median) else round(median / budget, 3),
        "beam_overhead_share": round(statistics.median(shares), 4) if shares else None,
        "beam_overhead_ms_per_trial": round(statistics.median(r["overhead_ms_per_trial"] for r in beam), 1)
        if beam else None,
    }


def _best_so_far(latencies: list[float]) -> list[float | None]:
    out, best = [], math.inf
    for value in latencies:
        best = min(best, value)
        out.append(None if math.isinf(best) else best)
    return out


def _best(run: dict[str, Any]) -> float:
    valid = [v for v in run["best_so_far_s"] if v is not None]
    return valid[-1] if valid else math.inf


def _trials_to(curve: list[float | None], target: float) -> int | None:
    return next((k + 1 for k, best in enumerate(curve) if best is not None and best <= target), None)


def _count(value: float, budget: int) -> str | float:
    return f"> {budget}" if math.isinf(value) else value


def _print_run(r: dict[str, Any]) -> None:
    best = _best(r)
    beam = "" if "passes" not in r else (
        f"; beam: {r['passes']} passes, {r['programs']} programs ({r['rejected']} rejected), "
        f"{r['predict_s']:.1f} s predicting"
    )
    print(f"{r['workload']:>20} {r['strategy']:>13} seed {r['seed']}: best {1e3 * best:.4f} ms after "
          f"{r['trials']} trials ({r['failed']} failed), {r['wall_s']:.0f} s, {r['strategy_s']:.1f} s in the "
          f"strategy ({100 * r['overhead_share']:.1f} %){beam}", flush=True)
