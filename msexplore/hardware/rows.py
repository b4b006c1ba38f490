"""Row-wise reductions (softmax, layer norm) on AVX-512: the module ``"x86-row-reduction"``.

How it was found. The best softmax (``SFM``, 256 x 256) of a 64-trial search over ``default + x86-avx512`` ran at
0.24x PyTorch. Its TIR has two parallel loops over the rows (two fork-joins), the row sum re-reduced for every
element (``add_r_factor`` + ``random_compute_location`` put the final sum inside the column loop: 32 adds per
output) and the 65,536 exponentials as 256 unrolled ``call expf@PLT`` per row in the assembly: LLVM splits a
vectorized ``llvm.exp.v16f32`` into scalar libm calls, and no schedule of the default space avoids them. PyTorch's
kernel is one parallel loop over rows, and per row: a vector max, a vector ``exp`` (a polynomial) with the sum, a
vector scale.

This module writes that kernel as a schedule. It applies to a function that is one chain of row-wise blocks
(every block reduces or maps the rows of the same ``rows x cols`` domain, the last one writes the output):

- one parallel loop over row tiles (rows per task sampled); every producer computed per row inside it, so the
  intermediates shrink to row tiles that stay in L1 and each row comes from memory once;
- each reduction over the row (max, sum, sum of squares) in 16-lane vector accumulators (``rfactor``; 1, 2 or 4
  vector accumulators sampled), then one scalar step per lane;
- the elementwise blocks and the output vectorized by 16; softmax's ``exp(x - max)`` tensorized with
  ``msexplore.hardware.vector_exp``: a vector polynomial within 1.02 ulp of ``exp`` (libm's ``expf`` is within
  0.5 ulp), so no ``call expf`` is left;
- the unroll depth of the row body sampled, as the default ``parallelize_vectorize_unroll`` does.

It replaces the default modules' schedules of the chain rather than adding to them: the default space of a
softmax has 9 design spaces, all with scalar ``expf`` (5x slower than this one), and beside them the module's one
design space was not measured once in two 16-trial searches (in a 64-trial one its best came at trial 19).
Functions that are not one row chain keep the default space unchanged. It needs AVX2 and FMA: its 16-lane vectors
are one zmm register on an AVX-512 CPU and two ymm registers on an AVX2 one::

    space = mx.Space(mx.workload("SFM"), modules=["default", "x86-row-reduction"])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import tvm
from tvm.s_tir import Schedule

from ..modules import module
from . import vector_exp
from .avx2 import missing_avx2
from .microkernel import iter_kinds

__all__ = ["MODULE_NAME", "ROW_REDUCTION", "RowChain", "row_chain"]

MODULE_NAME = "x86-row-reduction"
LANES = vector_exp.LANES
ACCUMULATORS = (1, 2, 4)  # 16-lane accumulators per reduction, sampled: more hide the add/max latency
MAX_ROWS_PER_TASK = 16
UNROLL_STEPS = (0, 16, 64, 512)  # pragma_auto_unroll_max_step candidates, as the default rule samples them


@dataclass(frozen=True)
class RowChain:
    """The blocks of a row-wise chain, in program order, each with its kind."""

    output: str
    reductions: tuple[str, ...]  # rows x cols -> rows (max, sum)
    elementwise: tuple[str, ...]  # rows x cols -> rows x cols (softmax's exp)
    per_row: tuple[str, ...]  # rows -> rows (layer norm's mean)
    vector_exp: tuple[str, ...]  # those of ``elementwise`` that compute exp(x[rows, col] - m[rows]) (softmax's)
    order: tuple[str, ...]  # every block, producers first
    rows: tuple[int, ...]  # extents of the row axes
    cols: int  # extent of the row itself (a multiple of 16)


def _extents(sblock: Any) -> tuple[int, ...] | None:
    out = []
    for iv in sblock.iter_vars:
        extent = iv.dom.extent
        if not isinstance(extent, tvm.tirx.IntImm):
            return None
        out.append(int(extent))
    return tuple(out)


def row_chain(sch: Schedule, block: Any) -> RowChain | None:
    """The row-wise chain that ``block`` ends, or None: ``block`` is the function's last block, maps
    ``rows x cols`` (``cols`` a multiple of 16), and every other block reduces, maps or is computed per row of
    the same domain; all are fp32, unscheduled, one loop nest each.

    It reads the program, not the schedule: no instruction is added to the trace (a ``when=`` that called
    ``sch.get_loops`` would change every design space of the workloads it turns down)."""
    nests = _loop_nests(sch.mod["main"])
    out = sch.get(block)
    if not nests or not nests[-1][0].same_as(out):
        return None
    out_extents = _extents(out)
    if out_extents is None or len(out_extents) < 2 or iter_kinds(out) != "S" * len(out_extents):
        return None
    *rows, cols = out_extents
    if cols % LANES:
        return None
    kinds: dict[str, list[str]] = {"R": [], "E": [], "P": [], "X": []}
    order = []
    for sblock, depth in nests:
        types, extents = iter_kinds(sblock), _extents(sblock)
        if extents is None or depth != len(extents) or len(sblock.writes) != 1:
            return None
        if str(sblock.writes[0].source.dtype) != "float32":
            return None
        name = sblock.name_hint
        order.append(name)
        if name == out.name_hint:
            continue
        if extents == (*rows, cols) and types == "S" * len(rows) + "R":
            kinds["R"].append(name)
        elif extents == (*rows, cols) and types == "S" * (len(rows) + 1):
            kinds["E"].append(name)
            if _is_exp_of_difference(sblock):
                kinds["X"].append(name)
        elif extents == tuple(rows) and types == "S" * len(rows):
            kinds["P"].append(name)
        else:
            return None
    if not kinds["R"]:
        return None
    return RowChain(
        output=out.name_hint,
        reductions=tuple(kinds["R"]),
        elementwise=tuple(kinds["E"]),
        per_row=tuple(kinds["P"]),
        vector_exp=tuple(kinds["X"]),
        order=tuple(order),
        rows=tuple(rows),
        cols=cols,
    )


def _loop_nests(func: Any) -> list[tuple[Any, int]] | None:
    """Each block under the root with the number of loops around it, if every nest holds one block; else None."""
    root = func.body.block
    stmts = list(root.body.seq) if isinstance(root.body, tvm.tirx.SeqStmt) else [root.body]
    nests = []
    for stmt in stmts:
        depth = 0
        while isinstance(stmt, tvm.tirx.For):
            stmt, depth = stmt.body, depth + 1
        if not isinstance(stmt, tvm.s_tir.stmt.SBlockRealize):
            return None
        nests.append((stmt.block, depth))
    return nests


def _is_exp_of_difference(sblock: Any) -> bool:
    """``C[rows, col] = exp(A[rows, col] - M[rows])`` in fp32, the description of ``vector_exp``'s intrinsic."""
    body = sblock.body
    if not isinstance(body, tvm.tirx.BufferStore) or str(body.buffer.dtype) != "float32":
        return False
    value = body.value
    if not isinstance(value, tvm.ir.expr.Call) or not value.op.same_as(tvm.ir.Op.get("tirx.exp")):
        return False
    diff = value.args[0]
    if not (isinstance(diff, tvm.tirx.Sub) and isinstance(diff.a, tvm.ir.expr.TensorLoad)
            and isinstance(diff.b, tvm.ir.expr.TensorLoad)):
        return False
    ivars = [iv.var for iv in sblock.iter_vars]
    return _indexed_by(diff.a, ivars) and _indexed_by(diff.b, ivars[:-1]) and _indexed_by(body, ivars)


def _indexed_by(access: Any, ivars: list[Any]) -> bool:
    return len(access.indices) == len(ivars) and all(
        isinstance(i, tvm.tirx.Var) and i.same_as(v) for i, v in zip(access.indices, ivars)
    )


def _applies(sch: Schedule, block: Any) -> bool:
    return row_chain(sch, block) is not None


def _row_schedule(sch: Schedule, chain: RowChain) -> Schedule:
    # reductions first (rfactor wants the block's own loop nest): vector accumulators of 16 x a lanes
    rf_blocks = {}
    for name in chain.reductions:
        red = sch.get_sblock(name)
        widths = [LANES * a for a in ACCUMULATORS if chain.cols % (LANES * a) == 0]
        width = sch.sample_categorical(widths, [1.0 / len(widths)] * len(widths))
        _, lanes = sch.split(sch.get_loops(red)[-1], [None, width])
        rf_blocks[name] = sch.rfactor(lanes, len(chain.rows))

    out = sch.get_sblock(chain.output)
    *outer_rows, last_row, col = sch.get_loops(out)
    # tasks of the last row axis, fused with the outer row axes into the parallel loop (fusing all row axes
    # first would bind rows through a modulo that blockize, and so the exp's tensorize, cannot follow)
    tasks, rows_per_task = sch.split(
        last_row, sch.sample_perfect_tile(last_row, n=2, max_innermost_factor=MAX_ROWS_PER_TASK)
    )
    if outer_rows:
        tasks = sch.fuse(*outer_rows, tasks)
    # producers inside the row loop, last first (compute_at needs a producer's consumers placed already)
    for name in reversed(chain.order[:-1]):
        sch.compute_at(sch.get_sblock(name), rows_per_task)
        if name in rf_blocks:
            sch.compute_at(rf_blocks[name], rows_per_task)

    # the defaults leave every block of the chain alone, and the root too: its parallelize/vectorize/unroll
    # annotations would vectorize the loop around the tensorized exp a second time
    for rv in [sch.get_sblock("root"), *(sch.get_sblock(n) for n in chain.order), *rf_blocks.values()]:
        sch.annotate(rv, "schedule_rule", "None")
    for name in chain.reductions:
        rf = rf_blocks[name]
        lanes, steps = sch.get_loops(rf)[-2:]  # compute_at puts the rfactor (spatial) axis outside
        sch.reorder(steps, lanes)
        accumulators, vector = sch.split(lanes, [None, LANES])
        sch.unroll(accumulators)
        sch.vectorize(vector)
    for name in chain.elementwise:
        block = sch.get_sblock(name)
        _, vector = sch.split(sch.get_loops(block)[-1], [None, LANES])
        if name in chain.vector_exp:
            sch.tensorize(vector, vector_exp.INTRIN_NAME)
        else:
            sch.vectorize(vector)
    _, vector = sch.split(col, [None, LANES])
    sch.vectorize(vector)

    sch.parallel(tasks)
    unroll = sch.sample_categorical(list(UNROLL_STEPS), [1.0 / len(UNROLL_STEPS)] * len(UNROLL_STEPS))
    sch.annotate(tasks, "pragma_auto_unroll_max_step", unroll)
    sch.annotate(tasks, "pragma_unroll_explicit", 1)
    return sch


@module(name=MODULE_NAME, when=_applies, requires=missing_avx2, before=("inline_constant_scalars",))
def row_reduction(sch: Schedule, block: Any) -> Schedule:
    """Row-wise reductions (softmax, layer norm): rows parallel, each row's max/sum in 16-lane vector accumulators,
    exp as a vector polynomial (<= 1.02 ulp), elementwise steps vectorized. Replaces the default schedules of the
    chain."""
    chain = row_chain(sch, block)
    assert chain is not None  # when= checked it
    return _row_schedule(sch, chain)


ROW_REDUCTION = row_reduction  # the registered module (a TransformModule)
