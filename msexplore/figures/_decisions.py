"""Decision distributions: one bar chart per random variable, coloured by validity, predicted score or latency.

Each bar carries ``customdata = [decision name, value, ...]`` (tiles as lists), so a click handler knows which
decision and value it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..common import plain_json
from ..search.events import COLUMNS as RECORD_COLUMNS
from ._common import (
    COLORSCALE,
    INVALID_COLOR,
    NO_DATA_COLOR,
    VALID_COLOR,
    empty_figure,
    error_line,
    figure,
    layout,
    value_label,
)

__all__ = ["plot_decision_distributions"]

COLORS = ("valid", "predicted", "latency")
_NOT_DECISIONS = frozenset({"sample", "design_space", "valid", "error", "seed", "predicted", "trace", *RECORD_COLUMNS})
_COLOR_LABELS = {"valid": "validity", "predicted": "mean predicted score", "latency": "best measured latency"}


class _DecisionBars(NamedTuple):
    """The bars of one random variable, in display order."""

    name: str
    module: str | None
    values: tuple[Any, ...]  # decision values (tiles as tuples)
    labels: tuple[str, ...]  # as drawn: "8×64", "512"
    counts: tuple[int, ...]  # rows holding each value
    valid: tuple[int, ...]  # of them valid (ok for records); () without a validity column
    color_values: tuple[float | None, ...]  # mean predicted / best latency (s) per value; () for color="valid"
    hidden_values: int  # distinct values past max_values, not drawn
    hidden_count: int  # rows holding those
    missing: int  # rows without this decision (it is not in their design space, or they have no decisions)


class _DecisionDistributionsInfo(NamedTuple):
    color: str
    color_label: str
    n_samples: int
    n_valid: int | None
    panels: tuple[_DecisionBars, ...]
    note: str | None  # why nothing (or something less) is drawn


def plot_decision_distributions(
    samples_or_df: Any,
    *,
    color: str = "valid",
    records: pd.DataFrame | None = None,
    summary: pd.DataFrame | Mapping[str, str] | None = None,
    max_values: int = 20,
) -> go.Figure:
    """Bars of value counts, one panel per random variable, grouped by module.

    Parameters
    ----------
    samples_or_df
        A ``SampleSet``, its ``df``, or a run's ``records`` (validity is then the ``ok`` column).
    color
        ``"valid"``: valid and invalid stacked; ``"predicted"``: mean predicted score per value (needs a
        ``predicted`` column); ``"latency"``: best measured latency per value, from ``records`` (or from
        ``samples_or_df`` itself when it is a records frame).
    summary
        ``space.summary()`` or a ``{name: module}`` mapping, to group and title the panels by module (taken from
        the sample set's space when omitted).
    max_values
        The most values drawn per panel (the most frequent ones); the rest are counted in the panel title.
    """
    info = _get_decision_distributions_info(
        samples_or_df, color=color, records=records, summary=summary, max_values=max_values
    )
    return _get_decision_distributions_plot(info)


# ---- extraction ---------------------------------------------------------------------------------------------


def _get_decision_distributions_info(
    samples_or_df: Any,
    *,
    color: str = "valid",
    records: pd.DataFrame | None = None,
    summary: pd.DataFrame | Mapping[str, str] | None = None,
    max_values: int = 20,
) -> _DecisionDistributionsInfo:
    if color not in COLORS:
        raise ValueError(f"color must be one of {list(COLORS)}, got {color!r}")
    if isinstance(max_values, bool) or not isinstance(max_values, int) or max_values < 1:
        raise ValueError(f"max_values must be a positive integer, got {max_values!r}")
    df = _frame(samples_or_df, "samples_or_df")
    modules = _modules(summary, samples_or_df)
    validity = "valid" if "valid" in df.columns else "ok" if "ok" in df.columns else None
    if color == "valid" and validity is None:
        raise ValueError("color='valid' needs a 'valid' column (samples) or an 'ok' column (records)")
    by_value: Mapping[str, Any] = {}
    if color == "predicted":
        if "predicted" not in df.columns or not df["predicted"].notna().any():
            raise ValueError(
                "color='predicted' needs a 'predicted' column with the cost model's scores: "
                "call model.predict(samples) first"
            )
        weights = pd.to_numeric(df["predicted"], errors="coerce").to_numpy(dtype=float)
    elif color == "latency":
        measured = _frame(records, "records") if records is not None else df
        if "latency_s" not in measured.columns or "ok" not in measured.columns:
            raise ValueError(
                "color='latency' needs measured records (columns 'ok' and 'latency_s'): pass records=run.records"
            )
        by_value = _best_latency_by_value(measured)

    color_label = _COLOR_LABELS[color]
    n_valid = int(df[validity].astype(bool).sum()) if validity else None
    base = _DecisionDistributionsInfo(color, color_label, len(df), n_valid, (), None)
    if len(df) == 0:
        return base._replace(note="No samples to draw.")
    names = [c for c in df.columns if c not in _NOT_DECISIONS]
    if not names:
        return base._replace(note="These samples have no decisions (the space has no random variables).")
    valid = df[validity].astype(bool).to_numpy() if validity else None

    order = {m: k for k, m in enumerate(dict.fromkeys(modules.get(n) for n in names))}
    names.sort(key=lambda n: (modules.get(n) is None, order[modules.get(n)]))  # stable: column order per module
    panels = []
    for name in names:
        codes, uniques = _factorize(df[name])
        if len(uniques) == 0:
            continue
        present = codes >= 0
        c = codes[present]
        counts = np.bincount(c, minlength=len(uniques))
        valid_counts = np.bincount(c, weights=valid[present], minlength=len(uniques)) if valid is not None else None
        if color == "predicted":
            w = weights[present]
            has = ~np.isnan(w)
            sums = np.bincount(c[has], weights=w[has], minlength=len(uniques))
            n_has = np.bincount(c[has], minlength=len(uniques))
            per_value = [float(s / k) if k else None for s, k in zip(sums, n_has)]
        values = [_value(v) for v in uniques.tolist()]
        shown = _display_order(values, counts, max_values)
        if color == "predicted":
            color_values = tuple(per_value[i] for i in shown)
        elif color == "latency":
            lookup = by_value.get(name, {})
            color_values = tuple(lookup.get(values[i]) for i in shown)
        else:
            color_values = ()
        hidden = np.ones(len(values), dtype=bool)
        hidden[shown] = False
        panels.append(
            _DecisionBars(
                name=name,
                module=modules.get(name),
                values=tuple(values[i] for i in shown),
                labels=tuple(_label(name, values[i]) for i in shown),
                counts=tuple(int(counts[i]) for i in shown),
                valid=() if valid_counts is None else tuple(int(valid_counts[i]) for i in shown),
                color_values=color_values,
                hidden_values=int(hidden.sum()),
                hidden_count=int(counts[hidden].sum()),
                missing=int((~present).sum()),
            )
        )
    note = None
    if not panels:
        note = f"None of the {len(df)} samples has decisions"
        if n_valid == 0:
            errors = df["error"].dropna() if "error" in df.columns else ()
            note += ": all are invalid" + (f" (first error: {error_line(errors.iloc[0])})" if len(errors) else "")
        note += "."
    elif color == "latency" and not by_value:
        note = "No successful measurement to colour by."
    return base._replace(panels=tuple(panels), note=note)


def _frame(obj: Any, what: str) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        return obj
    for attr in ("df", "records"):  # a SampleSet, a SearchRun
        value = getattr(obj, attr, None)
        if isinstance(value, pd.DataFrame):
            return value
    raise TypeError(f"{what} must be a SampleSet, a run or a DataFrame, got {type(obj).__name__}")


def _modules(summary: Any, samples: Any) -> dict[str, str]:
    """Random-variable name -> module, from a summary frame, a mapping, or the sample set's space."""
    if summary is None:
        space = getattr(samples, "space", None)
        return {rv.name: rv.module for ds in getattr(space, "design_spaces", ()) for rv in ds.random_variables}
    if isinstance(summary, pd.DataFrame):
        missing = [c for c in ("name", "module") if c not in summary.columns]
        if missing:
            raise ValueError(f"summary must have columns 'name' and 'module' (space.summary()); missing {missing}")
        return dict(zip(summary["name"], summary["module"]))
    if isinstance(summary, Mapping):
        return {str(k): str(v) for k, v in summary.items()}
    raise TypeError(f"summary must be space.summary() or a {{name: module}} mapping, got {type(summary).__name__}")


def _factorize(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    try:
        return pd.factorize(column)
    except TypeError:  # tiles read back from JSON as lists: make them hashable
        return pd.factorize(column.map(lambda v: tuple(v) if isinstance(v, list) else v))


def _value(v: Any) -> Any:
    """A decision value as plain Python; an integer stored as float (a column with gaps) back to int."""
    v = plain_json(v)
    if isinstance(v, list):
        return tuple(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _display_order(values: list[Any], counts: np.ndarray, max_values: int) -> list[int]:
    """Indices of the values to draw: the most frequent ones; numbers in value order, tiles by count."""
    by_count = sorted(range(len(values)), key=lambda i: (-counts[i], _sort_key(values[i])))
    shown = by_count[:max_values]
    if all(isinstance(values[i], (int, float)) and not isinstance(values[i], bool) for i in shown):
        shown.sort(key=lambda i: values[i])
    return shown


def _sort_key(v: Any) -> tuple:
    return (0, v) if isinstance(v, (int, float, tuple)) else (1, str(v))


def _label(name: str, value: Any) -> str:
    if name.split("#")[0].endswith(".compute_location") and value in (-1, -2):
        return "root" if value == -1 else "inline"
    return value_label(value)


def _best_latency_by_value(records: pd.DataFrame) -> dict[str, dict[Any, float]]:
    """For each decision column of the records: value -> best (lowest) latency among successful candidates."""
    ok = records[records["ok"].astype(bool) & records["latency_s"].notna()]
    out: dict[str, dict[Any, float]] = {}
    if len(ok) == 0:
        return out
    latency = ok["latency_s"].to_numpy(dtype=float)
    for name in (c for c in records.columns if c not in _NOT_DECISIONS):
        codes, uniques = _factorize(ok[name])
        present = codes >= 0
        best = pd.Series(latency[present]).groupby(codes[present]).min()
        values = uniques.tolist()
        out[name] = {_value(values[code]): float(v) for code, v in best.items()}
    return out


# ---- drawing ------------------------------------------------------------------------------------------------


def _get_decision_distributions_plot(info: _DecisionDistributionsInfo) -> go.Figure:
    title = f"Decision distributions: {info.n_samples} sample{'s' if info.n_samples != 1 else ''}"
    if info.n_valid is not None:
        title += f", {info.n_valid} valid"
    if info.color != "valid":
        title += f" (colour: {info.color_label})"
    if not info.panels:
        return empty_figure(info.note or "Nothing to draw.", title=title)

    # The figure is built as one dict and validated once: plotly's per-call validation (make_subplots,
    # add_trace, update_layout) costs several times more than the data for a dozen panels.
    n = len(info.panels)
    cols = 1 if n == 1 else 2 if n <= 4 else 3
    rows = math.ceil(n / cols)
    height = 110 + 300 * rows
    data: list[dict[str, Any]] = []
    lay = layout(title, height=height, annotations=[], barmode="stack", bargap=0.15)
    for k, panel in enumerate(info.panels):
        row, col = divmod(k, cols)
        x_domain, y_domain = _cell(row, col, rows, cols, v_space=min(0.3, 95 / height))
        ax = "" if k == 0 else str(k + 1)
        for trace in _panel_traces(panel, info.color, first=(k == 0)):
            data.append({**trace, "xaxis": f"x{ax}", "yaxis": f"y{ax}"})
        lay[f"xaxis{ax}"] = {
            "domain": x_domain, "anchor": f"y{ax}", "type": "category", "categoryorder": "array",
            "categoryarray": list(panel.labels),
        }
        lay[f"yaxis{ax}"] = {
            "domain": y_domain, "anchor": f"x{ax}", "rangemode": "tozero",
            **({"title": {"text": "samples"}} if col == 0 else {}),
        }
        lay["annotations"].append({  # the subplot title
            "text": _panel_title(panel), "x": sum(x_domain) / 2, "y": y_domain[1], "xref": "paper", "yref": "paper",
            "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 12},
        })
    if info.note:
        lay["title"]["text"] += f"<br><sup>{info.note}</sup>"
    # The legend sits in the title's row, clear of the panels' titles.
    lay["legend"] = {"orientation": "h", "yref": "container", "y": 0.995, "yanchor": "top", "x": 1, "xanchor": "right"}
    if info.color != "valid":
        latency = info.color == "latency"
        shown = [v for panel in info.panels for v in panel.color_values if v is not None]
        lay["coloraxis"] = {
            # An explicit range: plotly.js widens a shared colour axis to +-0.5 around any panel with a single value
            # (a decision measured with one value only), which would paint every bar alike.
            **({"cmin": min(shown), "cmax": max(shown)} if shown else {}),
            "colorscale": COLORSCALE,
            "reversescale": latency,  # yellow = fast in both scales
            "colorbar": {
                "title": {"text": info.color_label},
                **({"tickformat": "~s", "ticksuffix": "s"} if latency else {}),
            },
        }
        lay["showlegend"] = True
    return figure(data, lay)


def _cell(row: int, col: int, rows: int, cols: int, *, v_space: float, h_space: float = 0.08) -> tuple[list, list]:
    """Paper-coordinate domains of one cell of a rows x cols grid (row 0 at the top)."""
    width = (1 - (cols - 1) * h_space) / cols
    height = (1 - (rows - 1) * v_space) / rows
    left = col * (width + h_space)
    top = 1 - row * (height + v_space)
    return [left, left + width], [max(0.0, top - height), top]


def _panel_title(panel: _DecisionBars) -> str:
    title = f"{panel.module} · {panel.name}" if panel.module else panel.name
    if panel.hidden_values:
        title += f" (+{panel.hidden_values} more values, {panel.hidden_count} samples)"
    return title


def _panel_traces(panel: _DecisionBars, color: str, *, first: bool) -> list[dict[str, Any]]:
    """Two stacked bar traces per panel, always: valid/invalid, or coloured/no-data."""
    data = [[panel.name, plain_json(v)] for v in panel.values]
    labels = list(panel.labels)
    if color == "valid":
        invalid = [c - v for c, v in zip(panel.counts, panel.valid)]
        custom = [d + [c] for d, c in zip(data, panel.counts)]
        hover = "<b>%{x}</b><br>%{y} %{meta} of %{customdata[2]}<extra>" + panel.name + "</extra>"
        return [
            {"type": "bar", "x": labels, "y": list(panel.valid), "name": "valid", "marker": {"color": VALID_COLOR},
             "customdata": custom, "meta": "valid", "hovertemplate": hover, "legendgroup": "valid",
             "showlegend": first},
            {"type": "bar", "x": labels, "y": invalid, "name": "invalid", "marker": {"color": INVALID_COLOR},
             "customdata": custom, "meta": "invalid", "hovertemplate": hover, "legendgroup": "invalid",
             "showlegend": first},
        ]
    has = [v is not None for v in panel.color_values]
    pick = lambda seq, want: [s for s, h in zip(seq, has) if h == want]  # noqa: E731
    fmt = "%{customdata[2]:.4g}" if color == "predicted" else "%{customdata[2]:.3s}s"
    what = "mean predicted" if color == "predicted" else "best latency"
    no_data = "no prediction" if color == "predicted" else "not measured"
    custom = [d + [cv] for d, cv in zip(data, panel.color_values)]
    return [
        {"type": "bar", "x": pick(labels, True), "y": pick(panel.counts, True), "customdata": pick(custom, True),
         "name": what, "marker": {"color": [v for v in panel.color_values if v is not None], "coloraxis": "coloraxis"},
         "hovertemplate": f"<b>%{{x}}</b><br>%{{y}} samples<br>{what} {fmt}<extra>{panel.name}</extra>",
         "showlegend": False},
        {"type": "bar", "x": pick(labels, False), "y": pick(panel.counts, False), "customdata": pick(custom, False),
         "name": no_data, "marker": {"color": NO_DATA_COLOR}, "legendgroup": "no-data", "showlegend": first,
         "hovertemplate": f"<b>%{{x}}</b><br>%{{y}} samples<br>{no_data}<extra>{panel.name}</extra>"},
    ]
