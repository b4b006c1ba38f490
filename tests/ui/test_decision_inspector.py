"""DecisionInspector at model level: bar clicks (through plotly's own click dispatch) filter the sample table."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.callbacks import InputDeviceState, Points

import msexplore as mx
from msexplore.cost_model import CostModel
from msexplore.traces import trace_to_json
from msexplore.ui.decision_inspector import DecisionInspector

TILE = "Z.tile_i"


@pytest.fixture(scope="module")
def space(target):
    return mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=["default"], target=target)


@pytest.fixture(scope="module")
def samples(space):
    return space.sample(12, seed=2)


def fake_records(samples) -> pd.DataFrame:
    """Records as a search writes them, with made-up latencies (the latency colouring only reads them)."""
    rows = [
        {"trial": k, "ok": True, "latency_s": 1e-5 * (1 + s.decisions[TILE][-1]), "trace": trace_to_json(s.trace),
         **s.decisions}
        for k, s in enumerate(samples) if s.valid
    ]
    df = pd.DataFrame(rows)
    df.attrs["workload"], df.attrs["target"] = samples.space.workload.to_json(), str(samples.space.target)
    return df


def _bars(inspector, name):
    """(trace, point index, value, count) of every drawn bar of decision ``name``."""
    out = []
    for trace in inspector.figure.data:
        for i, data in enumerate(trace.customdata or ()):
            if data[0] == name:
                out.append((trace, i, tuple(data[1]) if isinstance(data[1], list) else data[1], trace.y[i]))
    return out


def _click(trace, index):
    """What plotly.js reports for a click on one bar, through the FigureWidget's own dispatch."""
    trace._dispatch_on_click(
        Points(point_inds=[index], xs=[trace.x[index]], ys=[trace.y[index]], trace_name=trace.name, trace_index=0),
        InputDeviceState(),
    )


def test_figure_widget_top_level_class_and_colour_options(samples):
    inspector = DecisionInspector(samples)
    assert "msx-decision-inspector" in inspector._dom_classes
    assert isinstance(inspector.figure, go.FigureWidget) and inspector.figure in inspector.figure_box.children
    assert [v for _, v in inspector.color_toggle.options] == ["valid"]  # no model, no records: validity only
    assert inspector.error_text == ""
    assert len(inspector.filtered) == len(samples) and inspector.table.row_keys == list(range(len(samples)))


def test_clicking_a_bar_filters_the_table_to_exactly_those_samples(samples):
    inspector = DecisionInspector(samples)
    bars = [b for b in _bars(inspector, TILE) if b[3] > 0]
    trace, index, value, _ = bars[0]
    _click(trace, index)
    expected = [k for k, s in enumerate(samples) if s.decisions[TILE] == value]
    assert inspector.filter == {TILE: value}
    assert list(inspector.filtered.index) == expected
    assert inspector.table.row_keys == expected and len(expected) == sum(b[3] for b in _bars(inspector, TILE)
                                                                     if b[2] == value)
    assert f"{len(expected)} of {len(samples)} samples" in inspector.filter_label.value
    assert trace.marker.line.width[index] > 0  # the bar is outlined
    # a second decision narrows it down (AND); clicking a bar again removes its term
    other_trace, other_index, other_value, _ = [b for b in _bars(inspector, "Z.tile_j") if b[3] > 0][0]
    _click(other_trace, other_index)
    both = [k for k in expected if samples[k].decisions["Z.tile_j"] == other_value]
    assert list(inspector.filtered.index) == both == inspector.table.row_keys
    _click(trace, index)
    assert inspector.filter == {"Z.tile_j": other_value}
    inspector.clear_button.click()
    assert inspector.filter == {} and inspector.table.row_keys == list(range(len(samples)))


def test_records_enable_latency_colour_and_errors_are_shown(samples):
    records = fake_records(samples)
    inspector = DecisionInspector(samples, records=records)
    assert [v for _, v in inspector.color_toggle.options] == ["valid", "latency"]
    inspector.color_toggle.value = "latency"  # the toggle click
    assert inspector.color == "latency" and inspector.error_text == ""
    assert "best measured latency" in inspector.figure.layout.title.text
    plain = DecisionInspector(samples)
    plain.color = "latency"  # nothing measured: the figure builder refuses, the panel says why
    assert "records" in plain.error_text and "records" in plain.error_area.value


def test_model_scores_samples_on_a_thread_then_offers_predicted(space):
    model = CostModel().fit(fake_records(space.sample(12, seed=4)))
    fresh = space.sample(8, seed=6)
    inspector = DecisionInspector(fresh, model=model)
    inspector.wait(120)
    assert inspector.error_text == ""
    assert [v for _, v in inspector.color_toggle.options] == ["valid", "predicted"]
    assert "predicted" in inspector.table.columns
    inspector.color = "predicted"
    assert "mean predicted score" in inspector.figure.layout.title.text
    # clicks still filter after a redraw (the new figure's bars carry the handler)
    trace, index, value, _ = [b for b in _bars(inspector, TILE) if b[3] > 0][0]
    _click(trace, index)
    assert list(inspector.filtered.index) == [k for k, s in enumerate(fresh) if s.decisions[TILE] == value]


def test_bad_arguments(samples):
    with pytest.raises(TypeError, match="SampleSet or a DataFrame"):
        DecisionInspector([1, 2])
    with pytest.raises(ValueError, match="fitted mx.CostModel"):
        DecisionInspector(samples, model=CostModel())


def test_unknown_colour_is_refused(samples):
    from traitlets import TraitError

    with pytest.raises(TraitError, match="'valid', 'predicted', 'latency'"):
        DecisionInspector(samples).color = "speed"


def test_every_widget_state_serializes_for_the_browser(samples):
    import json

    def tree(widget):
        yield widget
        for child in getattr(widget, "children", ()):
            yield from tree(child)

    inspector = DecisionInspector(samples)
    trace, index, _, _ = [b for b in _bars(inspector, TILE) if b[3] > 0][0]
    _click(trace, index)
    widgets = list(tree(inspector))
    assert inspector.table in widgets and inspector.figure in widgets
    for widget in widgets:
        json.dumps(widget.get_state(), default=_plotly_json)  # what the comm sends when the panel is displayed


def _plotly_json(value):
    import numpy as np

    if isinstance(value, np.ndarray):  # a FigureWidget's state holds numpy arrays, sent as lists
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not serializable")
