"""Figures: pure functions from data (sample sets, records, summaries) to plotly figures.

Each ``plot_x`` is an extractor ``_get_x_info`` (plain, comparable data, private to its module) followed by a
renderer. No widgets, no kernel needed: a figure saved in a notebook or written with ``fig.write_html`` draws by
itself. A live widget redraws the search progress and a model's estimated latency in place with
``update_search_progress`` and ``update_model_latency``, and labels values the way the figures do with
``value_label`` and ``format_count``.
"""

from ._common import format_count, value_label
from ._cost_model import plot_feature_importance, plot_predicted_vs_measured
from ._decisions import plot_decision_distributions
from ._model import plot_model_latency, update_model_latency
from ._progress import METRICS as PROGRESS_METRICS
from ._progress import TRACE_ORDER as PROGRESS_TRACE_ORDER
from ._progress import XS as PROGRESS_XS
from ._progress import plot_search_progress, update_search_progress
from ._space import plot_space_summary

__all__ = [
    "PROGRESS_METRICS",
    "PROGRESS_TRACE_ORDER",
    "PROGRESS_XS",
    "format_count",
    "plot_decision_distributions",
    "plot_feature_importance",
    "plot_model_latency",
    "plot_predicted_vs_measured",
    "plot_search_progress",
    "plot_space_summary",
    "update_model_latency",
    "update_search_progress",
    "value_label",
]
