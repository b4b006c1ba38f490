"""Cost-model figures: predicted score against measured latency (with ranking quality), and feature importance.

Ranking quality, computed by the extractor over the candidates that have both a prediction and a measurement:

- Spearman's rho between the predicted score and measured speed (``scipy.stats.spearmanr(predicted, -latency)``):
  1 when the model orders candidates exactly as the measurements do; ``None`` with fewer than two pairs or a
  constant side.
- top-k recall: ``|top_k(predicted) ∩ top_k(fastest measured)| / k``, the share of the k fastest candidates the
  model would have picked among its own k best; ties go to the earlier candidate. ``None`` with fewer than k
  measured candidates. Both are defined as in ``CostModel.quality``.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ._common import BEST_COLOR, INVALID_COLOR, VALID_COLOR, empty_figure, figure, layout

__all__ = ["plot_predicted_vs_measured", "plot_feature_importance"]

OTHER_COLOR = "#9aa0ad"


class _PredictedVsMeasuredInfo(NamedTuple):
    ids: tuple[int, ...]  # trial numbers (records) or positions in the inputs
    predicted: tuple[float, ...]
    latency_s: tuple[float, ...]
    k: int  # as asked; the top lists hold min(k, number of pairs)
    spearman: float | None
    recall: float | None
    top_measured: tuple[int, ...]  # ids of the k fastest measured candidates, fastest first
    top_predicted: tuple[int, ...]  # ids of the k best predicted, best first
    dropped: int  # inputs without both a prediction and a measurement (failed candidates, NaN)
    note: str | None


class _FeatureImportanceInfo(NamedTuple):
    groups: tuple[str, ...]  # most important first
    importance: tuple[float, ...]
    share: tuple[float, ...]  # importance / total importance
    note: str | None


def plot_predicted_vs_measured(predicted: Any, measured_latency_or_records: Any, *, k: int = 10) -> go.Figure:
    """Predicted score against measured latency, titled with Spearman's rho and top-k recall.

    Parameters
    ----------
    predicted
        The cost model's scores (higher = faster), aligned with the measurements; ``None`` to take the records'
        own ``predicted`` column.
    measured_latency_or_records
        Latencies in seconds (NaN for failures), or ``run.records`` (failed candidates are left out).
    k
        The k of top-k recall.
    """
    info = _get_predicted_vs_measured_info(predicted, measured_latency_or_records, k=k)
    return _get_predicted_vs_measured_plot(info)


def plot_feature_importance(importance: pd.DataFrame) -> go.Figure:
    """Horizontal bars of the cost model's feature importance by feature group (columns ``group``, ``importance``)."""
    info = _get_feature_importance_info(importance)
    return _get_feature_importance_plot(info)


# ---- predicted vs measured -----------------------------------------------------------------------------------


def _get_predicted_vs_measured_info(predicted: Any, measured: Any, *, k: int = 10) -> _PredictedVsMeasuredInfo:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if isinstance(measured, pd.DataFrame):
        missing = [c for c in ("latency_s", "ok") if c not in measured.columns]
        if missing:
            raise ValueError(f"measured records must have the columns of run.records; missing {missing}")
        latency = measured["latency_s"].to_numpy(dtype=float).copy()
        latency[~measured["ok"].to_numpy(dtype=bool)] = np.nan
        ids = measured["trial"].to_numpy() if "trial" in measured.columns else np.arange(len(measured))
        if predicted is None:
            if "predicted" not in measured.columns:
                raise ValueError("predicted is None and the records have no 'predicted' column")
            predicted = measured["predicted"]
    else:
        if predicted is None:
            raise ValueError("predicted is None: pass the scores, or run.records (with its 'predicted' column)")
        latency = _floats(measured, "measured_latency_or_records")
        ids = np.arange(len(latency))
    if isinstance(predicted, pd.DataFrame):
        if "predicted" not in predicted.columns:
            raise ValueError("predicted is a DataFrame without a 'predicted' column: call model.predict(...) first")
        predicted = predicted["predicted"]
    scores = _floats(predicted, "predicted")
    if len(scores) != len(latency):
        raise ValueError(f"predicted has {len(scores)} values but there are {len(latency)} measurements")

    keep = ~np.isnan(scores) & ~np.isnan(latency)
    scores, latency, ids = scores[keep], latency[keep], ids[keep]
    n = len(scores)
    top_measured = ids[np.argsort(latency, kind="stable")[:k]]
    top_predicted = ids[np.argsort(-scores, kind="stable")[:k]]
    recall = len(set(top_measured.tolist()) & set(top_predicted.tolist())) / k if n >= k else None
    note = None
    if n == 0:
        note = "No candidate has both a prediction and a successful measurement."
    elif n < k:
        note = f"Only {n} measured candidate{'s' if n != 1 else ''}: top-{k} recall needs at least {k}."
    return _PredictedVsMeasuredInfo(
        ids=tuple(int(i) for i in ids.tolist()),
        predicted=tuple(scores.tolist()),
        latency_s=tuple(latency.tolist()),
        k=k,
        spearman=_spearman(scores, latency),
        recall=recall,
        top_measured=tuple(int(i) for i in top_measured.tolist()),
        top_predicted=tuple(int(i) for i in top_predicted.tolist()),
        dropped=int((~keep).sum()),
        note=note,
    )


def _floats(values: Any, what: str) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers (or records), got {type(values).__name__}") from None
    if out.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {out.shape}")
    return out


def _spearman(scores: np.ndarray, latency: np.ndarray) -> float | None:
    if len(scores) < 2 or np.all(scores == scores[0]) or np.all(latency == latency[0]):
        return None
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(scores, -latency).statistic)
    return None if np.isnan(rho) else rho


def _get_predicted_vs_measured_plot(info: _PredictedVsMeasuredInfo) -> go.Figure:
    rho = "n/a" if info.spearman is None else f"{info.spearman:.3f}"
    recall = "n/a" if info.recall is None else f"{info.recall:.2f}"
    title = f"Predicted vs measured: Spearman ρ = {rho}, top-{info.k} recall = {recall} (n = {len(info.ids)})"
    if not info.ids:
        return empty_figure(info.note or "Nothing to draw.", title=title)
    top = set(info.top_measured)
    picked = set(info.top_predicted)
    groups = (
        ("others", lambda i: i not in top, OTHER_COLOR),
        (f"top-{info.k} measured, found by the model", lambda i: i in top and i in picked, BEST_COLOR),
        (f"top-{info.k} measured, missed by the model", lambda i: i in top and i not in picked, INVALID_COLOR),
    )
    data = []
    ids, latency, predicted = np.asarray(info.ids), np.asarray(info.latency_s), np.asarray(info.predicted)
    for name, member, color in groups:  # always three traces, possibly empty
        rows = np.array([member(i) for i in info.ids], dtype=bool)
        data.append({
            "type": "scatter",
            "x": latency[rows],
            "y": predicted[rows],
            "customdata": ids[rows],
            "mode": "markers",
            "name": name,
            "marker": {"color": color, "size": 8, "opacity": 0.85, "line": {"width": 0.5, "color": "white"}},
            "hovertemplate": "#%{customdata}<br>measured %{x:.3s}s<br>predicted %{y:.4g}<extra></extra>",
        })
    subtitle = f"{info.dropped} without a measurement or prediction left out" if info.dropped else ""
    if info.note:
        subtitle = f"{info.note} {subtitle}".strip()
    lay = layout(
        title + (f"<br><sup>{subtitle}</sup>" if subtitle else ""),
        height=460,
        xaxis={"title": {"text": "measured latency (faster →)"}, "type": "log", "autorange": "reversed",
               "tickformat": "~s", "ticksuffix": "s"},
        yaxis={"title": {"text": "predicted score (higher = faster)"}},
        legend={"orientation": "h", "x": 0, "y": -0.18, "yanchor": "top"},
        margin={"l": 70, "r": 30, "t": 90, "b": 90},
    )
    return figure(data, lay)


# ---- feature importance --------------------------------------------------------------------------------------


def _get_feature_importance_info(importance: pd.DataFrame) -> _FeatureImportanceInfo:
    """Columns ``group`` and ``importance``; also ``model.feature_importance()`` as it comes (``group`` as the
    index, ``total_gain`` as the importance). Rows of the same group are summed."""
    if not isinstance(importance, pd.DataFrame):
        raise TypeError(f"importance must be a DataFrame with columns 'group' and 'importance', got "
                        f"{type(importance).__name__}")
    if "group" not in importance.columns and importance.index.name == "group":
        importance = importance.reset_index()
    value = "importance" if "importance" in importance.columns else "total_gain"
    missing = [c for c in ("group", value) if c not in importance.columns]
    if missing:
        missing = ["importance" if c == "total_gain" else c for c in missing]
        raise ValueError(f"importance must have columns 'group' and 'importance'; missing {missing}")
    values = pd.to_numeric(importance[value], errors="coerce")
    frame = pd.DataFrame({"group": importance["group"].astype(str), "importance": values}).dropna()
    totals = frame.groupby("group", sort=False)["importance"].sum().sort_values(ascending=False, kind="stable")
    total = float(totals.sum())
    note = None
    if len(totals) == 0:
        note = "No feature importance to draw (is the model trained?)."
    elif total == 0:
        note = "Every importance is zero (is the model trained?)."
    return _FeatureImportanceInfo(
        groups=tuple(totals.index.tolist()),
        importance=tuple(float(v) for v in totals.tolist()),
        share=tuple(float(v) / total if total else 0.0 for v in totals.tolist()),
        note=note,
    )


def _get_feature_importance_plot(info: _FeatureImportanceInfo) -> go.Figure:
    title = "Cost model: feature importance by group"
    if not info.groups or info.note and not any(info.importance):
        return empty_figure(info.note or "Nothing to draw.", title=title)
    bars = {
        "type": "bar",
        "x": list(info.importance)[::-1],  # plotly draws the first category at the bottom: most important on top
        "y": list(info.groups)[::-1],
        "customdata": list(info.share)[::-1],
        "orientation": "h",
        "marker": {"color": VALID_COLOR},
        "hovertemplate": "<b>%{y}</b><br>importance %{x:.4g} (%{customdata:.1%})<extra></extra>",
    }
    lay = layout(
        title,
        height=max(260, 90 + 28 * len(info.groups)),
        xaxis={"title": {"text": "importance"}, "rangemode": "tozero"},
        yaxis={"type": "category", "automargin": True},
    )
    return figure([bars], lay)
