"""A whole model: imported from PyTorch (torch.export) or given as Relax, prepared the way TVM's ``compile_relax``
prepares it (library dispatch, legalization, fusion), and its tuning tasks as msexplore workloads.

The preparation is the one ``compile_relax`` runs before it looks records up, so a record of a task's workload is
found again when the model is compiled; a module that was not legalized has no tasks at all.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import tvm
from tvm import relax

from ..common import error_line
from ..target import TargetLike, resolve_target
from ..workloads import TensorSpec, Workload, workload
from .fast_math import fast_math as _fast_math
from .fold_batch_norm import fold_batch_norm
from .torch_import import ModelImportError, import_torch

__all__ = ["Model", "ModelImportError", "Task"]


@dataclasses.dataclass(frozen=True)
class Task:
    """One tuning task of a model: a fused TIR function, how often one inference calls it, and its workload."""

    name: str
    weight: int  # calls per inference
    workload: Workload = dataclasses.field(repr=False)

    @property
    def flop(self) -> float:
        """FLOP of one call (TVM's estimate)."""
        return self.workload.flop


class Model:
    """A model as a Relax ``IRModule`` (weights bound as constants), with its tasks.

    Make one with ``Model.from_torch(module, example_inputs)`` or ``Model.from_relax(mod, params)``. ``tasks`` is a
    table, ``task_list`` the same as ``Task`` objects; each task's ``workload`` is an ``mx.Workload`` that every other
    part of msexplore takes (``mx.Space``, sampling, ``mx.search``).
    """

    def __init__(
        self,
        mod: tvm.IRModule,
        *,
        name: str = "model",
        target: TargetLike = None,
        source: str = "relax",
        fast_math: bool = True,
        conv_layout: str | None = None,
    ):
        if not isinstance(mod, tvm.IRModule) or "main" not in [gv.name_hint for gv in mod.functions]:
            raise TypeError(f"Model expects a Relax IRModule with a 'main' function, got {_describe(mod)}")
        if not isinstance(mod["main"], relax.Function):
            raise TypeError(f"the module's 'main' is a {type(mod['main']).__name__}, not a Relax function")
        self.fast_math = bool(fast_math)
        self.conv_layout = _check_conv_layout(conv_layout)
        mod = fold_batch_norm(mod)  # inference: a batch norm after a convolution is its weights and a bias
        mod = _fast_math(mod) if self.fast_math else mod
        self.mod = _convert_layout(mod, self.conv_layout)
        self.name = name
        self.target = resolve_target(target)
        self.source = source
        self._torch_module: Any = None  # the module a model from torch was exported from: its reference

    # ---- making one ----
    @classmethod
    def from_relax(
        cls,
        mod: tvm.IRModule,
        params: dict[str, Any] | None = None,
        *,
        name: str = "model",
        target: TargetLike = None,
        fast_math: bool = True,
        conv_layout: str | None = None,
    ) -> Model:
        """A model from a Relax module; ``params`` (name -> array) are bound into ``main`` as constants.

        ``fast_math`` computes exp, erf, tanh, softmax and GELU with TVM's vectorizable approximations (see
        ``msexplore.models.fast_math``); the compiled model's check reports the error against the source.
        ``conv_layout="NHWC"`` computes the 2-D convolutions channels-last (weights ``HWIO``, converted once at
        compile time; the model's inputs and outputs keep their layout, a transpose at each end): the output channel
        axis is then contiguous in the data and in the weights, which is what the ``x86-avx512`` micro-kernel needs
        (with ``OHWI`` weights its weight vectors were gathers: a ResNet block's convolutions ran at 64-76 % of the
        FMA peak). ``None`` keeps the source's.
        """
        if params:
            if not isinstance(params, dict):
                raise TypeError(f"params must be a dict of parameter name -> array, got {type(params).__name__}")
            bound = {k: v if isinstance(v, tvm.runtime.Tensor) else tvm.runtime.tensor(v) for k, v in params.items()}
            mod = relax.transform.BindParams("main", bound)(mod)
        return cls(mod, name=name, target=target, source="relax", fast_math=fast_math, conv_layout=conv_layout)

    @classmethod
    def from_torch(
        cls,
        module: Any,
        example_inputs: Sequence[Any],
        *,
        name: str | None = None,
        target: TargetLike = None,
        custom_convert_map: dict[str, Any] | None = None,
        fast_math: bool = True,
        conv_layout: str | None = None,
    ) -> Model:
        """A model from a ``torch.nn.Module`` in eval mode and example inputs (their shapes and dtypes are fixed).

        Goes through ``torch.export.export`` and TVM's ``from_exported_program``; a construct either cannot take
        raises ``ModelImportError`` naming it. ``custom_convert_map`` gives the frontend converters for operators
        it lacks (``{"_linalg_det.default": converter}``, named as the error names them; see TVM's
        ``from_exported_program``). ``fast_math`` and ``conv_layout`` as for ``from_relax``.
        """
        mod = import_torch(module, example_inputs, custom_convert_map=custom_convert_map)
        model = cls(
            mod, name=name or type(module).__name__, target=target, source="torch", fast_math=fast_math,
            conv_layout=conv_layout,
        )
        model._torch_module = module
        return model

    # ---- what it is made of ----
    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """The arguments of ``main``: what a compiled model is called with."""
        return tuple(_spec(param) for param in self.mod["main"].params)

    @functools.cached_property
    def prepared(self) -> tvm.IRModule:
        """The module after library dispatch, legalization and fusion: its TIR functions are the tasks."""
        return prepare(self.mod, self.target)

    @functools.cached_property
    def task_list(self) -> tuple[Task, ...]:
        """The tuning tasks, in the order TVM extracts them."""
        from tvm.s_tir import meta_schedule as ms

        extracted = ms.relax_integration.extract_tasks(self.prepared, self.target)
        constants = _constant_arguments(self.prepared)
        tasks = []
        for task in extracted:
            name = str(task.task_name)
            wl = dataclasses.replace(workload(task.dispatched[0]), name=name, fixed_inputs=constants.get(name, {}))
            tasks.append(Task(name=name, weight=int(task.weight), workload=wl))
        return tuple(tasks)

    @property
    def tasks(self) -> pd.DataFrame:
        """One row per task: name, calls per inference, FLOP per call, the share of the model's FLOP, its argument
        shapes and dtypes, and its ``workload`` (an ``mx.Workload``)."""
        rows = []
        total = sum(t.weight * t.flop for t in self.task_list) or 1.0
        for t in self.task_list:
            wl = t.workload
            rows.append(
                {
                    "task": t.name,
                    "weight": t.weight,
                    "flop": t.flop,
                    "flop_share": t.weight * t.flop / total,
                    "inputs": " ".join(str(s) for k, s in enumerate(wl.args) if k not in wl.outputs),
                    "outputs": " ".join(str(wl.args[k]) for k in wl.outputs),
                    "workload": wl,
                }
            )
        columns = ["task", "weight", "flop", "flop_share", "inputs", "outputs", "workload"]
        return pd.DataFrame(rows, columns=columns)

    def task(self, name: str) -> Task:
        """The task called ``name`` (see ``tasks``)."""
        for t in self.task_list:
            if t.name == name:
                return t
        raise KeyError(f"{self.name} has no task {name!r}; its tasks are {[t.name for t in self.task_list]}")

    @property
    def flop(self) -> float:
        """FLOP of one inference, summed over the tasks (TVM's estimates)."""
        return float(sum(t.weight * t.flop for t in self.task_list))

    # ---- what a compiled model is checked against ----
    def reference(self, inputs: Sequence[np.ndarray]) -> tuple[str, tuple[np.ndarray, ...]]:
        """``(what, outputs)`` of the model's source on ``inputs``: PyTorch eager for a model from torch, else the
        Relax module built without tuning (TVM's naive lowering: slow, but independent of any schedule)."""
        if self._torch_module is not None:
            import torch

            with torch.no_grad():
                out = self._torch_module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in inputs])
            outs = out if isinstance(out, (tuple, list)) else (out,)
            return "PyTorch eager", tuple(o.detach().cpu().numpy() for o in outs)
        vm = relax.VirtualMachine(self._untuned_build, tvm.cpu())
        out = vm["main"](*[tvm.runtime.tensor(np.ascontiguousarray(a)) for a in inputs])
        outs = (out,) if isinstance(out, tvm.runtime.Tensor) else tuple(out)
        return "the untuned Relax build", tuple(o.numpy() for o in outs)

    @functools.cached_property
    def _untuned_build(self) -> Any:
        with tvm.transform.PassContext(opt_level=3):
            return relax.build(self.mod, target=self.target)

    def torch_callable(self, inputs: Sequence[np.ndarray]) -> Any:
        """A no-argument call of the PyTorch module on ``inputs`` (for side-by-side timing), or None."""
        if self._torch_module is None:
            return None
        import torch

        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
        module = self._torch_module

        def call() -> Any:
            with torch.no_grad():
                return module(*tensors)

        return call

    def __repr__(self) -> str:
        inputs = " ".join(str(s) for s in self.inputs)
        exact = "" if self.fast_math else ", exact math"
        layout = f", convolutions {self.conv_layout}" if self.conv_layout else ""
        return f"Model({self.name}, from {self.source}, inputs {inputs}, {len(self.task_list)} task(s){exact}{layout})"


CONV_LAYOUTS = {"NHWC": {"relax.nn.conv2d": ["NHWC", "HWIO"]}}  # accepted conv_layout -> Relax's desired layouts


def _check_conv_layout(layout: Any) -> str | None:
    if layout is None or layout in CONV_LAYOUTS:
        return layout
    raise ValueError(f"conv_layout must be one of {sorted(CONV_LAYOUTS)} or None (the source's), got {layout!r}")


def _convert_layout(mod: tvm.IRModule, layout: str | None) -> tvm.IRModule:
    """``mod`` with its convolutions in ``layout`` (Relax's ConvertLayout; its layout transforms of constant weights
    are folded when the model is prepared). ConvertLayout transposes an input once per use (a ResNet block's input
    feeds the convolution and the residual): common subexpressions are merged after it."""
    if layout is None:
        return mod
    try:
        converted = relax.transform.ConvertLayout(CONV_LAYOUTS[layout])(mod)
        return relax.transform.EliminateCommonSubexpr()(converted)
    except Exception as err:  # noqa: BLE001 - TVM raises built-in types; say what failed in one line
        raise ModelImportError(
            f"TVM could not convert the model's convolutions to {layout}: {error_line(err)}"
        ) from err


def prepare(mod: tvm.IRModule, target: Any) -> tvm.IRModule:
    """The passes ``compile_relax`` runs before it applies a database: dispatch, legalize, annotate, fold, fuse."""
    from tvm.relax import pipeline

    try:
        dispatch = list(pipeline.library_dispatch_passes(target))
    except (ValueError, AttributeError):  # a target the pipeline dispatcher does not know: no library dispatch
        dispatch = []
    passes = [
        *dispatch,
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]
    try:
        with target, tvm.transform.PassContext(opt_level=3):
            return tvm.transform.Sequential(passes)(mod)
    except Exception as err:  # noqa: BLE001 - TVM raises built-in types; say which step and why, in one line
        raise ModelImportError(
            f"TVM could not legalize and fuse the model for {target.kind.name}: {error_line(err)}"
        ) from err


FIXED_INPUT_MAX_SIZE = 4096  # elements: a norm's scale, a BN's variance; larger float constants are weights


def _keeps_value(array: np.ndarray) -> bool:
    """Whether a task's workload must run on this constant rather than random values: integers (indices: random
    ones would be out of bounds) and small constants (a variance under a square root). Weights are left random:
    a kernel is as fast and as checkable on random weights, and a 1024 x 1024 one would put 28 MB of JSON into the
    task's run.json and into every candidate sent to the runner."""
    return array.dtype.kind in "iub" or array.size <= FIXED_INPUT_MAX_SIZE


def _constant_arguments(prepared: tvm.IRModule) -> dict[str, dict[int, np.ndarray]]:
    """For each TIR function, the arguments the model passes it as constants at its first call (argument index ->
    value) that its workload runs on, as in the model (see ``_keeps_value``)."""
    found: dict[str, dict[int, np.ndarray]] = {}

    @relax.expr_functor.visitor
    class _Calls(relax.PyExprVisitor):
        def visit_call_(self, call: Any) -> None:
            if getattr(call.op, "name", None) == "relax.call_tir" and call.args[0].name_hint not in found:
                constants = {
                    k: arg.value.numpy()
                    for k, arg in enumerate(call.args[1].fields)
                    if isinstance(arg, tvm.ir.expr.Constant) and hasattr(arg.value, "numpy")
                }
                found[call.args[0].name_hint] = {k: v for k, v in constants.items() if _keeps_value(v)}
            super().visit_call_(call)

    for func in prepared.functions.values():
        if isinstance(func, relax.Function):
            _Calls().visit_expr(func)
    return found


def _spec(param: Any) -> TensorSpec:
    """A Relax parameter's name, static shape (-1 for a symbolic dimension) and dtype."""
    ty = param.ty
    shape = getattr(ty, "shape", None)
    dims = tuple(int(d.value) if hasattr(d, "value") else -1 for d in getattr(shape, "values", ()))
    return TensorSpec(str(param.name), dims, str(getattr(ty, "dtype", "?")))


def _describe(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, tvm.IRModule) else "an IRModule without 'main'"
