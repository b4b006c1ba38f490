"""Layout transposes in tiles: the module ``"x86-transpose"``.

How it was found. A ResNet block imported with ``conv_layout="NHWC"`` computes its convolutions channels-last and
transposes the activations at each end of the model (NCHW -> NHWC in, NHWC -> NCHW out). The default space of such
a transpose holds one program: the output's rows parallel, its last axis vectorized, each vector a gather of
elements 64 floats apart. For the block's output transpose (56 x 56 x 64 -> 64 x 56 x 56) every parallel task
reads one float from each of 3,136 cache lines, and every line is fetched again by 15 other tasks: 57-79 us, more
than 5 % of the block's time, beside 15 us for the input transpose that reads the same lines in the other order.

This module tiles both contiguous axes, the way a hand-written transpose does: the output's last axis and the
axis that is last in the input are split into tiles (8 or 16 elements, sampled), and one task (one parallel loop
over all tiles) copies a ``tile x tile`` square, whose source lines stay in L1 while it writes a vector of the
output per source column; the unroll depth is sampled as the default ``parallelize_vectorize_unroll`` does. The
output transpose then ran in 21 us (of 8 programs, 21-25 us). Staging each square through a ``local`` buffer
filled with contiguous vector loads, in the hope that LLVM would keep it in registers and shuffle, measured
41-79 us (the buffer stays on the stack): it is not in the space.

It applies to a block that only copies: one input, its indices a permutation of the block's (spatial) axes, the
output written in axis order to a buffer of the function (a transpose that feeds another block is inlined there
by the defaults, which this leaves alone), the input's last index another axis than the output's, both extents
divisible by 8, 4-byte elements. It replaces the default schedule of that block and needs AVX2 (a tile of 16 is
one zmm vector with AVX-512, two ymm without)::

    space = mx.Space(model.task("transpose3").workload, modules=["default", "x86-transpose"])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tvm
from tvm.s_tir import Schedule

from ..modules import module
from .avx2 import missing_avx2
from .microkernel import permutation_copy

__all__ = ["MODULE_NAME", "TRANSPOSE", "Transpose", "transpose_of"]

MODULE_NAME = "x86-transpose"
TILES = (8, 16)  # elements per tile side, sampled among those that divide the axis
UNROLL_STEPS = (0, 16, 64, 512)  # pragma_auto_unroll_max_step candidates, as the default rule samples them


@dataclass(frozen=True)
class Transpose:
    """A copy block's two contiguous axes, by position among its iterators, and their tile choices."""

    out_axis: int  # the output's last axis (the block's last iterator)
    in_axis: int  # the iterator that indexes the input's last dimension
    out_tiles: tuple[int, ...]
    in_tiles: tuple[int, ...]


def transpose_of(sch: Schedule, block: Any) -> Transpose | None:
    """What ``block`` transposes, or None when it is not a tiled-transpose candidate (see the module docstring).

    It reads the program, not the schedule: no instruction is added to the trace."""
    sblock = sch.get(block)
    order = permutation_copy(sblock)
    if order is None or str(sblock.writes[0].source.dtype) not in ("float32", "int32", "uint32"):
        return None
    out = sblock.writes[0].source
    extents = [iv.dom.extent for iv in sblock.iter_vars]
    if not all(isinstance(e, tvm.tirx.IntImm) for e in extents):
        return None
    axes = sblock.iter_vars
    if any(out.same_as(buf) for buf in sch.mod["main"].body.block.alloc_buffers):
        return None  # an intermediate (allocated in the root block): the defaults inline it into its consumer
    out_axis, in_axis = len(axes) - 1, order[-1]
    if in_axis == out_axis:
        return None  # the last axis stays last: a plain copy of rows, nothing to tile
    out_tiles = tuple(t for t in TILES if int(extents[out_axis]) % t == 0)
    in_tiles = tuple(t for t in TILES if int(extents[in_axis]) % t == 0)
    if not out_tiles or not in_tiles:
        return None
    if sch.get_sref(block).parent is None or len(_loops_above(sch, block)) != len(axes):
        return None  # already transformed
    return Transpose(out_axis, in_axis, out_tiles, in_tiles)


def _loops_above(sch: Schedule, block: Any) -> list[Any]:
    loops = []
    sref = sch.get_sref(block).parent
    while sref is not None and isinstance(sref.stmt, tvm.tirx.For):
        loops.append(sref)
        sref = sref.parent
    return loops


def _applies(sch: Schedule, block: Any) -> bool:
    return transpose_of(sch, block) is not None


def _categorical(sch: Schedule, values: tuple[int, ...]) -> Any:
    return sch.sample_categorical(list(values), [1.0 / len(values)] * len(values))


def _tiled(sch: Schedule, block: Any, found: Transpose) -> Schedule:
    loops = sch.get_loops(block)
    out_tile = _categorical(sch, found.out_tiles)
    in_tile = _categorical(sch, found.in_tiles)
    po, pi = sch.split(loops[found.out_axis], [None, out_tile])
    qo, qi = sch.split(loops[found.in_axis], [None, in_tile])
    others = [lp for k, lp in enumerate(loops) if k not in (found.out_axis, found.in_axis)]
    sch.reorder(*others, qo, po, qi, pi)
    tasks = sch.fuse(*others, qo, po)
    sch.parallel(tasks)
    sch.vectorize(pi)
    unroll = _categorical(sch, UNROLL_STEPS)
    sch.annotate(tasks, "pragma_auto_unroll_max_step", unroll)
    sch.annotate(tasks, "pragma_unroll_explicit", 1)
    sch.annotate(block, "schedule_rule", "None")  # the defaults leave this block alone
    return sch


@module(name=MODULE_NAME, when=_applies, requires=missing_avx2, before=("auto_inline",))
def tiled_transpose(sch: Schedule, block: Any) -> Schedule:
    """Layout transposes in ``tile x tile`` squares (8 or 16 a side): one parallel loop over the squares, each
    output row of a square one vector. Replaces the default schedule of a copy whose last axis changes."""
    found = transpose_of(sch, block)
    assert found is not None  # when= checked it
    return _tiled(sch, block, found)


TRANSPOSE = tiled_transpose  # the registered module (a TransformModule)
