"""A search-strategy wrapper (TVM's ``PySearchStrategy`` hook) for five things TVM does not do by itself.

- **Re-measure nothing.** TVM's evolutionary search avoids measuring a program twice within one call, but a
  second call on the same database happily measures programs already in it. Candidates whose program is
  already in the run's database (or was measured earlier in this session) are dropped before building.
- **Cooperative stop.** Once ``stop()`` is asked, no new batch is generated, and a batch whose generation the stop
  overtook is dropped unmeasured. A strategy with a ``watch_stop(callable)`` method (the beam search) is handed the
  stop signal too, to leave a long generation between two of its steps.
- **The budget is the budget.** No more candidates than the session's trials are handed out (with programs dropped
  as already measured, TVM's own count drifted and a 6-trial search of batches of 4 measured 8).
- **One generation, several batches.** TVM's evolutionary search evolves a whole population (512 programs, four
  rounds of mutation, each scored by the cost model) for every batch it hands out: measured on a 2-core Zen 5 VM,
  6.8 s of a 16-candidate batch's 9.9 s went there, building 0.8 s and measuring 2.1 s. With
  ``batches_per_generation=k`` the strategy picks ``k`` batches' worth of candidates in one generation and they are
  measured (and published, and fed to the cost model) one batch at a time.
- **No evolution on an untrained model.** While the cost model has seen nothing, its scores are noise and evolving
  a population by them is random sampling at 20 times the price: the first batch is sampled at random instead
  (``warm_start``), which is what makes the first progress event of a search arrive one batch's time after it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tvm_ffi
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.search_strategy import EvolutionarySearch, PySearchStrategy, ReplayFunc, ReplayTrace

from .run import Spent
from .timing import adding_to

__all__ = ["GuardedStrategy"]

MAX_EMPTY_ROUNDS = 4


@derived_object
class GuardedStrategy(PySearchStrategy):
    def __init__(
        self,
        inner: Any,
        stop_requested: Callable[[], bool],
        batches_per_generation: int = 1,
        warm_start: bool = False,
        spent: Spent | None = None,
    ) -> None:
        self.inner = inner
        self.spent = spent if spent is not None else Spent()  # generation time and count, for run.timings
        self.stop_requested = stop_requested
        self.batches_per_generation = batches_per_generation
        self.warm_start = warm_start
        self.seen: set[int] = set()
        self.budget = 0  # this session's trials (set in pre_tuning)
        self.batch = 1  # candidates per measured batch (set in pre_tuning)
        self.handed_out = 0
        self.queue: list[Any] = []  # picked by the last generation, not yet handed out
        self._context: Any = None
        self._warm: Any = None  # the random sampler of the first batch, until it has given it
        watch_stop = getattr(inner, "watch_stop", None)
        if callable(watch_stop):
            watch_stop(stop_requested)

    def _initialize_with_tune_context(self, context: Any) -> None:
        self._context = context
        self.inner._initialize_with_tune_context(context)

    def pre_tuning(
        self,
        max_trials: int,
        num_trials_per_iter: int,
        design_spaces: Any,
        database: Any = None,
        cost_model: Any = None,
    ) -> None:
        self.budget = int(max_trials)
        self.batch = max(1, int(num_trials_per_iter))
        per_generation = self.batch * self.batches_per_generation
        self.inner.pre_tuning(max_trials, per_generation, design_spaces, database, cost_model)
        if self.warm_start:
            self._warm = ReplayTrace()
            self._warm._initialize_with_tune_context(self._context)
            self._warm.pre_tuning(max_trials, num_trials_per_iter, design_spaces, database, cost_model)
        if database is not None:
            for record in database.get_all_tuning_records():
                try:
                    self.seen.add(tvm_ffi.structural_hash(record.as_measure_candidate().sch.mod))
                except Exception:  # noqa: BLE001 - a record that no longer replays cannot be re-measured either
                    continue

    def post_tuning(self) -> None:
        self.queue.clear()
        if self._warm is not None:
            self._warm.post_tuning()
            self._warm = None
        self.inner.post_tuning()

    def generate_measure_candidates(self) -> Any:
        with adding_to(self.spent, "generate_s"):
            return self._next_batch()

    def _next_batch(self) -> Any:
        empty_rounds = 0
        while not self.stop_requested() and self.handed_out < self.budget:
            want = min(self.batch, self.budget - self.handed_out)  # never more than the session's trials
            if self.queue and (len(self.queue) >= want or not self._fills_batches()):
                break
            if empty_rounds >= MAX_EMPTY_ROUNDS:  # only already-measured programs, round after round: exhausted
                break
            fresh = self._generate()
            if fresh is None:  # the strategy is done
                break
            if not fresh:
                empty_rounds += 1
                self.inner.notify_runner_results([], [])
            # a generation that re-picked programs measured earlier (TVM's evolution does not know the ones of
            # an earlier session or of the random first batch) is topped up by the next one: batches stay whole
            self.queue.extend(fresh)
        if self.stop_requested() or self.handed_out >= self.budget or not self.queue:
            self.queue.clear()
            return None
        batch = self.queue[: min(self.batch, self.budget - self.handed_out)]
        del self.queue[: len(batch)]
        self.handed_out += len(batch)
        return batch

    def _fills_batches(self) -> bool:
        """Whether the inner strategy may be asked for more before its last candidates are measured: TVM's own
        strategies only count the results they are notified of; a Python strategy (the beam) may not."""
        return isinstance(self.inner, (EvolutionarySearch, ReplayTrace, ReplayFunc))

    def _generate(self) -> list[Any] | None:
        """The next generation's programs that were never measured; ``None`` when the strategy is done or a stop
        overtook it."""
        warm, self._warm = self._warm, None
        self.spent.generations += 1
        candidates = None
        if warm is not None:  # the first batch, while the cost model knows nothing: sampled at random
            candidates = warm.generate_measure_candidates()
            warm.post_tuning()
        if candidates is None:
            candidates = self.inner.generate_measure_candidates()
        if candidates is None or self.stop_requested():
            return None
        fresh = []
        for cand in candidates:
            key = tvm_ffi.structural_hash(cand.sch.mod)
            if key in self.seen:
                continue
            self.seen.add(key)
            fresh.append(cand)
        return fresh

    def notify_runner_results(self, measure_candidates: Any, results: Any) -> None:
        # TVM's strategies only count the results (their next generation's size); the batches of one generation
        # are notified one by one as they are measured.
        self.inner.notify_runner_results(measure_candidates, results)

    def clone(self) -> GuardedStrategy:
        return GuardedStrategy(
            self.inner.clone(), self.stop_requested, self.batches_per_generation, self.warm_start, self.spent
        )
