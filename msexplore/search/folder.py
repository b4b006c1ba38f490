"""A run's folder: its config, its events, MetaSchedule's database; reopening one, even after a crash."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from .events import EventLog, TrialEvent
from .run import EVENTS_FILE, RUN_FILE, STATUS_FILE, SearchRun

__all__ = ["open_run", "read_config", "write_config", "reconcile", "RECORDS_FILE", "WORKLOADS_FILE"]

RECORDS_FILE = "database_tuning_record.json"
WORKLOADS_FILE = "database_workload.json"
LOST = "measured when the process died; its error text was not saved"


def read_config(work_dir: str) -> dict[str, Any] | None:
    path = os.path.join(work_dir, RUN_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_config(work_dir: str, config: dict[str, Any]) -> None:
    path = os.path.join(work_dir, RUN_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    os.replace(tmp, path)
    status = os.path.join(work_dir, STATUS_FILE)
    if os.path.exists(status):  # a new session is running: the old "done" no longer describes the folder
        os.remove(status)


def database_lines(work_dir: str) -> list[list]:
    """MetaSchedule's tuning records of the folder, in commit order; a torn last line is set aside."""
    path = os.path.join(work_dir, RECORDS_FILE)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out, good_text = [], []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
            good_text.append(line)
        except json.JSONDecodeError:
            if k != len(lines) - 1:
                raise ValueError(f"{path}:{k + 1}: unreadable tuning record (not the last line; the file is damaged)") from None
            with open(path + ".torn", "a", encoding="utf-8") as torn:
                torn.write(line + "\n")
            with open(path, "w", encoding="utf-8") as f:  # so MetaSchedule can read the database again
                f.write("".join(t + "\n" for t in good_text))
    return out


def reconcile(work_dir: str, space: Any = None) -> list[TrialEvent]:
    """The folder's events, completed from the database if the process died between the two writes."""
    log = EventLog(os.path.join(work_dir, EVENTS_FILE))
    events, _problems = log.read()
    records = database_lines(work_dir)
    if len(records) > len(events):
        config = read_config(work_dir) or {}
        extra = [
            _event_from_record(len(events) + k, rec, config, space)
            for k, rec in enumerate(records[len(events) :])
        ]
        log.append(extra)
        events += extra
    return events


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
        trace = trace_from_json(trace_json, space)
    except Exception:  # noqa: BLE001 - a record of another space: keep it without decisions
        return {}, -1
    ds, decisions = match_trace(space, trace)
    return decisions, -1 if ds is None else ds.index


def open_run(work_dir: str | os.PathLike, space: Any = None) -> SearchRun:
    """The run in ``work_dir`` as it stands on disk: finished, stopped, failed, or interrupted mid-way."""
    work_dir = os.path.abspath(os.fspath(work_dir))
    if not os.path.isdir(work_dir):
        raise ValueError(f"{work_dir!r} is not a folder; open_run takes the work_dir of an mx.search run")
    config = read_config(work_dir)
    if config is None:
        raise ValueError(f"{work_dir!r} has no {RUN_FILE}: it is not the folder of an mx.search run")
    events = reconcile(work_dir, space)
    sessions = int(config.get("sessions", 1))
    run = SearchRun(work_dir, config=config, space=space, session=sessions - 1)
    run._load_history(events)
    status_path = os.path.join(work_dir, STATUS_FILE)
    if os.path.exists(status_path):
        with open(status_path, encoding="utf-8") as f:
            status = json.load(f)
        run.status, run.error, run._ended_at = status["status"], status.get("error"), status.get("ended")
    else:
        run.status = "interrupted"  # the process ended without writing its status: killed or crashed
        run._ended_at = os.path.getmtime(os.path.join(work_dir, EVENTS_FILE)) if events else time.time()
    mine = [e for e in events if e.session == run.session]
    run._started_at = (run._ended_at or time.time()) - (max((e.time_s for e in mine), default=0.0))
    run._done.set()
    return run
