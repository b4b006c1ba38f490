"""Transposed convolutions without the dilation zeros: the module ``"x86-transposed-conv"``.

How it was found. TVM's transposed convolution (``T2D``: 4 x 4 x 512 -> 8 x 8 x 256, a 4 x 4 kernel, stride 2)
is a convolution over the input *dilated* by the stride: between two input pixels sit ``stride - 1`` zeros, and the
TE definition multiplies them with the weights like any other value,
``out[h, w] += (if (h + rh) % 2 == 0 and (w + rw) % 2 == 0 then in[(h + rh) / 2, ..] else 0) * weight[..]``.
With stride 2 in two dimensions three of every four multiply-adds are by a zero; the default space's best kernel
still computes them all (the condition is a per-element select), and lost to PyTorch.

The zeros follow a pattern a schedule can see: split each output axis and its kernel axis by the stride into an
outer loop and a *phase* (``h = 2 * ho + hp``, ``rh = 2 * rho + rhp``); then the condition depends on the phases
only (``(hp + rhp) % 2 == 0``). With the phase loops unrolled every copy of the loop body has a constant condition:
TVM's simplifier turns the copies where it is false into ``out = out + 0 * w`` -> ``out = out`` and LLVM drops
them. What remains is one dense convolution per output phase over the kernel taps that touch it (PyTorch computes
a transposed convolution the same way: a GEMM per phase, or col2im).

Each phase is then a register-blocked micro-kernel, as ``x86-avx512`` writes one: one parallel loop over tasks
(output-channel vectors x pixel tiles); inside, the phases, the live kernel taps, the input channels (a k-panel,
partly unrolled), and a block of ``rows x cols`` output pixels x one 16-lane zmm vector of output channels kept in
registers (at most 16 accumulators), each k step one weight vector load, one broadcast per pixel and one
``vfmadd231ps`` per accumulator. Sampled: the pixel block, output-channel vectors per task, the unrolled part of the
channel loop.

It applies to an fp32 multiply-accumulate block whose product reads a dilated operand, ``if_then_else(cond, x, 0)``
with ``cond`` a conjunction of ``(spatial + reduction + c) % s == 0`` (``s >= 2``, both extents divisible by ``s``),
and whose last spatial axis is the output's contiguous axis, divisible by 16; it needs AVX-512F. It replaces the
default schedules of that block (``schedule_rule="None"``: the zeros are what the defaults cannot remove) and
leaves the other blocks (the padding) to them::

    space = mx.Space(mx.workload("T2D"), modules=["default", "x86-transposed-conv"])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tvm
from tvm.s_tir import Schedule

from ..modules import module
from .avx512 import LANES, missing_avx512
from .microkernel import fp32_multiply_accumulate, iter_kinds

__all__ = ["MODULE_NAME", "TRANSPOSED_CONV", "Phases", "phases"]

MODULE_NAME = "x86-transposed-conv"
MAX_ACCUMULATORS = 16  # pixels x one zmm vector; the other 16 zmm hold the weight vector and the broadcasts
MAX_PIXEL_TILE = 4  # pixels per register block along each output axis
CHANNEL_UNROLL = (1, 2, 4)  # input channels per unrolled k step, sampled
MAX_VECTORS_PER_TASK = 4  # output-channel vectors one task computes, one after the other


@dataclass(frozen=True)
class Phases:
    """Where a block's zeros are: the (spatial axis, reduction axis, stride) of each dilated dimension, by the
    position of the axes among the block's iterators, and the vector (last spatial) axis."""

    pairs: tuple[tuple[int, int, int], ...]
    vector: int


def _product(store: Any) -> Any:
    """The ``a * b`` of ``out = out + a * b`` (``fp32_multiply_accumulate`` has checked the form)."""
    value = store.value
    a, b = value.a, value.b
    source = getattr(a, "source", None)
    expr = b if source is not None and source.same_as(store.buffer) else a
    while isinstance(expr, tvm.tirx.Cast):
        expr = expr.value
    return expr


def _dilated_condition(product: Any) -> Any | None:
    """``cond`` of the factor ``if_then_else(cond, x, 0)`` of ``product``, or None."""
    select = tvm.ir.Op.get("prim.if_then_else")
    for factor in (product.a, product.b):
        while isinstance(factor, tvm.tirx.Cast):
            factor = factor.value
        if isinstance(factor, tvm.ir.expr.Call) and factor.op.same_as(select):
            zero = factor.args[2]
            if isinstance(zero, (tvm.tirx.FloatImm, tvm.tirx.IntImm)) and float(zero.value) == 0.0:
                return factor.args[0]
    return None


def _conjuncts(cond: Any) -> list[Any]:
    if isinstance(cond, tvm.tirx.And):
        return _conjuncts(cond.a) + _conjuncts(cond.b)
    return [cond]


def _summands(expr: Any) -> list[Any]:
    if isinstance(expr, tvm.tirx.Add):
        return _summands(expr.a) + _summands(expr.b)
    return [expr]


def _phase_pair(term: Any, ivars: list[Any], types: str) -> tuple[int, int, int] | None:
    """``(spatial + reduction + c) % s == 0`` -> (spatial position, reduction position, s)."""
    if not isinstance(term, tvm.tirx.EQ) or not isinstance(term.b, tvm.tirx.IntImm) or int(term.b.value) != 0:
        return None
    mod = term.a
    if not isinstance(mod, (tvm.tirx.FloorMod, tvm.tirx.Mod)) or not isinstance(mod.b, tvm.tirx.IntImm):
        return None
    stride = int(mod.b.value)
    if stride < 2:
        return None
    used = []
    for summand in _summands(mod.a):
        if isinstance(summand, tvm.tirx.IntImm):
            continue  # the border offset
        position = next((i for i, v in enumerate(ivars) if v.same_as(summand)), None)
        if position is None:
            return None
        used.append(position)
    if len(used) != 2 or sorted(types[i] for i in used) != ["R", "S"]:
        return None
    s, r = sorted(used, key=lambda i: types[i] == "R")
    return s, r, stride


def phases(sch: Schedule, block: Any) -> Phases | None:
    """The dilated dimensions of ``block`` (see the module's doc), or None when the module does not apply.

    It reads the block, not the schedule: no instruction is added to the trace."""
    sblock = sch.get(block)
    types = fp32_multiply_accumulate(sblock)
    if types is None or "S" not in types:
        return None
    first_r = types.index("R")
    if "S" in types[first_r:]:
        return None
    extents = []
    for iv in sblock.iter_vars:
        if not isinstance(iv.dom.extent, tvm.tirx.IntImm):
            return None
        extents.append(int(iv.dom.extent))
    cond = _dilated_condition(_product(sblock.body))
    if cond is None:
        return None
    ivars = [iv.var for iv in sblock.iter_vars]
    pairs = []
    for term in _conjuncts(cond):
        pair = _phase_pair(term, ivars, types)
        if pair is None:
            return None
        pairs.append(pair)
    vector = first_r - 1
    if any(extents[s] % stride or extents[r] % stride or s == vector for s, r, stride in pairs):
        return None
    if len({s for s, _, _ in pairs}) != len(pairs) or len({r for _, r, _ in pairs}) != len(pairs):
        return None
    if extents[vector] % LANES:
        return None
    last = sblock.writes[0].region[-1].min
    if not (isinstance(last, tvm.tirx.Var) and last.same_as(ivars[vector])):
        return None
    if _loops_around(sch, block) != len(types):  # already transformed
        return None
    return Phases(tuple(pairs), vector)


def _loops_around(sch: Schedule, block: Any) -> int:
    """The loops around ``block``, read from the schedule's tree: ``sch.get_loops`` would add an instruction to the
    trace, and so change every design space of the blocks a ``when=`` turns down."""
    count, parent = 0, sch.get_sref(block).parent
    while parent is not None and isinstance(parent.stmt, tvm.tirx.For):
        count, parent = count + 1, parent.parent
    return count


def _applies(sch: Schedule, block: Any) -> bool:
    return phases(sch, block) is not None


def _divisors(extent: int, at_most: int) -> list[int]:
    return [d for d in range(1, min(extent, at_most) + 1) if extent % d == 0]


def _schedule(sch: Schedule, block: Any, found: Phases) -> Schedule:
    sblock = sch.get(block)
    types = iter_kinds(sblock)
    loops = sch.get_loops(block)
    spatial = set(range(types.index("R")))
    phase_of = {s: stride for s, _, stride in found.pairs}
    phase_of.update({r: stride for _, r, stride in found.pairs})

    outer_tasks: list[Any] = []  # parallel: other spatial axes, pixel tiles, output-channel vectors
    task_inner: list[Any] = []  # per task, outside the phases: channel vectors one after the other
    spatial_phases: list[Any] = []
    pixel_block: list[Any] = []
    reduction_outer: list[Any] = []
    reduction_phases: list[Any] = []
    channel_loops: list[Any] = []
    for position, loop in enumerate(loops):
        extent = int(sch.get(loop).extent)
        if position == found.vector:
            vectors, lanes = sch.split(loop, [None, LANES])
            per_task = _divisors(extent // LANES, MAX_VECTORS_PER_TASK)
            inner = sch.sample_categorical(per_task, [1.0 / len(per_task)] * len(per_task))
            task, one_by_one = sch.split(vectors, [None, inner])
            outer_tasks.append(task)
            task_inner.append(one_by_one)
        elif position in spatial and position in phase_of:
            outer, phase = sch.split(loop, [None, phase_of[position]])
            spatial_phases.append(phase)
            tiles = _divisors(extent // phase_of[position], MAX_PIXEL_TILE)
            tile = sch.sample_categorical(tiles, [1.0 / len(tiles)] * len(tiles))
            task, pixels = sch.split(outer, [None, tile])
            outer_tasks.append(task)
            pixel_block.append(pixels)
        elif position in spatial:
            outer_tasks.append(loop)  # batch
        elif position in phase_of:
            outer, phase = sch.split(loop, [None, phase_of[position]])
            reduction_outer.append(outer)
            reduction_phases.append(phase)
        else:  # input channels: a k-panel with a sampled unrolled step
            steps = [d for d in CHANNEL_UNROLL if extent % d == 0]
            step = sch.sample_categorical(steps, [1.0 / len(steps)] * len(steps))
            channel_loops.extend(sch.split(loop, [None, step]))
    sch.reorder(*outer_tasks, *task_inner, *spatial_phases, *reduction_outer, *reduction_phases, *channel_loops,
                *pixel_block, lanes)
    fused = sch.fuse(*outer_tasks)
    sch.parallel(fused)
    for loop in (*spatial_phases, *reduction_phases, *pixel_block):
        sch.unroll(loop)  # constant phases: the zero copies vanish; the pixel block stays in registers
    if channel_loops:
        sch.unroll(channel_loops[-1])
    sch.vectorize(lanes)
    # the defaults leave this block alone, and the root too: parallelize_vectorize_unroll would fuse the unrolled
    # phase loops into the parallel loop, where the phases are no longer constants and the zeros come back
    sch.annotate(block, "schedule_rule", "None")
    sch.annotate(sch.get_sblock("root"), "schedule_rule", "None")
    for producer in sch.get_producers(block):
        _materialize(sch, producer)
    return sch


def _materialize(sch: Schedule, producer: Any) -> None:
    """The padded input once, before the convolution: rows parallel, channels in zmm vectors. (The defaults would
    not inline a block with a condition on CPU and place it at a sampled loop inside the micro-kernel instead, which
    recomputed it per task.)"""
    loops = sch.get_loops(producer)
    if "R" in iter_kinds(sch.get(producer)) or len(loops) != len(sch.get(producer).iter_vars):
        return
    sch.annotate(producer, "schedule_rule", "None")
    inner = loops[-1]
    extent = sch.get(inner).extent
    if len(loops) > 1:
        sch.parallel(sch.fuse(*loops[:-1]))
    if isinstance(extent, tvm.tirx.IntImm) and int(extent) % LANES == 0:
        sch.vectorize(sch.split(inner, [None, LANES])[1])


@module(name=MODULE_NAME, when=_applies, requires=missing_avx512,
        before=("x86-avx512", "multi_level_tiling", "parallelize_vectorize_unroll"))
def transposed_conv(sch: Schedule, block: Any) -> Schedule:
    """Transposed (input-dilated) convolutions without the zero multiply-adds: output and kernel axes split by the
    stride, the phases unrolled so the zero copies vanish, each phase a register-blocked zmm micro-kernel."""
    found = phases(sch, block)
    assert found is not None  # when= checked it
    return _schedule(sch, block, found)


TRANSPOSED_CONV = transposed_conv  # the registered module (a TransformModule)
