"""Re-timing a finished search's fastest candidates in turn, so that its best is not the luckiest single timing.

A search times each candidate once (``measure.SEARCH_EVALUATOR``: one window of calls), and the minimum of a few
hundred noisy single timings is biased towards the candidate whose timing was luckiest: on a shared 2-core VM the
search's best latency ran 20-30 % under the same kernel's median in interleaved rounds, and on GEMM 512^3 four
tilings within 2 % of each other by the search's timing spread 1,806-2,052 us when timed by hand, the search's
pick the slowest of them (a Zen 3, 2026-12-03). ``confirm`` builds the ``top`` fastest verified candidates once
and times them all in turn, ``rounds`` times, each round starting one further along (``mx.measure(rounds=...)``),
and writes the medians to the folder's ``confirmed.json``; ``SearchRun.best`` is then the fastest by that median
until another session measures more candidates on the folder.
"""

from __future__ import annotations

import datetime as _dt
import statistics
from typing import Any

import pandas as pd

from ..common import check_positive_int

__all__ = ["confirm", "confirmed_latencies", "folder_confirmed_latencies"]


def confirm(run: Any, top: int, rounds: int, evaluator: Any = None) -> pd.DataFrame:
    """Re-time ``run``'s ``top`` fastest verified candidates, all in turn, ``rounds`` times (``SearchRun.confirm``)."""
    from ..measure import RPCSettings, measure
    from ..target import this_machine

    check_positive_int("top", top)
    check_positive_int("rounds", rounds)
    if run.status in ("starting", "running", "stopping"):
        raise RuntimeError(
            f"the search is {run.status}: confirm re-times candidates on the cores it measures on; call it after "
            "run.wait() or run.stop()"
        )
    candidates = run.top(top)
    if not candidates:
        raise ValueError(f"the run in {run.work_dir} has no candidate whose outputs matched the reference to re-time")
    rpc = run.config.get("rpc")
    measured = measure(
        [c.schedule for c in candidates], run.workload, target=run.config["target"],
        check=bool(run.config.get("check", True)), evaluator=evaluator,
        rpc=None if rpc is None else RPCSettings(**rpc), rounds=rounds,
    )
    entries = [
        {
            "index": c.index,
            "search_s": c.latency_s,
            "latency_s": m.latency_s,
            "latencies": list(m.latencies),
            "error": m.build_error or m.run_error,
        }
        for c, m in zip(candidates, measured)
    ]
    run.folder.write_confirmation({
        "measured": len(run.events),  # the events it ranked: a later session's candidates make it stale
        "top": top,
        "rounds": rounds,
        "machine": this_machine(),
        "when": _dt.datetime.now().isoformat(timespec="seconds"),
        "entries": entries,
    })
    return confirmation_frame(entries)


def confirmed_latencies(run: Any) -> dict[int, float] | None:
    """The confirmed median latency by candidate index, or None where there is no confirmation of the run's
    events as they stand (none was made, or a later session measured more candidates)."""
    return folder_confirmed_latencies(run.folder, len(run.events))


def folder_confirmed_latencies(folder: Any, measured: int) -> dict[int, float] | None:
    """``confirmed_latencies`` of a run folder whose event log holds ``measured`` events (read without a run)."""
    confirmation = folder.read_confirmation()
    if confirmation is None or confirmation.get("measured") != measured:
        return None
    latencies = {e["index"]: e["latency_s"] for e in confirmation["entries"] if e.get("latency_s") is not None}
    return latencies or None


def confirmation_frame(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per re-timed candidate, fastest confirmed median first (failures last): the search's timing,
    the median and spread of the rounds, and the error of one that failed."""
    rows = []
    for e in entries:
        latencies = e["latencies"]
        rows.append({
            "index": e["index"],
            "search_ms": e["search_s"] * 1e3,
            "confirmed_ms": None if e["latency_s"] is None else e["latency_s"] * 1e3,
            "min_ms": min(latencies) * 1e3 if latencies else None,
            "max_ms": max(latencies) * 1e3 if latencies else None,
            "stdev_pct": 100 * statistics.stdev(latencies) / statistics.mean(latencies) if len(latencies) > 1 else None,
            "timings": len(latencies),
            "error": e["error"],
        })
    frame = pd.DataFrame(rows)
    return frame.sort_values("confirmed_ms", na_position="last", kind="stable").reset_index(drop=True)
