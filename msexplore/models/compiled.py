"""Compiling a tuned model with no task left untuned, checking it against its source, timing it, exporting it.

TVM's ``compile_relax`` compiles a task without a record naive and single-threaded (100-200x slower, silently).
Here every task gets the best *verified* record of the run's folders (any model's tasks of the same workload
count), and a task without one gets the fastest of a few measured, verified samples of its space: ``fallbacks``
names those tasks and what their schedules cost.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import tvm
from tvm import relax

from ..workloads import TensorSpec
from .bundle import export_model, input_specs, read_bundle
from .model import Model

__all__ = ["compile_model", "load_model", "CompiledModel", "Fallback", "ModelCheck"]

FALLBACK_SAMPLES = 32  # samples drawn for a task without a record; up to FALLBACK_MEASURED of the valid are measured
FALLBACK_MEASURED = 4


@dataclasses.dataclass(frozen=True)
class Fallback:
    """A task compiled without a tuning record: the schedule it got instead and its measured latency."""

    task: str
    weight: int
    latency_s: float | None  # None when no sample of its space could be measured (then: TVM's default lowering)
    how: str

    def __str__(self) -> str:
        cost = "unmeasured" if self.latency_s is None else f"{self.latency_s * 1e6:.1f} us x {self.weight}"
        return f"{self.task}: {self.how} ({cost})"


@dataclasses.dataclass(frozen=True)
class ModelCheck:
    """The compiled model's outputs against its source's (PyTorch, or the untuned Relax build) on random inputs."""

    against: str
    ok: bool
    max_abs_error: float
    max_rel_error: float
    rtol: float
    atol: float

    def __str__(self) -> str:
        verdict = "match" if self.ok else "DO NOT match"
        return (
            f"outputs {verdict} {self.against}: max abs error {self.max_abs_error:.2e}, max rel error "
            f"{self.max_rel_error:.2e} (rtol {self.rtol:.0e}, atol {self.atol:.0e})"
        )


def compile_model(
    model: Model,
    records: Any = (),
    *,
    check: bool = True,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> CompiledModel:
    """Compile ``model`` with the best verified record per task found in ``records``.

    ``records``: a ``ModelRun``, a model run's folder, a search folder, or a list of them; where a folder's
    candidates were re-timed (``ModelRun.confirm``), its fastest by the confirmed median. A task without a record
    gets a measured sample of its space (see ``CompiledModel.fallbacks``), never TVM's naive lowering when a valid
    sample exists. With ``check`` the outputs are compared with the model's source on random inputs.
    """
    from tvm.s_tir import meta_schedule as ms

    if not isinstance(model, Model):
        raise TypeError(f"compile_model expects an mx.Model, got {type(model).__name__}")
    best = _best_records(records)
    from ..traces import trace_to_json

    database = ms.database.MemoryDatabase()
    fallbacks: list[Fallback] = []
    used: list[dict[str, Any]] = []  # what the bundle keeps as its tuning records
    for task in model.task_list:
        wl = task.workload
        key = _key(wl)
        if key in best:
            _commit(database, wl, best[key].trace, best[key].latency_s, model.target)
            used.append(_used(task, "confirmed" if best[key].confirmed else "tuned", best[key].latency_s,
                              best[key].trace))
            continue
        fallback, trace = _fallback(task, model.target)
        fallbacks.append(fallback)
        if trace is not None:
            _commit(database, wl, trace, fallback.latency_s or 1.0, model.target)
            used.append(_used(task, "fallback", fallback.latency_s, trace_to_json(trace)))
    untuned = _unscheduled(model, database)
    if untuned:  # pragma: no cover - a record was committed for every task whose space has a valid sample
        raise RuntimeError(f"tasks {untuned} of {model.name} have no schedule in the database")
    with tvm.transform.PassContext(opt_level=3):
        executable = ms.relax_integration.compile_relax(database, model.mod, model.target, None)
    compiled = CompiledModel(
        model.name, model.inputs, executable, fallbacks=tuple(fallbacks), records=tuple(used), model=model
    )
    if fallbacks:
        warnings.warn(
            f"{len(fallbacks)} task(s) of {model.name} had no tuning record and got a fallback schedule: "
            + "; ".join(str(f) for f in fallbacks)
            + ". Tune them (mx.tune_model) for a faster model.",
            stacklevel=2,
        )
    if check:
        compiled.check = compiled.compare_with_source(rtol=rtol, atol=atol)
        if not compiled.check.ok:
            hint = " (fast math is on: fast_math=False when making the Model computes exp/erf/tanh/GELU exactly)"
            warnings.warn(f"{model.name}: {compiled.check}{hint if model.fast_math else ''}", stacklevel=2)
    return compiled


def load_model(path: str | os.PathLike, *, verify: bool = True) -> CompiledModel:
    """A model bundle written by ``CompiledModel.export``, every file checked against its sha256 first (a file
    altered since the export is refused by name). Needs neither torch nor the tuning run."""
    manifest, library, records = read_bundle(path, verify=verify)
    fallbacks = tuple(Fallback(**f) for f in manifest.get("fallbacks", ()))
    return CompiledModel(manifest["name"], input_specs(manifest), library, fallbacks=fallbacks, records=tuple(records))


class CompiledModel:
    """A compiled model, called on numpy arrays (or torch tensors); returns numpy arrays."""

    def __init__(
        self,
        name: str,
        inputs: Sequence[TensorSpec],
        executable: Any,
        *,
        fallbacks: tuple[Fallback, ...] = (),
        records: tuple[dict[str, Any], ...] = (),
        model: Model | None = None,
    ) -> None:
        self.name = name
        self.inputs = tuple(inputs)
        self.executable = executable
        self.fallbacks = fallbacks
        self.records = records  # per task: the record it was compiled with (tuned, or a fallback sample)
        self.model = model
        self.check: ModelCheck | None = None
        self._vm = relax.VirtualMachine(executable, tvm.cpu())

    def __call__(self, *inputs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        arrays = self._arrays(inputs)
        out = self._vm["main"](*[tvm.runtime.tensor(a) for a in arrays])
        return _to_numpy(out)

    def _arrays(self, inputs: Sequence[Any]) -> list[np.ndarray]:
        if len(inputs) != len(self.inputs):
            names = ", ".join(str(s) for s in self.inputs)
            raise TypeError(f"{self.name} takes {len(self.inputs)} input(s) ({names}), got {len(inputs)}")
        arrays = []
        for k, (spec, value) in enumerate(zip(self.inputs, inputs)):
            array = _as_array(value, f"input {k} ({spec.name})")
            if array.shape != spec.shape or str(array.dtype) != spec.dtype:
                raise ValueError(
                    f"input {k} ({spec.name}): expected shape {spec.shape} {spec.dtype}, "
                    f"got shape {array.shape} {array.dtype}"
                )
            arrays.append(np.ascontiguousarray(array))
        return arrays

    def random_inputs(self, seed: int = 0) -> list[np.ndarray]:
        """One array per input, uniform in [-1, 1) for floats; the same seed gives the same arrays."""
        rng = np.random.default_rng(seed)
        out = []
        for spec in self.inputs:
            if spec.dtype.startswith("float"):
                out.append(rng.uniform(-1, 1, spec.shape).astype(spec.dtype))
            else:
                out.append(rng.integers(0, 8, spec.shape).astype(spec.dtype))
        return out

    def compare_with_source(self, *, seed: int = 0, rtol: float = 1e-4, atol: float = 1e-4) -> ModelCheck:
        """The outputs on random inputs against the model's source: PyTorch eager for a model from torch, the
        Relax module built without tuning otherwise."""
        if self.model is None:
            raise ValueError(f"{self.name}: compare_with_source needs the model it was compiled from")
        inputs = self.random_inputs(seed)
        got = _as_tuple(self(*inputs))
        against, want = self.model.reference(inputs)
        abs_err = max((float(np.max(np.abs(g - w))) if g.size else 0.0) for g, w in zip(got, want))
        rel_err = max(
            (float(np.max(np.abs(g - w) / np.maximum(np.abs(w), 1e-12))) if g.size else 0.0) for g, w in zip(got, want)
        )
        ok = len(got) == len(want) and all(
            g.shape == w.shape and np.allclose(g, w, rtol=rtol, atol=atol) for g, w in zip(got, want)
        )
        return ModelCheck(against, ok, abs_err, rel_err, rtol, atol)

    def timer(self, *, number: int = 10, min_repeat_ms: int = 50) -> Any:
        """TVM's time evaluator of one call: ``timer(*tvm_tensors).results[0]`` is seconds per call."""
        return self._vm.time_evaluator("main", tvm.cpu(), number=number, repeat=1, min_repeat_ms=min_repeat_ms)

    def benchmark(self, *, repeat: int = 7, number: int | None = None, seed: int = 0) -> dict[str, Any]:
        """Median latency (seconds) over ``repeat`` rounds; beside PyTorch eager when the model came from torch.

        The two are timed alternately, round by round, so a noisy machine affects both alike.
        """
        inputs = self.random_inputs(seed)
        tensors = [tvm.runtime.tensor(a) for a in inputs]
        timer = self.timer(number=number or 10)
        torch_call = None if self.model is None else self.model.torch_callable(inputs)
        ours, theirs = [], []
        for _ in range(repeat):
            ours.append(float(timer(*tensors).results[0]))
            if torch_call is not None:
                theirs.append(_time(torch_call, number or 10))
        result = {"median_s": statistics.median(ours), "results_s": ours}
        if theirs:
            result["torch_median_s"] = statistics.median(theirs)
            result["speedup_vs_torch"] = result["torch_median_s"] / result["median_s"]
        return result

    def export(self, path: str | os.PathLike, *, overwrite: bool = False) -> Any:
        """Write a model bundle (library, manifest with checksums); ``mx.load_model`` loads it without torch."""
        return export_model(self, path, overwrite=overwrite)

    def __repr__(self) -> str:
        inputs = " ".join(str(s) for s in self.inputs)
        fallback = f", {len(self.fallbacks)} fallback task(s)" if self.fallbacks else ""
        check = "" if self.check is None else f", {'checked' if self.check.ok else 'CHECK FAILED'}"
        return f"CompiledModel({self.name}, inputs {inputs}{fallback}{check})"


# ---- records ----


@dataclasses.dataclass(frozen=True)
class _Best:
    latency_s: float
    trace: Any  # trace JSON
    confirmed: bool = False  # latency_s is the median of a confirmation's rounds, not the search's single timing


def _best_records(records: Any) -> dict[str, _Best]:
    """The fastest verified candidate per workload (keyed by its JSON) over every search folder in ``records``.

    A folder whose candidates were re-timed (``run.confirm``, ``ModelRun.confirm``) since its last session offers
    its fastest by the confirmed median instead of its fastest single timing, and a confirmed pick wins over the
    unconfirmed folders of the same workload (their single timings run lower than medians: they are not compared).
    """
    from ..search.confirm import folder_confirmed_latencies
    from ..search.folder import RunFolder
    from .folder import ModelFolder

    folders: list[RunFolder] = []
    for item in ([records] if isinstance(records, (str, os.PathLike)) or hasattr(records, "work_dir") else records):
        path = getattr(item, "work_dir", item)
        model_folder = ModelFolder(path)
        if model_folder.read_config() is not None:
            folders += model_folder.task_folders()
        elif RunFolder(path).is_run():
            folders.append(RunFolder(path))
        else:
            raise ValueError(f"{path!r} is neither an mx.tune_model folder nor an mx.search folder")
    best: dict[str, _Best] = {}
    for folder in folders:
        config = folder.read_config() or {}
        if "workload" not in config:
            continue
        key = _json_key(config["workload"])
        events = folder.history()
        confirmed = folder_confirmed_latencies(folder, len(events))
        by_index = {e.index: e for e in events if e.ok and e.trace is not None}
        if confirmed and set(confirmed) & set(by_index):
            index = min(set(confirmed) & set(by_index), key=confirmed.__getitem__)
            offers = [_Best(confirmed[index], by_index[index].trace, confirmed=True)]
        else:
            offers = [_Best(e.latency_s, e.trace) for e in by_index.values()]
        for offer in offers:
            held = best.get(key)
            if held is None or (offer.confirmed, -offer.latency_s) > (held.confirmed, -held.latency_s):
                best[key] = offer
    return best


def _used(task: Any, source: str, latency_s: float | None, trace: Any) -> dict[str, Any]:
    return {"task": task.name, "weight": task.weight, "source": source, "latency_s": latency_s, "trace": trace}


def _key(workload: Any) -> str:
    return _json_key(workload.to_json())


def _json_key(data: dict) -> str:
    """A workload's identity across models: its function's text (task names differ between models)."""
    return str(data.get("script") or data)


def _commit(database: Any, workload: Any, trace: Any, latency_s: float, target: Any) -> None:
    from tvm.s_tir import meta_schedule as ms

    from ..schedules import replay_json

    if not isinstance(trace, tvm.s_tir.Trace):
        trace = replay_json(trace, workload).trace
    entry = database.commit_workload(workload.mod)
    args = ms.arg_info.ArgInfo.from_prim_func(workload.func)
    database.commit_tuning_record(ms.database.TuningRecord(trace, entry, [float(latency_s)], target, args))


def _fallback(task: Any, target: Any) -> tuple[Fallback, Any]:
    """The fastest of a few measured, verified samples of the task's default space."""
    from ..measure import measure
    from ..space import Space

    space = Space(task.workload, target=target)
    valid = [s for s in space.sample(FALLBACK_SAMPLES, seed=0) if s.valid][:FALLBACK_MEASURED]
    if not valid:
        return Fallback(task.name, task.weight, None, "no valid sample of its space: TVM's default lowering"), None
    measured = measure([s.schedule for s in valid], task.workload, target=target)
    ok = [(m.latency_s, s) for m, s in zip(measured, valid) if m.ok]
    if not ok:
        return Fallback(task.name, task.weight, None, "no sample passed its check: TVM's default lowering"), None
    latency, sample = min(ok, key=lambda pair: pair[0])
    how = f"the fastest of {len(valid)} measured samples of its default space"
    return Fallback(task.name, task.weight, latency, how), sample.trace


def _unscheduled(model: Model, database: Any) -> list[str]:
    """The model's TIR functions that ``database`` leaves unscheduled (what compile_relax would lower naively)."""
    with model.target, database, tvm.transform.PassContext(opt_level=3):
        applied = relax.transform.MetaScheduleApplyDatabase(enable_warning=False)(model.prepared)
    return [
        gv.name_hint
        for gv, func in applied.functions.items()
        if isinstance(func, tvm.tirx.PrimFunc) and not (func.attrs and func.attrs.get("tirx.is_scheduled", False))
        and gv.name_hint in {t.name for t in model.task_list}
    ]


# ---- small conversions ----


def _as_array(value: Any, label: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        return value.detach().cpu().numpy()
    if isinstance(value, tvm.runtime.Tensor):
        return value.numpy()
    raise TypeError(f"{label}: expected a numpy array or a torch tensor, got {type(value).__name__}")


def _to_numpy(out: Any) -> np.ndarray | tuple[np.ndarray, ...]:
    if isinstance(out, tvm.runtime.Tensor):
        return out.numpy()
    return tuple(_to_numpy(x) for x in out)


def _as_tuple(out: Any) -> tuple[np.ndarray, ...]:
    return out if isinstance(out, tuple) else (out,)


def _time(call: Any, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        call()
    return (time.perf_counter() - start) / number
