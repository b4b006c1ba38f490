"""SearchRun: a MetaSchedule search on a background thread, its event stream, stop, and its folder on disk."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from .events import EventLog, TrialEvent

__all__ = ["SearchRun", "Progress", "RUN_FILE", "STATUS_FILE", "EVENTS_FILE"]

log = logging.getLogger("msexplore.search")

RUN_FILE, STATUS_FILE, EVENTS_FILE = "run.json", "status.json", "events.jsonl"
STATUSES = ("starting", "running", "stopping", "done", "stopped", "failed", "interrupted")


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a search stands: this session's trials against its budget, the best so far, time left."""

    status: str
    trials_done: int  # this session
    trials_total: int  # this session's budget
    measured_in_folder: int  # every session on the folder
    failures: int
    best_latency_s: float | None
    best_gflops: float | None
    elapsed_s: float
    eta_s: float | None

    def __str__(self) -> str:
        best = "no valid candidate yet" if self.best_latency_s is None else (
            f"best {self.best_latency_s * 1e3:.3f} ms ({self.best_gflops:.1f} GFLOPS)"
        )
        eta = "" if self.eta_s is None else f", ~{self.eta_s:.0f} s left"
        return (
            f"{self.status}: {self.trials_done}/{self.trials_total} trials, {self.failures} failed, {best}, "
            f"{self.elapsed_s:.0f} s{eta}"
        )


class SearchRun:
    """A search over a space, running or finished, with its history in ``work_dir``.

    Made by ``mx.search`` (which starts it) or ``mx.open_run`` (which reads a folder). Events are appended
    a whole batch at a time, so readers on other threads never see half a batch.
    """

    def __init__(self, work_dir: str, *, config: dict[str, Any], space: Any = None, session: int = 0) -> None:
        self.work_dir = os.path.abspath(work_dir)
        self.config = config
        self.space = space
        self.session = session
        self.status = "starting"
        self.error: str | None = None
        self.trials_total = int(config.get("trials", 0))
        self.subscriber_errors: list[str] = []
        self._log = EventLog(os.path.join(self.work_dir, EVENTS_FILE))
        self._events: list[TrialEvent] = []
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[list[TrialEvent]], Any]] = []
        self._stop_requested = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = time.time()
        self._ended_at: float | None = None
        self._batch = 0
        self._predictions: list[float] | None = None
        self._cost_model: Any = None
        self._workload: Any = None
        self._hook_seconds = 0.0  # time in the live-progress plumbing: events, disk, subscribers (benchmarks)
        self._predict_seconds = 0.0  # time scoring each batch with the cost model before it is measured

    # ---- reading ----
    @property
    def workload(self) -> Any:
        if self._workload is None:
            from ..workloads import Workload

            self._workload = self.space.workload if self.space is not None else Workload.from_json(self.config["workload"])
        return self._workload

    @property
    def events(self) -> tuple[TrialEvent, ...]:
        """Every measured candidate of every session on this folder, in order (a snapshot)."""
        with self._lock:
            return tuple(self._events)

    def session_events(self) -> list[TrialEvent]:
        return [e for e in self.events if e.session == self.session]

    @property
    def progress(self) -> Progress:
        events = self.events
        mine = [e for e in events if e.session == self.session]
        ok = [e for e in events if e.ok]
        best = min(ok, key=lambda e: e.latency_s) if ok else None
        end = self._ended_at or time.time()
        elapsed = end - self._started_at
        eta = None
        if self.status in ("running", "stopping") and mine:
            per_trial = elapsed / len(mine)
            eta = max(0.0, per_trial * (self.trials_total - len(mine)))
        return Progress(
            status=self.status,
            trials_done=len(mine),
            trials_total=self.trials_total,
            measured_in_folder=len(events),
            failures=sum(not e.ok for e in events),
            best_latency_s=None if best is None else best.latency_s,
            best_gflops=None if best is None else best.gflops,
            elapsed_s=elapsed,
            eta_s=eta,
        )

    @property
    def records(self) -> pd.DataFrame:
        """One row per measured candidate (failures included): decisions, latency statistics, errors, times."""
        from ..records import events_frame

        return events_frame(self.events, workload=self.workload, target=self.config["target"])

    @property
    def best(self) -> Any:
        """The fastest candidate whose outputs matched the reference, or ``None`` if none has yet."""
        from .candidate import Candidate

        ok = [e for e in self.events if e.ok]
        if not ok:
            return None
        best = min(ok, key=lambda e: e.latency_s)
        return Candidate(best, self.workload, self.config["target"], checked=bool(self.config.get("check", True)))

    def top(self, k: int = 10) -> list[Any]:
        from .candidate import Candidate

        ok = sorted((e for e in self.events if e.ok), key=lambda e: e.latency_s)[:k]
        return [Candidate(e, self.workload, self.config["target"], checked=bool(self.config.get("check", True))) for e in ok]

    # ---- control ----
    def subscribe(self, callback: Callable[[list[TrialEvent]], Any], *, replay: bool = False) -> Callable[[], None]:
        """Call ``callback(batch)`` with each finished batch, on the search thread. Returns an unsubscribe.

        An exception in the callback is logged and kept in ``subscriber_errors``; the search goes on.
        With ``replay=True`` the callback first gets every event so far as one batch.
        """
        if not callable(callback):
            raise TypeError(f"subscribe expects a callable taking a list of TrialEvents, got {type(callback).__name__}")
        with self._lock:
            self._subscribers.append(callback)
            history = list(self._events)
        if replay and history:
            self._notify(callback, history)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def stop(self, *, wait: bool = True, timeout: float | None = None) -> Progress:
        """Ask the search to stop after the batch being measured (TVM may measure one it already scheduled).

        Every measured record is kept. With ``wait=True`` returns once the search thread has ended.
        """
        if self.status in ("running", "starting"):
            self.status = "stopping"
        self._stop_requested.set()
        if wait:
            self.wait(timeout)
        return self.progress

    def wait(self, timeout: float | None = None) -> SearchRun:
        """Block until the search ends (or ``timeout`` seconds pass); re-raises nothing, see ``status``/``error``."""
        if self._thread is not None:
            # Event.wait first: a KeyboardInterrupt inside Thread.join (Python 3.11) leaves the thread marked
            # finished while it still runs. The join then lets the thread finish tearing down TVM objects, so
            # a process that exits right after wait() does not abort.
            if self._done.wait(timeout):
                self._thread.join(5)
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- used by the search thread and the hooks ----
    def _record_batch(self, events: Sequence[TrialEvent]) -> None:
        events = list(events)
        self._log.append(events)  # on disk before anyone sees it
        with self._lock:
            self._events.extend(events)
            subscribers = list(self._subscribers)
        self._batch += 1
        for callback in subscribers:
            self._notify(callback, events)

    def _notify(self, callback: Callable[[list[TrialEvent]], Any], events: list[TrialEvent]) -> None:
        try:
            callback(list(events))
        except Exception:  # noqa: BLE001 - a subscriber's bug must not end the search
            text = traceback.format_exc()
            self.subscriber_errors.append(text)
            log.warning("subscriber %r raised; the search goes on:\n%s", callback, text)

    def _load_history(self, events: list[TrialEvent]) -> None:
        with self._lock:
            self._events = list(events)

    def _write_status(self) -> None:
        path = os.path.join(self.work_dir, STATUS_FILE)
        data = {
            "status": self.status,
            "error": self.error,
            "session": self.session,
            "ended": self._ended_at,
            "measured": len(self._events),
        }
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)

    # ---- display ----
    def __repr__(self) -> str:
        return f"SearchRun({self.workload.name}, {self.work_dir!r}, {self.progress})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))
