"""CostModelPanel at model level: fit on a real search's records, show quality and figures, score samples."""

from __future__ import annotations

import numpy as np
import pytest

from msexplore.ui.cost_model_panel import CostModelPanel


@pytest.fixture(scope="module")
def samples(search_space):
    return search_space.sample(8, seed=0)


@pytest.fixture(scope="module")
def fitted(finished_run, samples):
    panel = CostModelPanel(finished_run, samples)
    assert panel.predict_button.disabled, "nothing to predict with before a fit"
    panel.fit_button.click()
    panel.wait(300)
    return panel


def test_fit_shows_quality_and_both_figures(fitted, finished_run):
    panel = fitted
    assert panel.status == "ok", panel.error_text
    assert panel.model is not None and panel.model.fitted
    assert panel.model.n_records == sum(e.ok for e in finished_run.events)
    assert "Spearman" in panel.quality_view.value or "No held-out quality" in panel.quality_view.value
    scatter, importance = panel.figures["scatter"], panel.figures["importance"]
    drawn = sorted(int(i) for t in scatter.data for i in (t.customdata if t.customdata is not None else ()))
    if panel.quality is not None:  # the figure shows exactly the held-out records, scored by the held-out fit
        assert f"{panel.quality.n_test} held out" in panel.quality_view.value
        assert drawn == sorted(panel.quality.test_trials)
    else:
        assert drawn == sorted(e.index for e in finished_run.events if e.ok)
    groups = set(importance.data[0].y)
    assert groups and groups <= set(panel.model.feature_importance().index)
    assert not panel.predict_button.disabled


def test_predict_fills_the_samples_and_reports_them(fitted, samples):
    panel = fitted
    panel.predict_button.click()
    panel.wait(300)
    assert panel.status == "ok", panel.error_text
    scores = panel.predictions
    assert len(scores) == len(samples)
    valid = np.array([s.valid for s in samples])
    assert np.isfinite(scores[valid]).all() and np.isnan(scores[~valid]).all()
    assert np.array_equal(samples.df["predicted"].to_numpy(), scores, equal_nan=True)
    best = samples[int(np.nanargmax(scores))].id
    assert f">{best}<" in panel.prediction_view.value
    assert f"Scored {int(valid.sum())} of {len(samples)} samples" in panel.message


def test_fit_without_a_successful_record_shows_the_error(synthetic):
    fake = synthetic(trials=4)
    fake.publish(fake.events(4, fail_every=1))
    fake.end("done")
    panel = CostModelPanel(fake.run.records)
    panel.fit_button.click()
    panel.wait(60)
    assert panel.status == "error" and panel.model is None
    assert "no successful candidate" in panel.error_text
    assert "no successful candidate" in panel.error_area.value
    assert "msx-cost-model-panel" in panel._dom_classes


def test_bad_arguments_fail_at_once(finished_run):
    with pytest.raises(TypeError, match="SearchRun or a records DataFrame"):
        CostModelPanel([1, 2, 3])
    with pytest.raises(TypeError, match="SampleSet"):
        CostModelPanel(finished_run, samples=[1])
    with pytest.raises(ValueError, match="unknown XGBoost option"):
        CostModelPanel(finished_run, depth=3)
