"""Keep TVM's logging and printed tables out of the user's cells.

MetaSchedule's tuning resets its logger to DEBUG on every call (``logging.config.dictConfig``) and, inside
Jupyter, ``display()``s a statistics table and prints "Total trials" lines from C++ unless the global
function ``s_tir.meta_schedule.using_ipython`` says it is not in IPython. Both are undone here; the tuning
logs still go to the files in a run's folder.
"""

from __future__ import annotations

import logging

import tvm

_LOGGERS = ("tvm.s_tir.meta_schedule", "tvm.meta_schedule")
_installed = False


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
