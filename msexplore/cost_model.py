"""CostModel: MetaSchedule's own XGBoost cost model (``XGBModel`` over ``PerStoreFeature``), fitted on a run's records.

>>> model = mx.CostModel().fit(run.records)
>>> model.predict(samples)              # higher = predicted faster; also fills samples.df["predicted"]
>>> model.quality(run.records)          # Spearman and top-k recall on records held out from a fit on the rest

The scores are TVM's: normalized throughput, ``min latency / latency`` of the training records (1 = as fast as
the best record it was fitted on). Unlike ``ms.CostModel.create("xgb")``, which returns uniform random numbers
until 100 samples are measured, a fitted ``CostModel`` always predicts with its trees, and an unfitted one raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import tarfile
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from . import _quiet
from .common import check_choice, check_non_negative_int, check_positive_int
from .cost_model_features import FEATURE_GROUP_OF, FEATURE_GROUPS, FEATURE_NAMES, N_FEATURES, feature_frame
from .schedules import replay_json

__all__ = ["CostModel", "Quality", "NotFittedError"]

FORMAT = "msexplore.cost_model"
VERSION = 1
META_FILE = "msexplore.json"
# The members of TVM's XGBModel tar, kept so that TVM reads the file too; the trees in an explicit XGBoost format.
TREES_FILE, DATA_FILE, TREES_FORMAT = "model.bin", "data.npy", "ubj"
FAILURE_MODES = ("skip", "zero")
_FIXED_OPTIONS = ("seed", "nthread")  # set through CostModel(seed=, num_threads=)
_ACCEPTED = "an mx.SampleSet, a records DataFrame (run.records / mx.read_records) or a list of tvm.s_tir.Schedule"


class NotFittedError(RuntimeError):
    """The model has not been fitted yet: it has nothing to predict with or to save."""


@dataclasses.dataclass(frozen=True)
class Quality:
    """How well a model fitted on part of the successful records ranks the others (see ``CostModel.quality``)."""

    spearman: float  # rank correlation of predicted score and measured throughput on the test records
    top_k_recall: dict[Any, float]  # k -> share of the k fastest test records among the k best-scored (NaN: k > n_test)
    random_top_k_recall: dict[Any, float]  # what a random ranking scores on average: k / n_test
    n: int  # successful records, split into train and test
    n_train: int
    n_test: int
    n_failed: int  # failed records: never tested; trained on (as zero throughput) only with failures="zero"
    seed: int
    test_fraction: float
    test_trials: tuple[int, ...] = dataclasses.field(repr=False)
    predicted: tuple[float, ...] = dataclasses.field(repr=False)  # per test trial
    latency_s: tuple[float, ...] = dataclasses.field(repr=False)  # per test trial

    def __str__(self) -> str:
        recall = ", ".join(
            f"top-{k if isinstance(k, int) else f'{k:.0%}'} {v:.2f} (random {self.random_top_k_recall[k]:.2f})"
            for k, v in self.top_k_recall.items()
        )
        return (
            f"held-out quality on {self.n_test} of {self.n} successful records (trained on {self.n_train}): "
            f"Spearman {self.spearman:.2f}; recall {recall}"
        )


class CostModel:
    """MetaSchedule's XGBoost cost model, fitted on measured records and used to score schedules.

    Parameters
    ----------
    seed
        XGBoost's seed and the default seed of ``quality``'s train/test split.
    num_threads
        XGBoost threads. With 1 (the default) predictions are bit-identical on any machine.
    failures
        What ``fit`` does with failed records (build or run errors, wrong results): ``"skip"`` leaves them out;
        ``"zero"`` trains on them as MetaSchedule does during a search, with a cost of 1e10 s, i.e. a throughput
        of ~0. (TVM's loss weighs each record by its throughput, so such records barely move the trees either way.)
    **xgb_options
        Fields of TVM's ``XGBConfig``: ``max_depth`` (10), ``gamma`` (0.001), ``min_child_weight`` (0), ``eta``
        (0.2), ``tree_method`` ("auto"; set here it is honoured, unlike ``XGBModel(tree_method=...)``).
    """

    def __init__(
        self, *, seed: int = 0, num_threads: int = 1, failures: Literal["skip", "zero"] = "skip", **xgb_options: Any
    ) -> None:
        from tvm.s_tir.meta_schedule.cost_model.xgb_model import XGBConfig

        seed = check_non_negative_int("seed", seed)
        num_threads = check_positive_int("num_threads", num_threads)
        check_choice("failures", failures, FAILURE_MODES)
        allowed = [f for f in XGBConfig._fields if f not in _FIXED_OPTIONS]
        unknown = [k for k in xgb_options if k not in allowed]
        if unknown:
            raise ValueError(
                f"unknown XGBoost option(s) {unknown}; accepted: {allowed} (seed and num_threads are arguments)"
            )
        self.seed = seed
        self.num_threads = num_threads
        self.failures = failures
        self.xgb_options = dict(xgb_options)
        self._tvm = self._new_tvm_model()
        self._workload: Any = None  # the fitted workload (msexplore Workload)
        self._target: str | None = None
        self.n_records = 0  # records trained on
        self.n_skipped = 0  # failed records left out (failures="skip")

    def _new_tvm_model(self) -> Any:
        from tvm.s_tir import meta_schedule as ms
        from tvm.s_tir.meta_schedule.cost_model.xgb_model import XGBConfig

        config = XGBConfig(seed=self.seed, nthread=self.num_threads, **self.xgb_options)
        # num_warmup_samples=0: TVM's default (100) returns random numbers until 100 records are measured
        return ms.cost_model.XGBModel(
            extractor=ms.feature_extractor.PerStoreFeature(), config=config, num_warmup_samples=0
        )

    # ---- state ----
    @property
    def tvm_model(self) -> Any:
        """The underlying ``ms.cost_model.XGBModel``, e.g. ``mx.search(space, cost_model=model.tvm_model)``.

        A search keeps training this very object (it appends its measurements and refits), so save the model
        first if you want to keep this state.
        """
        return self._tvm

    @property
    def fitted(self) -> bool:
        return self._tvm.booster is not None

    @property
    def workload(self) -> Any:
        """The workload the model was fitted on (``None`` before ``fit``)."""
        return self._workload

    def _require_fitted(self, action: str) -> None:
        if not self.fitted:
            raise NotFittedError(
                f"cannot {action} an unfitted CostModel: fit the model first, e.g. model.fit(run.records)"
            )

    # ---- fit / predict ----
    def fit(self, records: pd.DataFrame) -> CostModel:
        """Train from scratch on ``records`` (a second ``fit`` replaces the first); returns the model.

        Each successful record is one MetaSchedule measurement (its median latency); failed ones are skipped or
        trained on as zero throughput (see ``failures``).
        """
        from tvm.s_tir import meta_schedule as ms

        _check_records(records, "fit")
        ok = _ok_mask(records)
        if not ok.any():
            raise ValueError(
                f"fit: the records have no successful candidate ({len(records)} failed); nothing to learn from"
            )
        use = ok | (records["trace"].notna() & (self.failures == "zero"))
        rows = records[use]
        workload, target = _records_context(records)
        context = _tune_context(workload, target)
        candidates = []
        for trial, trace in zip(rows["trial"], rows["trace"]):
            sch = _replay(workload, trace)
            if sch is None:
                raise ValueError(f"fit: the trace of trial {trial} does not replay on {_label(workload)}")
            candidates.append(_candidate(sch, workload))
        results = [
            ms.runner.RunnerResult(run_secs=[float(lat)], error_msg=None)
            if good else ms.runner.RunnerResult(run_secs=None, error_msg="failed")
            for lat, good in zip(rows["latency_s"], ok[use])
        ]
        fresh = self._new_tvm_model()
        _quiet.install()
        fresh.update(context, candidates, results)
        self._tvm, self._workload, self._target = fresh, workload, str(target)
        self.n_records = len(rows)
        self.n_skipped = int((~ok).sum()) if self.failures == "skip" else 0
        return self

    def predict(self, items: Any, *, allow_other_workload: bool = False) -> np.ndarray:
        """Scores (higher = predicted faster), one per item; NaN where there is no program to score.

        ``items`` is an ``mx.SampleSet`` (invalid samples get NaN, and ``samples.df["predicted"]`` is filled),
        a records DataFrame (rows whose trace does not replay get NaN; its ``predicted`` column, the search's own
        prediction, is left alone) or a list of ``tvm.s_tir.Schedule`` of the fitted workload. Items of another
        workload raise ``ValueError`` unless ``allow_other_workload=True``.
        """
        self._require_fitted("predict with")
        workload, target, schedules = self._resolve(items, "predict")
        if not allow_other_workload and workload.to_json() != self._workload.to_json():
            raise ValueError(
                f"predict: the model was fitted on {_label(self._workload)}, the items are of {_label(workload)}; "
                "fit a model on this workload's records (or pass allow_other_workload=True)"
            )
        scores = np.full(len(schedules), np.nan)
        index = [k for k, s in enumerate(schedules) if s is not None]
        if index:
            context = _tune_context(workload, target)
            got = self._tvm.predict(context, [_candidate(schedules[k], workload) for k in index])
            if len(got) != len(index):  # TVM drops trailing programs without any store from its pack-sum
                raise RuntimeError(f"TVM returned {len(got)} scores for {len(index)} programs")
            scores[index] = got
        from .sampling import SampleSet

        if isinstance(items, SampleSet):
            items.df["predicted"] = scores
        return scores

    def features(self, items: Any) -> pd.DataFrame:
        """What the model sees: one row per (candidate, buffer store) with the 164 named PerStoreFeature values."""
        workload, target, schedules = self._resolve(items, "features")
        index = [k for k, s in enumerate(schedules) if s is not None]
        context = _tune_context(workload, target)
        extracted = self._tvm.extractor.extract_from(context, [_candidate(schedules[k], workload) for k in index])
        df = feature_frame([x.numpy() for x in extracted])
        df["candidate"] = np.asarray(index, dtype=int)[df["candidate"].to_numpy()] if len(df) else df["candidate"]
        return df

    def _resolve(self, items: Any, action: str) -> tuple[Any, Any, list[Any]]:
        """(workload, target, one Schedule or None per item)."""
        from tvm.s_tir import Schedule

        from .sampling import SampleSet
        from .target import resolve_target

        if isinstance(items, SampleSet):
            return items.space.workload, items.space.target, [s.schedule if s.valid else None for s in items]
        if isinstance(items, pd.DataFrame):
            _check_records(items, action)
            workload, target = _records_context(items)
            return workload, target, [_replay(workload, t) for t in items["trace"]]
        if isinstance(items, (list, tuple)) and all(isinstance(s, Schedule) for s in items):
            if self._workload is None:
                raise NotFittedError(f"cannot {action} a list of Schedules before fit: fit the model first")
            return self._workload, resolve_target(json.loads(self._target)), list(items)
        raise TypeError(f"{action} expects {_ACCEPTED}; got {_describe(items)}")

    # ---- evaluation ----
    def quality(
        self,
        records: pd.DataFrame,
        *,
        test_fraction: float = 0.25,
        top_k: Sequence[int | float] = (1, 5, 10),
        seed: int | None = None,
    ) -> Quality:
        """Fit a fresh model (this one's settings; this one is not changed) on part of the records, score the rest.

        The successful records are shuffled with ``seed`` (default: the model's) and ``round(test_fraction * n)``
        of them (at least 2, leaving at least 2) are held out; the model is fitted on the others (plus the failed
        records with ``failures="zero"``). On the held-out records: ``spearman`` is the Spearman rank correlation
        of predicted score and measured throughput (1 / latency; NaN if either is constant); ``top_k_recall[k]``
        is the share of the k fastest held-out records among the k best-scored ones (k an int, or a fraction of
        the held-out records, rounded up; NaN when k exceeds them).
        """
        _check_records(records, "quality")
        if not isinstance(test_fraction, (int, float)) or isinstance(test_fraction, bool) or not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
        ks = _check_top_k(top_k)
        seed = check_non_negative_int("seed", self.seed if seed is None else seed)
        ok = _ok_mask(records)
        good = records[ok]
        n = len(good)
        if n < 4:
            raise ValueError(f"quality needs at least 4 successful records to hold some out; these have {n}")
        n_test = min(max(2, round(test_fraction * n)), n - 2)
        order = np.random.default_rng(seed).permutation(n)
        test = good.iloc[np.sort(order[:n_test])].copy()
        train = good.iloc[np.sort(order[n_test:])].copy()
        if self.failures == "zero":
            train = pd.concat([train, records[~ok]]).sort_index()
        test.attrs, train.attrs = dict(records.attrs), dict(records.attrs)
        model = CostModel(seed=self.seed, num_threads=self.num_threads, failures=self.failures, **self.xgb_options)
        model.fit(train)
        predicted = model.predict(test)
        latency = test["latency_s"].to_numpy(dtype=float)
        recall, random_recall = {}, {}
        for k in ks:
            size = k if isinstance(k, int) else math.ceil(k * n_test)
            random_recall[k] = size / n_test if size <= n_test else math.nan
            recall[k] = _recall(predicted, latency, size) if size <= n_test else math.nan
        return Quality(
            spearman=_spearman(predicted, 1.0 / latency),
            top_k_recall=recall,
            random_top_k_recall=random_recall,
            n=n,
            n_train=n - n_test,
            n_test=n_test,
            n_failed=int((~ok).sum()),
            seed=seed,
            test_fraction=float(test_fraction),
            test_trials=tuple(int(t) for t in test["trial"]),
            predicted=tuple(float(p) for p in predicted),
            latency_s=tuple(float(x) for x in latency),
        )

    def feature_importance(self, by: Literal["group", "feature"] = "group") -> pd.DataFrame:
        """XGBoost's split counts (``weight``) and total gain per feature group (or per feature), largest first.

        ``gain_share`` is the group's share of the total gain. Groups and names: ``msexplore.cost_model_features``.
        """
        self._require_fitted("compute feature importance of")
        check_choice("by", by, ("group", "feature"))
        booster = self._tvm.booster
        weight = booster.get_score(importance_type="weight")
        gain = booster.get_score(importance_type="total_gain")
        per_feature = pd.DataFrame(
            {
                "feature": FEATURE_NAMES,
                "group": FEATURE_GROUP_OF,
                "weight": [int(weight.get(f"f{i}", 0)) for i in range(N_FEATURES)],
                "total_gain": [float(gain.get(f"f{i}", 0.0)) for i in range(N_FEATURES)],
            }
        )
        if by == "feature":
            out = per_feature.set_index("feature")
        else:
            out = per_feature.groupby("group", sort=False).agg(
                n_features=("feature", "size"), weight=("weight", "sum"), total_gain=("total_gain", "sum")
            )
            out["description"] = [FEATURE_GROUPS[g] for g in out.index]
        total = out["total_gain"].sum()
        out.insert(out.columns.get_loc("total_gain") + 1, "gain_share", out["total_gain"] / total if total else 0.0)
        return out.sort_values("total_gain", ascending=False, kind="stable")

    # ---- files ----
    def save(self, path: str | os.PathLike) -> None:
        """Write the model: the layout of TVM's ``XGBModel.save`` tar (``model.bin``, ``data.npy``) plus
        ``msexplore.json``.

        The trees are written in XGBoost's UBJSON format, named explicitly (``Booster.save_raw("ubj")``): TVM's own
        ``save`` leaves the format to the ``.bin`` extension, and XGBoost then warns on stderr, from C++, once when
        saving and once when loading. ``ms.cost_model.XGBModel().load(path)`` still reads the file. An unfitted
        model is refused: TVM cannot load the file it writes for one.
        """
        self._require_fitted("save")
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "trees": TREES_FORMAT,
            "workload": self._workload.to_json(),
            "target": self._target,
            "options": {
                "seed": self.seed, "num_threads": self.num_threads, "failures": self.failures, **self.xgb_options
            },
            "n_records": self.n_records,
            "n_skipped": self.n_skipped,
        }
        members = {
            TREES_FILE: bytes(self._tvm.booster.save_raw(raw_format=TREES_FORMAT)),
            DATA_FILE: _data_npy(self._tvm.data),
            META_FILE: json.dumps(meta, indent=1).encode(),
        }
        path = os.fspath(path)
        out = f"{path}.tmp-{os.getpid()}"
        try:
            with tarfile.open(out, "w:gz") as tar:
                for name, data in members.items():
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime = len(data), int(time.time())
                    tar.addfile(info, io.BytesIO(data))
            os.replace(out, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(out)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> CostModel:
        """Read a model written by ``save``: same settings, same trees, identical predictions."""
        from .workloads import Workload

        path = os.fspath(path)
        try:
            with tarfile.open(path, "r:*") as tar:
                files = {name: tar.extractfile(name).read() for name in (META_FILE, TREES_FILE, DATA_FILE)
                         if name in tar.getnames()}
            meta = json.loads(files[META_FILE]) if META_FILE in files else None
        except (tarfile.TarError, OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a cost model written by CostModel.save ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a cost model written by CostModel.save (no {META_FILE})")
        if TREES_FILE not in files:
            raise ValueError(f"{path}: holds no trained trees (the model was saved before it was fitted)")
        model = cls(**meta["options"])
        model._tvm.data, model._tvm.data_size = _read_data_npy(files.get(DATA_FILE))
        model._tvm.booster = _booster(files[TREES_FILE])
        model._workload = Workload.from_json(meta["workload"])
        model._target = meta["target"]
        model.n_records = int(meta["n_records"])
        model.n_skipped = int(meta["n_skipped"])
        return model

    def __repr__(self) -> str:
        if not self.fitted:
            return "CostModel(xgb, not fitted)"
        skipped = f", {self.n_skipped} failed skipped" if self.n_skipped else ""
        return f"CostModel(xgb, fitted on {self.n_records} records of {_label(self._workload)}{skipped})"


# ---- helpers ------------------------------------------------------------------------------------------------


def _check_records(records: Any, action: str) -> None:
    if not isinstance(records, pd.DataFrame):
        raise TypeError(
            f"{action} expects a records DataFrame (run.records or mx.read_records(...)); got {_describe(records)}"
        )
    missing = [c for c in ("trial", "ok", "latency_s", "trace") if c not in records.columns]
    if missing:
        raise ValueError(f"{action}: the DataFrame lacks column(s) {missing}; pass run.records or mx.read_records(...)")
    if "workload" not in records.attrs or "target" not in records.attrs:
        raise ValueError(
            f"{action}: the DataFrame has no attrs['workload'] / attrs['target'] (an operation dropped them?); "
            "pass run.records or mx.read_records(...) directly"
        )
    if len(records) == 0:
        raise ValueError(f"{action}: the records are empty (no measured candidate)")


def _ok_mask(records: pd.DataFrame) -> pd.Series:
    latency = pd.to_numeric(records["latency_s"], errors="coerce")
    return records["ok"].astype(bool) & latency.notna() & (latency > 0) & records["trace"].notna()


def _records_context(records: pd.DataFrame) -> tuple[Any, Any]:
    from .target import resolve_target
    from .workloads import Workload

    return Workload.from_json(records.attrs["workload"]), resolve_target(records.attrs["target"])


def _tune_context(workload: Any, target: Any) -> Any:
    from tvm.s_tir import meta_schedule as ms

    from .target import load_tensor_intrinsics

    load_tensor_intrinsics(target)  # the target's only: TuneContext would parse every platform's
    # PerStoreFeature needs only the target (CPU or GPU) and the threads; XGBModel keys its data by the module hash
    return ms.TuneContext(mod=workload.mod, target=target, task_name=workload.name, num_threads=1)


def _data_npy(data: Any) -> bytes:
    """TVM's ``data.npy``: the training data of an ``XGBModel`` (one row per workload group), as ``XGBModel.save``
    writes it."""
    buffer = io.BytesIO()
    rows = [(g.group_hash, g.features, g.costs) for g in data.values()]
    np.save(buffer, np.array(rows, dtype=object))
    return buffer.getvalue()


def _read_data_npy(raw: bytes | None) -> tuple[dict[str, Any], int]:
    """``data.npy`` back as ``XGBModel.data`` and ``data_size``, as ``XGBModel.load`` reads it (none: empty)."""
    from collections import OrderedDict

    from tvm.s_tir.meta_schedule.cost_model.xgb_model import FeatureGroup

    data: dict[str, Any] = OrderedDict()
    for group_hash, features, costs in np.load(io.BytesIO(raw), allow_pickle=True) if raw else ():
        data[group_hash] = FeatureGroup(group_hash=group_hash, features=list(features), costs=costs)
    return data, sum(len(g.costs) for g in data.values())


def _booster(raw: bytes) -> Any:
    """The trees from their bytes: XGBoost reads the format from the bytes themselves (UBJSON here, and in the
    files of earlier versions, whose format XGBoost had guessed), with no file name to warn about."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster


def _replay(workload: Any, trace_json: Any) -> Any:
    """The schedule a recorded trace (JSON) produces on the workload, or None if it does not replay."""
    try:
        return replay_json(trace_json, workload)
    except ValueError:
        return None


def _candidate(sch: Any, workload: Any) -> Any:
    from tvm.s_tir import meta_schedule as ms

    return ms.MeasureCandidate(sch, ms.arg_info.ArgInfo.from_prim_func(workload.func))


def _check_top_k(top_k: Any) -> list[int | float]:
    items = list(top_k) if isinstance(top_k, (list, tuple)) else [top_k]
    for k in items:
        ok_int = isinstance(k, int) and not isinstance(k, bool) and k >= 1
        ok_frac = isinstance(k, float) and 0 < k <= 1
        if not (ok_int or ok_frac):
            raise ValueError(f"top_k holds positive integers or fractions in (0, 1]; got {k!r} in {top_k!r}")
    return items


def _recall(predicted: np.ndarray, latency: np.ndarray, k: int) -> float:
    """Share of the k fastest among the k best-scored (ties: earlier record first)."""
    fastest = set(np.argsort(latency, kind="stable")[:k])
    best_scored = set(np.argsort(-predicted, kind="stable")[:k])
    return len(fastest & best_scored) / k


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = pd.Series(a).rank(method="average").to_numpy()
    rb = pd.Series(b).rank(method="average").to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def _label(workload: Any) -> str:
    params = " ".join(f"{k}={v}" for k, v in workload.params.items())
    return f"{workload.name} {params}".strip()


def _describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        kinds = sorted({type(v).__name__ for v in value})
        return f"{type(value).__name__} of {', '.join(kinds) or 'nothing'}"
    return type(value).__name__
