"""The "x86-avx512" micro-kernel module: its design spaces, where it applies, valid and correct samples, packed
panels, and zmm FMAs with the accumulators in registers in the compiled inner loop.

Spaces are built for an AVX-512 CPU named explicitly, so those tests pass on any x86 machine; the tests that run
kernels need a host with AVX-512 and are skipped elsewhere.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import tvm
from x86_targets import HASWELL, SKYLAKE, needs_avx512_host

import msexplore as mx
from msexplore.hardware import avx512
from msexplore.hardware.isa import AVX512
from msexplore.hardware.microkernel import ragged_rows
from msexplore.modules import ModuleNotApplicable

MODULES = ["default", "x86-avx512"]


@pytest.fixture(scope="module")
def gemm() -> mx.Workload:
    return mx.workload("GMM", n=64, m=64, k=64)


@pytest.fixture(scope="module")
def gemm_space(gemm) -> mx.Space:
    return mx.Space(gemm, modules=MODULES, target=SKYLAKE)


@pytest.fixture(scope="module")
def gemm_samples(gemm_space) -> mx.SampleSet:
    return gemm_space.sample(16, seed=0)


def _module_rvs(space: mx.Space) -> set[str]:
    return {rv.name for ds in space.design_spaces for rv in ds.random_variables if rv.module == "x86-avx512"}


def _register_block_rows(sample: mx.Sample) -> int:
    """The rows of a sample's register block: sampled (``Z.tile_i``'s innermost) or fixed (its unrolled loop)."""
    if "Z.tile_i" in sample.decisions:
        return sample.decisions["Z.tile_i"][-1]
    return int(re.search(r"in T\.unroll\((\d+)\)", sample.tir).group(1))


# ---- the module as a user sees it ----------------------------------------------------------------------------


def test_the_module_is_registered_by_name_and_runs_before_the_generic_tiling():
    module = mx.registered_modules()["x86-avx512"]
    assert module is avx512.AVX512 and module.fn is not None
    assert module.before == ("multi_level_tiling",)


def test_targets_without_avx512_are_refused_with_the_reason(gemm):
    assert avx512.missing_avx512(mx.resolve_target(SKYLAKE)) is None
    assert "no AVX-512F" in avx512.missing_avx512(mx.resolve_target(HASWELL))
    with pytest.raises(ModuleNotApplicable, match="no AVX-512F"):
        mx.Space(gemm, modules=MODULES, target=HASWELL)


def test_panel_widths_prefer_four_vectors_and_need_a_divisor():
    assert avx512.panel_widths(1024) == [4, 2]
    assert avx512.panel_widths(48) == [3]
    assert avx512.panel_widths(16) == [1]


def test_one_design_space_per_panel_width_with_and_without_packing(gemm_space):
    # GMM 64: 4 vectors of 16 lanes -> widths 4 (the whole row: nothing to pack) and 2 (packed or not); each once
    # with sampled rows that divide 64 and once with the rows that fill the registers (6 x 4, 14 x 2), which do not
    assert len(gemm_space.design_spaces) == 6
    assert not gemm_space.failures
    sampled = [ds for ds in gemm_space.design_spaces if "Z.tile_i" in ds.by_name()]
    ragged = [ds for ds in gemm_space.design_spaces if "Z.tile_i_0" in ds.by_name()]
    assert len(sampled) == len(ragged) == 3
    assert {"Z.tile_i", "Z.tile_i_0", "Z.tile_k", "Z.tile_j_0_0"} <= _module_rvs(gemm_space)
    assert sum("transform_layout" in str(ds.trace) for ds in sampled) == 1  # width 2, packed
    assert sum("transform_layout" in str(ds.trace) for ds in ragged) == 1
    # the defaults leave the block to the module: no multi_level_tiling variables on Z
    assert not [
        rv for ds in gemm_space.design_spaces for rv in ds.random_variables if rv.module == "multi_level_tiling"
    ]


def test_convolutions_keep_the_default_spaces_beside_the_micro_kernels():
    # a 3-channel 7x7 window is a short, nested k-panel where the defaults' tiling can win: the module keeps every
    # design space the defaults alone build for the block (GEMM's one long reduction does not: see the test above)
    conv = mx.workload("C2D", h=16, w=16, ci=3, co=32)
    space = mx.Space(conv, modules=MODULES, target=SKYLAKE)
    default = mx.Space(conv, modules=["default"], target=SKYLAKE)
    kernels = [ds for ds in space.design_spaces if any(rv.module == "x86-avx512" for rv in ds.random_variables)]
    kept = [ds for ds in space.design_spaces if ds not in kernels]
    assert kernels and not space.failures

    def variables(spaces):  # every field but the position in the trace and the compute locations legal for the
        # design space's own (random) tiles
        return [[dataclasses.replace(rv, position=0, locations=None) for rv in ds.random_variables] for ds in spaces]

    assert len(kept) == len(default.design_spaces) >= 1
    assert variables(kept) == variables(default.design_spaces)


def test_a_convolution_with_a_prime_row_axis_gets_the_blocks_that_fill_the_zmm_registers():
    # 17 output columns (DIL's are 109), a prime: perfect row tiles give 1 x 4 or 1 x 2 zmm, too few accumulators to
    # cover the FMAs' latency; the module adds 6 x 4 (64 channels: one panel, nothing to pack) and 14 x 2 (packed or
    # not), and nothing where 7 rows divide the axis (14 columns)
    prime = mx.workload("DIL", h=14, w=40, ci=3, co=64)
    assert prime.args[2].shape[2] == 17
    space = mx.Space(prime, modules=MODULES, target=SKYLAKE)
    mine = [ds for ds in space.design_spaces if any(rv.module == "x86-avx512" for rv in ds.random_variables)]
    fixed = [ds.index for ds in mine if "conv2d_nhwc.tile_w" not in ds.by_name()]
    assert len(fixed) == 3 and not space.failures
    rows = sorted(int(re.search(r"in T\.unroll\((\d+)\)", s.tir).group(1))
                  for s in space.sample(40, seed=0) if s.design_space in fixed)
    assert set(rows) == {6, 14}
    divisible = mx.workload("DIL", h=14, w=34, ci=3, co=64)
    assert divisible.args[2].shape[2] == 14
    kept = mx.Space(divisible, modules=MODULES, target=SKYLAKE)
    assert all("conv2d_nhwc.tile_w" in ds.by_name() for ds in kept.design_spaces
               if any(rv.module == "x86-avx512" for rv in ds.random_variables))


def test_register_block_is_bounded_by_the_zmm_registers(gemm_space):
    for ds in gemm_space.design_spaces:
        if "Z.tile_i" in ds.by_name():
            assert ds.by_name()["Z.tile_i"].max_innermost_factor <= avx512.MAX_ACCUMULATORS // 2
    # the fixed blocks: accumulators, the panel's vectors and a broadcast fill the 32 zmm registers at most
    assert ragged_rows(AVX512, 4, 1024) == 6 and ragged_rows(AVX512, 2, 1024) == 14
    assert ragged_rows(AVX512, 4, 84) is None and ragged_rows(AVX512, 2, 84) is None  # 84 = 6 x 14: they divide
    assert ragged_rows(AVX512, 2, 96) == 14 and ragged_rows(AVX512, 4, 96) is None  # 6 divides 96
    assert ragged_rows(AVX512, 2, 112) is None  # 14 divides 112
    for vecs in (4, 2, 3):
        assert ragged_rows(AVX512, vecs, 1 << 20) * vecs + vecs + 1 <= 32
    ragged = [s for s in gemm_space.sample(24, seed=2) if s.valid and "Z.tile_i_0" in s.decisions]
    assert ragged, "no sample of the fixed blocks' design spaces"
    for sample in ragged:
        assert re.search(r"in T\.unroll\((6|14)\)", sample.tir), sample.tir


def test_blocks_it_cannot_vectorise_fall_back_to_the_defaults():
    odd = mx.workload("GMM", n=32, m=24, k=32)  # 24 columns: not a multiple of 16 lanes
    space = mx.Space(odd, modules=MODULES, target=SKYLAKE)
    assert not _module_rvs(space) and space.design_spaces
    # one row (a batch-1 linear layer): nothing to block in registers; the defaults' tiling is left to it
    gemv = mx.Space(mx.workload("GMM", n=1, m=1024, k=1024), modules=MODULES, target=SKYLAKE)
    assert not _module_rvs(gemv) and gemv.design_spaces
    two_rows = mx.Space(mx.workload("GMM", n=2, m=1024, k=1024), modules=MODULES, target=SKYLAKE)
    assert _module_rvs(two_rows)


def test_samples_are_valid_and_packed_spaces_read_b_in_panels(gemm_samples):
    assert all(s.valid for s in gemm_samples), [s.error for s in gemm_samples if not s.valid]
    packed = [s for s in gemm_samples if "Y_global" in s.tir]
    assert packed, "no sample drew a packed design space"
    assert "Y_global[v2 // 32, v0, v1, v2 % 32] = Y[v0, v1, v2]" in packed[0].tir


LOWERING = [  # TVM's own lowering through the pass that acts on the module's pragma_loop_partition_hint
    tvm.s_tir.transform.LowerInitBlock(), tvm.s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
    tvm.s_tir.transform.ConvertBlocksToOpaque(), tvm.s_tir.transform.CompactBufferAllocation(),
    tvm.s_tir.transform.LowerMatchBuffer(), tvm.s_tir.transform.StmtSimplify(),
    tvm.s_tir.transform.LowerOpaqueBlock(), tvm.tirx.transform.FlattenBuffer(),
    tvm.tirx.transform.NarrowDataType(32), tvm.s_tir.transform.LoopPartition(), tvm.tirx.transform.StmtSimplify(),
    tvm.tirx.transform.RemoveNoOp(),
]


def _guarded_updates(mod: tvm.IRModule, lowering: list) -> tuple[int, int]:
    """(multiply-adds into Z a run executes, those under a condition), counted through the lowered loop nest."""
    body = tvm.ir.transform.Sequential(lowering)(mod)["main"].body
    counts = [0, 0]

    def visit(stmt, times: int, guarded: bool) -> None:
        if isinstance(stmt, tvm.tirx.For):
            visit(stmt.body, times * int(stmt.extent), guarded)
        elif isinstance(stmt, tvm.tirx.SeqStmt):
            for part in stmt.seq:
                visit(part, times, guarded)
        elif isinstance(stmt, tvm.tirx.IfThenElse):
            visit(stmt.then_case, times, True)
            if stmt.else_case is not None:
                visit(stmt.else_case, times, True)
        elif isinstance(stmt, tvm.tirx.BufferStore):
            if stmt.buffer.name.startswith("Z") and "X" in str(stmt.value):
                counts[0] += times
                counts[1] += times if guarded else 0
        elif getattr(stmt, "body", None) is not None:
            visit(stmt.body, times, guarded)

    visit(body, 1, False)
    return counts[0], counts[1]


def test_the_last_row_tile_of_a_fixed_block_is_partitioned_off_the_others(gemm_space):
    # GMM 64 in blocks of 6 (or 14) rows: 10 (4) whole tiles and one of 4 (8) rows, whose 6 (14) unrolled rows are
    # guarded; TVM's lowering splits it off, so the whole tiles' multiply-adds run without the guard
    samples = [s for s in gemm_space.sample(24, seed=2) if s.valid and "Z.tile_i_0" in s.decisions]
    by_tiles = {tiles: [s for s in samples if math.prod(s.decisions["Z.tile_i_0"]) == tiles] for tiles in (11, 5)}
    assert all(by_tiles.values()), "samples of both fixed blocks (11 tiles of 6 rows, 5 of 14)"
    for tiles, rows in ((11, 6), (5, 14)):
        for sample in by_tiles[tiles][:2]:
            _check_partitioned(sample, tiles, rows)


def _check_partitioned(sample: mx.Sample, tiles: int, rows: int) -> None:
    total, guarded = _guarded_updates(sample.schedule.mod, LOWERING)
    assert total == tiles * rows * 64 * 64  # the guarded tail counted as its rows x 64 x 64 stores
    assert guarded == rows * 64 * 64, sample.decisions
    # without the partition (the same lowering without the pass) every tile's update is under the guard
    unpartitioned = [p for p in LOWERING if "LoopPartition" not in str(p)]
    assert len(unpartitioned) == len(LOWERING) - 1
    assert _guarded_updates(sample.schedule.mod, unpartitioned) == (total, total)


# ---- running kernels ------------------------------------------------------------------------------------------


@needs_avx512_host
def test_samples_compute_the_right_result(gemm):
    space = mx.Space(gemm, modules=MODULES)
    for sample in space.sample(6, seed=1):
        lib = tvm.tirx.build(sample.schedule.mod, space.target)
        arrays = gemm.make_inputs(seed=0)
        tensors = [tvm.runtime.tensor(a) for a in arrays]
        lib["main"](*tensors)
        expected = gemm.reference(arrays)[0]
        np.testing.assert_allclose(tensors[2].numpy(), expected, rtol=1e-4, atol=1e-4)


@needs_avx512_host
def test_the_fixed_blocks_compute_the_right_result():
    gemm = mx.workload("GMM", n=100, m=64, k=48)  # 100 rows: 16 blocks of 6 and one of 4; 7 of 14 and one of 2
    space = mx.Space(gemm, modules=MODULES)
    samples = [s for s in space.sample(24, seed=1) if s.valid and "Z.tile_i_0" in s.decisions]
    assert len({"Y_global" in s.tir for s in samples}) == 2, "packed and unpacked fixed blocks both sampled"
    for sample in samples[:6]:
        lib = tvm.tirx.build(sample.schedule.mod, space.target)
        arrays = gemm.make_inputs(seed=0)
        tensors = [tvm.runtime.tensor(a) for a in arrays]
        lib["main"](*tensors)
        np.testing.assert_allclose(tensors[2].numpy(), gemm.reference(arrays)[0], rtol=1e-4, atol=1e-4)


@needs_avx512_host
def test_conv2d_samples_compute_the_right_result():
    conv = mx.workload("C2D", h=16, w=16, ci=3, co=32)
    space = mx.Space(conv, modules=MODULES)
    assert _module_rvs(space)
    for sample in space.sample(4, seed=2):
        lib = tvm.tirx.build(sample.schedule.mod, space.target)
        arrays = conv.make_inputs(seed=0)
        tensors = [tvm.runtime.tensor(a) for a in arrays]
        lib["main"](*tensors)
        np.testing.assert_allclose(tensors[2].numpy(), conv.reference(arrays)[0], rtol=1e-4, atol=1e-3)


@needs_avx512_host
def test_inner_loop_is_register_blocked_zmm_fmas(gemm_space):
    # every sample's kernel: FMAs on zmm registers only (accumulators stay in registers, no memory operand)
    for sample in gemm_space.sample(4, seed=3):
        asm = tvm.tirx.build(sample.schedule.mod, mx.resolve_target(SKYLAKE)).inspect_source("asm")
        fmas = re.findall(r"vfmadd\d+ps\s+(\S+), (\S+), (\S+)", asm)
        assert fmas, "no vector FMA in the kernel"
        assert all(dst.startswith("%zmm") for *_, dst in fmas)
        rows = _register_block_rows(sample)
        vecs = 64 // avx512.LANES // math.prod(sample.decisions["Z.tile_j_0_0"])  # the panel's vectors
        assert len({dst for *_, dst in fmas}) >= min(rows * vecs, 8)  # one accumulator per (row, vector)


def test_a_row_max_with_the_loops_of_a_gemm_is_left_to_the_defaults():
    """Softmax's row max reduces like a GEMM (spatial axes, then k) but is no multiply-accumulate."""
    from tvm import te

    x = te.placeholder((4, 128, 128), name="X")
    k = te.reduce_axis((0, 128), name="k")
    row_max = te.compute((4, 128), lambda b, i: te.max(x[b, i, k], axis=k), name="M")
    wl = mx.workload(te.create_prim_func([x, row_max]))
    space = mx.Space(wl, modules=MODULES, target=SKYLAKE)
    assert not _module_rvs(space) and space.design_spaces
