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
    # GMM 64: 4 vectors of 16 lanes -> widths 4 (the whole row: nothing to pack) and 2 (packed or not)
    assert len(gemm_space.design_spaces) == 3
    assert not gemm_space.failures
    assert {"Z.tile_i", "Z.tile_k", "Z.tile_j_0_0"} <= _module_rvs(gemm_space)
    assert sum("transform_layout" in str(ds.trace) for ds in gemm_space.design_spaces) == 1  # width 2, packed
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


def test_register_block_is_bounded_by_the_zmm_registers(gemm_space):
    for ds in gemm_space.design_spaces:
        tile_i = ds.by_name()["Z.tile_i"]
        assert tile_i.max_innermost_factor <= avx512.MAX_ACCUMULATORS // 2


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
        rows = sample.decisions["Z.tile_i"][-1]
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
