"""Candidate: a measured program of a run, with its schedule, TIR, trace, and export."""

from __future__ import annotations

import functools
import os
from typing import Any

from tvm.s_tir import Schedule, Trace

from ..schedules import replay_json
from .events import TrialEvent

__all__ = ["Candidate"]


class Candidate:
    """A measured candidate; ``verified`` when its outputs were compared with the reference and matched."""

    def __init__(
        self, event: TrialEvent, workload: Any, target: Any, *, checked: bool = True, confirmed_s: float | None = None
    ) -> None:
        self.event = event
        self.workload = workload
        self.target = target
        self.verified = checked and event.ok
        self.confirmed_s = confirmed_s  # the median of ``SearchRun.confirm``'s rounds, where it re-timed this one

    latency_s = property(lambda self: self.event.latency_s)
    gflops = property(lambda self: self.event.gflops)
    decisions = property(lambda self: self.event.decisions)
    index = property(lambda self: self.event.index)

    @functools.cached_property
    def schedule(self) -> Schedule:
        if self.event.trace is None:
            raise ValueError(f"trial {self.event.index} has no trace recorded")
        return replay_json(self.event.trace, self.workload)

    @property
    def trace(self) -> Trace:
        return self.schedule.trace

    @property
    def mod(self) -> Any:
        return self.schedule.mod

    @functools.cached_property
    def tir(self) -> str:
        return self.mod.script()

    def python(self) -> str:
        return "\n".join(self.trace.as_python())

    def export(self, path: str | os.PathLike, *, overwrite: bool = False) -> Any:
        """Write a kernel bundle (library, TVMScript, trace, record, manifest) and check it again."""
        from ..export import export_kernel
        from ..target import resolve_target

        return export_kernel(
            path,
            mod=self.mod,
            workload=self.workload,
            target=resolve_target(self.target),
            trace_python=self.python(),
            trace_json=self.event.trace,
            record_json=self.event.to_json(),
            latency_s=self.latency_s if self.confirmed_s is None else self.confirmed_s,
            overwrite=overwrite,
        )

    def __repr__(self) -> str:
        check = "verified" if self.verified else "NOT verified"
        if self.latency_s is None:
            return f"Candidate(trial {self.index}, failed: {self.event.error})"
        confirmed = "" if self.confirmed_s is None else f", confirmed {self.confirmed_s * 1e3:.4f} ms"
        return (f"Candidate(trial {self.index}, {self.latency_s * 1e3:.4f} ms, {self.gflops:.1f} GFLOPS{confirmed}, "
                f"{check})")
