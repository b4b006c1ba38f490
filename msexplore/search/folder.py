"""A run's folder on disk, in one place: its config, its status, its events, and MetaSchedule's database.

The layout::

    run.json                        the run's configuration (workload, target, modules, strategy, budget, sessions)
    status.json                     how the last session ended (absent while one runs, or if its process died)
    confirmed.json                  the fastest candidates re-timed in turn (``SearchRun.confirm``), if asked
    events.jsonl                    one TrialEvent per measured candidate, appended a whole batch at a time
    database_tuning_record.json     MetaSchedule's JSON database (records), appended as measured
    database_workload.json          MetaSchedule's workloads of that database
    workers.log                     what the build and run processes printed (TVM's C++ warnings), appended

Reading a folder never changes it: a run killed between MetaSchedule's database write and the event log's has
its missing events rebuilt in memory by ``history``; ``reconcile`` writes them (done when a run resumes, or when
asked), so a colleague's folder or a read-only mount can be opened as it is.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from .events import EventLog, TrialEvent

__all__ = [
    "RunFolder", "RUN_FILE", "STATUS_FILE", "EVENTS_FILE", "RECORDS_FILE", "WORKLOADS_FILE", "read_json", "write_json",
]

RUN_FILE, STATUS_FILE, EVENTS_FILE, CONFIRMED_FILE = "run.json", "status.json", "events.jsonl", "confirmed.json"
RECORDS_FILE = "database_tuning_record.json"
WORKLOADS_FILE = "database_workload.json"
WORKERS_LOG = "workers.log"
CONFIG_FORMAT, CONFIG_VERSION = "msexplore.run", 1
LOST = "measured when the process died; its error text was not saved"


class RunFolder:
    """The files of one run folder; every read and write of them goes through here."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.events = EventLog(self._file(EVENTS_FILE))

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def workers_log(self) -> str:
        """Where the search's build and run processes write their stderr."""
        return self._file(WORKERS_LOG)

    # ---- config and status ----
    def is_run(self) -> bool:
        return os.path.exists(self._file(RUN_FILE))

    def read_config(self) -> dict[str, Any] | None:
        """``run.json``, or ``None`` when the folder holds no run yet."""
        return read_json(self._file(RUN_FILE))

    def write_config(self, config: dict[str, Any]) -> None:
        """Write ``run.json`` for a new session; the previous session's status no longer describes the folder."""
        write_json(self._file(RUN_FILE), {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, **config})
        if os.path.exists(self._file(STATUS_FILE)):
            os.remove(self._file(STATUS_FILE))

    def read_status(self) -> dict[str, Any] | None:
        """How the last session ended (``status``, ``error``, ``ended``), or ``None`` if it never said."""
        return read_json(self._file(STATUS_FILE))

    def write_status(self, *, status: str, error: str | None, session: int, ended: float | None, measured: int) -> None:
        data = {"status": status, "error": error, "session": session, "ended": ended, "measured": measured}
        write_json(self._file(STATUS_FILE), data)

    def read_confirmation(self) -> dict[str, Any] | None:
        """``confirmed.json``: the last re-timing of the fastest candidates, or ``None`` if there was none."""
        return read_json(self._file(CONFIRMED_FILE))

    def write_confirmation(self, confirmation: dict[str, Any]) -> None:
        write_json(self._file(CONFIRMED_FILE), confirmation)

    def last_change(self) -> float | None:
        """When the event log was last written (a killed run's end), or ``None`` if it has none."""
        path = self._file(EVENTS_FILE)
        return os.path.getmtime(path) if os.path.exists(path) else None

    # ---- MetaSchedule's database ----
    def database_lines(self) -> list[list]:
        """MetaSchedule's tuning records in commit order; a torn last line (a killed write) is left out."""
        good, _torn = self._read_database()
        return [json.loads(line) for line in good]

    def _read_database(self) -> tuple[list[str], str | None]:
        path = self._file(RECORDS_FILE)
        if not os.path.exists(path):
            return [], None
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        good = []
        for k, line in enumerate(lines):
            try:
                json.loads(line)
            except json.JSONDecodeError:
                if k != len(lines) - 1:
                    raise ValueError(
                        f"{path}:{k + 1}: unreadable tuning record (not the last line; the file is damaged)"
                    ) from None
                return good, line
            good.append(line)
        return good, None

    def database(self) -> Any:
        """MetaSchedule's ``JSONDatabase`` on this folder (call ``reconcile`` first on a folder that may be torn)."""
        from tvm.s_tir import meta_schedule as ms

        return ms.database.JSONDatabase(work_dir=self.path)

    # ---- events ----
    def history(self, space: Any = None) -> list[TrialEvent]:
        """Every event of the folder, completed in memory from the database if the process died between the two
        writes (those events have no error text, no prediction; decisions only when ``space`` is given)."""
        events, _problems = self.events.read()
        records = self.database_lines()
        if len(records) > len(events):
            config = self.read_config() or {}
            events += [
                _event_from_record(len(events) + k, rec, config, space)
                for k, rec in enumerate(records[len(events) :])
            ]
        return events

    def reconcile(self, space: Any = None) -> list[TrialEvent]:
        """Make the folder whole again after a killed process, and return its events.

        A torn last database line moves to ``database_tuning_record.json.torn`` (so MetaSchedule can read the
        database again), and events the log lacks are rebuilt from the database and appended to it.
        """
        good, torn = self._read_database()
        if torn is not None:
            path = self._file(RECORDS_FILE)
            with open(path + ".torn", "a", encoding="utf-8") as f:
                f.write(torn + "\n")
            _write_text(path, "".join(line + "\n" for line in good))
        logged, _problems = self.events.read()
        events = self.history(space)
        if len(events) > len(logged):
            self.events.append(events[len(logged) :])
        return events


def read_json(path: str) -> Any:
    """The JSON file ``path`` (a run's or a model run's config or status), or ``None`` when there is none."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str, data: Any) -> None:
    """Write ``data`` to ``path`` as JSON, atomically: a reader sees the old file or the new one, never half."""
    _write_text(path, json.dumps(data, indent=1))


def _write_text(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _event_from_record(index: int, rec: list, config: dict[str, Any], space: Any) -> TrialEvent:
    from ..workloads import Workload

    trace_json, run_secs = rec[1][0], [float(x) for x in rec[1][1] or ()]
    ok = bool(run_secs) and min(run_secs) < 1e9
    latency = float(np.median(run_secs)) if ok else None
    flop = Workload.from_json(config["workload"]).flop if ok and "workload" in config else None
    decisions: dict[str, Any] = {}
    design_space = -1
    if space is not None:
        decisions, design_space = _decisions_of(space, trace_json)
    return TrialEvent(
        index=index,
        session=max(0, int(config.get("sessions", 1)) - 1),
        batch=-1,
        time_s=0.0,
        timestamp=time.time(),
        design_space=design_space,
        decisions=decisions,
        latencies_s=tuple(run_secs) if ok else (),
        latency_s=latency,
        gflops=None if latency is None or not flop else flop / latency / 1e9,
        run_error=None if ok else LOST,
        trace=trace_json,
    )


def _decisions_of(space: Any, trace_json: list) -> tuple[dict[str, Any], int]:
    from ..matching import match_trace
    from ..traces import trace_from_json

    try:
        trace = trace_from_json(trace_json, space.workload)
    except ValueError:  # a record of another space: keep it without decisions
        return {}, -1
    ds, decisions = match_trace(space, trace)
    return decisions, -1 if ds is None else ds.index
