"""The failure log grouped by error: one line per distinct error (build, run, wrong result), how many candidates
it broke, which, and the whole text of its first one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ..common import error_line
from ..ui._html import esc, note
from ._page import details

__all__ = ["FailureGroup", "failure_groups", "failures_html"]

LINE_LIMIT = 200
TRIALS_LISTED = 12
WRONG_RESULT = "outputs differ from the reference"


class FailureGroup(NamedTuple):
    kind: str  # "build" | "run" | "wrong result"
    line: str  # the error's useful line (msexplore.common.error_line)
    trials: tuple[int, ...]  # in order
    text: str  # the first one's whole error text


def failure_groups(events: Sequence[Any]) -> tuple[FailureGroup, ...]:
    """The failed events grouped by kind and error line, the most frequent first (ties: the earliest first)."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for e in events:
        if not e.ok:
            groups.setdefault(_kind_and_line(e), []).append(e)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[1][0].index))
    return tuple(
        FailureGroup(kind, line, tuple(e.index for e in members), _text(members[0]))
        for (kind, line), members in ordered
    )


def _kind_and_line(event: Any) -> tuple[str, str]:
    if event.build_error:
        return "build", error_line(event.build_error, default="no error text", limit=LINE_LIMIT)
    if event.max_abs_error is not None:
        return "wrong result", WRONG_RESULT
    return "run", error_line(event.run_error, default="failed (no error recorded)", limit=LINE_LIMIT)


def _text(event: Any) -> str:
    if event.build_error:
        return event.build_error
    if event.max_abs_error is not None:
        return f"max abs error {event.max_abs_error:.3g}\n{event.run_error or ''}".strip()
    return event.run_error or "failed (no error recorded)"


def failures_html(groups: Sequence[FailureGroup]) -> str:
    """One folded line per group: kind, count, error line; opened, the trials and the first one's whole text."""
    if not groups:
        return note("No candidate failed.")
    total = sum(len(g.trials) for g in groups)
    items = []
    for g in groups:
        listed = ", ".join(str(t) for t in g.trials[:TRIALS_LISTED])
        more = f" and {len(g.trials) - TRIALS_LISTED} more" if len(g.trials) > TRIALS_LISTED else ""
        summary = (f'<span class="msx-kind">{esc(g.kind)}</span><span class="msx-count">{len(g.trials)}×</span>'
                   f"{esc(g.line)}")
        body = (f'<div class="msx-note">trial{"s" if len(g.trials) != 1 else ""} {esc(listed)}{esc(more)}; '
                f"the first one's error:</div><pre class=\"msx-pre\">{esc(g.text)}</pre>")
        items.append(details(summary, body, css_class="msx-failure"))
    head = (f"<p>{total} failed candidate{'s' if total != 1 else ''}, {len(groups)} distinct "
            f"error{'s' if len(groups) != 1 else ''}:</p>")
    return head + "".join(items)
