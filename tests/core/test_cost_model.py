"""CostModel on real TVM: fitted on the records of one tiny real search (24 trials of a 64^3 GMM), shared here."""

from __future__ import annotations

import dataclasses
import math
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import tvm
from tvm.s_tir import meta_schedule as ms

import msexplore as mx
from msexplore.cost_model import CostModel, NotFittedError, Quality
from msexplore.cost_model_features import FEATURE_GROUP_OF, FEATURE_GROUPS, FEATURE_NAMES
from msexplore.sampling import SampleSet

GROUPS = {  # the documented groups and how many of the 164 features each holds
    "float_ops": 7, "int_ops": 7, "bool_select_ops": 2, "vectorize": 11, "unroll": 11, "parallel": 11,
    "gpu_threads": 8, "buffer_access_type": 15, "buffer_touched": 20, "buffer_reuse": 30,
    "buffer_touched_per_reuse": 20, "buffer_stride": 5, "arith_intensity_curve": 10, "allocation": 4,
    "outer_loops": 3,
}


@pytest.fixture(scope="module")
def records(default_space, tmp_path_factory) -> pd.DataFrame:
    # random programs (replay-trace): latencies spread widely, so a fitted model's ranking stands out of the
    # measurement noise; an evolutionary search's batches are near-copies of each other within a few percent
    run = mx.search(
        default_space, trials=24, batch_size=8, work_dir=tmp_path_factory.mktemp("cm") / "gmm",
        strategy="replay-trace",
    )
    run.wait()
    assert run.status == "done", run.error
    df = run.records
    assert len(df) == 24 and df["ok"].sum() >= 12, df[["ok", "build_error", "run_error"]]
    # The tests below make their own failures; a candidate that failed for real on a loaded machine (a worker
    # that timed out) is dropped so that every count below is exact: N ok records, rows 0..N-1.
    return df[df["ok"]].reset_index(drop=True)


def n_ok(records: pd.DataFrame) -> int:
    return int(records["ok"].sum())


@pytest.fixture(scope="module")
def model(records) -> CostModel:
    return CostModel().fit(records)


@pytest.fixture
def samples(default_space) -> SampleSet:
    """Ten fresh samples (this test's own, so filling df is fine) plus two invalid ones: one with, one without trace."""
    drawn = list(default_space.sample(10, seed=5))
    rejected = dataclasses.replace(drawn[0], id=10, valid=False, error="rejected by postprocessor (test)")
    failed = dataclasses.replace(drawn[1], id=11, valid=False, error="module failed (test)", trace=None)
    return SampleSet(default_space, drawn + [rejected, failed])


def _with_failures(records: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    df = records.copy()
    df.loc[rows, "ok"] = False
    df.loc[rows, ["latency_s", "gflops"]] = np.nan
    df.loc[rows, "run_error"] = "failed (test)"
    return df


# ---- fit / predict ----


def test_predict_samples_fills_df_and_gives_nan_to_invalid(model, samples):
    scores = model.predict(samples)
    assert scores.shape == (12,) and scores.dtype == np.float64
    assert np.isfinite(scores[:10]).all() and np.isnan(scores[10:]).all()
    np.testing.assert_array_equal(samples.df["predicted"].to_numpy(), scores)
    np.testing.assert_array_equal(model.predict(samples), scores)  # trees, not TVM's pre-warm-up random numbers
    assert len(set(np.round(scores[:10], 6))) > 1


def test_fitted_model_ranks_its_records(model, records):
    """TVM's XGBoost model regresses throughput relative to the best record: it must find the fastest programs and
    follow throughput (a rank correlation over all records is not what it optimizes: among programs 100x slower than
    the best it has nothing to tell apart)."""
    searched = records["predicted"].copy()  # the search's own predictions at measuring time
    scores = model.predict(records)
    assert scores.shape == (len(records),) and np.isfinite(scores).all()
    latency = records["latency_s"].to_numpy()
    assert int((latency < latency[int(np.argmax(scores))]).sum()) < 3  # its favourite is one of the 3 fastest
    assert np.corrcoef(scores, 1.0 / latency)[0, 1] > 0.4  # a fitted model, not random numbers
    pd.testing.assert_series_equal(records["predicted"], searched)  # left alone


def test_predict_schedules_equals_predict_samples(model, samples):
    valid = [s for s in samples if s.valid]
    np.testing.assert_array_equal(model.predict([s.schedule for s in valid]), model.predict(samples)[:10])
    assert model.predict([]).shape == (0,)


def test_same_records_same_predictions(model, records):
    again = CostModel().fit(records)
    np.testing.assert_array_equal(again.predict(records), model.predict(records))


def test_tvm_model_is_the_fitted_xgbmodel(model, records, default_space):
    xgb = model.tvm_model
    assert isinstance(xgb, ms.cost_model.XGBModel)
    assert xgb.num_warmup_samples == 0 and xgb.booster is not None and xgb.data_size == n_ok(records)
    samples = default_space.sample(4, seed=9)
    context = ms.TuneContext(mod=default_space.workload.mod, target=default_space.target, task_name="t")
    args = ms.arg_info.ArgInfo.from_prim_func(default_space.workload.func)
    direct = xgb.predict(context, [ms.MeasureCandidate(s.schedule, args) for s in samples])
    np.testing.assert_array_equal(direct, model.predict(samples))


def test_repr_says_fitted_and_on_how_many(model, records):
    assert repr(CostModel()) == "CostModel(xgb, not fitted)"
    n = n_ok(records)
    assert repr(model) == f"CostModel(xgb, fitted on {n} records of GMM b=1 n=64 m=64 k=64)"
    skipped = CostModel().fit(_with_failures(records, [0, 1, 2]))
    assert repr(skipped) == f"CostModel(xgb, fitted on {n - 3} records of GMM b=1 n=64 m=64 k=64, 3 failed skipped)"


def test_failures_are_skipped_or_zero_throughput(records):
    failing = _with_failures(records, [3, 7, 11, 15])
    skip = CostModel().fit(failing)
    n = n_ok(records)
    assert (skip.n_records, skip.n_skipped, skip.tvm_model.data_size) == (n - 4, 4, n - 4)
    zero = CostModel(failures="zero").fit(failing)
    assert (zero.n_records, zero.n_skipped, zero.tvm_model.data_size) == (n, 0, n)
    (group,) = zero.tvm_model.data.values()
    assert sorted(np.flatnonzero(group.costs >= 1e9)) == [3, 7, 11, 15]  # MetaSchedule's cost of a failure


# ---- quality ----


def test_quality_scores_held_out_records_only(records, monkeypatch):
    trained_on: list[list[int]] = []
    fit = CostModel.fit

    def spy(self, df):
        trained_on.append(list(df["trial"]))
        return fit(self, df)

    monkeypatch.setattr(CostModel, "fit", spy)
    failing = _with_failures(records, [0, 5])
    q = CostModel().quality(failing, test_fraction=0.25, top_k=(1, 2, 0.5, 10), seed=3)
    ok_trials = set(failing.loc[failing["ok"], "trial"])
    assert isinstance(q, Quality)
    n = n_ok(records) - 2
    n_test = max(2, round(0.25 * n))  # the documented split: a quarter held out, at least 2
    assert (q.n, q.n_test, q.n_train, q.n_failed) == (n, n_test, n - n_test, 2)
    assert q.n_train + q.n_test == q.n == len(ok_trials)
    (train,) = trained_on
    assert set(train) | set(q.test_trials) == ok_trials and not set(train) & set(q.test_trials)
    assert len(q.test_trials) == len(q.predicted) == len(q.latency_s) == n_test
    assert -1.0 <= q.spearman <= 1.0
    assert set(q.top_k_recall) == {1, 2, 0.5, 10}
    for k in (1, 2, 0.5):
        assert 0.0 <= q.top_k_recall[k] <= 1.0
    assert math.isnan(q.top_k_recall[10]) and math.isnan(q.random_top_k_recall[10])  # 10 > 6 held out
    assert q.random_top_k_recall[2] == pytest.approx(2 / 6) and q.random_top_k_recall[0.5] == pytest.approx(3 / 6)
    assert "Spearman" in str(q) and "top-50%" in str(q)
    zero = CostModel(failures="zero").quality(failing, seed=3)
    assert zero.test_trials == q.test_trials and (zero.n_train, zero.n_test) == (16, 6)
    assert set(trained_on[1]) == set(train) | {0, 5}  # failures trained on as zero throughput, never tested


def test_quality_recomputes_from_its_own_numbers(records):
    q = CostModel().quality(records, seed=1, top_k=(1, 3))
    latency = np.array(q.latency_s)
    predicted = np.array(q.predicted)
    fastest3 = set(np.argsort(latency)[:3])
    best3 = set(np.argsort(-predicted, kind="stable")[:3])
    assert q.top_k_recall[3] == len(fastest3 & best3) / 3
    assert q.spearman == pytest.approx(pd.Series(predicted).corr(pd.Series(1 / latency), method="spearman"))
    same = CostModel().quality(records, seed=1, top_k=(1, 3))
    assert same.test_trials == q.test_trials and same.predicted == q.predicted  # deterministic split and fit
    assert CostModel().quality(records, seed=2).test_trials != q.test_trials


# ---- feature importance and names ----


def test_feature_importance_by_documented_groups(model):
    by_group = model.feature_importance()
    assert dict(by_group["n_features"]) == GROUPS and set(FEATURE_GROUPS) == set(GROUPS)
    assert by_group["n_features"].sum() == 164
    assert list(by_group["total_gain"]) == sorted(by_group["total_gain"], reverse=True)
    assert by_group["gain_share"].sum() == pytest.approx(1.0) and by_group["weight"].sum() > 0
    by_feature = model.feature_importance(by="feature")
    assert len(by_feature) == 164 and by_feature.index.is_unique and set(by_feature.index) == set(FEATURE_NAMES)
    summed = by_feature.groupby("group")["total_gain"].sum()
    for group, gain in summed.items():
        assert by_group.loc[group, "total_gain"] == pytest.approx(gain)
    assert list(FEATURE_GROUP_OF).count("buffer_reuse") == 30


def test_feature_names_follow_tvms_layout(model, gmm):
    """The naive GMM's one non-constant store: Z[i, j] += X[i, k] * Y[k, j] over 64^3 iterations."""
    f = model.features([tvm.s_tir.Schedule(gmm.mod)])
    assert f.shape == (1, 2 + 164)
    row = f.iloc[0]
    slog = lambda x: math.log2(x + 1)  # noqa: E731 - TVM's scaling
    assert row["float_add_sub"] == pytest.approx(slog(64**3)) and row["float_mul"] == pytest.approx(slog(64**3))
    assert row["float_mad"] == 0 and row["int_mul"] == 0 and row["is_gpu"] == 0
    assert row["vectorize.pos_none"] == 1 and row["parallel.num"] == 0 and row["blockIdx_x_len"] == 1
    assert row["num_loops"] == pytest.approx(slog(3)) and row["outer_prod"] == pytest.approx(slog(64**3))
    assert row["auto_unroll_max_step"] == 0
    assert row["alloc_size"] == pytest.approx(slog(64 * 64 * 4)) and row["alloc_outer_prod"] == 1
    slots = [[row[f"buf{s}.access_{kind}"] for kind in ("read", "write", "read_write")] for s in range(5)]
    assert sorted(map(tuple, slots[:3])) == [(0, 0, 1), (1, 0, 0), (1, 0, 0)] and slots[3:] == [[0, 0, 0]] * 2
    np.testing.assert_allclose(row[[f"buf{s}.bytes" for s in range(3)]].to_numpy(float), slog(64**3 * 4))
    curve = row[[f"arith_intensity_curve_{i}" for i in range(10)]].to_numpy(float)
    assert (np.diff(curve) > 0).all()


# ---- files ----


def test_save_load_round_trip_gives_identical_predictions(model, records, samples, tmp_path):
    path = tmp_path / "model.tar.gz"
    model.save(path)
    loaded = CostModel.load(path)
    assert repr(loaded) == repr(model)
    assert (loaded.seed, loaded.num_threads, loaded.failures) == (model.seed, model.num_threads, model.failures)
    np.testing.assert_array_equal(loaded.predict(records), model.predict(records))
    np.testing.assert_array_equal(loaded.predict(samples), model.predict(samples))
    assert loaded.tvm_model.data_size == model.tvm_model.data_size == n_ok(records)
    with warnings.catch_warnings():  # TVM's own load names the trees "model.bin": XGBoost guesses the format
        warnings.filterwarnings("ignore", message=".*Unknown file format")
        plain = ms.cost_model.XGBModel(num_warmup_samples=0)
        plain.load(str(path))  # the file is TVM's own layout plus msexplore.json
    assert plain.data_size == n_ok(records)
    np.testing.assert_array_equal(plain.booster.save_raw("ubj"), model.tvm_model.booster.save_raw("ubj"))


def test_save_and_load_write_nothing_to_stderr(model, tmp_path, capfd):
    """XGBoost's Python log callback is per thread: on a thread that did not import xgboost (a notebook's main
    thread when a search imported it), its C++ warnings about a file format go straight to fd 2. save/load name
    the format, so XGBoost has nothing to warn about, on any thread, as a warning or on fd 2."""
    path = tmp_path / "model.tar.gz"
    errors: list[BaseException] = []

    def round_trip() -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                model.save(path)
                CostModel.load(path)
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    capfd.readouterr()
    thread = threading.Thread(target=round_trip)
    thread.start()
    thread.join()
    round_trip()  # and on this thread, where xgboost's callback turns them into Python warnings
    assert not errors, errors
    assert capfd.readouterr().err == ""


def test_unfitted_model_refuses_to_predict_or_save(samples, tmp_path):
    fresh = CostModel()
    with pytest.raises(NotFittedError, match="fit the model first"):
        fresh.predict(samples)
    with pytest.raises(NotFittedError, match="fit the model first"):
        fresh.save(tmp_path / "m.tar.gz")
    with pytest.raises(NotFittedError, match="fit the model first"):
        fresh.feature_importance()
    assert not (tmp_path / "m.tar.gz").exists()


# ---- bad input ----


def test_bad_records(records):
    with pytest.raises(ValueError, match="empty"):
        CostModel().fit(records.iloc[0:0])
    with pytest.raises(ValueError, match="no successful candidate"):
        CostModel().fit(_with_failures(records, list(range(len(records)))))
    with pytest.raises(TypeError, match="records DataFrame"):
        CostModel().fit(records.to_dict("records"))
    with pytest.raises(TypeError, match="records DataFrame"):
        CostModel().fit("records.json")
    bare = records.copy()
    bare.attrs = {}
    with pytest.raises(ValueError, match="attrs"):
        CostModel().fit(bare)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['trace'\]"):
        CostModel().fit(records.drop(columns=["trace"]))
    with pytest.raises(ValueError, match="at least 4 successful"):
        CostModel().quality(_with_failures(records, list(range(21))))


def test_samples_of_another_workload(model, target):
    other = mx.Space(mx.workload("GMM", n=32, m=32, k=32), target=target).sample(3, seed=0)
    with pytest.raises(ValueError, match=r"fitted on GMM b=1 n=64 m=64 k=64.*of GMM b=1 n=32 m=32 k=32"):
        model.predict(other)
    assert np.isfinite(model.predict(other, allow_other_workload=True)).all()


def test_wrong_types_and_options(model, records, tmp_path):
    with pytest.raises(TypeError, match="SampleSet.*records DataFrame.*Schedule"):
        model.predict("samples")
    with pytest.raises(TypeError, match="SampleSet.*got list of int"):
        model.predict([1, 2])
    with pytest.raises(ValueError, match="failures must be one of"):
        CostModel(failures="drop")
    with pytest.raises(ValueError, match="unknown XGBoost option"):
        CostModel(max_dpeth=4)
    with pytest.raises(ValueError, match="seed"):
        CostModel(seed=-1)
    with pytest.raises(ValueError, match="test_fraction"):
        model.quality(records, test_fraction=1.5)
    with pytest.raises(ValueError, match="top_k"):
        model.quality(records, top_k=(0,))
    with pytest.raises(ValueError, match="by must be"):
        model.feature_importance(by="buffer")
    junk = tmp_path / "junk.tar.gz"
    junk.write_text("not a model")
    with pytest.raises(ValueError, match="not a cost model written by CostModel.save"):
        CostModel.load(junk)
