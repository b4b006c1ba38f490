"""Keep TVM's logging, printed tables and C++ warnings out of the user's cells.

MetaSchedule's tuning resets its logger to DEBUG on every call (``logging.config.dictConfig``) and, inside
Jupyter, ``display()``s a statistics table and prints "Total trials" lines from C++ unless the global
function ``s_tir.meta_schedule.using_ipython`` says it is not in IPython. Both are undone here; the tuning
logs still go to the files in a run's folder.

TVM's C++ ``LOG(WARNING)`` (and XGBoost's, on a thread where its Python callback is not registered) writes to the
process's file descriptor 2, which a Jupyter kernel shows in the running cell. ``native_stderr`` catches those
lines around a native call, to report them or write them to a log, where they are not fixed at their cause.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import tvm

__all__ = ["install", "native_stderr", "NativeOutput"]

_LOGGERS = ("tvm.s_tir.meta_schedule", "tvm.meta_schedule")
_installed = False
_FD2_LOCK = threading.Lock()  # one redirection of fd 2 at a time, so that each restores what it found
# "[06:16:37] /project/src/tirx/transform/vectorize_loop.cc:1058: Warning: " before TVM's message,
# "[06:18:54] WARNING: /workspace/src/c_api/c_api.cc:1573: " before XGBoost's
_LOG_PREFIX = re.compile(r"^\[[\d:]+\]\s+(?:WARNING:\s+)?\S+:\d+:\s+(?:Warning:\s*)?")


def install() -> None:
    """Silence TVM's interactive output (idempotent); call again right before every tuning call."""
    global _installed
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        for handler in list(logger.handlers):
            # TVM's tuning rebuilds its logging config from the names of this logger's handlers; an
            # unnamed one (added by a host application or a test runner) makes that crash with
            # "'NoneType' object has no attribute 'format'".
            if handler.get_name() is None:
                logger.removeHandler(handler)
    if not _installed:
        tvm.register_global_func("s_tir.meta_schedule.using_ipython", lambda: False, override=True)
        _installed = True


@dataclass
class NativeOutput:
    """What native code wrote to fd 2 inside a ``native_stderr`` block (filled when the block ends)."""

    text: str = ""
    messages: list[str] = field(default_factory=list)  # its lines without TVM's "[time] file:line: Warning: "


@contextlib.contextmanager
def native_stderr(log: str | os.PathLike | None = None) -> Iterator[NativeOutput]:
    """Catch what native code writes to file descriptor 2 during the block, instead of showing it.

    The lines are in the yielded ``NativeOutput`` once the block ends, and appended to the file ``log`` if given.
    fd 2 belongs to the whole process: while a block runs, whatever any thread writes there is caught too (in a
    terminal, Python's own ``sys.stderr`` included; in a Jupyter kernel, ``sys.stderr`` is not fd 2). Blocks on
    different threads wait for each other, so each puts back the descriptor it found.
    """
    captured = NativeOutput()
    with _FD2_LOCK, tempfile.TemporaryFile() as sink:
        with contextlib.suppress(Exception):  # Python's buffered text first, where it belongs
            sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", errors="replace")
            captured.messages = [_LOG_PREFIX.sub("", line) for line in captured.text.splitlines() if line.strip()]
            if log is not None and captured.text:
                with open(log, "a", encoding="utf-8") as f:
                    f.write(captured.text)
