"""TraceExplorer at model level, on a real space: sample on a thread, select, sort, edit and replay, diff, measure."""

from __future__ import annotations

import json
import threading
import time

import pandas as pd
import pytest

import msexplore as mx
from msexplore.cost_model import CostModel
from msexplore.tir_map import instruction_lines
from msexplore.traces import trace_to_json
from msexplore.ui import _decision_editor
from msexplore.ui.sample_table import SampleTable
from msexplore.ui.trace_explorer import TraceExplorer
from msexplore.widgets import asset

TILE = "Z.tile_i"  # a 4-factor tile of a 32-long loop: 20 legal values in every design space


@pytest.fixture(scope="module")
def space(target):
    return mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=["default"], target=target)


@pytest.fixture(scope="module")
def samples(space):
    return space.sample(8, seed=0)


@pytest.fixture
def explorer(space, samples):
    panel = TraceExplorer(space, samples=samples)
    assert panel.error_text == ""
    return panel


def _other_value(space, sample, name=TILE):
    rv = space.design_spaces[sample.design_space].by_name()[name]
    return next(tuple(v) for v in rv.domain if tuple(v) != tuple(sample.decisions[name]))


def fake_records(samples) -> pd.DataFrame:
    """Records as a search writes them, with made-up latencies: enough for a real CostModel fit."""
    rows = [
        {"trial": k, "ok": True, "latency_s": 1e-5 * (1 + s.decisions[TILE][-1]), "trace": trace_to_json(s.trace),
         **s.decisions}
        for k, s in enumerate(samples) if s.valid
    ]
    df = pd.DataFrame(rows)
    df.attrs["workload"], df.attrs["target"] = samples.space.workload.to_json(), str(samples.space.target)
    return df


def test_table_asset_and_top_level_class(explorer):
    assert SampleTable()._esm == asset("sample_table.js").read_text(encoding="utf-8")
    assert SampleTable()._css == asset("sample_table.css").read_text(encoding="utf-8")
    assert "msx-trace-explorer" in explorer._dom_classes
    assert "msx-sample-table" in explorer.table._dom_classes


def test_sampling_runs_on_a_thread_with_progress(space, monkeypatch):
    started, release, seen = threading.Event(), threading.Event(), {}
    real = space.sample

    def slow_sample(n, *, seed=0, threads=None):
        seen["thread"] = threading.current_thread()
        started.set()
        assert release.wait(60)
        return real(n, seed=seed)

    monkeypatch.setattr(space, "sample", slow_sample)
    panel = TraceExplorer(space, n=5, seed=3)  # returns while the draw is still running
    assert started.wait(30)
    assert panel.busy and seen["thread"] is not threading.main_thread()  # the kernel stays free
    assert panel.progress.layout.visibility == "visible" and panel.sample_button.disabled
    assert "Sampling 5 traces (seed 3)" in panel.status_line.value
    release.set()
    panel.wait(120)
    assert not panel.busy and panel.error_text == ""
    assert panel.progress.layout.visibility == "hidden"
    expected = real(5, seed=3)
    assert panel.table.row_keys == [0, 1, 2, 3, 4]
    assert [s.decisions for s in panel.samples] == [s.decisions for s in expected]
    assert panel.selected == [next(k for k, s in enumerate(expected) if s.valid)]
    # the fields drive the next draw
    panel.n_input.value, panel.seed_input.value = 3, 7
    panel.sample_button.click()
    panel.wait(120)
    assert len(panel.samples) == 3 and panel.samples.seed == 7


def test_selecting_a_row_shows_its_tir_trace_and_decisions(explorer, samples):
    explorer.table.selected = [3]  # the browser's row click
    s = samples[3]
    assert explorer.selected == [3]
    assert explorer.code.code == s.tir and explorer.code.trace == s.python()
    assert explorer.code.line_map == {str(k): v for k, v in instruction_lines(s).items()}
    assert explorer.decisions == {k: list(v) if isinstance(v, tuple) else v for k, v in s.decisions.items()}
    assert explorer.editor.editors[TILE].value == s.decisions[TILE]
    assert "sample 3" in explorer.info.value


def test_header_click_sorts_rows_missing_values_last(explorer, samples):
    explorer.table.sort_by = TILE
    expected = sorted(range(len(samples)), key=lambda k: samples[k].decisions[TILE])
    assert explorer.table.displayed_keys == expected
    explorer.table.sort_ascending = False
    assert explorer.table.displayed_keys == sorted(
        range(len(samples)), key=lambda k: samples[k].decisions[TILE], reverse=True
    )
    table = SampleTable(pd.DataFrame({"x": [2.0, None, 1.0]}))
    table.sort_by, table.sort_ascending = "x", False
    assert table.displayed_keys == [0, 2, 1]


def test_editing_a_decision_replays_and_undo_restores(explorer, space, samples):
    explorer.table.selected = [2]
    s = samples[2]
    new = _other_value(space, s)
    explorer.editor.edit(TILE, new)  # the dropdown's value, as the browser sets it
    expected = s.with_decisions({TILE: new})
    assert explorer.error_text == ""
    assert explorer.decisions[TILE] == list(new)
    assert explorer.code.code == expected.tir != s.tir
    assert explorer.shown.edited == (TILE,) and "edited Z.tile_i" in explorer.info.value
    assert not explorer.reset_button.disabled
    explorer.reset_button.click()
    assert explorer.code.code == s.tir and explorer.decisions[TILE] == list(s.decisions[TILE])
    assert explorer.editor.editors[TILE].value == s.decisions[TILE]


def test_illegal_value_shows_an_error_and_keeps_the_state(explorer, samples):
    explorer.table.selected = [1]
    before_code, before_decisions = explorer.code.code, dict(explorer.decisions)
    explorer.edit(TILE, (3, 5, 7, 11))
    assert "not a legal tiling" in explorer.error_text
    assert "not a legal tiling" in explorer.error_area.value  # visible in the panel
    assert explorer.code.code == before_code and explorer.decisions == before_decisions
    assert explorer.editor.editors[TILE].value == samples[1].decisions[TILE]


def test_long_domains_get_a_text_field_checked_by_the_replay(space, samples, monkeypatch):
    monkeypatch.setattr(_decision_editor, "MAX_DROPDOWN", 1)  # every domain is "long" now
    panel = TraceExplorer(space, samples=samples)
    panel.table.selected = [0]
    s = samples[0]
    editor = panel.editor.editors[TILE]
    assert editor.value == "×".join(map(str, s.decisions[TILE]))
    editor.value = "three, five"  # what a person types
    assert "integer factors" in panel.error_text and panel.code.code == s.tir
    assert editor.value == "×".join(map(str, s.decisions[TILE]))  # back to the value shown
    new = _other_value(space, s)
    editor.value = ", ".join(map(str, new))
    assert panel.error_text == "" and panel.decisions[TILE] == list(new)
    assert panel.code.code == s.with_decisions({TILE: new}).tir


def test_two_selected_rows_show_their_diff(explorer, samples):
    explorer.table.selected = [1, 2]  # a ctrl-click on a second row
    d = mx.diff(samples[1], samples[2])
    assert explorer.code.mode == "diff" and explorer.code.code == d.tir and explorer.code.trace == ""
    for row in d.decisions.itertuples(index=False):
        assert row.name in explorer.diff_view.value
    assert explorer.editor.layout.display == "none" and explorer.measure_button.disabled
    explorer.table.selected = [2]
    assert explorer.code.mode == "code" and explorer.code.code == samples[2].tir


def test_model_scores_the_table_and_each_edit(space):
    model = CostModel().fit(fake_records(space.sample(12, seed=4)))
    fresh = space.sample(6, seed=5)
    panel = TraceExplorer(space, samples=fresh, model=model)
    panel.wait(120)
    assert panel.error_text == ""
    assert "predicted" in panel.table.columns and fresh.df["predicted"].notna().all()
    s = panel.shown
    assert panel.predicted == pytest.approx(model.predict([s.schedule])[0])
    new = _other_value(space, s)
    panel.edit(TILE, new)
    edited = s.with_decisions({TILE: new})
    assert panel.predicted == pytest.approx(model.predict([edited.schedule])[0])
    assert f"{panel.predicted:.4g}" in panel.info.value


def test_bad_arguments(space, samples):
    with pytest.raises(TypeError, match="mx.Space"):
        TraceExplorer("GMM")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        TraceExplorer(space, n=0)
    with pytest.raises(ValueError, match="fitted mx.CostModel"):
        TraceExplorer(space, samples=samples, model=CostModel())


@pytest.mark.slow
def test_measure_this_one_runs_on_a_thread_and_shows_the_latency(explorer, samples):
    explorer.table.selected = [0]
    start = time.perf_counter()
    assert explorer.measure_button.disabled is False
    explorer.measure_button.click()
    assert time.perf_counter() - start < 5 and explorer.busy  # returned at once; the build runs on the thread
    explorer.wait(240)
    m = explorer.measurement
    assert m is not None and m.ok, explorer.measurement_text
    assert explorer.measurement_text.startswith("sample 0: ") and "GFLOPS" in explorer.measurement_text
    assert explorer.measurement_text in explorer.measure_result.value.replace("&#x27;", "'")


def _widget_tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _widget_tree(child)


def test_every_widget_state_serializes_for_the_browser(explorer):
    explorer.table.selected = [0, 1]
    explorer.table.selected = [0]
    for widget in _widget_tree(explorer):
        json.dumps(widget.get_state())  # what the comm sends when the panel is displayed
    assert explorer.table in list(_widget_tree(explorer)) and explorer.code in list(_widget_tree(explorer))
