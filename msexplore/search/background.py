"""BackgroundRun: work on a daemon thread with a status, a stop signal, subscribers, and a status file at its end.

The lifecycle ``SearchRun`` (one search) and ``ModelRun`` (one search per task of a model) share: "starting", then
"running" (and "stopping" once a stop is asked), ending as "done", "stopped" or "failed" (the traceback in
``error``), or read from a folder as it was left. A subclass writes its own status file and says what its
subscribers are called with.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

__all__ = ["BackgroundRun", "register_report_writer"]

log = logging.getLogger("msexplore.search")

_Run = TypeVar("_Run", bound="BackgroundRun")

# What ``run.report(path)`` calls: the report layer (``msexplore.report``, above the core) registers its writer when
# ``import msexplore`` imports it, so the core offers the method without importing plotly.
_report_writer: Callable[[Any, str | os.PathLike], Any] | None = None


def register_report_writer(writer: Callable[[Any, str | os.PathLike], Any]) -> None:
    """Make ``run.report(path)`` call ``writer(run, path)`` (``msexplore.report`` registers its ``write_report``)."""
    global _report_writer
    if not callable(writer):
        raise TypeError(f"register_report_writer expects a callable (run, path), got {type(writer).__name__}")
    _report_writer = writer


class BackgroundRun:
    """A run's status, stop signal, subscribers and thread; the subclass gives the work and writes the status file.

    ``status`` and ``error`` say how it stands; ``subscriber_errors`` keeps the traceback of every exception a
    subscriber raised (the work goes on).
    """

    # The warning logged (with the callback and the traceback) when a subscriber raises; None: only kept.
    _subscriber_warning: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.status = "starting"
        self.error: str | None = None
        self.subscriber_errors: list[str] = []
        self._lock = threading.Lock()  # the subscribers, and whatever the subclass hands them
        self._subscribers: list[Callable[..., Any]] = []
        self._stop_requested = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._ended_at: float | None = None

    # ---- subscribers ----
    def _add_subscriber(
        self, callback: Callable[..., Any], expected: str, history: Callable[[], Sequence[Any]] | None = None
    ) -> Callable[[], None]:
        """Add ``callback``; returns its unsubscribe. ``expected`` says what it should be, in the TypeError.

        With ``history``, the callback first gets what ``history()`` returns as one batch (if anything), read under
        the lock the subclass holds while it hands out a batch, so no batch is missed or seen twice.
        """
        if not callable(callback):
            raise TypeError(f"subscribe expects a callable {expected}, got {type(callback).__name__}")
        with self._lock:
            self._subscribers.append(callback)
            replayed = [] if history is None else list(history())
        if replayed:
            self._notify([callback], batch=replayed)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _notify(self, callbacks: Sequence[Callable[..., Any]], *args: Any, batch: Sequence[Any]) -> None:
        """Call each callback with ``*args`` and its own copy of ``batch``; an exception is kept, the work goes on."""
        for callback in callbacks:
            try:
                callback(*args, list(batch))
            except Exception:  # noqa: BLE001 - a subscriber's bug must not end the work
                text = traceback.format_exc()
                self.subscriber_errors.append(text)
                if self._subscriber_warning is not None:
                    log.warning(self._subscriber_warning, callback, text)

    # ---- control ----
    def _request_stop(self) -> None:
        """Say "stopping" (if it was starting or running) and raise the stop signal the work polls."""
        if self.status in ("running", "starting"):
            self.status = "stopping"
        self._stop_requested.set()

    def wait(self: _Run, timeout: float | None = None) -> _Run:
        """Block until the work ends (or ``timeout`` seconds pass); re-raises nothing, see ``status``/``error``."""
        if self._thread is not None:
            # Event.wait first: a KeyboardInterrupt inside Thread.join (Python 3.11) leaves the thread marked
            # finished while it still runs. The join then lets the thread finish tearing down TVM objects, so
            # a process that exits right after wait() does not abort.
            if self._done.wait(timeout):
                self._thread.join(5)
        return self

    def report(self, path: str | os.PathLike) -> Any:
        """Write one self-contained HTML file about this run to ``path`` (opens offline, no kernel); returns its path.

        A snapshot of what the run holds now: a running or interrupted run reports what it has measured.
        """
        if _report_writer is None:
            raise RuntimeError("no report writer is registered: `import msexplore` registers msexplore.report's")
        return _report_writer(self, path)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def ended(self) -> bool:
        """True once the thread has finished (always, for a run opened from its folder)."""
        return self._done.is_set()

    # ---- the thread ----
    def _launch(self, work: Callable[[], Any], name: str) -> None:
        """Say "running" and run ``work()`` on a daemon thread named ``name``; returns at once."""
        self.status = "running"
        self._thread = threading.Thread(target=self._session, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _session(self, work: Callable[[], Any]) -> None:
        try:
            work()
            self.status = "stopped" if self._stop_requested.is_set() else "done"
        except BaseException as err:  # noqa: BLE001 - the thread must record why it ended
            self.status = "failed"
            self.error = f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
        finally:
            self._ended_at = time.time()
            try:
                self._write_status()
            finally:
                self._done.set()

    def _write_status(self) -> None:
        """Write how the session ended (``status``, ``error``, ``_ended_at``) to the run's folder."""
        raise NotImplementedError

    def _set_ended(self, status: str, error: str | None, ended_at: float | None) -> None:
        """Mark the run as ended without a thread: a run read from its folder."""
        self.status, self.error, self._ended_at = status, error, ended_at
        self._done.set()
