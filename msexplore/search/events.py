"""Trial events: one frozen record per measured candidate, appended to ``events.jsonl`` in the run's folder,
and their table (one row per event)."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TrialEvent", "EventLog", "events_frame"]


@dataclasses.dataclass(frozen=True)
class TrialEvent:
    """A measured candidate. Immutable: handed to subscribers on other threads as is.

    ``latency_s`` is the median of ``latencies_s`` (seconds), ``None`` when the candidate failed; a candidate
    whose outputs did not match the workload's reference is a failure with ``max_abs_error`` set.
    """

    index: int  # 0-based over every session of the run folder
    session: int  # which mx.search call on this folder made it (0, 1, ...)
    batch: int  # measured batch within the session
    time_s: float  # seconds since the session started
    timestamp: float  # Unix time when the batch was recorded
    design_space: int  # -1 when the trace matches no design space of the space
    decisions: Mapping[str, Any]
    latencies_s: tuple[float, ...] = ()
    latency_s: float | None = None
    gflops: float | None = None
    predicted: float | None = None  # the cost model's score before measuring (higher = faster); None untrained
    build_error: str | None = None
    run_error: str | None = None
    max_abs_error: float | None = None
    after_stop: bool = False  # measured in the batch TVM had already scheduled when stop() was called
    trace: Any = dataclasses.field(default=None, repr=False, compare=False)  # trace JSON (see traces.trace_to_json)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decisions", types.MappingProxyType(dict(self.decisions)))

    @property
    def ok(self) -> bool:
        return self.latency_s is not None and self.build_error is None and self.run_error is None

    @property
    def error(self) -> str | None:
        if self.build_error:
            return f"build: {self.build_error}"
        if self.run_error:
            return f"run: {self.run_error}"
        return None

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["decisions"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.decisions.items()}
        d["latencies_s"] = list(self.latencies_s)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TrialEvent:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        kw["decisions"] = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(kw.get("decisions", {})).items()}
        kw["latencies_s"] = tuple(kw.get("latencies_s", ()))
        return cls(**kw)


class EventLog:
    """``events.jsonl``: appended a whole batch at a time and fsync'ed, read back tolerating a torn last line."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()

    def append(self, events: Iterable[TrialEvent]) -> None:
        text = "".join(json.dumps(e.to_json()) + "\n" for e in events)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> tuple[list[TrialEvent], list[str]]:
        """All complete events, and a description of every line that could not be read."""
        if not os.path.exists(self.path):
            return [], []
        events, problems = [], []
        with open(self.path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    events.append(TrialEvent.from_json(json.loads(line)))
                except (ValueError, TypeError, KeyError) as err:
                    problems.append(f"{self.path}:{lineno}: {type(err).__name__}: {err}")
        return events, problems


COLUMNS = [
    "trial", "session", "batch", "time_s", "timestamp", "design_space", "ok", "latency_s", "latency_min_s",
    "latency_max_s", "latency_std_s", "gflops", "predicted", "build_error", "run_error", "max_abs_error", "after_stop",
]


def events_frame(events: Sequence[Any], *, workload: Any = None, target: Any = None) -> pd.DataFrame:
    """Events -> DataFrame with latency statistics, one column per decision, and the trace (JSON) last.

    ``df.attrs`` carries the workload (JSON) and target, so a cost model can replay the traces.
    """
    names: list[str] = []
    for e in events:
        names += [n for n in e.decisions if n not in names]
    rows = []
    for e in events:
        lat = np.asarray(e.latencies_s, dtype=float)
        row = {
            "trial": e.index,
            "session": e.session,
            "batch": e.batch,
            "time_s": e.time_s,
            "timestamp": pd.Timestamp(e.timestamp, unit="s"),
            "design_space": e.design_space,
            "ok": e.ok,
            "latency_s": e.latency_s,
            "latency_min_s": float(lat.min()) if lat.size else None,
            "latency_max_s": float(lat.max()) if lat.size else None,
            "latency_std_s": float(lat.std()) if lat.size else None,
            "gflops": e.gflops,
            "predicted": e.predicted,
            "build_error": e.build_error,
            "run_error": e.run_error,
            "max_abs_error": e.max_abs_error,
            "after_stop": e.after_stop,
        }
        row.update({n: e.decisions.get(n) for n in names})
        row["trace"] = e.trace
        rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS + names + ["trace"])
    if workload is not None:
        df.attrs["workload"] = workload.to_json()
    if target is not None:
        df.attrs["target"] = str(target)
    for col in ("latency_s", "latency_min_s", "latency_max_s", "latency_std_s", "gflops", "predicted", "max_abs_error"):
        df[col] = df[col].astype(float)
    return df
