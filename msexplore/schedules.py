"""Schedules and their replay, in one place: a fresh schedule of a workload, a cheap re-seeded copy, entering
postprocessing, a trace (or its JSON) replayed into a schedule, and postprocessors run with the reason they refuse.

Sampling, trace edits, the cost model and search candidates all make their schedules here, so every one of them is
built the same way (no debug checks, errors rendered as one line) and a replay failure reads the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tvm.s_tir import Schedule, Trace
from tvm.s_tir.schedule import _ffi_api as _schedule_api
from tvm.s_tir.schedule.schedule import _ERROR_RENDER_LEVEL

from .common import error_line

__all__ = [
    "fresh_schedule", "reseeded_copy", "enter_postproc", "replay", "replay_json", "is_trace_json", "run_postprocs",
]

# Errors render "fast": one line with the reason ("All the constant factors are required to be positive"), which
# invalid samples carry; "none" would leave only "(not rendered)".
_FAST_ERRORS = _ERROR_RENDER_LEVEL["fast"]


def _module_of(workload: Any) -> Any:
    """The IRModule of an ``mx.Workload`` (or of anything with a ``.workload``, such as a space), or a module."""
    workload = getattr(workload, "workload", workload)
    return getattr(workload, "mod", workload)


def fresh_schedule(workload: Any, seed: int = 1) -> Schedule:
    """An unscheduled schedule of ``workload`` (an ``mx.Workload`` or an IRModule), cheap: no debug checks.

    TVM's own constructor behind ``Schedule.__init__``, without its per-call runtime type checking: sampling makes
    one schedule per sample, and the checks cost about as much as building the schedule.
    """
    return _schedule_api.TracedSchedule(_module_of(workload), seed, 0, _FAST_ERRORS, True)


def reseeded_copy(blank: Schedule, seed: int) -> Schedule:
    """A copy of an unscheduled schedule, re-seeded: it draws exactly what ``fresh_schedule(workload, seed)`` would,
    about 20x cheaper (the blocks are not analysed again)."""
    sch = _schedule_api.ScheduleCopy(blank)
    _schedule_api.ScheduleSeed(sch, seed)
    return sch


def enter_postproc(sch: Schedule) -> None:
    """``sch.enter_postproc()`` without the runtime type check (called once per sample)."""
    _schedule_api.ScheduleEnterPostproc(sch)


def replay(
    trace: Trace, workload: Any, *, seed: int = 1, remove_postproc: bool = False, decision_provider: Any = None
) -> Schedule:
    """``trace`` applied to a fresh schedule of ``workload``; TVM's error propagates (see ``replay_json``)."""
    sch = fresh_schedule(workload, seed)
    trace.apply_to_schedule(sch, remove_postproc=remove_postproc, decision_provider=decision_provider)
    return sch


def is_trace_json(data: Any) -> bool:
    """Whether ``data`` has the shape of a trace in JSON: ``[instructions, decisions]``."""
    return isinstance(data, (list, tuple)) and len(data) == 2 and all(isinstance(x, (list, tuple)) for x in data)


def replay_json(data: Any, workload: Any, *, seed: int = 1) -> Schedule:
    """The schedule a trace in JSON (``traces.trace_to_json``, a tuning record's) produces on ``workload``.

    Raises ``ValueError`` naming TVM's reason when the data is not a trace or does not replay there (a trace of
    another workload).
    """
    if data is None or (isinstance(data, float) and math.isnan(data)):
        raise ValueError("no trace recorded (None)")
    if not is_trace_json(data):
        text = str(data)
        raise ValueError(
            "a trace in JSON is [instructions, decisions] as trace_to_json writes it, got "
            + (text if len(text) <= 60 else text[:57] + "...")
        )
    sch = fresh_schedule(workload, seed)
    try:
        Trace.apply_json_to_schedule(data, sch)
    except Exception as err:  # noqa: BLE001 - TVM 0.27 raises built-in types (ValueError, RuntimeError, ...)
        name = getattr(getattr(workload, "workload", workload), "name", "the workload")
        raise ValueError(f"the trace does not replay on workload {name}: {error_line(err)}") from None
    return sch


def run_postprocs(sch: Schedule, postprocs: Sequence[Any], names: Sequence[str]) -> str | None:
    """Enter postprocessing and apply ``postprocs`` in order; the reason the first one refuses, or ``None``."""
    enter_postproc(sch)
    for post, name in zip(postprocs, names):
        try:
            ok = post.apply(sch)
        except Exception as err:  # noqa: BLE001 - TVM's, or a Python postprocessor's bug: the schedule is invalid
            return f"postprocessor {name} failed: {error_line(err, default=type(err).__name__)}"
        if not ok:
            return f"rejected by postprocessor {name}"
    return None
