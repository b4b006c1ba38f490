"""The estimated model latency of a model run: extraction by exact equality, drawing, and the in-place redraw."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import msexplore.figures
from msexplore.figures import plot_model_latency, update_model_latency
from msexplore.figures._model import TRACE_ORDER, _get_model_latency_info, _ModelLatencyInfo


def serializes(fig) -> dict:
    """The figure as the JSON a notebook saves (and the dict plotly.js gets)."""
    return json.loads(fig.to_json())


def notes(fig) -> str:
    """The title and the annotations a reader sees."""
    layout = fig.to_plotly_json()["layout"]
    shown = [a["text"] for a in layout.get("annotations", ()) if a.get("visible", True)]
    return " ".join([layout.get("title", {}).get("text", ""), *shown])


@pytest.fixture
def history() -> pd.DataFrame:
    """Four batches, as ``run.latency_history`` gives them: the first before the second task had an estimate."""
    return pd.DataFrame(
        [(1.5, 4, None), (3.0, 8, 2e-4), (6.25, 12, 1.5e-4), (9.0, 16, 1.25e-4)],
        columns=["time_s", "trials", "estimated_latency_s"],
    )


def test_info_is_one_point_per_batch_in_milliseconds(history):
    assert _get_model_latency_info(history) == _ModelLatencyInfo(
        x="trials",
        trials=(4, 8, 12, 16),
        time_s=(1.5, 3.0, 6.25, 9.0),
        latency_s=(None, 2e-4, 1.5e-4, 1.25e-4),
        latest_s=1.25e-4,
        first_s=2e-4,
        note=None,
    )
    assert _get_model_latency_info(history, x="time").x == "time"


def test_info_without_data_says_why(history):
    empty = _get_model_latency_info(history.iloc[:0])
    assert empty == _ModelLatencyInfo("trials", (), (), (), None, None,
                                      "No batch measured yet: the estimate appears after each measured batch.")
    waiting = _get_model_latency_info(history.iloc[:1])
    assert waiting == _ModelLatencyInfo(
        "trials", (4,), (1.5,), (None,), None, None,
        "No estimate yet (1 batch measured): the model latency is estimated once every task has a verified schedule.",
    )
    for frame in (history.iloc[:0], history.iloc[:1]):
        assert "No " in notes(plot_model_latency(frame))  # a note, not a traceback
        assert "none yet" in notes(plot_model_latency(frame))


def test_figure_serializes_with_a_point_per_batch_and_gaps_before_the_first_estimate(history):
    for x in ("trials", "time"):
        fig = plot_model_latency(history, x=x)
        data = serializes(fig)["data"]
        assert len(data) == len(TRACE_ORDER)
        assert [d["visible"] for d in data] == [x == "trials", x == "time"]
        assert list(fig.data[0].x) == [4, 8, 12, 16] and list(fig.data[1].x) == [1.5, 3.0, 6.25, 9.0]
        for trace in fig.data:
            assert np.isnan(trace.y[0]) and list(trace.y[1:]) == [2e-4, 1.5e-4, 1.25e-4]  # NaN: a gap, still a point
    title = "Estimated model latency: 125 µs after 16 trials (first estimate 200 µs)"
    assert notes(plot_model_latency(history)) == title
    assert notes(plot_model_latency(history.assign(estimated_latency_s=history["estimated_latency_s"] * 1e2))) == (
        "Estimated model latency: 12.5 ms after 16 trials (first estimate 20 ms)")
    assert serializes(plot_model_latency(history))["layout"]["yaxis"]["ticksuffix"] == "s"  # SI prefixes: µs, ms


def test_update_in_place_equals_a_fresh_figure(history):
    for x in ("trials", "time"):
        fig = plot_model_latency(history.iloc[:0], x=x)
        for n in (1, 2, 4, 0):
            update_model_latency(fig, history.iloc[:n])
            assert serializes(fig) == serializes(plot_model_latency(history.iloc[:n], x=x)), (x, n)
    fig = go.FigureWidget(plot_model_latency(history.iloc[:0]))  # what the dashboard holds
    update_model_latency(fig, history)
    assert serializes(fig) == serializes(plot_model_latency(history))


def test_bad_arguments_say_what_is_accepted(history):
    with pytest.raises(ValueError, match=r"x must be one of \['trials', 'time'\], got 'trial'"):
        plot_model_latency(history, x="trial")
    with pytest.raises(ValueError, match=r"missing \['estimated_latency_s'\]"):
        plot_model_latency(history.drop(columns=["estimated_latency_s"]))
    with pytest.raises(TypeError, match="run.latency_history"):
        plot_model_latency([1, 2, 3])
    with pytest.raises(ValueError, match="made by plot_model_latency"):
        update_model_latency(go.Figure(go.Scatter(y=[1, 2])), history)


def test_public_names_only():
    assert {"plot_model_latency", "update_model_latency"} <= set(msexplore.figures.__all__)
    assert not [n for n in msexplore.figures.__all__ if n.startswith("_")]
