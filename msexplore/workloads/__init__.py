"""Workloads: what MetaSchedule tunes, with its arguments, FLOP count, random inputs and a reference.

``workload(spec, **params)`` accepts the name of an operator of the paper's set (``"GMM"``, ``"C2D"``...)
or of the int8 operators (``"DENSE_U8S8"``, ``"C2D_U8S8"``; see ``workload_names()``), a PrimFunc written
with ``@T.prim_func(s_tir=True)``, an IRModule holding one such PrimFunc, or a list of TE tensors. The result is
normalized the way MetaSchedule's database keys
workloads: global symbol ``main`` and ``tirx.noalias``, so ``Workload.mod`` matches ``tune_tir``'s records.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import tvm
from tvm import te, tirx

from msexplore.workloads import _operators
from msexplore.workloads._reference import REFERENCES

__all__ = ["Comparison", "TensorSpec", "Workload", "workload", "workload_names"]

_SHORT_DTYPES = {"float": "f", "uint": "u", "int": "i", "bfloat": "bf"}
# Machine epsilon per float dtype: tolerances grow with it and with the reduction length.
_EPSILON = {"float64": 2.2e-16, "float32": 1.2e-7, "float16": 9.8e-4, "bfloat16": 7.8e-3}
_BASE_TOLERANCE = {"float64": 1e-7, "float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}


@dataclass(frozen=True)
class TensorSpec:
    """One PrimFunc argument: its buffer name, static shape and dtype string (``"float32"``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def __str__(self) -> str:
        short = self.dtype
        for prefix, letter in _SHORT_DTYPES.items():
            if self.dtype.startswith(prefix) and self.dtype[len(prefix) :].isdigit():
                short = letter + self.dtype[len(prefix) :]
        return f"{self.name}[{','.join(map(str, self.shape))}]{short}"


class Comparison(NamedTuple):
    """Outcome of ``Workload.compare``: within tolerance or not, and the worst errors over all outputs."""

    ok: bool
    max_abs_error: float
    max_rel_error: float


@dataclass(frozen=True, eq=False)
class Workload:
    """A PrimFunc ready for MetaSchedule plus what it takes to run and check it.

    Build it with ``workload(...)``. ``params`` holds the shape parameters of a named operator
    (``{}`` for a custom function); ``outputs`` are the indices in ``args`` that the function writes.
    """

    name: str
    func: tirx.PrimFunc = field(repr=False)
    params: dict[str, int]
    args: tuple[TensorSpec, ...]
    outputs: tuple[int, ...]
    flop: float
    # Inputs whose values are part of the program (argument index -> array), such as the constant index a model
    # passes to its `take` task: random values there would read out of bounds. make_inputs uses them as they are.
    fixed_inputs: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def mod(self) -> tvm.IRModule:
        """``IRModule({"main": func})``: what ``tune_tir`` stores in its database for this workload."""
        return tvm.IRModule({"main": self.func})

    @property
    def is_named(self) -> bool:
        """True for an operator of the named set (numpy reference), False for a custom function."""
        return self.name in _operators.OPERATORS and bool(self.params)

    def make_inputs(self, seed: int = 0) -> list[np.ndarray]:
        """One array per argument: inputs random (floats in [-1, 1), integers over their dtype's full
        range), outputs zero. The same seed gives the same arrays."""
        rng = np.random.default_rng(seed)
        arrays = [
            np.zeros(spec.shape, _numpy_dtype(spec.dtype)) if index in self.outputs else _random_array(rng, spec)
            for index, spec in enumerate(self.args)
        ]
        for index, value in self.fixed_inputs.items():
            arrays[index] = np.array(value, dtype=_numpy_dtype(self.args[index].dtype)).reshape(self.args[index].shape)
        return arrays

    def reference(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The expected outputs (one array per index in ``outputs``) for the inputs in ``arrays``.

        Named operators use numpy; custom functions run the unscheduled PrimFunc built for the host CPU.
        ``arrays`` holds one array per argument, as ``make_inputs`` returns; it is not modified.
        """
        arrays = [_as_numpy(array) for array in arrays]
        if len(arrays) != len(self.args):
            raise ValueError(f"{self.name} takes {len(self.args)} arrays (one per argument), got {len(arrays)}")
        if self.is_named:
            inputs = [array for index, array in enumerate(arrays) if index not in self.outputs]
            results = REFERENCES[self.name](self.params, inputs)
            return [
                np.asarray(result).astype(_numpy_dtype(self.args[index].dtype))
                for index, result in zip(self.outputs, results)
            ]
        device = tvm.cpu(0)
        tensors = [tvm.runtime.tensor(np.array(array, copy=True), device) for array in arrays]
        self._reference_module["main"](*tensors)
        return [tensors[index].numpy() for index in self.outputs]

    @functools.cached_property
    def _reference_module(self) -> tvm.runtime.Module:
        from msexplore.target import host_target  # the host CPU with its real mcpu/mtriple

        return tvm.tirx.build(self.mod, host_target())

    @property
    def tolerance(self) -> tuple[float, float]:
        """``(rtol, atol)`` for the outputs: exact for integers; for floats it grows with the dtype's
        epsilon times the reduction length (FLOP per output element / 2), since sums are reordered."""
        out_elements = sum(int(np.prod(self.args[index].shape)) for index in self.outputs)
        reduction = max(1.0, self.flop / (2 * max(out_elements, 1)))
        rtol = atol = 0.0
        for index in self.outputs:
            dtype = self.args[index].dtype
            if dtype in _EPSILON:
                rtol = max(rtol, _BASE_TOLERANCE[dtype])
                atol = max(atol, _BASE_TOLERANCE[dtype], 4 * _EPSILON[dtype] * reduction)
        return rtol, atol

    def compare(self, actual: list[Any], expected: list[Any]) -> Comparison:
        """Compare outputs (numpy arrays or TVM tensors, one per output) within ``tolerance``.

        ``max_rel_error`` divides by ``max(|expected|, atol)`` (or 1 for integers), so zeros do not blow it up.
        """
        if len(actual) != len(expected):
            raise ValueError(f"got {len(actual)} actual and {len(expected)} expected outputs")
        rtol, atol = self.tolerance
        ok, max_abs, max_rel = True, 0.0, 0.0
        for got, want in zip(actual, expected):
            got, want = _as_numpy(got), _as_numpy(want)
            if got.shape != want.shape:
                raise ValueError(f"output shapes differ: actual {got.shape}, expected {want.shape}")
            got64, want64 = got.astype(np.float64), want.astype(np.float64)
            error = np.abs(got64 - want64)
            error[np.isnan(got64) & np.isnan(want64)] = 0.0
            error[np.isnan(got64) != np.isnan(want64)] = np.inf
            if error.size:
                max_abs = max(max_abs, float(error.max()))
                max_rel = max(max_rel, float((error / np.maximum(np.abs(want64), atol or 1.0)).max()))
            ok = ok and bool(np.all(error <= atol + rtol * np.abs(np.nan_to_num(want64))))
        return Comparison(ok, max_abs, max_rel)

    def to_json(self) -> dict[str, Any]:
        """A plain dict: ``{"kind": "named", ...}`` with the parameters, or ``{"kind": "tvmscript", ...}``
        with the function's TVMScript. ``Workload.from_json`` rebuilds an equal workload."""
        if self.is_named:
            return {"kind": "named", "name": self.name, "params": dict(self.params)}
        data = {"kind": "tvmscript", "name": self.name, "script": self.func.script()}
        if self.fixed_inputs:
            data["fixed_inputs"] = {str(k): np.asarray(v).tolist() for k, v in sorted(self.fixed_inputs.items())}
        return data

    @staticmethod
    def from_json(data: dict[str, Any]) -> Workload:
        """The inverse of ``to_json``."""
        kind = data.get("kind")
        if kind == "named":
            return workload(data["name"], **data["params"])
        if kind == "tvmscript":
            func = tvm.script.from_source(data["script"])
            loaded = _from_prim_func(_single_prim_func(func), name=data.get("name"))
            fixed = {int(k): np.asarray(v) for k, v in data.get("fixed_inputs", {}).items()}
            return dataclasses.replace(loaded, fixed_inputs=fixed) if fixed else loaded
        raise ValueError(f"workload JSON has kind {kind!r}; expected 'named' or 'tvmscript'")

    def __repr__(self) -> str:
        params = "".join(f" {key}={value}" for key, value in self.params.items())
        inputs = " ".join(str(spec) for index, spec in enumerate(self.args) if index not in self.outputs)
        outputs = " ".join(str(self.args[index]) for index in self.outputs)
        return f"Workload({self.name}{params}, {_format_flop(self.flop)}, args {inputs} -> {outputs})"


def workload_names() -> list[str]:
    """The names of the named operators: the paper's set in the paper's order, then the int8 operators."""
    return list(_operators.OPERATOR_NAMES)


def workload(spec: Any, /, **params: int) -> Workload:
    """Make a ``Workload`` from an operator name, a PrimFunc, an IRModule or a list of TE tensors.

    Parameters
    ----------
    spec
        ``"GMM"``, ``"C2D"``, ... (case-insensitive, see ``workload_names()``); a ``tvm.tirx.PrimFunc``
        written with ``@T.prim_func(s_tir=True)`` and ``T.sblock``; an ``IRModule`` with exactly one
        such PrimFunc; or a list of ``te.Tensor`` (placeholders, then computed outputs) for
        ``te.create_prim_func``. A ``Workload`` is returned as it is.
    **params
        Shape parameters of a named operator, e.g. ``workload("GMM", n=64, m=64, k=64)``; the rest keep
        their defaults. Only for named operators.
    """
    if isinstance(spec, str):
        operator = _operators.find_operator(spec)
        values = _operators.resolve_params(operator, params)
        func = _operators.build_operator(operator, values)
        return _from_prim_func(func, name=operator.name, params=values)
    if params:
        raise ValueError(
            f"shape parameters ({', '.join(params)}) apply only to named operators such as 'GMM'; "
            f"got them with a {type(spec).__name__}"
        )
    if isinstance(spec, Workload):
        return spec
    if isinstance(spec, (tirx.PrimFunc, tvm.IRModule)):
        return _from_prim_func(_single_prim_func(spec))
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(t, te.Tensor) for t in spec):
        if all(isinstance(t.op, te.PlaceholderOp) for t in spec):
            raise ValueError("the TE tensors are all placeholders; list the inputs, then the te.compute outputs")
        return _from_prim_func(te.create_prim_func(list(spec)))
    raise TypeError(
        f"workload() got a {type(spec).__name__}; it accepts an operator name (one of "
        f"{', '.join(_operators.OPERATOR_NAMES)}), a tvm.tirx.PrimFunc, an IRModule with one PrimFunc, "
        "or a non-empty list of te.Tensor"
    )


def _single_prim_func(spec: tirx.PrimFunc | tvm.IRModule) -> tirx.PrimFunc:
    if isinstance(spec, tirx.PrimFunc):
        return spec
    functions = list(spec.functions.items()) if isinstance(spec, tvm.IRModule) else []
    if len(functions) != 1 or not isinstance(functions[0][1], tirx.PrimFunc):
        names = [gv.name_hint for gv, _ in functions]
        raise ValueError(f"the IRModule must hold exactly one PrimFunc; it holds {names}")
    gvar, func = functions[0]
    symbol = func.attrs.get("global_symbol") if func.attrs else None
    return func if symbol else func.with_attr("global_symbol", gvar.name_hint)


def _from_prim_func(func: tirx.PrimFunc, name: str | None = None, params: dict | None = None) -> Workload:
    symbol = str(func.attrs["global_symbol"]) if func.attrs and "global_symbol" in func.attrs else "main"
    name = name or symbol
    _require_s_tir_blocks(func, name)
    args = tuple(_tensor_spec(func, param, name) for param in func.params)
    access = tvm.s_tir._ffi_api.DomainTouchedAccessMap(func)  # buffer -> [read regions, write regions]
    outputs = tuple(index for index, param in enumerate(func.params) if len(access[param][1]))
    if not outputs:
        raise ValueError(f"{name} writes none of its parameters, so it has no output to check")
    func = func.with_attr("global_symbol", "main").with_attr("tirx.noalias", True)
    # TVM's own estimator: exact for GMM (2*n*m*k); loops with data-dependent extents count as 0.
    flop = float(tvm.s_tir.analysis.estimate_tir_flops(tvm.IRModule({"main": func})))
    return Workload(name, func, dict(params or {}), args, outputs, flop)


def _require_s_tir_blocks(func: tirx.PrimFunc, name: str) -> None:
    """MetaSchedule schedules s_tir blocks. A plain TIR function yields one empty design space, so
    refuse it here rather than let a search run over nothing."""
    has_attr = bool(func.attrs and func.attrs.get("s_tir", False))
    has_blocks = False
    if isinstance(func.body, tvm.s_tir.stmt.SBlockRealize):
        sch = tvm.s_tir.Schedule(func)
        has_blocks = bool(sch.get_child_blocks(sch.get_sblock("root")))
    if has_attr and has_blocks:
        return
    problem = (
        "has s_tir blocks but lacks the s_tir attribute, so its TVMScript would not parse back"
        if has_blocks
        else "has no s_tir blocks, so MetaSchedule has nothing to schedule"
    )
    raise ValueError(
        f"PrimFunc {name!r} {problem}. Write it with @T.prim_func(s_tir=True) and put each computation "
        "in a `with T.sblock(...)` block, or build it from TE tensors with te.create_prim_func"
    )


def _tensor_spec(func: tirx.PrimFunc, param: Any, name: str) -> TensorSpec:
    if not tirx.is_buffer_var(param):
        raise ValueError(f"{name}: parameter {param.name!r} is a scalar; only buffer parameters are supported")
    try:
        shape = tuple(int(dim) for dim in param.shape)
    except TypeError:
        raise ValueError(
            f"{name}: parameter {param.name!r} has the symbolic shape {list(param.shape)}; "
            "give every buffer a static shape"
        ) from None
    return TensorSpec(str(param.name), shape, str(param.dtype))


def _numpy_dtype(dtype: str) -> np.dtype:
    if dtype == "bfloat16":
        import ml_dtypes  # a TVM dependency; numpy has no bfloat16

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _random_array(rng: np.random.Generator, spec: TensorSpec) -> np.ndarray:
    dtype = _numpy_dtype(spec.dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, spec.shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, spec.shape, dtype=dtype, endpoint=True)
    return rng.uniform(-1.0, 1.0, spec.shape).astype(dtype)


def _as_numpy(value: Any) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _format_flop(flop: float) -> str:
    for unit, scale in (("GFLOP", 1e9), ("MFLOP", 1e6), ("KFLOP", 1e3)):
        if flop >= scale:
            return f"{flop / scale:.1f} {unit}"
    return f"{flop:.0f} FLOP"
