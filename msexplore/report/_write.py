"""``write_report``: a run, or the folder of one, to one self-contained HTML file.

A folder is read as ``mx.open_run`` / ``mx.open_model_run`` read it, which changes nothing on disk, so a colleague's
folder, a read-only mount or the folder of a killed run can be reported as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..models.folder import ModelFolder
from ..models.tuning import ModelRun, open_model_run
from ..search.folder import RunFolder
from ..search.run import SearchRun, open_run
from ._model import model_header, model_sections, model_title
from ._page import page
from ._search import search_header, search_sections, search_title

__all__ = ["write_report", "report_html", "open_any_run", "ACCEPTED"]

ACCEPTED = "the work_dir of an mx.search run (with run.json) or of an mx.tune_model run (with model.json)"


def write_report(run_or_folder: Any, path: str | os.PathLike) -> Path:
    """Write the report of a ``SearchRun``, a ``ModelRun`` or a run's folder to ``path``; returns its absolute path.

    The file is written whole or not at all (a temporary file renamed over ``path``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name such as 'report.html', got {type(path).__name__}")
    target = Path(path).absolute()
    if target.is_dir():
        raise ValueError(f"path {str(target)!r} is a folder; give the report's file name, e.g. "
                         f"{target / 'report.html'}")
    if not target.parent.is_dir():
        raise ValueError(f"the folder of {str(target)!r} does not exist; create it first")
    text = report_html(open_any_run(run_or_folder))
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    return target


def report_html(run: SearchRun | ModelRun) -> str:
    """The report of ``run`` as one HTML document."""
    if isinstance(run, ModelRun):
        return page(model_title(run), str(run.work_dir), model_header(run), model_sections(run))
    return page(search_title(run), str(run.work_dir), search_header(run), search_sections(run))


def open_any_run(run_or_folder: Any) -> SearchRun | ModelRun:
    """``run_or_folder`` as a run: a run as is, a search folder through ``open_run``, a model run's through
    ``open_model_run``; ValueError naming what is accepted for anything else."""
    if isinstance(run_or_folder, (SearchRun, ModelRun)):
        return run_or_folder
    if not isinstance(run_or_folder, (str, os.PathLike)):
        raise TypeError(f"write_report takes a SearchRun, a ModelRun or a run's folder, got "
                        f"{type(run_or_folder).__name__}")
    folder = os.path.abspath(os.fspath(run_or_folder))
    if not os.path.isdir(folder):
        raise ValueError(f"{folder!r} is not a folder; give {ACCEPTED}")
    if RunFolder(folder).is_run():
        return open_run(folder)
    if ModelFolder(folder).read_config() is not None:
        return open_model_run(folder)
    raise ValueError(f"{folder!r} holds no run; give {ACCEPTED}")
