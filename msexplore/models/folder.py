"""A model run's folder, in one place::

    model.json            the model's name, its tasks (name, weight, workload) and the tuning settings, per session
    status.json           how the last session ended (absent while one runs, or if its process died)
    tasks/<task name>/    an ``mx.search`` run folder per task (its config, events and MetaSchedule database)
    workers.log           what the build and run processes, shared by the task searches, printed (C++ warnings)

Each task's folder is an ordinary search folder, so everything that reads one (``mx.open_run``, the dashboard, the
export of a candidate) works on it, and a killed model run loses at most the batch in flight of one task.
"""

from __future__ import annotations

import os
from typing import Any

from ..search.folder import RunFolder, read_json, write_json

__all__ = ["ModelFolder", "MODEL_FILE", "STATUS_FILE"]

MODEL_FILE, STATUS_FILE, TASKS_DIR = "model.json", "status.json", "tasks"
FORMAT, VERSION = "msexplore.model-run", 1


class ModelFolder:
    """The files of one model run's folder."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.path.abspath(os.fspath(path))

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def workers_log(self) -> str:
        """Where the build and run processes that every task's search shares write their stderr."""
        return self._file("workers.log")

    def task_folder(self, task: str) -> RunFolder:
        """The search folder of task ``task``."""
        return RunFolder(os.path.join(self.path, TASKS_DIR, task))

    def read_config(self) -> dict[str, Any] | None:
        return read_json(self._file(MODEL_FILE))

    def write_config(self, config: dict[str, Any]) -> None:
        os.makedirs(self.path, exist_ok=True)
        write_json(self._file(MODEL_FILE), {"format": FORMAT, "version": VERSION, **config})
        if os.path.exists(self._file(STATUS_FILE)):
            os.remove(self._file(STATUS_FILE))

    def read_status(self) -> dict[str, Any] | None:
        return read_json(self._file(STATUS_FILE))

    def write_status(self, *, status: str, error: str | None, ended: float) -> None:
        write_json(self._file(STATUS_FILE), {"status": status, "error": error, "ended": ended})

    def task_folders(self) -> list[RunFolder]:
        """The search folder of every task searched so far (this model's, or an earlier model's in this folder)."""
        tasks = os.path.join(self.path, TASKS_DIR)
        if not os.path.isdir(tasks):
            return []
        folders = [RunFolder(os.path.join(tasks, name)) for name in sorted(os.listdir(tasks))]
        return [folder for folder in folders if folder.is_run()]

