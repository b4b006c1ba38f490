"""Register-blocked fp32 micro-kernels for an x86 vector ISA: what ``x86-avx512`` and ``x86-avx2`` share.

What MetaSchedule's default ``multi_level_tiling`` leaves to chance, these modules fix by construction, the
way a BLAS kernel is written: the innermost loop is one vector register of the output's contiguous axis (16 fp32
lanes in a zmm, 8 in a ymm); around it a register block of ``rows x vecs`` vectors (sampled, at most the ISA's
``max_accumulators`` so they stay in registers with room for the ``vecs`` operand vectors and one broadcast),
fully unrolled; around that the innermost reduction loops (the k-panel, sampled); then cache blocks over rows,
panels and the outer reduction; and one parallel loop outside. LLVM keeps the ``rows x vecs`` accumulators in
registers across the k-panel and emits one ``vfmadd231ps`` per accumulator per k step (see
``tests/core/test_avx512.py`` and ``tests/core/test_avx2.py``).

The operand that varies along the vector axis (GEMM's B, a convolution's weights) can be *packed* inside the
kernel into panels ``[.., j // NR, <reduction>, j % NR]`` (``NR = vecs * lanes``), so the micro-kernel reads it
as one contiguous stream: without that, a 1024-wide row-major B puts every k step on a new 4 KiB page and in
the same L1 set. Because a layout's index map cannot depend on a sampled value, ``vecs`` and packing are
chosen per *design space* (the module forks the space: one per panel width, with and without packing)
while rows, cache blocks and k-panels are sampled tiles the evolutionary search mutates. Sampled rows are perfect
tiles of the row axis, so on 1024 rows at most 4 x 4 or 8 x 2 zmm accumulators; for a block with one reduction
(GEMM) the module adds, per panel width, a design space with the register block that fills the registers
(``ragged_rows``: 6 x 4 or 14 x 2 zmm) where those rows do not divide the axis. Its last row tile is guarded,
and the tile loop carries ``pragma_loop_partition_hint``, so TVM's lowering (``LoopPartition``, in every build)
splits that tile off and the others run without the guard. A convolution gets those blocks where no perfect tile
reaches ``LATENCY_ACCUMULATORS`` (the dilated convolution ``DIL`` has 109 output columns, a prime: its best
block was 1 row x 2 ymm, 2 accumulators, 0.81x PyTorch on a Zen 3; with 6 x 2 it ran 1.07x).

An operand that a transpose of its own copies in the same function (a permutation copy whose only reader is the
block, as TBG's ``query_T[b, h, l, d] = query[b, l, h, d]``) is not left to the defaults' compute-location sampling:
the one read by broadcasts is read in place (the copy inlined; a broadcast is a scalar load in any layout), and in
the spaces that pack, the one along the vector axis is copied by its own block inside each parallel task, the task's
panel once (all of the task's rows then run in it), the copy's innermost loop vectorized: that copy is the packing,
where a cache_read would copy the transposed operand a second time. Hand schedules of TBG (12 heads x 128 x 128 x
64) on a Sapphire Rapids-class Xeon measured 72.5 us that way against 77-105 us with the copy at the root or per
row tile, and 58-62 us for the same products without the transpose.

It applies to fp32 blocks with a multiply-accumulate reduction (``out += a * b``) and at least two spatial axes
whose last spatial axis is the output's contiguous axis, with an extent divisible by the lanes, and more than one
row (not a matrix-vector product).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tvm
from tvm.s_tir import Schedule

from .isa import VectorISA

__all__ = [
    "NO_MICROKERNEL", "PARTITION_HINT", "design_spaces", "fp32_multiply_accumulate", "iter_kinds",
    "microkernel_applies", "packings", "ragged_rows",
]

# a loop annotated with it is split by TVM's lowering (its LoopPartition pass, in every build) where a condition
# inside it becomes provably true or false: how the modules take a guarded tile or a padding's edge off the others
PARTITION_HINT = "pragma_loop_partition_hint"
# independent accumulators that keep two FMA units busy through a 4-cycle latency (Skylake and later, Zen 3-5)
LATENCY_ACCUMULATORS = 8
MAX_PANELS = 16  # reduction panels per reduction axis: the k-panel is at least 1/16 of the reduction
# a block annotated with it is left to the defaults: a module that wrote its own micro-kernels of the block (as
# ``x86-padded-conv`` does) marks the copy it keeps for the default tiling
NO_MICROKERNEL = "msexplore.no_microkernel"


def iter_kinds(sblock: Any) -> str:
    """The block's iterators, one letter each: S spatial, R reduction, O any other kind."""
    kinds = {0: "S", 2: "R"}
    return "".join(kinds.get(int(iv.iter_type), "O") for iv in sblock.iter_vars)


def fp32_multiply_accumulate(sblock: Any) -> str | None:
    """``iter_kinds`` of a block with one fp32 output updated as ``out = out + a * b`` over at least one reduction
    and no iterator of another kind, else None: what the modules that rewrite a GEMM's or a convolution's loops
    start from."""
    if len(sblock.writes) != 1 or sblock.init is None or str(sblock.writes[0].source.dtype) != "float32":
        return None
    if not _multiply_accumulates(sblock):
        return None
    kinds = iter_kinds(sblock)
    return None if "O" in kinds or "R" not in kinds else kinds


def _multiply_accumulates(sblock: Any) -> bool:
    """Whether the block's update is ``out = out + a * b`` (a GEMM's or a convolution's), not a max or a plain sum.

    A softmax's row max has the same loop structure; the micro-kernel then forked its space into 36 design spaces,
    one of whose programs took LLVM 129 s to build."""
    store = sblock.body
    if not isinstance(store, tvm.tirx.BufferStore) or not isinstance(store.value, tvm.tirx.Add):
        return False

    def product(expr: Any) -> bool:
        while isinstance(expr, tvm.tirx.Cast):
            expr = expr.value
        return isinstance(expr, tvm.tirx.Mul)

    def the_output(expr: Any) -> bool:  # a load (TVM 0.27: ir.expr.TensorLoad, its buffer is `source`)
        source = getattr(expr, "source", None)
        return source is not None and source.same_as(store.buffer)

    a, b = store.value.a, store.value.b
    return (the_output(a) and product(b)) or (the_output(b) and product(a))


def microkernel_applies(isa: VectorISA, sch: Schedule, block: Any) -> bool:
    """fp32, one output, a multiply-accumulate reduction, >= 2 spatial axes (not a single row), the last one
    contiguous in the output and divisible by the ISA's lanes."""
    sblock = sch.get(block)
    if len(sblock.writes) != 1 or sblock.init is None or NO_MICROKERNEL in sblock.annotations:
        return False
    out = sblock.writes[0].source
    if str(out.dtype) != "float32":
        return False
    if not _multiply_accumulates(sblock):
        return False
    types = iter_kinds(sch.get(block))
    if "O" in types or "R" not in types or types.count("S") < 2:
        return False
    first_r = types.index("R")
    if any(t == "S" for t in types[first_r:]):  # spatial axes first, then reductions (TE's order)
        return False
    loops = sch.get_loops(block)
    if len(loops) != len(types):  # already transformed
        return False
    extents = [sch.get(lp).extent for lp in loops]
    if not all(isinstance(e, tvm.tirx.IntImm) for e in extents):
        return False
    j = first_r - 1
    if int(extents[j]) % isa.lanes:
        return False
    rows = 1
    for k in range(j):
        rows *= int(extents[k])
    if rows < 2:
        # a matrix-vector product (batch-1 linear layers): no rows to block in registers, and the load of the
        # matrix is all its time; the defaults' tiling measured faster (MLP 1024x1024 layer: 20 us vs 26 us)
        return False
    # the output's last index must be exactly the last spatial axis (then the vector axis is contiguous)
    last = sblock.writes[0].region[-1].min
    return isinstance(last, tvm.tirx.Var) and last.same_as(sblock.iter_vars[j].var)


def permutation_copy(sblock: Any) -> list[int] | None:
    """For a block that only copies (one input, no reduction, ``out[i, j, ..] = in[<a permutation of i, j, ..>]``,
    the same dtype): the block axis of each of the input's indices; else None. A transpose's shape, as the defaults
    leave it: the output written in axis order."""
    if sblock.init is not None or len(sblock.reads) != 1 or len(sblock.writes) != 1:
        return None
    if any(int(iv.iter_type) != 0 for iv in sblock.iter_vars):
        return None
    store = sblock.body
    # a copy: the stored value is a load (TVM 0.27: ``ir.expr.TensorLoad``, its buffer is ``source``)
    if not isinstance(store, tvm.tirx.BufferStore) or not isinstance(store.value, tvm.ir.expr.TensorLoad):
        return None
    if str(store.buffer.dtype) != str(store.value.source.dtype):
        return None
    axes = [iv.var for iv in sblock.iter_vars]
    if len(store.indices) != len(axes) or not all(i.same_as(v) for i, v in zip(store.indices, axes)):
        return None
    read = store.value.indices
    if len(read) != len(axes) or not all(isinstance(i, tvm.tirx.Var) for i in read):
        return None
    order = [next((k for k, v in enumerate(axes) if v.same_as(i)), None) for i in read]  # block axis of each index
    return order if None not in order and sorted(order) == list(range(len(axes))) else None


def _copy_feeding(sch: Schedule, block: Any, buffer: Any) -> Any | None:
    """The block that writes ``buffer`` when it is a permutation copy (a transpose) at the root, untransformed,
    whose only consumer is ``block``: what the micro-kernel can inline or place inside its own loops."""
    for producer in sch.get_producers(block):
        sproducer = sch.get(producer)
        if not sproducer.writes[0].source.same_as(buffer):
            continue
        if permutation_copy(sproducer) is None or len(sch.get_loops(producer)) != len(sproducer.iter_vars):
            return None
        consumers = sch.get_consumers(producer)
        if len(consumers) != 1 or not sch.get_sref(consumers[0]).same_as(sch.get_sref(block)):
            return None
        return producer
    return None


def _operand_along_vector_axis(sch: Schedule, block: Any, j: int) -> int | None:
    """Index of the read buffer indexed by the vector axis in its last dimension and not by the row axis."""
    sblock = sch.get(block)
    jvar, ivar = sblock.iter_vars[j].var, sblock.iter_vars[j - 1].var
    for index, region in enumerate(sblock.reads):
        if region.source.same_as(sblock.writes[0].source):
            continue
        last = region.region[-1].min
        uses_i = any(_uses(r.min, ivar) for r in region.region)
        if isinstance(last, tvm.tirx.Var) and last.same_as(jvar) and not uses_i:
            return index
    return None


def _uses(expr: Any, var: Any) -> bool:
    from tvm.tirx.analysis import undefined_vars

    return any(v.same_as(var) for v in undefined_vars(expr))


def _microkernel(isa: VectorISA, sch: Schedule, block: Any, vecs: int, pack: bool, serial: int | None = None,
                 whole_reduction: int | None = None, fuse_vector: bool = False, tasks_by_outer_axes: bool = False,
                 whole_in_panel: tuple[int, ...] = (), fixed_rows: int | None = None) -> Schedule:
    """The micro-kernel of the module's doc on ``block``. ``serial`` (an outer spatial axis, by position) is kept
    whole, one loop inside each parallel task and outside the reductions, and ``whole_reduction`` (by position
    among the reduction axes) one unsplit loop outside the k-panel: where ``x86-padded-conv`` partitions them.
    ``fuse_vector`` makes the register block's vectors one vectorized loop, as the defaults' postprocessor does
    when the root is left to it (a schedule that leaves the root alone must do it itself: unrolled 16-lane
    vectors ran C3D 3.5x slower than one 64-lane loop, measured on a Zen 5).

    ``tasks_by_outer_axes`` makes the parallel tasks the outer spatial axes whole (but ``serial``) and the vector
    axis's panels, with the row axis whole inside each task, and ``whole_in_panel`` (positions among the reduction
    axes) keeps those reductions unsplit inside the k-panel: then the bounds of a row tile and of a task are
    constants, and the loop partition ``x86-padded-conv`` asks TVM's lowering for at the padding's edges
    (``pragma_loop_partition_hint``) splits them at constant points. ``fixed_rows`` is a register block of that
    many rows, which need not divide the row axis (``ragged_rows``), instead of a sampled one.

    Operands copied by a transpose of their own are read in place or copied per task (the module's doc); where
    the copy is per task, the tasks are the outer axes and the vector axis's panels, all rows inside."""
    types = iter_kinds(sch.get(block))
    first_r = types.index("R")
    name = sch.get(block).name_hint

    # operands copied by a transpose of their own in the same function (TBG's ``query_T``, ``value_T``): the one
    # read by broadcasts is read in place (the copy inlined); the one along the vector axis, where the space packs,
    # is copied panel by panel inside each parallel task instead of transposed whole and then packed again
    vector_operand = _operand_along_vector_axis(sch, block, first_r - 1)
    vector_buffer = sch.get(block).reads[vector_operand].source if vector_operand is not None else None
    for region in list(sch.get(block).reads):
        if vector_buffer is not None and region.source.same_as(vector_buffer):
            continue
        copy = _copy_feeding(sch, block, region.source)
        if copy is not None:
            sch.compute_inline(copy)
    copied_panels = _copy_feeding(sch, block, vector_buffer) if pack and vector_buffer is not None else None
    if copied_panels is not None and fixed_rows is None:
        tasks_by_outer_axes = True  # all rows in each task: its panel copied once

    loops = sch.get_loops(block)
    spatial, reductions = loops[:first_r], loops[first_r:]
    *outer, i, j = spatial

    packed = None
    if pack and copied_panels is None:
        operand = _operand_along_vector_axis(sch, block, first_r - 1)
        if operand is not None:
            packed = sch.cache_read(block, operand, "global")
            nr = vecs * isa.lanes
            sch.transform_layout(block, ("read", operand), _panel_map(nr))
            sch.annotate(packed, "schedule_rule", "None")

    # vector axis: [j0 (parallel), j1 (panels per cache block), vecs (register block), lanes]
    j_rest, lanes = sch.split(j, [None, isa.lanes])
    j_outer, vec = sch.split(j_rest, [None, vecs])
    j0, j1 = sch.split(j_outer, sch.sample_perfect_tile(j_outer, n=2, max_innermost_factor=16))
    rows_max = isa.max_rows(vecs)
    if tasks_by_outer_axes:
        # row axis: [i1 (rows per cache block), rows (register block)]; other spatial axes whole, in parallel. A
        # fixed block of rows that need not divide the axis guards its last tile, which TVM's lowering partitions
        # off the others
        if fixed_rows is not None:
            i1, rows = sch.split(i, [None, fixed_rows])
            sch.annotate(i1, PARTITION_HINT, 1)
        else:
            i1, rows = sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=rows_max))
        row_tasks, outer_tiles = [], [[lp, None] for k, lp in enumerate(outer) if k != serial]
    elif fixed_rows is not None and copied_panels is not None:
        # all rows in each task (its panel copied once), the guarded last row tile partitioned off
        i1, rows = sch.split(i, [None, fixed_rows])
        sch.annotate(i1, PARTITION_HINT, 1)
        row_tasks, outer_tiles = [], [[lp, None] for k, lp in enumerate(outer) if k != serial]
    else:
        # row axis: [i0 (parallel), i1 (rows per cache block), rows (register block)]
        if fixed_rows is not None:
            # a register block of rows that need not divide the axis: the last tile is guarded, and TVM's lowering
            # partitions it off the others
            i_tiles, rows = sch.split(i, [None, fixed_rows])
            i0, i1 = sch.split(i_tiles, sch.sample_perfect_tile(i_tiles, n=2))
            sch.annotate(i1, PARTITION_HINT, 1)
        else:
            i0, i1, rows = sch.split(i, sch.sample_perfect_tile(i, n=3, max_innermost_factor=rows_max))
        row_tasks = [i0]
        # other spatial axes (batch, image rows): [parallel, per task]
        outer_tiles = [sch.split(lp, sch.sample_perfect_tile(lp, n=2, max_innermost_factor=64))
                       for k, lp in enumerate(outer) if k != serial]
    # reductions: [panel loop, k-panel just outside the register block]. The sampled tile is (panel length,
    # panels) with at most MAX_PANELS panels, used in reverse: the k-panel stays long enough to keep the
    # accumulators in registers (a 1-long panel would load and store them on every k step)
    red_tiles = []
    for k, lp in enumerate(reductions):
        if k == whole_reduction:
            continue
        if k in whole_in_panel:
            red_tiles.append([None, lp])
            continue
        length, panels = sch.sample_perfect_tile(lp, n=2, max_innermost_factor=MAX_PANELS)
        red_tiles.append(sch.split(lp, [panels, length]))

    par_loops = [t[0] for t in outer_tiles] + [j0, *row_tasks]
    if fixed_rows is not None and row_tasks:
        # the row tasks outermost: the task holding the guarded last tile is then a range of the fused loop, which
        # TVM's lowering partitions off (the hint on the fused loop, below)
        par_loops = [*row_tasks, *par_loops[:-1]]
    kept = [outer[serial]] if serial is not None else []
    whole = [reductions[whole_reduction]] if whole_reduction is not None else []
    sch.reorder(
        *par_loops, *kept, *[t[1] for t in outer_tiles if t[1] is not None], *whole,
        *[t[0] for t in red_tiles if t[0] is not None], j1, i1, *[t[1] for t in red_tiles], rows, vec, lanes,
    )
    fused = sch.fuse(*par_loops)
    sch.parallel(fused)
    if fixed_rows is not None and row_tasks:
        sch.annotate(fused, PARTITION_HINT, 1)
    sch.unroll(rows)
    if fuse_vector:
        sch.vectorize(sch.fuse(vec, lanes))
    else:
        sch.unroll(vec)
        sch.vectorize(lanes)
    sch.annotate(sch.get_sblock(name), "schedule_rule", "None")  # the defaults leave this block alone

    if copied_panels is not None:
        # the task's panels of the operand, copied (transposed) into place by the copy's own block at the task loop
        sch.compute_at(copied_panels, fused, preserve_unit_loops=True)
        sch.annotate(copied_panels, "schedule_rule", "None")
        _vectorize_copy(isa, sch, sch.get_loops(copied_panels)[-1])
    if packed is not None:
        pack_loops = sch.get_loops(packed)
        if len(pack_loops) > 1:
            sch.parallel(sch.fuse(*pack_loops[:-1]))
        _vectorize_copy(isa, sch, pack_loops[-1])
    return sch


def _vectorize_copy(isa: VectorISA, sch: Schedule, inner: Any) -> None:
    """Vectorize a copy's innermost loop, one register at a time where it is longer (a whole 1024-wide row as one
    LLVM vector took LLVM ~1 s per build, 30x the kernel)."""
    extent = sch.get(inner).extent
    if isinstance(extent, tvm.tirx.IntImm) and int(extent) > isa.lanes and int(extent) % isa.lanes == 0:
        inner = sch.split(inner, [None, isa.lanes])[1]
    sch.vectorize(inner)


def ragged_rows(isa: VectorISA, vecs: int, extent: int) -> int | None:
    """The rows of a register block ``vecs`` vectors wide that fills the registers (the accumulators, the panel's
    vectors and a broadcast), when they do not divide a row axis of ``extent`` and are more than the most rows that
    do; else None (the perfect tiles already hold the best block)."""
    rows = min(isa.max_rows(vecs), (isa.registers - vecs - 1) // vecs)
    return rows if extent % rows and rows > _perfect_rows(isa, vecs, extent) else None


def _perfect_rows(isa: VectorISA, vecs: int, extent: int) -> int:
    """The most rows of a register block ``vecs`` vectors wide that divide a row axis of ``extent``."""
    return max(r for r in range(1, isa.max_rows(vecs) + 1) if extent % r == 0)


def _panel_map(nr: int) -> Any:
    """``(a.., j) -> (j // nr, a.., j % nr)``: panels of ``nr`` columns, each contiguous along the other axes."""

    def index_map(*axes: Any) -> tuple[Any, ...]:
        *lead, jj = axes
        return (jj // nr, *lead, jj % nr)

    return index_map


def packings(isa: VectorISA, sch: Schedule, vecs: int, extent: int,
             kernel: Callable[[Schedule, bool], Schedule]) -> list[Schedule]:
    """``kernel(fork, pack)``, a micro-kernel ``vecs`` vectors wide, on forks of ``sch``: packed and not, or only
    unpacked where the vector axis (of ``extent``) is one panel wide."""
    out = []
    for pack in (True, False) if extent > vecs * isa.lanes else (False,):
        fork = sch.copy()
        fork.seed(sch.fork_seed())
        out.append(kernel(fork, pack))
    return out


def design_spaces(isa: VectorISA, sch: Schedule, block: Any) -> list[Schedule]:
    """The module's spaces for ``block``: one micro-kernel per panel width, with and without packing, and for a
    block with several reduction axes (a convolution) its default design spaces as well."""
    types = iter_kinds(sch.get(block))
    j = types.index("R") - 1
    extent = int(sch.get(sch.get_loops(block)[j]).extent)
    out = []
    for vecs in isa.panel_widths(extent):
        out += packings(isa, sch, vecs, extent, lambda fork, pack, vecs=vecs: _microkernel(
            isa, fork, block, vecs, pack))
    rows_extent = int(sch.get(sch.get_loops(block)[j - 1]).extent)
    convolution = types.count("R") > 1
    for vecs in isa.panel_widths(extent):
        # also the register block whose rows do not divide the row axis (6 x 4 and 14 x 2 zmm where only 4 x 4 and
        # 8 x 2 divide 1024), its last tile guarded and partitioned off the others by TVM's lowering. For GEMM's one
        # long reduction always: measured beside the perfect tiles on a Sapphire Rapids-class Xeon (2026-12-02, 128
        # trials each, two runs), GEMM 512^3 831 -> 735 and 792 -> 715 us (PyTorch 716); TBG and GEMM 1024^3 within
        # the search's noise (README). For a convolution only where no perfect tile covers the FMAs' latency (DIL's
        # 109 output columns, a prime: 1 x 2 ymm was its best block, 2 accumulators); elsewhere the extra spaces
        # would split its budget for a block the perfect tiles come close to
        rows = ragged_rows(isa, vecs, rows_extent)
        if rows is None or (convolution and _perfect_rows(isa, vecs, rows_extent) * vecs >= LATENCY_ACCUMULATORS):
            continue
        out += packings(isa, sch, vecs, extent, lambda fork, pack, vecs=vecs, rows=rows: _microkernel(
            isa, fork, block, vecs, pack, fixed_rows=rows))
    if convolution:
        # several reduction axes (a convolution's channels x window): the k-panel is a nest of short loops (3 x 7 x 7
        # for ResNet's first conv), where the defaults' tiling can win. Keep the block's default design spaces beside
        # the micro-kernels so adding the module never removes what the defaults alone would find. Not for GEMM's one
        # long reduction: there the extra spaces only split the search budget (GEMM 1024^3, 64 trials: 0.70x numpy
        # with them, 0.85x without, same day)
        out.append(sch)
    return out
