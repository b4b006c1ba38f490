"""Figures: the extractors give exact plain data; every figure serializes, odd data draws a note, bad args raise."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import msexplore.figures
from msexplore.figures import (
    PROGRESS_TRACE_ORDER,
    format_count,
    plot_decision_distributions,
    plot_feature_importance,
    plot_predicted_vs_measured,
    plot_search_progress,
    plot_space_summary,
    update_search_progress,
    value_label,
)

# The extractors and their infos are private to each figure's module; tests assert them exactly (Optuna's way).
from msexplore.figures._common import error_line
from msexplore.figures._cost_model import (
    _FeatureImportanceInfo,
    _get_feature_importance_info,
    _get_predicted_vs_measured_info,
)
from msexplore.figures._decisions import _DecisionBars, _get_decision_distributions_info
from msexplore.figures._progress import (
    _BestSoFar,
    _Candidates,
    _Failures,
    _get_search_progress_info,
    _search_progress_trace_data,
)
from msexplore.figures._space import _get_space_summary_info, _SpaceSummaryInfo
from msexplore.search.events import COLUMNS


def serializes(fig) -> dict:
    """The figure as the JSON a notebook saves (and the dict plotly.js gets)."""
    return json.loads(fig.to_json())


def notes(fig) -> str:
    """Everything a reader sees as text besides the data: title and annotations."""
    layout = fig.to_plotly_json()["layout"]
    return " ".join([layout.get("title", {}).get("text", "")] + [a["text"] for a in layout.get("annotations", ())])


# ---- hand-made data -----------------------------------------------------------------------------------------


@pytest.fixture
def samples_df() -> pd.DataFrame:
    """Six samples of two design spaces: tile Z.tile_i in both, unroll only in design space 0; one failed module."""
    return pd.DataFrame(
        {
            "sample": [0, 1, 2, 3, 4, 5],
            "design_space": [0, 0, 1, 0, 1, -1],
            "valid": [True, False, True, True, True, False],
            "error": [None, "rejected by postprocessor VerifyGPUCode", None, None, None, "module tv failed"],
            "seed": [11, 12, 13, 14, 15, 16],
            "Z.tile_i": [(8, 8), (8, 8), (2, 32), (8, 8), (2, 32), None],
            "root.unroll_explicit": [512, 16, None, 512, None, None],
            "Z.compute_location": [-1, -2, 0, -1, -1, None],
        }
    )


MODULES = {
    "Z.tile_i": "multi_level_tiling",
    "root.unroll_explicit": "unroll",
    "Z.compute_location": "multi_level_tiling",
}


def records_frame(rows: list[dict]) -> pd.DataFrame:
    """A run.records-shaped frame: every column of records.COLUMNS, the given values, defaults elsewhere."""
    base = {c: None for c in COLUMNS}
    base.update(session=0, batch=0, time_s=0.0, ok=True, after_stop=False)
    columns = list(dict.fromkeys([*COLUMNS, *rows[0]]))  # then the decision columns
    df = pd.DataFrame([{**base, **r} for r in rows], columns=columns)
    for col in ("latency_s", "gflops", "predicted", "max_abs_error", "time_s"):
        df[col] = df[col].astype(float)
    return df


# ---- decision distributions ---------------------------------------------------------------------------------


def test_decision_counts_by_validity(samples_df):
    info = _get_decision_distributions_info(samples_df, summary=MODULES)
    assert (info.color, info.n_samples, info.n_valid, info.note) == ("valid", 6, 4, None)
    # Grouped by module, in column order within a module; numbers in value order, tiles by count.
    assert info.panels == (
        _DecisionBars(
            "Z.tile_i", "multi_level_tiling", ((8, 8), (2, 32)), ("8×8", "2×32"), (3, 2), (2, 2), (), 0, 0, 1
        ),
        _DecisionBars(
            "Z.compute_location", "multi_level_tiling", (-2, -1, 0), ("inline", "root", "0"), (1, 3, 1), (0, 3, 1),
            (), 0, 0, 1,
        ),
        _DecisionBars("root.unroll_explicit", "unroll", (16, 512), ("16", "512"), (1, 2), (0, 2), (), 0, 0, 3),
    )


def test_decision_modules_from_a_summary_frame(samples_df):
    summary = pd.DataFrame({"name": list(MODULES), "module": list(MODULES.values())})
    by_frame = _get_decision_distributions_info(samples_df, summary=summary)
    assert by_frame == _get_decision_distributions_info(samples_df, summary=MODULES)
    without = _get_decision_distributions_info(samples_df)
    assert [(p.name, p.module) for p in without.panels] == [
        ("Z.tile_i", None), ("root.unroll_explicit", None), ("Z.compute_location", None)
    ]


def test_decision_values_past_max_values_are_counted_not_drawn():
    tiles = [(1, 64)] * 5 + [(2, 32)] * 3 + [(4, 16)] * 3 + [(8, 8)] * 2 + [(16, 4)]
    df = pd.DataFrame({"sample": range(14), "valid": True, "Z.tile_k": tiles})
    (panel,) = _get_decision_distributions_info(df, max_values=3).panels
    assert (panel.values, panel.counts, panel.hidden_values, panel.hidden_count) == (
        ((1, 64), (2, 32), (4, 16)), (5, 3, 3), 2, 3
    )
    (unroll,) = _get_decision_distributions_info(
        pd.DataFrame({"valid": True, "u": [64, 64, 0, 0, 0, 16, 512, 512]}), max_values=2
    ).panels
    assert (unroll.values, unroll.counts, unroll.hidden_values) == ((0, 64), (3, 2), 2)  # then value order


def test_decision_tiles_read_back_as_lists_count_like_tuples(samples_df):
    as_lists = samples_df.assign(**{"Z.tile_i": [list(v) if v else None for v in samples_df["Z.tile_i"]]})
    assert _get_decision_distributions_info(as_lists) == _get_decision_distributions_info(samples_df)


def test_decision_colour_by_predicted_score(samples_df):
    df = samples_df.assign(predicted=[1.0, 3.0, 0.5, 2.0, np.nan, np.nan])
    info = _get_decision_distributions_info(df, color="predicted", summary=MODULES)
    assert info.color_label == "mean predicted score"
    assert [(p.name, p.color_values) for p in info.panels] == [
        ("Z.tile_i", (2.0, 0.5)),  # (1 + 3 + 2) / 3; the NaN of sample 4 is left out
        ("Z.compute_location", (3.0, 1.5, 0.5)),
        ("root.unroll_explicit", (3.0, 1.5)),
    ]
    fig = plot_decision_distributions(df, color="predicted", summary=MODULES)
    serializes(fig)
    assert fig.data[0].marker.coloraxis == "coloraxis"
    # the colour axis spans every panel's values (plotly.js would widen it around a panel with a single value)
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.5, 3.0)


def test_decision_colour_by_measured_latency(samples_df):
    records = records_frame([
        {"trial": 0, "ok": True, "latency_s": 2e-3, "Z.tile_i": (8, 8), "root.unroll_explicit": 512},
        {"trial": 1, "ok": True, "latency_s": 1e-3, "Z.tile_i": (8, 8), "root.unroll_explicit": 16},
        {"trial": 2, "ok": False, "latency_s": np.nan, "Z.tile_i": (2, 32), "root.unroll_explicit": 16,
         "run_error": "timeout"},
    ])
    info = _get_decision_distributions_info(samples_df, color="latency", records=records, summary=MODULES)
    assert [(p.name, p.color_values) for p in info.panels] == [
        ("Z.tile_i", (1e-3, None)),  # (2, 32) only failed: not measured
        ("Z.compute_location", (None, None, None)),  # not in the records
        ("root.unroll_explicit", (1e-3, 2e-3)),
    ]
    serializes(plot_decision_distributions(samples_df, color="latency", records=records))
    # The records alone: validity is their 'ok' column, latency their own.
    own = _get_decision_distributions_info(records, color="latency")
    assert (own.n_samples, own.n_valid) == (3, 2)
    assert own.panels[0].valid == (2, 0)


def test_decision_bars_carry_name_and_value_for_clicks(samples_df):
    fig = plot_decision_distributions(samples_df, summary=MODULES)
    data = serializes(fig)["data"]
    assert len(data) == 2 * 3  # valid and invalid per panel
    assert [d["name"] for d in data[:2]] == ["valid", "invalid"]
    assert [c[:2] for c in data[0]["customdata"]] == [["Z.tile_i", [8, 8]], ["Z.tile_i", [2, 32]]]
    assert data[0]["y"] == [2, 2] and data[1]["y"] == [1, 0]
    assert "multi_level_tiling · Z.tile_i" in notes(fig)


def test_decision_predicted_missing_says_how_to_get_it(samples_df):
    with pytest.raises(ValueError, match=r"'predicted' column.*model\.predict\(samples\)"):
        plot_decision_distributions(samples_df, color="predicted")
    with pytest.raises(ValueError, match=r"'predicted' column"):
        plot_decision_distributions(samples_df.assign(predicted=np.nan), color="predicted")


def test_decision_bad_arguments(samples_df):
    with pytest.raises(ValueError, match=r"color must be one of \['valid', 'predicted', 'latency'\], got 'speed'"):
        plot_decision_distributions(samples_df, color="speed")
    with pytest.raises(ValueError, match=r"pass records=run.records"):
        plot_decision_distributions(samples_df, color="latency")
    with pytest.raises(ValueError, match=r"max_values must be a positive integer"):
        plot_decision_distributions(samples_df, max_values=0)
    with pytest.raises(TypeError, match=r"SampleSet, a run or a DataFrame, got list"):
        plot_decision_distributions([1, 2])
    with pytest.raises(ValueError, match=r"missing \['module'\]"):
        plot_decision_distributions(samples_df, summary=pd.DataFrame({"name": ["Z.tile_i"]}))


def test_decision_odd_data_draws_a_note(samples_df):
    empty = samples_df.iloc[:0]
    info = _get_decision_distributions_info(empty)
    assert (info.panels, info.note) == ((), "No samples to draw.")
    assert "No samples to draw." in notes(plot_decision_distributions(empty))

    failed = samples_df.iloc[[5]]  # the failed module: invalid, no decisions
    info = _get_decision_distributions_info(failed)
    assert info.note == "None of the 1 samples has decisions: all are invalid (first error: module tv failed)."
    serializes(plot_decision_distributions(failed))

    no_rvs = samples_df[["sample", "design_space", "valid", "error", "seed"]]
    assert "no decisions" in _get_decision_distributions_info(no_rvs).note

    one = _get_decision_distributions_info(samples_df.iloc[[0]])
    assert [(p.name, p.counts) for p in one.panels] == [
        ("Z.tile_i", (1,)), ("root.unroll_explicit", (1,)), ("Z.compute_location", (1,))
    ]
    serializes(plot_decision_distributions(samples_df.iloc[[0]]))

    records = records_frame([{"trial": 0, "ok": False, "run_error": "boom", "Z.tile_i": (8, 8)}])
    info = _get_decision_distributions_info(samples_df, color="latency", records=records)
    assert info.note == "No successful measurement to colour by."
    assert all(v is None for p in info.panels for v in p.color_values)
    serializes(plot_decision_distributions(samples_df, color="latency", records=records))


# ---- search progress -----------------------------------------------------------------------------------------


@pytest.fixture
def progress_records() -> pd.DataFrame:
    """Two sessions: session 0 ran 10 s, session 1 starts over at 0 s; trial 1 fails to build, trial 4 is wrong."""
    return records_frame([
        {"trial": 0, "session": 0, "time_s": 2.0, "latency_s": 4e-3, "gflops": 10.0},
        {"trial": 1, "session": 0, "time_s": 5.0, "ok": False,
         "build_error": "Traceback (most recent call last):\n  File x\nValueError: bad split"},
        {"trial": 2, "session": 0, "time_s": 10.0, "latency_s": 2e-3, "gflops": 20.0},
        {"trial": 3, "session": 1, "time_s": 1.0, "latency_s": 5e-3, "gflops": 8.0},
        {"trial": 4, "session": 1, "time_s": 3.0, "ok": False, "run_error": "wrong result", "max_abs_error": 0.25},
        {"trial": 5, "session": 1, "time_s": 4.0, "latency_s": 1e-3, "gflops": 40.0},
    ])


def test_progress_best_so_far_over_trials_and_time(progress_records):
    info = _get_search_progress_info(progress_records)
    assert info.candidates == _Candidates((0, 2, 3, 5), (2.0, 10.0, 11.0, 14.0), (0, 0, 1, 1), (10.0, 20.0, 8.0, 40.0))
    assert info.best == _BestSoFar(
        (0, 1, 2, 3, 4, 5), (2.0, 5.0, 10.0, 11.0, 13.0, 14.0), (10.0, 10.0, 20.0, 20.0, 20.0, 40.0)
    )
    assert info.failures == _Failures(
        (1, 4), (5.0, 13.0), (0, 1), ("build: ValueError: bad split", "wrong result: max abs error 0.25")
    )
    assert (info.n_trials, info.n_sessions, info.note) == (6, 2, None)

    latency = _get_search_progress_info(progress_records.iloc[::-1], metric="latency")  # any row order
    assert latency.best.value == (4e-3, 4e-3, 2e-3, 2e-3, 2e-3, 1e-3)
    assert latency.candidates.value == (4e-3, 2e-3, 5e-3, 1e-3)


def test_progress_trace_structure_is_stable(progress_records):
    cases = [
        progress_records,
        progress_records.iloc[:0],  # nothing yet
        progress_records[~progress_records["ok"]],  # only failures
        progress_records.iloc[[0]],  # one trial
    ]
    for records in cases:
        for x in ("trial", "time"):
            fig = plot_search_progress(records, x=x, metric="latency")
            data = serializes(fig)["data"]
            assert [d["name"] for d in data] == ["candidates", "best so far", "failed"] * 2
            assert [d["visible"] for d in data] == [x == "trial"] * 3 + [x == "time"] * 3
            assert [d.get("yaxis", "y") for d in data] == ["y", "y", "y2"] * 2
            assert len(PROGRESS_TRACE_ORDER) == len(data)
    # What a live widget writes into fig.data[i] is what the figure was drawn with.
    info = _get_search_progress_info(progress_records)
    fig = plot_search_progress(progress_records)
    for trace, update in zip(fig.data, _search_progress_trace_data(info), strict=True):
        assert list(trace.x) == list(update["x"]) and list(trace.y) == list(update["y"])
    assert list(fig.data[3].x) == [2.0, 10.0, 11.0, 14.0]  # candidates over search time
    assert list(fig.data[5].customdata[0]) == [1, 0, "build: ValueError: bad split"]


def test_progress_update_in_place_draws_what_a_new_figure_draws(progress_records):
    """What a live widget does: one figure, redrawn in place as records arrive, equals a figure drawn anew."""
    for x in ("trial", "time"):
        fig = plot_search_progress(progress_records.iloc[:0], x=x)
        fig.layout.yaxis.type = "log"  # what the figure's "log" button does in the browser
        titles = {
            1: "Search progress: 1 trial, best 10 GFLOPS",
            3: "Search progress: 3 trials, best 20 GFLOPS, 1 failed",
            6: "Search progress: 6 trials, best 40 GFLOPS, 2 failed (2 sessions, by colour)",
        }
        for n, title in titles.items():
            update_search_progress(fig, progress_records.iloc[:n])
            fresh = plot_search_progress(progress_records.iloc[:n], x=x, log_y=True)
            assert serializes(fig)["data"] == serializes(fresh)["data"]
            assert notes(fig) == notes(fresh) == title
            assert serializes(fig)["layout"]["yaxis"]["type"] == "log"  # the reader's choices stay
        # another metric redraws axis titles and hover texts too: the figure is then the one drawn anew
        update_search_progress(fig, progress_records, metric="latency")
        assert serializes(fig) == serializes(plot_search_progress(progress_records, metric="latency", x=x, log_y=True))
        update_search_progress(fig, progress_records.iloc[:0], metric="latency")
        assert "No trials yet." in notes(fig)
    with pytest.raises(ValueError, match="made by plot_search_progress"):
        update_search_progress(go.Figure(go.Scatter(y=[1, 2])), progress_records)


def test_the_package_exports_no_private_name():
    assert all(not name.startswith("_") for name in msexplore.figures.__all__)
    assert not [n for n in vars(msexplore.figures) if n.startswith("_get_") or n.startswith("_search")]


def test_progress_odd_data_draws_a_note(progress_records):
    info = _get_search_progress_info(progress_records.iloc[:0])
    assert (info.n_trials, info.best, info.note) == (0, _BestSoFar((), (), ()), "No trials yet.")
    assert "No trials yet." in notes(plot_search_progress(progress_records.iloc[:0]))

    failed = progress_records[~progress_records["ok"]]
    info = _get_search_progress_info(failed)
    assert info.note == "All 2 candidates failed (hover the red marks for the errors)."
    assert info.failures.trial == (1, 4)

    no_flops = progress_records.assign(gflops=np.nan)
    assert "try metric='latency'" in _get_search_progress_info(no_flops).note
    assert _get_search_progress_info(no_flops, metric="latency").note is None


def test_progress_bad_arguments(progress_records):
    with pytest.raises(ValueError, match=r"metric must be one of \['gflops', 'latency'\], got 'flops'"):
        plot_search_progress(progress_records, metric="flops")
    with pytest.raises(ValueError, match=r"x must be one of \['trial', 'time'\], got 'wall'"):
        plot_search_progress(progress_records, x="wall")
    with pytest.raises(ValueError, match=r"missing \['session'\]"):
        plot_search_progress(progress_records.drop(columns=["session"]))
    with pytest.raises(TypeError, match=r"run.records"):
        plot_search_progress([1, 2, 3])


def test_progress_log_axis_and_toggles(progress_records):
    layout = serializes(plot_search_progress(progress_records, metric="latency", x="time", log_y=True))["layout"]
    assert layout["yaxis"]["type"] == "log"
    assert layout["xaxis2"]["title"]["text"].startswith("search time")
    trial_button, time_button = layout["updatemenus"][0]["buttons"]
    assert trial_button["args"][0] == {"visible": [True] * 3 + [False] * 3}
    assert time_button["args"][0] == {"visible": [False] * 3 + [True] * 3}


# ---- cost model ----------------------------------------------------------------------------------------------


def test_predicted_vs_measured_metrics():
    predicted = [5.0, 4.0, 3.0, 2.0, 1.0]
    latency = [1.0, 2.0, 3.0, 5.0, 4.0]  # the model swaps the last two
    info = _get_predicted_vs_measured_info(predicted, latency, k=2)
    assert info._replace(spearman=None) == (
        (0, 1, 2, 3, 4), tuple(predicted), tuple(latency), 2, None, 1.0, (0, 1), (0, 1), 0, None
    )
    assert info.spearman == pytest.approx(0.9)  # 1 - 6 * (1 + 1) / (5 * 24)

    info = _get_predicted_vs_measured_info(predicted, [5.0, 4.0, 3.0, 1.0, 2.0], k=2)  # backwards
    assert (info.top_measured, info.top_predicted, info.recall) == ((3, 4), (0, 1), 0.0)
    assert info.spearman == pytest.approx(-0.9)
    info = _get_predicted_vs_measured_info(predicted, [2.0, 5.0, 1.0, 4.0, 3.0], k=2)
    assert (info.top_measured, info.top_predicted, info.recall) == ((2, 0), (0, 1), 0.5)


def test_predicted_vs_measured_from_records():
    records = records_frame([
        {"trial": 10, "latency_s": 3e-3, "predicted": 0.1},
        {"trial": 11, "ok": False, "run_error": "timeout", "predicted": 0.9},
        {"trial": 12, "latency_s": 1e-3, "predicted": 0.8},
        {"trial": 13, "latency_s": 2e-3, "predicted": np.nan},
        {"trial": 14, "latency_s": 4e-3, "predicted": 0.2},
    ])
    info = _get_predicted_vs_measured_info(None, records, k=1)
    assert (info.ids, info.predicted, info.latency_s) == ((10, 12, 14), (0.1, 0.8, 0.2), (3e-3, 1e-3, 4e-3))
    assert (info.top_measured, info.top_predicted, info.recall, info.dropped) == ((12,), (12,), 1.0, 2)
    assert info.spearman == pytest.approx(0.5)
    fig = plot_predicted_vs_measured(None, records, k=1)
    assert [d["name"] for d in serializes(fig)["data"]] == [
        "others", "top-1 measured, found by the model", "top-1 measured, missed by the model"
    ]
    assert "Spearman ρ = 0.500, top-1 recall = 1.00 (n = 3)" in notes(fig)
    # Scores given separately (a Series, or a frame with a 'predicted' column) line up with the records.
    assert _get_predicted_vs_measured_info(records["predicted"], records, k=1) == info
    assert _get_predicted_vs_measured_info(records[["predicted"]], records, k=1) == info


def test_predicted_vs_measured_odd_data():
    few = _get_predicted_vs_measured_info([1.0, 2.0], [2e-3, 1e-3], k=5)
    assert (few.recall, few.spearman, few.top_measured) == (None, pytest.approx(1.0), (1, 0))
    assert few.note == "Only 2 measured candidates: top-5 recall needs at least 5."
    assert _get_predicted_vs_measured_info([1.0, 2.0], [2e-3, 1e-3], k=2).recall == 1.0  # k = n: trivially 1
    constant = _get_predicted_vs_measured_info([0.0] * 4, [1.0, 2.0, 3.0, 4.0], k=1)  # an untrained model
    assert (constant.spearman, constant.top_predicted, constant.recall) == (None, (0,), 1.0)
    nothing = _get_predicted_vs_measured_info([1.0, 2.0], [np.nan, np.nan])
    assert (nothing.ids, nothing.dropped, nothing.spearman, nothing.recall) == ((), 2, None, None)
    for fig in (plot_predicted_vs_measured([1.0, 2.0], [np.nan, np.nan]), plot_predicted_vs_measured([], [])):
        assert "No candidate has both a prediction and a successful measurement." in notes(fig)
    serializes(plot_predicted_vs_measured([1.0], [1e-3]))


def test_predicted_vs_measured_bad_arguments():
    with pytest.raises(ValueError, match=r"predicted has 2 values but there are 3 measurements"):
        plot_predicted_vs_measured([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"k must be a positive integer, got 0"):
        plot_predicted_vs_measured([1.0], [1.0], k=0)
    with pytest.raises(ValueError, match=r"missing \['ok'\]"):
        plot_predicted_vs_measured([1.0], pd.DataFrame({"latency_s": [1.0]}))
    with pytest.raises(ValueError, match=r"predicted is None"):
        plot_predicted_vs_measured(None, [1.0])


def test_feature_importance():
    df = pd.DataFrame({"group": ["loops", "memory", "loops", "vector"], "importance": [1.0, 5.0, 2.0, 2.0]})
    info = _get_feature_importance_info(df)
    assert info == _FeatureImportanceInfo(("memory", "loops", "vector"), (5.0, 3.0, 2.0), (0.5, 0.3, 0.2), None)
    bars = serializes(plot_feature_importance(df))["data"]
    assert (bars[0]["y"], bars[0]["orientation"]) == (["vector", "loops", "memory"], "h")  # biggest on top

    empty = df.iloc[:0]
    assert _get_feature_importance_info(empty).note == "No feature importance to draw (is the model trained?)."
    zeros = df.assign(importance=0.0)
    assert "Every importance is zero" in notes(plot_feature_importance(zeros))
    with pytest.raises(ValueError, match=r"missing \['importance'\]"):
        plot_feature_importance(df[["group"]])
    # model.feature_importance() as it comes: the group as the index, total gain as the importance.
    groups = pd.Index(["memory", "loops"], name="group")
    from_model = pd.DataFrame({"weight": [3, 9], "total_gain": [5.0, 3.0]}, index=groups)
    assert _get_feature_importance_info(from_model) == _FeatureImportanceInfo(
        ("memory", "loops"), (5.0, 3.0), (0.625, 0.375), None
    )
    with pytest.raises(TypeError, match=r"must be a DataFrame"):
        plot_feature_importance({"group": ["a"], "importance": [1.0]})


# ---- space summary -------------------------------------------------------------------------------------------


def test_space_summary_info():
    summary = pd.DataFrame({
        "name": ["Z.tile_i", "root.unroll_explicit", "Z.tile_j"],
        "module": ["multi_level_tiling", "unroll", "multi_level_tiling"],
        "block": ["Z", "root", "Z"],
        "kind": ["tile", "categorical", "tile"],
        "domain_size": [84, 4, 1],
        "domain": ["4 factors of 64", "[0, 16, 64, 512]", "4 factors of 1"],
    })
    summary.attrs.update(size=336, failures=["module broken failed on Z"])
    info = _get_space_summary_info(summary)
    assert info == _SpaceSummaryInfo(
        ("Z.tile_i", "Z.tile_j", "root.unroll_explicit"),
        ("multi_level_tiling", "multi_level_tiling", "unroll"),
        ("tile", "tile", "categorical"),
        (84, 1, 4),
        ("4 factors of 64", "4 factors of 1", "[0, 16, 64, 512]"),
        336,
        ("module broken failed on Z",),
        None,
    )
    fig = plot_space_summary(summary)
    data = serializes(fig)["data"]
    assert [(d["name"], d["y"]) for d in data] == [
        ("multi_level_tiling", ["Z.tile_i", "Z.tile_j"]), ("unroll", ["root.unroll_explicit"])
    ]
    assert "Search space: 3 random variables, 336 programs (1 module failure)" in notes(fig)

    no_rvs = summary.iloc[:0].copy()
    no_rvs.attrs = {"size": 1, "failures": []}
    empty = _get_space_summary_info(no_rvs)
    assert empty.names == () and "no random variables" in empty.note
    no_rvs.attrs["failures"] = ["module broken failed on Z"]
    assert "no design space: 1 module failure(s)" in notes(plot_space_summary(no_rvs))
    with pytest.raises(ValueError, match=r"missing \['domain_size'\]"):
        plot_space_summary(summary.drop(columns=["domain_size"]))
    with pytest.raises(TypeError, match=r"expected a Space or space.summary\(\), got int"):
        plot_space_summary(3)


# ---- shared helpers ------------------------------------------------------------------------------------------


def test_labels_and_error_lines():
    labels = [value_label(v) for v in [(8, 64), [1, 2, 4], 512, 2.0, 0.5, "x"]]
    assert labels == ["8×64", "1×2×4", "512", "2", "0.5", "x"]
    assert error_line("Traceback (most recent call last):\n  File a\nTVMError: nope\n") == "TVMError: nope"
    assert error_line("timeout\nmore") == "timeout"
    assert error_line(None) == "" and len(error_line("x" * 500)) == 160
    assert [format_count(n) for n in (592704, 3.47e21)] == ["592,704", "3.47 × 10^21"]


# ---- real samples (default_samples: tests/conftest.py, shared by the session; the first Space costs 15-30 s) ---


def test_real_sample_set(default_samples):
    real_samples = default_samples
    space = real_samples.space
    summary = space.summary()
    info = _get_decision_distributions_info(real_samples)
    assert [p.name for p in info.panels] == [n for n in summary["name"]]  # one module each here: table order
    assert [p.module for p in info.panels] == list(summary["module"])
    for panel in info.panels:
        column = real_samples.df[panel.name].dropna()
        assert sum(panel.counts) + panel.hidden_count == len(column)
        assert panel.missing == len(real_samples.df) - len(column)
    assert info == _get_decision_distributions_info(real_samples.df, summary=summary)
    fig = plot_decision_distributions(real_samples)
    first = serializes(fig)["data"][0]["customdata"][0]
    assert first[0] == info.panels[0].name and tuple(first[1]) == info.panels[0].values[0]

    space_info = _get_space_summary_info(space)
    assert space_info.names == tuple(summary["name"]) and space_info.size == space.size()
    serializes(plot_space_summary(space))
