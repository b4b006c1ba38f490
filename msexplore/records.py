"""Tuning records as DataFrames: one row per measured candidate, failures included."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from .search.events import events_frame
from .search.run import open_run

__all__ = ["events_frame", "read_records", "compare_runs"]


def read_records(work_dir: str | os.PathLike, space: Any = None) -> pd.DataFrame:
    """The records of a run folder as a DataFrame (completed from the database after a crash; nothing written)."""
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
