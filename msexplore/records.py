"""Tuning records as DataFrames: one row per measured candidate, failures included."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["events_frame", "read_records", "compare_runs"]

COLUMNS = [
    "trial", "session", "batch", "time_s", "timestamp", "design_space", "ok", "latency_s", "latency_min_s",
    "latency_max_s", "latency_std_s", "gflops", "predicted", "build_error", "run_error", "max_abs_error", "after_stop",
]


def events_frame(events: Sequence[Any], *, workload: Any = None, target: Any = None) -> pd.DataFrame:
    """Events -> DataFrame with latency statistics, one column per decision, and the trace (JSON) last.

    ``df.attrs`` carries the workload (JSON) and target, so a cost model can replay the traces.
    """
    names: list[str] = []
    for e in events:
        names += [n for n in e.decisions if n not in names]
    rows = []
    for e in events:
        lat = np.asarray(e.latencies_s, dtype=float)
        row = {
            "trial": e.index,
            "session": e.session,
            "batch": e.batch,
            "time_s": e.time_s,
            "timestamp": pd.Timestamp(e.timestamp, unit="s"),
            "design_space": e.design_space,
            "ok": e.ok,
            "latency_s": e.latency_s,
            "latency_min_s": float(lat.min()) if lat.size else None,
            "latency_max_s": float(lat.max()) if lat.size else None,
            "latency_std_s": float(lat.std()) if lat.size else None,
            "gflops": e.gflops,
            "predicted": e.predicted,
            "build_error": e.build_error,
            "run_error": e.run_error,
            "max_abs_error": e.max_abs_error,
            "after_stop": e.after_stop,
        }
        row.update({n: e.decisions.get(n) for n in names})
        row["trace"] = e.trace
        rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS + names + ["trace"])
    if workload is not None:
        df.attrs["workload"] = workload.to_json()
    if target is not None:
        df.attrs["target"] = str(target)
    for col in ("latency_s", "latency_min_s", "latency_max_s", "latency_std_s", "gflops", "predicted", "max_abs_error"):
        df[col] = df[col].astype(float)
    return df


def read_records(work_dir: str | os.PathLike, space: Any = None) -> pd.DataFrame:
    """The records of a run folder as a DataFrame (reconciled with the database after a crash)."""
    from .search.folder import open_run

    return open_run(work_dir, space=space).records


def compare_runs(runs: dict[str, Any]) -> pd.DataFrame:
    """One row per run: trials, failures, best latency and GFLOPS, time to reach within 5% of its best."""
    rows = []
    for label, run in runs.items():
        df = run.records if hasattr(run, "records") else read_records(run)
        ok = df[df["ok"]]
        best = ok["latency_s"].min() if len(ok) else np.nan
        within = ok[ok["latency_s"] <= best * 1.05]["trial"].min() if len(ok) else np.nan
        rows.append(
            {
                "run": label,
                "trials": len(df),
                "failures": int((~df["ok"]).sum()),
                "best_latency_s": best,
                "best_gflops": ok["gflops"].max() if len(ok) else np.nan,
                "trial_within_5pct": within,
            }
        )
    return pd.DataFrame(rows).set_index("run")
