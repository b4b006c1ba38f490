"""Progress of the CLI's long steps on stderr: a tqdm bar with an ETA on a terminal, plain lines anywhere else.

A bar only makes sense to a person watching: it is drawn when stderr is a terminal and neither ``--json`` nor
``--quiet`` was given. Otherwise stderr gets what it always got, one ``[msexplore] ...`` line per measured batch
(a log file or a pipe reads them line by line; ``--quiet`` drops them), and stdout, the result, is never touched.

``TrialProgress`` follows trials (``tune``, ``tune-model``: the search thread reports each batch); ``StepProgress``
counts the steps of one long call that reports nothing while it works (compiling, checking and writing a kernel
or a model), so its bar at least says which step is running, since when, and, after the first, how long is left.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["StepProgress", "TrialProgress", "wants_bar"]

PREFIX = "[msexplore]"


def wants_bar(args: argparse.Namespace, err: TextIO) -> bool:
    """A bar for a person at a terminal: stderr is a TTY, and no ``--json`` or ``--quiet``."""
    if getattr(args, "json", False) or getattr(args, "quiet", False):
        return False
    try:
        return bool(err.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _bar(err: TextIO, total: int, desc: str, unit: str) -> tqdm:
    # dynamic_ncols: the terminal's width, again after a resize; mininterval 0.1: batches are seconds apart anyway
    return tqdm(total=total, desc=desc, unit=unit, file=err, dynamic_ncols=True, mininterval=0.1, leave=True)


class TrialProgress:
    """Measured trials of a search or a model run: a bar (``bar=True``), else a line per update (``lines=True``).

    ``update`` is called on the search thread, ``tick`` on the waiting main thread (the bar's clock runs between
    batches); tqdm draws under its own lock.
    """

    def __init__(self, err: TextIO, total: int, *, bar: bool, lines: bool = True, desc: str = "trials") -> None:
        self.err, self.lines = err, lines
        self._bar = _bar(err, total, desc, "trial") if bar else None
        self._ticked = time.monotonic()

    def update(self, done: int, text: str, *, postfix: str | None = None) -> None:
        """``done`` trials measured; ``text`` is the line without a bar, ``postfix`` (default ``text``) follows it."""
        if self._bar is not None:
            self._bar.update(max(0, done - self._bar.n))
            self._bar.set_postfix_str(text if postfix is None else postfix, refresh=True)
        elif self.lines:
            print(f"{PREFIX} {text}", file=self.err, flush=True)

    def tick(self) -> None:
        """Redraw the bar's clock, once a second at most."""
        if self._bar is not None and time.monotonic() - self._ticked >= 1.0:
            self._ticked = time.monotonic()
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class StepProgress(contextlib.AbstractContextManager):
    """The steps of one long call: ``with StepProgress(err, 2, bar=...) as steps: steps.begin("compiling")``.

    Without a bar, ``begin`` prints its text as a line when ``lines`` (the CLI's lines before the bar existed).
    """

    def __init__(self, err: TextIO, steps: int, *, bar: bool, lines: bool = False, desc: str = "") -> None:
        self.err, self.lines, self.desc = err, lines, desc
        self._bar = _bar(err, steps, desc, "step") if bar else None
        self._started = False

    def begin(self, text: str) -> None:
        """The next step starts (the one before it is done)."""
        if self._bar is not None:
            if self._started:
                self._bar.update(1)
            self._bar.set_description_str(f"{self.desc}: {text}" if self.desc else text, refresh=True)
        elif self.lines:
            print(f"{PREFIX} {text}", file=self.err, flush=True)
        self._started = True

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> Any:
        if self._bar is not None:
            if kind is None and self._started:
                self._bar.update(self._bar.total - self._bar.n)  # every step done
            self._bar.close()
        return None
