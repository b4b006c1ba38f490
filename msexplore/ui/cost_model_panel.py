"""CostModelPanel: fit the XGBoost cost model on a run's records, see how well it ranks, score new samples."""

from __future__ import annotations

import math
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..figures import plot_feature_importance, plot_predicted_vs_measured
from ._html import esc, note, table
from ._task_panel import TaskPanel, guarded, row

__all__ = ["CostModelPanel"]


class CostModelPanel(TaskPanel):
    """"Fit" trains ``mx.CostModel`` on the records (on a thread) and shows its held-out quality, predicted vs
    measured and feature importance; "Predict samples" scores a ``SampleSet`` (``samples.df["predicted"]``).

    Parameters
    ----------
    run_or_records
        A ``SearchRun`` (its records are read when "Fit" is pressed, so a running search gives its latest) or a
        records DataFrame (``run.records``, ``mx.read_records(folder)``).
    samples
        An ``mx.SampleSet`` of the same workload to score once the model is fitted.
    k
        The k of the top-k recall in the predicted-vs-measured figure.
    options
        Keywords of ``mx.CostModel`` (``seed``, ``num_threads``, ``failures``, XGBoost options).
    """

    def __init__(self, run_or_records: Any, samples: Any = None, *, k: int = 5, **options: Any) -> None:
        from ..cost_model import CostModel
        from ..sampling import SampleSet

        if not isinstance(run_or_records, pd.DataFrame) and not hasattr(run_or_records, "records"):
            raise TypeError(
                "CostModelPanel expects a SearchRun or a records DataFrame (run.records), "
                f"got {type(run_or_records).__name__}"
            )
        if samples is not None and not isinstance(samples, SampleSet):
            raise TypeError(f"samples must be an mx.SampleSet (space.sample(n)), got {type(samples).__name__}")
        super().__init__("msx-cost-model-panel")
        CostModel(**options)  # bad options fail here, not in the thread
        self.source = run_or_records
        self.samples = samples
        self.k = k
        self.options = options
        self.model: Any = None  # the fitted mx.CostModel
        self.quality: Any = None  # its mx.Quality on held-out records (None with too few records)
        self.predictions: np.ndarray | None = None  # scores of the samples
        self.figures: dict[str, go.FigureWidget] = {}

        self.fit_button = widgets.Button(description="Fit", icon="cogs", button_style="primary",
                                         tooltip="Train the XGBoost cost model on the records")
        self.predict_button = widgets.Button(description="Predict samples", icon="magic", disabled=True,
                                             tooltip="Score the samples with the fitted model")
        self.quality_view = widgets.HTML()
        self.figure_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.prediction_view = widgets.HTML()
        self.children = [
            self.stylesheet,
            row([self.fit_button, self.predict_button]),
            self.status_line,
            self.error_area,
            self.quality_view,
            self.figure_box,
            self.prediction_view,
        ]
        self.fit_button.on_click(self._on_fit)
        self.predict_button.on_click(self._on_predict)
        self.observe(self._on_busy, names=["busy"])
        self._on_busy({"new": False})

    def _records(self) -> pd.DataFrame:
        return self.source if isinstance(self.source, pd.DataFrame) else self.source.records

    # ---- fit ----
    @guarded
    def _on_fit(self, _button: Any = None) -> None:
        self._start("fitting", self._fit, self._fitted)

    def _fit(self) -> dict[str, Any]:
        from ..cost_model import CostModel

        records = self._records()
        model = CostModel(**self.options).fit(records)
        try:
            quality = model.quality(records)
        except ValueError as err:  # too few successful records to hold some out: say so, show in-sample
            quality, why = None, str(err)
        else:
            why = ""
        if quality is not None:
            held_out = pd.DataFrame({"trial": quality.test_trials, "latency_s": quality.latency_s, "ok": True})
            scatter = plot_predicted_vs_measured(list(quality.predicted), held_out, k=self.k)
        else:
            scatter = plot_predicted_vs_measured(model.predict(records), records, k=self.k)
        importance = plot_feature_importance(model.feature_importance())
        return {"model": model, "quality": quality, "why": why, "records": len(records), "scatter": scatter,
                "importance": importance}

    def _fitted(self, result: dict[str, Any]) -> None:
        self.model, self.quality = result["model"], result["quality"]
        self.quality_view.value = _quality_html(self.model, self.quality, result["why"])
        old = list(self.figures.values())
        self.figures = {name: go.FigureWidget(result[name]) for name in ("scatter", "importance")}
        self.figure_box.children = list(self.figures.values())
        for figure in old:
            figure.close()
        self._say(f"Fitted on {self.model.n_records} of {result['records']} records.", kind="ok")

    # ---- predict ----
    @guarded
    def _on_predict(self, _button: Any = None) -> None:
        if self.model is None:
            raise ValueError("fit the model first")
        if self.samples is None:
            raise ValueError("this panel has no samples; make it with CostModelPanel(run, samples=space.sample(n))")
        self._start("predicting", lambda: self.model.predict(self.samples), self._predicted)

    def _predicted(self, scores: np.ndarray) -> None:
        self.predictions = scores
        self.prediction_view.value = _predictions_html(self.samples, scores)
        scored = int(np.isfinite(scores).sum())
        self._say(f"Scored {scored} of {len(scores)} samples (samples.df['predicted']).", kind="ok")

    @guarded
    def _on_busy(self, change: dict) -> None:
        self.fit_button.disabled = change["new"]
        self.predict_button.disabled = change["new"] or self.model is None or self.samples is None


def _quality_html(model: Any, quality: Any, why: str) -> str:
    head = f'<div class="msx-section-title">{esc(repr(model))}</div>'
    if quality is None:
        return head + note(f"No held-out quality: {why}. The figure shows in-sample predictions.")
    rows = [["Spearman (held out)", _num(quality.spearman)]]
    for k, value in quality.top_k_recall.items():
        label = f"top-{k}" if isinstance(k, int) else f"top-{k:.0%}"
        if math.isnan(value):
            text = f"n/a (only {quality.n_test} records held out)"
        else:
            text = f"{_num(value)} (random {_num(quality.random_top_k_recall[k])})"
        rows.append([f"{label} recall", text])
    rows.append(["records", f"{quality.n_train} trained on, {quality.n_test} held out, {quality.n_failed} failed"])
    return head + table(rows, ["quality", "value"]) + note(
        "The figure shows the held-out records, scored by a model fitted on the others."
    )


def _predictions_html(samples: Any, scores: np.ndarray, k: int = 5) -> str:
    order = [int(i) for i in np.argsort(-np.nan_to_num(scores, nan=-np.inf)) if np.isfinite(scores[i])][:k]
    invalid = int((~np.isfinite(scores)).sum())
    rows = [[samples[i].id, f"{scores[i]:.4g}"] for i in order]
    text = f'<div class="msx-section-title">Samples predicted fastest ({len(scores)} scored'
    text += f", {invalid} without a program)" if invalid else ")"
    return text + "</div>" + table(rows, ["sample", "predicted score"], numeric=("sample", "predicted score"))


def _num(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"
