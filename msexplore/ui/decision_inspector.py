"""DecisionInspector: the distribution of every decision across samples; click a bar to filter the samples.

>>> mx.ui.DecisionInspector(samples)                                  # coloured by validity
>>> mx.ui.DecisionInspector(samples, model=model, records=run.records)  # also by predicted score, by latency

The figure is ``mx.figures.plot_decision_distributions`` in a plotly ``FigureWidget``; each bar's customdata
holds ``[decision name, value, ...]``, so a click knows what to filter on. Clicking a bar adds ``name == value``
to ``filter`` (clicking it again removes it); the table below shows ``filtered``, the samples that match all.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from traitlets import Dict, TraitError, Unicode, observe, validate

from ..figures import plot_decision_distributions, value_label
from ._html import esc
from ._task_panel import TaskPanel, guarded, row
from .sample_table import SampleTable

__all__ = ["DecisionInspector"]

_COLOR_LABELS = {"valid": "validity", "predicted": "predicted score", "latency": "measured latency"}


class DecisionInspector(TaskPanel):
    """Decision distributions (plotly) over a sample table; a bar click filters the table.

    Parameters
    ----------
    samples
        An ``mx.SampleSet`` (or its ``df``, or a run's records DataFrame).
    records
        Measured records (``run.records``) of the same space: enables colouring by best latency per value.
    model
        A fitted ``mx.CostModel``: the samples are scored on a thread (``samples.df["predicted"]``), which
        enables colouring by predicted score.
    max_values
        The most values drawn per decision (the most frequent).
    """

    filter = Dict(help="the active filter {decision name: value} (tiles as tuples); a bar click toggles one")
    color = Unicode("valid", help="what colours the bars: 'valid', 'predicted' or 'latency'")

    def __init__(self, samples: Any, *, records: pd.DataFrame | None = None, model: Any = None,
                 max_values: int = 20) -> None:
        from ..sampling import SampleSet

        if not isinstance(samples, (SampleSet, pd.DataFrame)):
            raise TypeError(f"DecisionInspector shows an mx.SampleSet or a DataFrame, got {type(samples).__name__}")
        if records is not None and not isinstance(records, pd.DataFrame):
            raise TypeError(f"records must be a records DataFrame (run.records), got {type(records).__name__}")
        if model is not None and not getattr(model, "fitted", False):
            raise ValueError("model must be a fitted mx.CostModel (model.fit(run.records)), or None")
        if model is not None and not isinstance(samples, SampleSet):
            raise ValueError("model= scores an mx.SampleSet; pass the SampleSet rather than a DataFrame")
        super().__init__("msx-decision-inspector")
        self.samples, self.records, self.model, self.max_values = samples, records, model, max_values
        self.figure: go.FigureWidget | None = None
        self.color_toggle = widgets.ToggleButtons(description="colour by", style={"button_width": "auto"})
        self.clear_button = widgets.Button(description="Clear filter", icon="times", disabled=True)
        self.figure_box = widgets.VBox()
        self.filter_label = widgets.HTML()
        self.table = SampleTable(self.df)
        self.children = [
            self.stylesheet,
            row([self.color_toggle, self.clear_button]),
            self.status_line,
            self.error_area,
            self.figure_box,
            self.filter_label,
            self.table,
        ]
        self._update_color_options()
        self.color_toggle.observe(self._on_toggle, names=["value"])
        self.clear_button.on_click(self._on_clear)
        self._draw()
        self._apply_filter()
        if model is not None:
            self._start("scoring the samples", lambda: model.predict(samples), lambda _: self._scored())

    @property
    def df(self) -> pd.DataFrame:
        """All the samples as a DataFrame."""
        return self.samples if isinstance(self.samples, pd.DataFrame) else self.samples.df

    @property
    def filtered(self) -> pd.DataFrame:
        """The samples whose decisions match every ``filter`` entry (all of them without a filter)."""
        df = self.df
        mask = pd.Series(True, index=df.index)
        for name, value in self.filter.items():
            if name not in df.columns:
                return df.iloc[0:0]
            mask &= df[name].map(lambda v, want=value: _normalize(v) == want).astype(bool)
        return df[mask]

    def click(self, name: str, value: Any) -> None:
        """What clicking the bar of ``name == value`` does: toggle it in the filter."""
        value = _normalize(value)
        current = dict(self.filter)
        if name in current and current[name] == value:
            del current[name]
        else:
            current[name] = value
        self.filter = current

    # ---- drawing ----
    def _color_options(self) -> list[tuple[str, str]]:
        df = self.df
        options = []
        if "valid" in df.columns or "ok" in df.columns:
            options.append("valid")
        if "predicted" in df.columns and df["predicted"].notna().any():
            options.append("predicted")
        measured = self.records if self.records is not None else df
        if {"ok", "latency_s"} <= set(measured.columns):
            options.append("latency")
        return [(_COLOR_LABELS[c], c) for c in options]

    def _update_color_options(self) -> None:
        options = self._color_options()
        self.color_toggle.options = options
        values = [v for _, v in options]
        if values and self.color not in values:
            self.color = values[0]
        if values:
            self.color_toggle.value = self.color
        self.color_toggle.layout.display = None if len(values) > 1 else "none"

    @guarded
    def _draw(self) -> None:
        fig = plot_decision_distributions(self.samples, color=self.color, records=self.records,
                                          max_values=self.max_values)
        widget = go.FigureWidget(fig)
        for trace in widget.data:
            if trace.type == "bar":
                trace.on_click(self._on_bar_click)
        self.figure = widget
        self.figure_box.children = [widget]
        self._mark_bars()
        self._static_changed()

    def _mark_bars(self) -> None:
        """Outline the bars of the filter's values."""
        if self.figure is None:
            return
        with self.figure.batch_update():
            for trace in self.figure.data:
                if trace.type != "bar" or trace.customdata is None:
                    continue
                widths = [2.5 if self.filter.get(str(d[0]), _MISSING) == _normalize(d[1]) else 0
                          for d in trace.customdata]
                trace.marker.line.width = widths
                trace.marker.line.color = "#222222"

    # ---- handlers ----
    def _on_bar_click(self, trace: Any, points: Any, state: Any) -> None:
        self._bar_clicked(trace, list(points.point_inds))

    @guarded
    def _bar_clicked(self, trace: Any, indices: list[int]) -> None:
        if not indices or trace.customdata is None:
            return
        data = trace.customdata[indices[0]]
        self.click(str(data[0]), data[1])

    @observe("filter")
    def _on_filter(self, change: Any) -> None:
        self._apply_filter()

    @guarded
    def _apply_filter(self) -> None:
        filtered = self.filtered
        self.table.df = filtered
        self.clear_button.disabled = not self.filter
        n, total = len(filtered), len(self.df)
        if self.filter:
            terms = " and ".join(f"<b>{esc(k)}</b> = {esc(_text(v))}" for k, v in self.filter.items())
            self.filter_label.value = f"{n} of {total} samples with {terms} (click the bar again to remove it)"
        else:
            self.filter_label.value = f"All {total} samples. Click a bar to keep only the samples with that value."
        self.table.caption = ""
        self._mark_bars()
        self._static_changed()

    @validate("color")
    def _check_color(self, proposal: Any) -> str:
        if proposal["value"] not in _COLOR_LABELS:
            raise TraitError(f"color must be one of {list(_COLOR_LABELS)}, got {proposal['value']!r}")
        return proposal["value"]

    @observe("color")
    def _on_color(self, change: Any) -> None:
        if self.color_toggle.value != self.color and any(v == self.color for _, v in self.color_toggle.options):
            self.color_toggle.value = self.color
        self._draw()

    def _on_toggle(self, change: Any) -> None:
        if change["new"] is not None:
            self.color = change["new"]

    @guarded
    def _on_clear(self, _button: Any = None) -> None:
        self.filter = {}

    def _scored(self) -> None:
        self._update_color_options()
        self._apply_filter()  # the table gains the predicted column
        self._say("Samples scored by the cost model: colour by predicted score is available.", kind="ok")


_MISSING = object()


def _normalize(value: Any) -> Any:
    """A decision value as the figure's customdata and the frame hold it, comparable: tiles as int tuples."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_normalize(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _text(value: Any) -> str:
    return value_label(value)
