"""Figures: pure functions from data (sample sets, records, summaries) to plotly figures.

Each ``plot_x`` is an extractor ``_get_x_info`` (plain, comparable data) followed by a renderer; the extractors
are importable here for tests and for live widgets that redraw in place. No widgets, no kernel needed: a figure
saved in a notebook or written with ``fig.write_html`` draws by itself.
"""

from ._cost_model import (
    _get_feature_importance_info,
    _get_predicted_vs_measured_info,
    plot_feature_importance,
    plot_predicted_vs_measured,
)
from ._decisions import _get_decision_distributions_info, plot_decision_distributions
from ._progress import TRACE_ORDER as PROGRESS_TRACE_ORDER
from ._progress import _get_search_progress_info, _search_progress_trace_data, plot_search_progress
from ._space import _get_space_summary_info, plot_space_summary

__all__ = [
    "PROGRESS_TRACE_ORDER",
    "plot_decision_distributions",
    "plot_feature_importance",
    "plot_predicted_vs_measured",
    "plot_search_progress",
    "plot_space_summary",
]
