"""Timing wrappers around a search's builder, runner and TVM's own measure callbacks: each adds its wall time to
the session's ``Spent`` (``run.timings`` says where a search's time went)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

from .run import Spent

__all__ = ["TimedBuilder", "TimedCallback", "TimedRunner"]


@contextlib.contextmanager
def adding_to(spent: Spent, field: str) -> Iterator[None]:
    """Add the wall time of the ``with`` block to ``spent.<field>``, also when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        setattr(spent, field, getattr(spent, field) + time.perf_counter() - started)


@derived_object
class TimedBuilder(ms.builder.PyBuilder):
    def __init__(self, inner: Any, spent: Spent) -> None:
        super().__init__()
        self.inner, self.spent = inner, spent

    def build(self, build_inputs: list[Any]) -> list[Any]:
        with adding_to(self.spent, "build_s"):
            return self.inner.build(build_inputs)


@derived_object
class TimedRunner(ms.runner.PyRunner):
    """The runner's ``run``; msexplore's local runner measures there (an RPC runner's futures are waited on later,
    by TVM, and that wait counts as "other")."""

    def __init__(self, inner: Any, spent: Spent) -> None:
        super().__init__()
        self.inner, self.spent = inner, spent

    def run(self, runner_inputs: list[Any]) -> list[Any]:
        with adding_to(self.spent, "measure_s"):
            return self.inner.run(runner_inputs)


@derived_object
class TimedCallback(PyMeasureCallback):
    """One of TVM's default measure callbacks (the database, the cost model's update), timed as ``record_s``."""

    def __init__(self, inner: Any, spent: Spent) -> None:
        self.inner, self.spent = inner, spent

    def apply(self, task_scheduler: Any, task_id: int, candidates: Any, builder_results: Any,
              runner_results: Any) -> None:
        with adding_to(self.spent, "record_s"):
            self.inner.apply(task_scheduler, task_id, candidates, builder_results, runner_results)
