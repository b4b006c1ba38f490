"""Searching a space without blocking the notebook: a background run, its events, stop, resume, reopen."""

from .candidate import Candidate
from .driver import search
from .events import TrialEvent
from .folder import open_run
from .run import Progress, SearchRun
from .strategies import STRATEGIES

__all__ = ["Candidate", "Progress", "STRATEGIES", "SearchRun", "TrialEvent", "open_run", "search"]
