"""MetaSchedule measure callbacks that turn each measured batch into TrialEvents (TVM's own hook, no patching).

``Predict`` runs before TVM's default callbacks (so the cost model has not yet seen the batch); ``Publish``
runs after them (so ``AddToDatabase`` has already appended the batch to the run's database when the events
are written).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

from ..matching import match_trace
from ..traces import trace_to_json
from .events import TrialEvent

if TYPE_CHECKING:
    from .run import BatchRecorder

__all__ = ["BatchScores", "Predict", "Publish"]


class BatchScores:
    """The cost model's scores of the batch being measured, from ``Predict`` to ``Publish`` (one search thread)."""

    def __init__(self) -> None:
        self.predictions: list[float] | None = None


@derived_object
class Predict(PyMeasureCallback):
    def __init__(self, cost_model: Any, scores: BatchScores, recorder: BatchRecorder) -> None:
        self.cost_model = cost_model
        self.scores = scores
        self.recorder = recorder

    def apply(
        self, task_scheduler: Any, task_id: int, candidates: Any, builder_results: Any, runner_results: Any
    ) -> None:
        started = time.perf_counter()
        try:
            self._predict(task_scheduler, task_id, candidates)
        finally:
            self.recorder.spent.predict_s += time.perf_counter() - started

    def _predict(self, task_scheduler: Any, task_id: int, candidates: Any) -> None:
        model = self.cost_model
        self.scores.predictions = None
        if model is None or getattr(model, "booster", None) is None:
            return
        if model.data_size < model.num_warmup_samples:
            return  # untrained: TVM's XGBModel would return random numbers
        context = task_scheduler.tasks_[task_id].ctx
        self.scores.predictions = [float(x) for x in model.predict(context, list(candidates))]


@derived_object
class Publish(PyMeasureCallback):
    def __init__(self, recorder: BatchRecorder, scores: BatchScores) -> None:
        self.recorder = recorder
        self.scores = scores

    def apply(
        self, task_scheduler: Any, task_id: int, candidates: Any, builder_results: Any, runner_results: Any
    ) -> None:
        started = time.perf_counter()
        try:
            self._publish(candidates, builder_results, runner_results)
        finally:
            self.recorder.spent.publish_s += time.perf_counter() - started

    def _publish(self, candidates: Any, builder_results: Any, runner_results: Any) -> None:
        rec = self.recorder
        predictions = self.scores.predictions or [None] * len(candidates)
        now = time.time()
        first = rec.next_index()
        events = [
            _event(rec, first + k, cand, b, r, predictions[k], now)
            for k, (cand, b, r) in enumerate(zip(candidates, builder_results, runner_results))
        ]
        rec.record(events)
        # A stop is carried out by the strategy wrapper (no new batch is generated, so TVM ends the task
        # itself); terminating the task here too makes TVM fail with "Check failed: !task->is_terminated".


def _event(
    rec: BatchRecorder, index: int, cand: Any, b: Any, r: Any, predicted: float | None, now: float
) -> TrialEvent:
    from ..measure import parse_wrong_result

    trace = cand.sch.trace
    ds, decisions = match_trace(rec.space, trace)
    secs = tuple(float(x) for x in (r.run_secs or ()))
    ok = b.error_msg is None and r.error_msg is None and secs and min(secs) < 1e9
    latency = float(np.median(secs)) if ok else None
    return TrialEvent(
        index=index,
        session=rec.session,
        batch=rec.batches,
        time_s=now - rec.started_at,
        timestamp=now,
        design_space=-1 if ds is None else ds.index,
        decisions=decisions,
        latencies_s=secs if ok else (),
        latency_s=latency,
        gflops=None if latency is None else rec.workload.flop / latency / 1e9,
        predicted=predicted,
        build_error=_clip(b.error_msg),
        run_error=_clip(r.error_msg),
        max_abs_error=parse_wrong_result(r.error_msg) if r.error_msg else None,
        after_stop=rec.stop_requested(),
        trace=trace_to_json(trace),
    )


def _clip(text: str | None, limit: int = 4000) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit // 2] + "\n...\n" + text[-limit // 2 :]
