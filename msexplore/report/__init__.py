"""Reports: a search or a model run as one self-contained HTML file that opens offline, with no kernel.

``write_report(run_or_folder, path)``, also ``run.report(path)`` and ``msexplore report RUN_DIR -o FILE``: what was
searched and where, the progress figure, the decisions coloured by latency, the cost model's predictions against the
measurements, the top candidates, the best one's TIR and trace, the failures grouped by error; a model run adds its
task table, the estimated model latency and each task's search.

A layer of its own above the widgets (``[tool.importlinter]``): it reuses the dashboards' pure HTML parts and the
figures, and imports no widget library. ``import msexplore`` imports this module, which only registers the writer
with the core (``BackgroundRun.report``); plotly and the rest load when a report is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..search.background import register_report_writer

__all__ = ["write_report"]


def write_report(run_or_folder: Any, path: str | os.PathLike) -> Path:
    """Write the report of a ``SearchRun``, a ``ModelRun`` or a run's folder to ``path``; returns its absolute path.

    Parameters
    ----------
    run_or_folder
        A run (running, finished or opened), or the ``work_dir`` of an ``mx.search`` or ``mx.tune_model`` run
        (read without changing it, also when its process was killed).
    path
        The HTML file to write (replaced if it exists); its folder must exist.
    """
    from ._write import write_report as write

    return write(run_or_folder, path)


register_report_writer(write_report)
