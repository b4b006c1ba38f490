"""Convolutions without the multiply-adds by their padding: the module ``"x86-padded-conv"``.

How it was found. The 3-D convolution of the operator set (``C3D``: 16 x 224 x 224 x 3 -> 8 x 112 x 112 x 64, a
7 x 7 x 7 kernel, stride 2, padding 3) lost to PyTorch on every CPU measured (0.88x on a Zen 4), although per
multiply-add its micro-kernel ran as fast as oneDNN's: PyTorch's time was 105 % of the FMA peak for the
multiply-adds the definition counts. With a 7-deep window over 16 frames at stride 2 the first two output frames
and the last read padded frames (output frame 0 reads input frames -3 .. 3, so three of its seven depth taps are
zeros): 12 % of C3D's multiply-adds multiply a zero of the padding. oneDNN clips its kernel loops to the live taps;
TVM's definition, ``out += (if 0 <= d * 2 + kd - 3 < 16 ... then in[..] else 0) * w[kd, ..]``, multiplies them all.

The padding follows a pattern a schedule can see: along an output axis only a few outputs at each border reach
it, and for each of them the taps that reach it are a prefix or a suffix of the kernel's. The module builds the
register-blocked micro-kernel of ``x86-avx512`` with that output axis kept as one loop inside each parallel task
and its kernel axis as one loop outside the k-panel, then partitions them (``Schedule.loop_partition``): the output
axis into runs of outputs with the same live taps (C3D's depth: frame 0, frame 1, frames 2-6, frame 7), and in each
border run the kernel axis at the padding's edge (frame 0: taps 0-2 | 3-6). With the padding inlined, TVM's
simplifier proves the condition false in a dead partition and removes it, and drops the depth condition from the
live ones; what remains computes only the multiply-adds oneDNN computes along that axis.

It applies to an fp32 multiply-accumulate block that ``x86-avx512``'s micro-kernel applies to, with at least one
spatial axis besides the row and vector axes, reading a padding block (``pad = if_then_else(bounds, x, 0)``) at
``stride * out + kernel_tap + c`` along an axis where the padding takes at least ``MIN_DEAD`` (5 %) of the
multiply-adds (the axis with the most is partitioned): a copy of the kernel per run of outputs, and design spaces
that split the search's budget, are not worth less. The image rows of ResNet's 7 x 7 convolution (0.8 %) and of
the capsule convolution ``CAP`` (4.2 %) do not qualify, the depth of C3D (10.7 %) does. Its design spaces are
``x86-avx512``'s micro-kernels of the block (one per panel width, packed or not) without the dead taps; it marks the
block it keeps (``NO_MICROKERNEL``) so that ``x86-avx512`` leaves it to the defaults, whose design spaces the space
still holds. Listed with ``x86-avx512`` it takes that module's place on such a block (a 256-trial search over both
sets of micro-kernels spent 220 of its trials on the ones that multiply the padding)::

    space = mx.Space(mx.workload("C3D"), modules=["default", "x86-padded-conv", "x86-avx512"])

``"x86-avx2-padded-conv"`` is the same on ``x86-avx2``'s ymm micro-kernels (a module does not see the target, so
each ISA has its own); ``mx.hardware.cpu_modules()`` ships the one of the CPU's ISA. On AVX2 its space also holds
the register block whose rows do not divide the row axis, its last tile guarded (``ragged_rows``), where the
perfect tiles only just cover the FMAs' latency: C3D's 112 output columns take 4 x 2 ymm at most, 8 accumulators,
and 6 x 2 fills the 16 registers (on AVX-512 the perfect 4 x 4 zmm hold 16 accumulators, and nothing changes).
How it got there, on a Zen 3 (``znver3``, 2 cores): on 2026-12-02 the twin ran slower than the micro-kernels it
replaces, because the rows' and columns' conditions of the inlined padding stayed in the k-panel, one per
broadcast beside only 2 ymm FMAs (a 4 x 2 sample: 133 ms with the padding materialized per task, 285 ms inlined),
and it was left out of the shipped set. The partition of the rows' and columns' padding described next removed
that cost; on 2026-12-03 random samples of its 4 x 2 spaces ran 74-85 ms at best, against the 86.4 ms that a
256-trial search of ``x86-avx2``'s own 6 x 2 block found, and its 6 x 2 spaces, 15 and 6 samples, best 63.3 and
64.9 ms, medians 70.4 and 70.9 ms (PyTorch: 77-88 ms). The 256-trial benchmark on a Zen 1 (``znver1``, 128-bit
FMA units: the 4 x 2 block is enough there, and the search's pick was one) ran C3D at 0.97x PyTorch on 2 cores and
0.99x on 1, from 0.71x for the default space (README, "The AVX2 twin, shipped").

The rows' and columns' padding stays inline, and TVM's lowering partitions it away. The micro-kernels of this
module make the parallel tasks the outer axes whole (C3D: one image row each) and keep the row axis whole inside
each task (tiles of the register block's rows, no parallel split), with the window's rows and columns whole in
the k-panel; they ask for ``pragma_loop_partition_hint`` on the parallel loop and on the row tiles, and TVM's
``LoopPartition`` pass (in every build: ``tvm.tirx.build``'s default pipeline) splits both where the pad's
condition is provably true. The interior tasks' interior row tiles then run without any condition; only border
rows and the border row tiles keep it. A schedule's own ``loop_partition`` could not do this, because the edges
move with the sampled row tile; with the structure above, the pass sees constant bounds. (Where a reduction's
panel loop sat outside the row tiles, the pass partitioned at symbolic points and the kernel ran 2x slower.)

What it was worth, on a Sapphire Rapids-class Xeon with 2 cores (2026-12-02; the README's C3D section): before
this change the rows' and columns' conditions stayed in the k-panel. TVM lowers each ``if_then_else`` to a branch,
and LLVM kept the accumulators in memory around it: a 4 x 4 block ran 47 ms and 8 x 2 87 ms, against 34.7 ms for
the same blocks on an input padded beforehand. The search's best was 37.6 ms, 0.90x PyTorch. With the partition,
the 256-trial benchmark's shipped C3D ran 31.9 ms against PyTorch's 32.5 ms (1.02x on 2 cores, 1.04x on 1); its
best was the 4 x 4 block.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import tvm
from tvm.s_tir import Schedule
from tvm.sym.pattern import detect_linear_equation

from ..modules import module
from .isa import AVX2, AVX512, VectorISA, missing_isa
from .microkernel import (
    LATENCY_ACCUMULATORS,
    NO_MICROKERNEL,
    PARTITION_HINT,
    _microkernel,
    _perfect_rows,
    _uses,
    fp32_multiply_accumulate,
    iter_kinds,
    packings,
    ragged_rows,
)

__all__ = ["AVX2_MODULE_NAME", "MIN_DEAD", "MODULE_NAME", "PADDED_CONV", "PADDED_CONV_AVX2", "Borders", "borders"]

MODULE_NAME = "x86-padded-conv"  # on AVX-512, beside x86-avx512
AVX2_MODULE_NAME = "x86-avx2-padded-conv"  # on AVX2, beside x86-avx2
MIN_DEAD = 0.05  # the share of the block's multiply-adds the padding must take along the partitioned axis
MAX_RUNS = 6  # runs of outputs (copies of the micro-kernel) the output axis may be partitioned into


@dataclass(frozen=True)
class Borders:
    """Where a block's padding is: the output axis and its kernel axis (positions among the block's iterators),
    the runs ``(outputs, first live tap, end of the live taps)`` of consecutive outputs with the same live taps,
    the kernel's extent, the share of the block's multiply-adds that read padding along the axis, the padding
    block to inline, and the other reductions that index a padded dimension (the rows' and columns' kernel axes:
    positions among the block's iterators)."""

    axis: int
    reduction: int
    runs: tuple[tuple[int, int, int], ...]
    taps: int
    dead: float
    pad: str
    window: tuple[int, ...] = ()


def _loops_around(sch: Schedule, block: Any) -> int:
    """The loops around ``block``, read from the tree (``get_loops`` would add an instruction to the trace)."""
    count, parent = 0, sch.get_sref(block).parent
    while parent is not None and isinstance(parent.stmt, tvm.tirx.For):
        count, parent = count + 1, parent.parent
    return count


def _blocks(stmt: Any) -> list[Any]:
    """Every block under ``stmt``."""
    found, stack = [], [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, tvm.s_tir.SBlock):
            found.append(node)
        for name in ("seq", "body", "block", "then_case", "else_case"):
            child = getattr(node, name, None)
            if child is None:
                continue
            stack.extend(child if isinstance(child, (list, tuple, tvm.ir.Array)) else [child])
    return found


def _producer(sch: Schedule, block: Any, buffer: Any) -> Any | None:
    root = sch.get_sref(block)
    while root.parent is not None:
        root = root.parent
    writers = [b for b in _blocks(root.stmt.body) if any(w.source.same_as(buffer) for w in b.writes)]
    return writers[0] if len(writers) == 1 else None


def _conjuncts(cond: Any) -> list[Any]:
    if isinstance(cond, tvm.tirx.And):
        return _conjuncts(cond.a) + _conjuncts(cond.b)
    return [cond]


def _pad_bounds(pad: Any) -> dict[int, tuple[int, int]] | None:
    """``{dimension: (lo, hi)}`` of a padding block ``P[v..] = if_then_else(lo <= v_k and v_k < hi .., x, 0)``."""
    store = pad.body
    select = tvm.ir.Op.get("prim.if_then_else")
    if not isinstance(store, tvm.tirx.BufferStore) or pad.init is not None or "R" in iter_kinds(pad):
        return None
    value = store.value
    if not (isinstance(value, tvm.ir.expr.Call) and value.op.same_as(select)):
        return None
    zero = value.args[2]
    if not isinstance(zero, (tvm.tirx.FloatImm, tvm.tirx.IntImm)) or float(zero.value) != 0.0:
        return None
    dims = {}
    for k, index in enumerate(store.indices):
        if isinstance(index, tvm.tirx.Var):
            dims[k] = index
    bounds: dict[int, list[int]] = {}
    for term in _conjuncts(value.args[0]):
        if not isinstance(term, (tvm.tirx.LE, tvm.tirx.LT)):
            return None
        a, b = term.a, term.b
        if isinstance(a, tvm.tirx.IntImm) and isinstance(b, tvm.tirx.Var):  # lo <= v (or lo < v)
            var, lo, hi = b, int(a.value) + (1 if isinstance(term, tvm.tirx.LT) else 0), None
        elif isinstance(a, tvm.tirx.Var) and isinstance(b, tvm.tirx.IntImm):  # v < hi (or v <= hi)
            var, lo, hi = a, None, int(b.value) + (1 if isinstance(term, tvm.tirx.LE) else 0)
        else:
            return None
        k = next((k for k, v in dims.items() if v.same_as(var)), None)
        if k is None:
            return None
        pair = bounds.setdefault(k, [None, None])
        pair[0 if lo is not None else 1] = lo if lo is not None else hi
    shape = [int(e) for e in store.buffer.shape]
    return {k: (lo if lo is not None else 0, hi if hi is not None else shape[k]) for k, (lo, hi) in bounds.items()}


def _runs(extent: int, taps: int, coef_out: int, coef_tap: int, offset: int,
          lo: int, hi: int) -> list[tuple[int, int, int]]:
    """Runs ``(outputs, first live tap, end)`` of the outputs ``o`` whose taps ``t`` with
    ``lo <= coef_out * o + coef_tap * t + offset < hi`` are the same interval."""
    runs: list[list[int]] = []
    for o in range(extent):
        live = [t for t in range(taps) if lo <= coef_out * o + coef_tap * t + offset < hi]
        first, end = (live[0], live[-1] + 1) if live else (0, 0)
        if live and end - first != len(live):
            return []  # not an interval (a dilated kernel across the edge): leave the axis alone
        if runs and runs[-1][1:] == [first, end]:
            runs[-1][0] += 1
        else:
            runs.append([1, first, end])
    return [tuple(r) for r in runs]  # type: ignore[misc]


def borders(sch: Schedule, block: Any, isa: VectorISA = AVX512) -> Borders | None:
    """The padded output axis of ``block`` the module for ``isa`` partitions (see its doc), or None when it does
    not apply.

    It reads the block and the function, not the schedule: no instruction is added to the trace."""
    sblock = sch.get(block)
    types = fp32_multiply_accumulate(sblock)
    if types is None:
        return None
    first_r = types.index("R")
    if first_r < 3 or "S" in types[first_r:]:  # an outer spatial axis besides the rows and the vector axis
        return None
    if not all(isinstance(iv.dom.extent, tvm.tirx.IntImm) for iv in sblock.iter_vars):
        return None
    extents = [int(iv.dom.extent) for iv in sblock.iter_vars]
    ivars = [iv.var for iv in sblock.iter_vars]
    vector = first_r - 1
    last = sblock.writes[0].region[-1].min
    if extents[vector] % isa.lanes or not (isinstance(last, tvm.tirx.Var) and last.same_as(ivars[vector])):
        return None
    if _loops_around(sch, block) != len(types):  # already transformed
        return None
    best = None
    for region in sblock.reads:
        pad = _producer(sch, block, region.source)
        bounds = None if pad is None else _pad_bounds(pad)
        if not bounds:
            continue
        for k, (lo, hi) in bounds.items():
            index = region.region[k].min
            for s in range(first_r - 2):  # outer spatial axes: not the rows, not the vector axis
                for r in range(first_r, len(types)):
                    coefs = list(detect_linear_equation(index, [ivars[s], ivars[r]]))
                    if len(coefs) != 3 or not all(isinstance(c, tvm.tirx.IntImm) for c in coefs):
                        continue
                    a, b, c = (int(x) for x in coefs)
                    if a <= 0 or b <= 0:
                        continue
                    runs = _runs(extents[s], extents[r], a, b, c, lo, hi)
                    if not runs or len(runs) == 1 or len(runs) > MAX_RUNS:
                        continue
                    dead = sum(n * (extents[r] - (end - first)) for n, first, end in runs)
                    share = dead / (extents[s] * extents[r])
                    if share >= MIN_DEAD and (best is None or share > best.dead):
                        window = tuple(sorted({q for dim in bounds for q in range(first_r, len(types))
                                               if q != r and _uses(region.region[dim].min, ivars[q])}))
                        best = Borders(s, r, tuple(runs), extents[r], share, pad.name_hint, window)
    return best


def _schedule(isa: VectorISA, sch: Schedule, block: Any, found: Borders, vecs: int, pack: bool,
              rows: int | None = None) -> Schedule:
    sch.compute_inline(sch.get_sblock(found.pad))
    types = iter_kinds(sch.get(block))
    first_r = types.index("R")
    window = tuple(q - first_r for q in found.window)
    _microkernel(isa, sch, block, vecs, pack, serial=found.axis, whole_reduction=found.reduction - first_r,
                 fuse_vector=True, tasks_by_outer_axes=True, whole_in_panel=window, fixed_rows=rows)
    loops = sch.get_loops(block)
    # [parallel, the output axis, the kernel axis, the other reductions' panels, the vector axis's panels, the
    # row tiles, the k-panel, the register block]
    row_tiles = loops[3 + (len(types) - first_r - 1 - len(window)) + 1]
    kernel_at = 1  # in a partition of the output axis: [the output axis, the kernel axis, ...]
    # the rows' and columns' padding: TVM's lowering partitions the tasks and the row tiles at its edges, so the
    # interior's register blocks run without a condition (a schedule's loop_partition cannot: the edges move with
    # the sampled tiles)
    for loop in (loops[0], row_tiles):
        sch.annotate(loop, PARTITION_HINT, 1)
    counts = [n for n, _, _ in found.runs]
    parts = sch.loop_partition(loops[1], [*counts[:-1], None])
    for part, (_, first, end) in zip(parts, found.runs):
        (update,) = sch.get_child_blocks(part)
        kernel = sch.get_loops(update)[kernel_at]
        # the zero-init before the kernel axis: in a later partition of it the init would run again
        sch.decompose_reduction(update, kernel)
        if first >= end or (first, end) == (0, found.taps):
            continue  # no live tap (the simplifier drops it all) or all of them
        cuts = [first, end - first] if first > 0 and end < found.taps else [first if first > 0 else end]
        sch.loop_partition(kernel, [*cuts, None])
    # the defaults leave the root alone: parallelize_vectorize_unroll's postprocessor takes the partitions' wrapper
    # blocks for a block of their own and fuses and vectorizes the parallel loop around them
    sch.annotate(sch.get_sblock("root"), "schedule_rule", "None")
    return sch


def _design_spaces(isa: VectorISA, sch: Schedule, block: Any) -> list[Schedule]:
    found = borders(sch, block, isa)
    assert found is not None  # when= checked it
    vector = iter_kinds(sch.get(block)).index("R") - 1
    extent = int(sch.get(block).iter_vars[vector].dom.extent)
    out = []
    for vecs in isa.panel_widths(extent):
        out += packings(isa, sch, vecs, extent, lambda fork, pack, vecs=vecs: _schedule(
            isa, fork, block, found, vecs, pack))
    # and the register block whose rows do not divide the row axis, where the perfect tiles only just cover the
    # FMAs' latency (C3D's 112 output columns on AVX2: 4 x 2 ymm, 8 accumulators; 6 x 2 ran faster, see the doc);
    # on AVX-512 its 4 x 4 zmm blocks have twice that
    rows_extent = int(sch.get(block).iter_vars[vector - 1].dom.extent)
    for vecs in isa.panel_widths(extent):
        rows = ragged_rows(isa, vecs, rows_extent)
        if rows is not None and _perfect_rows(isa, vecs, rows_extent) * vecs <= LATENCY_ACCUMULATORS:
            out += packings(isa, sch, vecs, extent, lambda fork, pack, vecs=vecs, rows=rows: _schedule(
                isa, fork, block, found, vecs, pack, rows))
    # the same micro-kernels with the dead taps are what the micro-kernel module would add: leave the block to the
    # defaults
    sch.annotate(block, NO_MICROKERNEL, 1)
    return [*out, sch]


@module(name=MODULE_NAME, when=lambda sch, block: borders(sch, block, AVX512) is not None,
        requires=functools.partial(missing_isa, AVX512), before=(AVX512.module, "multi_level_tiling"))
def padded_conv(sch: Schedule, block: Any) -> list[Schedule]:
    """Convolutions without the multiply-adds by their padding: ``x86-avx512``'s micro-kernels with the padded
    output axis and its kernel axis partitioned at the padding's edges, so the dead taps vanish; the block's
    default design spaces are kept."""
    return _design_spaces(AVX512, sch, block)


@module(name=AVX2_MODULE_NAME, when=lambda sch, block: borders(sch, block, AVX2) is not None,
        requires=functools.partial(missing_isa, AVX2), before=(AVX2.module, "multi_level_tiling"))
def padded_conv_avx2(sch: Schedule, block: Any) -> list[Schedule]:
    """Convolutions without the multiply-adds by their padding, on AVX2: ``x86-avx2``'s micro-kernels with the
    padded output axis and its kernel axis partitioned at the padding's edges, so the dead taps vanish; the
    block's default design spaces are kept."""
    return _design_spaces(AVX2, sch, block)


PADDED_CONV = padded_conv  # the registered modules (TransformModules)
PADDED_CONV_AVX2 = padded_conv_avx2
