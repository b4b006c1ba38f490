"""SearchRun: a MetaSchedule search on a background thread, its event stream, stop, and its folder on disk."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from .background import BackgroundRun
from .events import TrialEvent, events_frame
from .folder import RunFolder

__all__ = ["SearchRun", "Progress", "BatchRecorder", "SearchTimings", "Spent", "open_run"]

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
        folder = "" if self.measured_in_folder == self.trials_done else f" ({self.measured_in_folder} in the folder)"
        return (
            f"{self.status}: {self.trials_done}/{self.trials_total} trials{folder}, {self.failures} failed, {best}, "
            f"{self.elapsed_s:.0f} s{eta}"
        )


@dataclasses.dataclass
class Spent:
    """Where a session's wall time goes, added up while it runs by the search's parts (seconds)."""

    generate_s: float = 0.0  # the strategy proposing candidates (TVM's evolution with its cost-model scoring)
    build_s: float = 0.0  # compiling candidates in the build workers
    measure_s: float = 0.0  # the runner: checking each candidate's outputs and timing it
    record_s: float = 0.0  # TVM's own callbacks: the database, the cost model's update (its XGBoost training)
    predict_s: float = 0.0  # scoring each batch with the cost model before it is measured
    publish_s: float = 0.0  # the live-progress plumbing: events, the log on disk, subscribers
    generations: int = 0  # times the strategy was asked for candidates (a generation may fill several batches)
    screened: int = 0  # candidates recorded with their brief timing, too slow for the full one (measure.Screen)


@dataclasses.dataclass(frozen=True)
class SearchTimings:
    """Where a session's wall time went (``run.timings``; zero for a run opened from its folder)."""

    wall_s: float = 0.0
    generate_s: float = 0.0
    build_s: float = 0.0
    measure_s: float = 0.0
    record_s: float = 0.0
    predict_s: float = 0.0
    publish_s: float = 0.0
    generations: int = 0
    screened: int = 0

    @property
    def other_s(self) -> float:
        """The rest: TVM's task scheduler between the steps, and starting the session."""
        parts = self.generate_s + self.build_s + self.measure_s + self.record_s + self.predict_s + self.publish_s
        return max(0.0, self.wall_s - parts)

    def __add__(self, other: SearchTimings) -> SearchTimings:
        return SearchTimings(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                                for f in dataclasses.fields(self)})

    def __str__(self) -> str:
        wall = self.wall_s or 1.0
        parts = [("generating", self.generate_s), ("building", self.build_s), ("measuring", self.measure_s),
                 ("database and cost-model update", self.record_s), ("predicting", self.predict_s),
                 ("publishing", self.publish_s), ("other", self.other_s)]
        listed = ", ".join(f"{name} {seconds:.1f} s ({100 * seconds / wall:.0f} %)" for name, seconds in parts)
        screened = f", {self.screened} candidates screened" if self.screened else ""
        return f"{self.wall_s:.1f} s: {listed}; {self.generations} generations{screened}"


class BatchRecorder:
    """What a search thread gets from its run: record a measured batch, see whether a stop was asked.

    The narrow collaborator of the hooks and the strategy wrapper (``hooks.py``, ``guard.py``): they never see
    the run itself. ``record`` writes the batch to the event log before any subscriber sees it.
    """

    def __init__(self, run: SearchRun, record: Callable[[Sequence[TrialEvent]], None], stop: threading.Event) -> None:
        self.session = run.session
        self.space = run.space
        self.workload = run.workload
        self.started_at = time.time()
        self.batches = 0
        self.spent = Spent()
        self._run = run
        self._record = record
        self._stop = stop

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def next_index(self) -> int:
        """The index the next measured candidate gets (0-based over every session of the folder)."""
        return len(self._run.events)

    def restart_clock(self) -> None:
        """Count the session's time from now (after the builder and runner have started)."""
        self.started_at = time.time()

    def record(self, events: Sequence[TrialEvent]) -> None:
        self._record(events)
        self.batches += 1


class SearchRun(BackgroundRun):
    """A search over a space, running or finished, with its history in ``work_dir``.

    Made by ``mx.search`` (which ``start``s it) or ``SearchRun.open`` / ``mx.open_run`` (which read a folder).
    Events are appended a whole batch at a time, so readers on other threads never see half a batch.
    """

    _subscriber_warning = "subscriber %r raised; the search goes on:\n%s"

    def __init__(
        self,
        work_dir: str | os.PathLike,
        *,
        config: dict[str, Any],
        space: Any = None,
        session: int = 0,
        history: Sequence[TrialEvent] = (),
        cost_model: Any = None,
    ) -> None:
        super().__init__()
        self.folder = RunFolder(work_dir)
        self.work_dir = self.folder.path
        self.config = config
        self.space = space
        self.session = session
        self.cost_model = cost_model
        self.trials_total = int(config.get("trials", 0))
        self._events: list[TrialEvent] = list(history)
        self._recorder: BatchRecorder | None = None
        self._started_at = time.time()
        self._workload: Any = None

    @classmethod
    def open(cls, work_dir: str | os.PathLike, space: Any = None, *, reconcile: bool = False) -> SearchRun:
        """The run in ``work_dir`` as it stands on disk: finished, stopped, failed, or interrupted mid-way.

        Changes nothing on disk unless ``reconcile=True`` (which writes the events a killed process did not log;
        a resumed search does it anyway). ``space`` lets events rebuilt from the database carry decisions.
        """
        folder = RunFolder(work_dir)
        if not os.path.isdir(folder.path):
            raise ValueError(f"{folder.path!r} is not a folder; open_run takes the work_dir of an mx.search run")
        config = folder.read_config()
        if config is None:
            raise ValueError(f"{folder.path!r} has no run.json: it is not the folder of an mx.search run")
        events = folder.reconcile(space) if reconcile else folder.history(space)
        run = cls(folder.path, config=config, space=space, session=int(config.get("sessions", 1)) - 1, history=events)
        status = folder.read_status()
        if status is not None:
            run._set_ended(status["status"], status.get("error"), status.get("ended"))
        else:  # the process ended without writing its status: killed or crashed
            run._set_ended("interrupted", None, (folder.last_change() if events else None) or time.time())
        mine = [e for e in events if e.session == run.session]
        run._started_at = (run._ended_at or time.time()) - max((e.time_s for e in mine), default=0.0)
        return run

    # ---- reading ----
    @property
    def workload(self) -> Any:
        if self._workload is None:
            from ..workloads import Workload

            if self.space is not None:
                self._workload = self.space.workload
            else:
                self._workload = Workload.from_json(self.config["workload"])
        return self._workload

    @property
    def events(self) -> tuple[TrialEvent, ...]:
        """Every measured candidate of every session on this folder, in order (a snapshot)."""
        with self._lock:
            return tuple(self._events)

    @property
    def timings(self) -> SearchTimings:
        """Where this session's wall time went: generating, building, measuring, recording, predicting,
        publishing (zero for a run opened from its folder)."""
        rec = self._recorder
        if rec is None:
            return SearchTimings()
        ended = self._ended_at if self._ended_at is not None else time.time()
        return SearchTimings(wall_s=max(0.0, ended - rec.started_at), **dataclasses.asdict(rec.spent))

    @property
    def progress(self) -> Progress:
        events = self.events
        mine = [e for e in events if e.session == self.session]
        ok = [e for e in events if e.ok]
        best = min(ok, key=lambda e: e.latency_s) if ok else None
        end = self._ended_at or time.time()
        elapsed = end - (self._started_at if self._recorder is None else self._recorder.started_at)
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
        return events_frame(self.events, workload=self.workload, target=self.config["target"])

    @property
    def best(self) -> Any:
        """The fastest candidate whose outputs matched the reference, or ``None`` if none has yet. After
        ``confirm``, the fastest by its confirmed median (its ``confirmed_s``) while no later session has measured
        more on the folder; else the fastest by the search's single timing."""
        from .candidate import Candidate
        from .confirm import confirmed_latencies

        ok = [e for e in self.events if e.ok]
        if not ok:
            return None
        confirmed = confirmed_latencies(self) or {}
        if confirmed:
            fastest = min(confirmed, key=confirmed.__getitem__)
            event = next(e for e in ok if e.index == fastest)
        else:
            event = min(ok, key=lambda e: e.latency_s)
        return Candidate(event, self.workload, self.config["target"], checked=bool(self.config.get("check", True)),
                         confirmed_s=confirmed.get(event.index))

    def confirm(self, top: int = 5, *, rounds: int = 5, evaluator: Any = None) -> pd.DataFrame:
        """Re-time the ``top`` fastest verified candidates, all in turn, ``rounds`` times, and rank them by the
        median: the search times each once, and its fastest single timing is often its luckiest. Writes
        ``confirmed.json`` to the folder; ``best`` then follows the medians (until a later session on the
        folder measures more). ``evaluator`` as ``mx.measure``'s (default: three repeats of 50 ms a round).
        Returns a table, fastest median first. Only when the search has ended (``wait`` or ``stop`` first)."""
        from .confirm import confirm

        return confirm(self, top, rounds, evaluator)

    def top(self, k: int = 10) -> list[Any]:
        from .candidate import Candidate

        ok = sorted((e for e in self.events if e.ok), key=lambda e: e.latency_s)[:k]
        checked = bool(self.config.get("check", True))
        return [Candidate(e, self.workload, self.config["target"], checked=checked) for e in ok]

    # ---- control ----
    def subscribe(self, callback: Callable[[list[TrialEvent]], Any], *, replay: bool = False) -> Callable[[], None]:
        """Call ``callback(batch)`` with each finished batch, on the search thread. Returns an unsubscribe.

        An exception in the callback is logged and kept in ``subscriber_errors``; the search goes on.
        With ``replay=True`` the callback first gets every event so far as one batch.
        """
        history = (lambda: self._events) if replay else None
        return self._add_subscriber(callback, "taking a list of TrialEvents", history)

    def stop(self, *, wait: bool = True, timeout: float | None = None) -> Progress:
        """Ask the search to stop after the batch being measured (TVM may measure one it already scheduled).

        Every measured record is kept. With ``wait=True`` returns once the search thread has ended.
        """
        self._request_stop()
        if wait:
            self.wait(timeout)
        return self.progress

    # ---- the search thread ----
    def start(self, work: Callable[[BatchRecorder], Any], *, name: str | None = None) -> SearchRun:
        """Run ``work(recorder)`` on a background thread as this run's session; returns at once.

        ``work`` measures and hands each batch to ``recorder.record``; it should return soon after
        ``recorder.stop_requested()``. Its return ends the session as "done" (or "stopped" if a stop was asked),
        an exception as "failed" with the traceback in ``error``; the status is written to the folder either way.
        """
        if not callable(work):
            raise TypeError(f"start expects a callable taking a BatchRecorder, got {type(work).__name__}")
        if self._thread is not None or self._done.is_set():
            raise RuntimeError(f"this run has already {'started' if self._thread else 'ended'}; start a new mx.search")
        recorder = self._recorder = BatchRecorder(self, self._record_batch, self._stop_requested)
        self._launch(lambda: work(recorder), name or f"msexplore-search-{os.path.basename(self.work_dir)}")
        return self

    def _write_status(self) -> None:
        with self._lock:
            measured = len(self._events)
        self.folder.write_status(
            status=self.status, error=self.error, session=self.session, ended=self._ended_at, measured=measured
        )

    def _record_batch(self, events: Sequence[TrialEvent]) -> None:
        events = list(events)
        self.folder.events.append(events)  # on disk before anyone sees it
        with self._lock:
            self._events.extend(events)
            subscribers = list(self._subscribers)
        self._notify(subscribers, batch=events)

    # ---- display ----
    def __repr__(self) -> str:
        return f"SearchRun({self.workload.name}, {self.work_dir!r}, {self.progress})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def open_run(work_dir: str | os.PathLike, space: Any = None, *, reconcile: bool = False) -> SearchRun:
    """The run in ``work_dir`` as it stands on disk (see ``SearchRun.open``); reading it changes nothing."""
    return SearchRun.open(work_dir, space, reconcile=reconcile)
