"""A search-strategy wrapper (TVM's ``PySearchStrategy`` hook) for three things TVM does not do by itself.

- **Re-measure nothing.** TVM's evolutionary search avoids measuring a program twice within one call, but a
  second call on the same database happily measures programs already in it. Candidates whose program is
  already in the run's database (or was measured earlier in this session) are dropped before building.
- **Cooperative stop.** Once ``stop()`` is asked, no new batch is generated, and a batch whose generation the stop
  overtook is dropped unmeasured. A strategy with a ``watch_stop(callable)`` method (the beam search) is handed the
  stop signal too, to leave a long generation between two of its steps.
- **The budget is the budget.** No more candidates than the session's trials are handed out (with programs dropped
  as already measured, TVM's own count drifted and a 6-trial search of batches of 4 measured 8).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tvm_ffi
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.search_strategy import PySearchStrategy

__all__ = ["GuardedStrategy"]

MAX_EMPTY_ROUNDS = 4


@derived_object
class GuardedStrategy(PySearchStrategy):
    def __init__(self, inner: Any, stop_requested: Callable[[], bool]) -> None:
        self.inner = inner
        self.stop_requested = stop_requested
        self.seen: set[int] = set()
        self.skipped = 0
        self.budget = 0  # this session's trials (set in pre_tuning)
        self.handed_out = 0
        watch_stop = getattr(inner, "watch_stop", None)
        if callable(watch_stop):
            watch_stop(stop_requested)

    def _initialize_with_tune_context(self, context: Any) -> None:
        self.inner._initialize_with_tune_context(context)

    def pre_tuning(
        self,
        max_trials: int,
        num_trials_per_iter: int,
        design_spaces: Any,
        database: Any = None,
        cost_model: Any = None,
    ) -> None:
        self.inner.pre_tuning(max_trials, num_trials_per_iter, design_spaces, database, cost_model)
        self.budget = int(max_trials)
        if database is not None:
            for record in database.get_all_tuning_records():
                try:
                    self.seen.add(tvm_ffi.structural_hash(record.as_measure_candidate().sch.mod))
                except Exception:  # noqa: BLE001 - a record that no longer replays cannot be re-measured either
                    continue

    def post_tuning(self) -> None:
        self.inner.post_tuning()

    def generate_measure_candidates(self) -> Any:
        for _ in range(MAX_EMPTY_ROUNDS):
            if self.stop_requested() or self.handed_out >= self.budget:
                return None
            candidates = self.inner.generate_measure_candidates()
            if candidates is None or self.stop_requested():
                return None
            fresh = []
            for cand in candidates:
                key = tvm_ffi.structural_hash(cand.sch.mod)
                if key in self.seen:
                    self.skipped += 1
                    continue
                self.seen.add(key)
                fresh.append(cand)
            fresh = fresh[: max(0, self.budget - self.handed_out)]  # never more than the session's trials
            if fresh:
                self.handed_out += len(fresh)
                return fresh
            self.inner.notify_runner_results([], [])
        return None  # only already-measured programs came out, round after round: the space is exhausted

    def notify_runner_results(self, measure_candidates: Any, results: Any) -> None:
        self.inner.notify_runner_results(measure_candidates, results)

    def clone(self) -> GuardedStrategy:
        return GuardedStrategy(self.inner.clone(), self.stop_requested)
