"""Searching a space without blocking the notebook: a background run, its events, stop, resume, reopen."""

from .candidate import Candidate
from .driver import search
from .events import TrialEvent
from .folder import RunFolder
from .run import BatchRecorder, Progress, SearchRun, SearchTimings, open_run
from .strategies import STRATEGIES

__all__ = [
    "BatchRecorder", "Candidate", "Progress", "RunFolder", "STRATEGIES", "SearchRun", "SearchTimings", "TrialEvent",
    "open_run", "search",
]
