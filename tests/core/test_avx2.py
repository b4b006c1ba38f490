"""The "x86-avx2" micro-kernel module: the same micro-kernel as "x86-avx512" on 8-lane ymm registers, with a
register block small enough for 16 of them. Its spaces, where it applies, which module a CPU gets, correct
samples, and ymm FMAs with every accumulator in a register (no spill) in the compiled inner loop.

Spaces and assembly are built for a Haswell named explicitly, so those tests pass on any x86 machine; the tests
that run kernels need a host with AVX2 and FMA.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from reference_check import assert_samples_match_the_reference
from x86_targets import HASWELL, SANDY_BRIDGE, SKYLAKE, needs_avx2_host

import msexplore as mx
from msexplore.hardware import avx2, avx512, cpu_modules, isa, microkernel_module
from msexplore.hardware.microkernel import ragged_rows
from msexplore.modules import ModuleNotApplicable

MODULES = ["default", "x86-avx2"]


@pytest.fixture(scope="module")
def gemm() -> mx.Workload:
    return mx.workload("GMM", n=64, m=64, k=64)


@pytest.fixture(scope="module")
def gemm_space(gemm) -> mx.Space:
    return mx.Space(gemm, modules=MODULES, target=HASWELL)


def _module_rvs(space: mx.Space) -> set[str]:
    return {rv.name for ds in space.design_spaces for rv in ds.random_variables if rv.module == "x86-avx2"}


def _fma_loop(asm: str) -> str:
    """The basic block with the most vector FMAs: the micro-kernel's k step."""
    return max(re.split(r"\n(?=\.LBB)", asm), key=lambda block: block.count("vfmadd"))


def _register_block_rows(sample: mx.Sample) -> int:
    """The rows of a sample's register block: sampled (``Z.tile_i``'s innermost) or fixed (its unrolled loop)."""
    if "Z.tile_i" in sample.decisions:
        return sample.decisions["Z.tile_i"][-1]
    return int(re.search(r"in T\.unroll\((\d+)\)", sample.tir).group(1))


# ---- the module as a user sees it ----------------------------------------------------------------------------


def test_the_module_is_registered_by_name_and_runs_before_the_generic_tiling():
    module = mx.registered_modules()["x86-avx2"]
    assert module is avx2.AVX2 and module.fn is not None
    assert module.before == ("multi_level_tiling",)


def test_cpus_without_avx2_are_refused_with_the_reason(gemm):
    assert avx2.missing_avx2(mx.resolve_target(HASWELL)) is None
    assert avx2.missing_avx2(mx.resolve_target(SKYLAKE)) is None  # AVX-512 CPUs have AVX2 too
    reason = avx2.missing_avx2(mx.resolve_target(SANDY_BRIDGE))
    assert reason == (
        "its CPU sandybridge has no AVX2 and FMA (pass the mcpu of a CPU that has it, or mattr=['+avx2', '+fma'])"
    )
    with pytest.raises(ModuleNotApplicable, match="no AVX2 and FMA"):
        mx.Space(gemm, modules=MODULES, target=SANDY_BRIDGE)
    assert "not a CPU" in avx2.missing_avx2(mx.resolve_target("cuda"))


def test_the_avx512_refusal_names_the_module_this_cpu_can_run(gemm):
    with pytest.raises(ModuleNotApplicable, match=r"haswell has no AVX-512F \(.*\); on this CPU use 'x86-avx2'"):
        mx.Space(gemm, modules=["default", "x86-avx512"], target=HASWELL)
    # not where the module is not a micro-kernel: the transposed convolution has no AVX2 twin to point to
    with pytest.raises(ModuleNotApplicable, match=r"haswell has no AVX-512F \([^;]*\)$"):
        mx.Space(mx.workload("T2D", ci=16, co=16), modules=["default", "x86-transposed-conv"], target=HASWELL)


def test_each_cpu_gets_its_widest_micro_kernel():
    assert microkernel_module(SKYLAKE) == "x86-avx512"
    assert microkernel_module(HASWELL) == "x86-avx2"
    assert microkernel_module({"kind": "llvm", "mtriple": "x86_64-unknown-linux-gnu", "mattr": ["+avx2", "+fma"]}) \
        == "x86-avx2"
    with pytest.raises(ModuleNotApplicable, match="'x86-avx2' needs AVX2 and FMA.*modules=\\['default'\\]"):
        microkernel_module(SANDY_BRIDGE)
    host = mx.host_target()
    expected = "x86-avx512" if avx512.missing_avx512(host) is None else "x86-avx2"
    if avx2.missing_avx2(host) is None:
        assert microkernel_module() == expected


def test_the_fp32_modules_of_a_cpu_are_those_it_can_run():
    assert cpu_modules(SKYLAKE) == [
        "x86-avx512", "x86-row-reduction", "x86-transposed-conv", "x86-padded-conv", "x86-transpose",
    ]
    # the row and transpose modules' 16-lane vectors are two ymm each; the transposed convolution's register block
    # is sized for 32 zmm and stays AVX-512 only
    # the padded convolution's AVX2 twin in its place
    assert cpu_modules(HASWELL) == ["x86-avx2", "x86-row-reduction", "x86-avx2-padded-conv", "x86-transpose"]
    assert cpu_modules(SANDY_BRIDGE) == []


def test_panel_widths_are_two_or_three_ymm_vectors():
    assert isa.AVX2.panel_widths(64) == [2]  # 8 vectors
    assert isa.AVX2.panel_widths(48) == [2, 3]
    assert isa.AVX2.panel_widths(24) == [3]
    assert isa.AVX2.panel_widths(8) == [1]
    assert [isa.AVX2.max_rows(v) for v in (1, 2, 3)] == [12, 6, 4]  # 6 x 2 and 4 x 3, as BLIS's Haswell kernels


def test_one_design_space_per_panel_width_with_and_without_packing(gemm_space):
    # GMM 64: 8 ymm vectors -> width 2 (16 columns), packed or not; each with sampled rows that divide 64 and
    # with 6 rows, which fill the registers and do not
    assert len(gemm_space.design_spaces) == 4 and not gemm_space.failures
    assert {"Z.tile_i", "Z.tile_i_0", "Z.tile_k", "Z.tile_j_0_0"} <= _module_rvs(gemm_space)
    assert sum("transform_layout" in str(ds.trace) for ds in gemm_space.design_spaces) == 2
    sampled = [ds for ds in gemm_space.design_spaces if "Z.tile_i" in ds.by_name()]
    assert len(sampled) == 2
    for ds in sampled:  # 6 rows x 2 vectors at most: 12 accumulators of the 16 ymm
        assert ds.by_name()["Z.tile_i"].max_innermost_factor == 6
    assert isa.AVX2.registers == 16 and ragged_rows(isa.AVX2, 2, 64) == 6 and ragged_rows(isa.AVX2, 3, 64) is None


def test_blocks_it_cannot_vectorise_fall_back_to_the_defaults():
    odd = mx.workload("GMM", n=32, m=20, k=32)  # 20 columns: not a multiple of 8 lanes
    space = mx.Space(odd, modules=MODULES, target=HASWELL)
    assert not _module_rvs(space) and space.design_spaces
    eight = mx.Space(mx.workload("GMM", n=32, m=24, k=32), modules=MODULES, target=HASWELL)  # 3 ymm: applies
    assert _module_rvs(eight)


def test_samples_are_valid_and_packed_spaces_read_b_in_16_column_panels(gemm_space):
    samples = gemm_space.sample(12, seed=0)
    assert all(s.valid for s in samples), [s.error for s in samples if not s.valid]
    packed = [s for s in samples if "Y_global" in s.tir]
    assert packed, "no sample drew the packed design space"
    assert "Y_global[v2 // 16, v0, v1, v2 % 16] = Y[v0, v1, v2]" in packed[0].tir


def test_inner_loop_is_ymm_fmas_with_an_accumulator_register_per_row_and_vector(gemm_space):
    # every sample's k step: FMAs on ymm only (no zmm on a CPU without them), one accumulator register per (row,
    # vector)
    target = mx.resolve_target(HASWELL)
    for sample in gemm_space.sample(6, seed=3):
        loop = _fma_loop(tvm.tirx.build(sample.schedule.mod, target).inspect_source("asm"))
        fmas = re.findall(r"vfmadd\d+ps\s+(\S+), (\S+), (\S+)", loop)
        assert fmas and all(dst.startswith("%ymm") for *_, dst in fmas), loop[:1500]
        assert "zmm" not in loop
        rows = _register_block_rows(sample)
        assert len({dst for *_, dst in fmas}) >= rows * 2, (sample.decisions, loop[:1500])


# ---- running kernels ------------------------------------------------------------------------------------------


@needs_avx2_host
@pytest.mark.parametrize("workload", [
    mx.workload("GMM", n=64, m=64, k=64),
    mx.workload("C2D", h=16, w=16, ci=3, co=32),
    mx.workload("C3D", d=4, h=8, w=8, ci=8, co=24, kernel_size=3, stride=1),
], ids=["GMM", "C2D", "C3D"])
def test_samples_compute_the_right_result(workload):
    target = {**HASWELL, "mcpu": mx.host_target().attrs["mcpu"]}  # this CPU, run on the micro-kernel for AVX2
    space = mx.Space(workload, modules=MODULES, target=target)
    assert _module_rvs(space)
    for sample in space.sample(4, seed=1):
        lib = tvm.tirx.build(sample.schedule.mod, space.target)
        arrays = workload.make_inputs(seed=0)
        tensors = [tvm.runtime.tensor(a) for a in arrays]
        lib["main"](*tensors)
        out = workload.outputs[0]
        np.testing.assert_allclose(tensors[out].numpy(), workload.reference(arrays)[0], rtol=1e-4, atol=1e-3)


# ---- an operand copied by a transpose of its own (TBG: query_T, value_T) ---------------------------------------

# C[b, h, i, j] = sum_k query_T[b, h, i, k] value_T[b, h, k, j], both operands transposed copies of the inputs
TBG = mx.workload("TBG", seq_len=64, n_head=2, n_dim=16)


def _copied_per_task(sample: mx.Sample) -> bool:
    """Whether the module placed value_T's block inside the micro-kernel's parallel loop (the defaults' own
    compute-location sampling, in the spaces that do not pack, may put it there too: those are not counted)."""
    if 'T.sblock("value_T")' not in sample.tir:
        return False  # inlined by the defaults' compute-location sampling, in a space that does not pack
    sch = sample.schedule
    copy = sch.get_sblock("value_T")
    if sch.get(copy).annotations.get("schedule_rule") != "None":  # left to the defaults
        return False
    copy_loops, kernel_loops = sch.get_loops(copy), sch.get_loops(sch.get_sblock("C_update"))
    assert sch.get(copy_loops[0]).kind == tvm.tirx.ForKind.PARALLEL
    assert sch.get_sref(copy_loops[0]).same_as(sch.get_sref(kernel_loops[0]))
    return True


@pytest.mark.parametrize("module, target", [("x86-avx2", HASWELL), ("x86-avx512", SKYLAKE)], ids=["ymm", "zmm"])
def test_a_transposed_operand_is_read_in_place_or_copied_once_inside_each_task(module, target):
    space = mx.Space(TBG, modules=["default", module], target=target)
    mine = [ds.index for ds in space.design_spaces if any(rv.module == module for rv in ds.random_variables)]
    assert mine and not space.failures
    samples = [s for s in space.sample(24, seed=0) if s.design_space in mine]
    assert all(s.valid for s in samples), [s.error for s in samples if not s.valid]
    for sample in samples:
        # the broadcast side: the query read in place, its transpose inlined into the micro-kernel
        assert 'T.sblock("query_T")' not in sample.tir
        assert "query[v_b, v_i, v_h, v_k]" in sample.tir
    panels = [s for s in samples if _copied_per_task(s)]
    # the vector side, in the spaces that pack: value_T's own block copies the task's panels inside the parallel
    # loop (no second, packed copy of it), and each element once: the loops around it cover value_T exactly,
    # where the row tiles of a task would each copy the panel again
    assert len({s.design_space for s in panels}) == 2  # one sampled register block, one that fills the registers
    for sample in panels:
        assert "value_T_global" not in sample.tir and "transform_layout" not in str(sample.trace)
        sch = sample.schedule
        extents = [int(sch.get(lp).extent) for lp in sch.get_loops(sch.get_sblock("value_T"))]
        assert np.prod(extents) == 1 * 2 * 16 * 64, extents
        copy_loop = sch.get(sch.get_loops(sch.get_sblock("value_T"))[-1])
        assert copy_loop.kind == tvm.tirx.ForKind.VECTORIZED


@needs_avx2_host
def test_a_transposed_operand_copied_inside_each_task_gives_the_right_result():
    target = {**HASWELL, "mcpu": mx.host_target().attrs["mcpu"]}
    space = mx.Space(TBG, modules=MODULES, target=target)
    samples = [s for s in space.sample(24, seed=2) if _copied_per_task(s)]
    assert len({s.design_space for s in samples}) == 2
    assert_samples_match_the_reference(TBG, samples, terms=16)


# ---- convolutions whose row axis no good register block divides ---------------------------------------------------

# DIL's shape in small: a 7 x 7 window at dilation 2 and stride 2 over 28 columns leaves 11 output columns, a prime,
# so the only perfect row tiles are 1 and 11 (DIL itself: 109); 30 columns leave 12, which 4 rows divide
PRIME_COLUMNS = mx.workload("DIL", h=14, w=28, ci=3, co=32)
EVEN_COLUMNS = mx.workload("DIL", h=14, w=30, ci=3, co=32)


def _fixed_row_spaces(space: mx.Space) -> list[int]:
    """The module's design spaces whose register block has fixed rows (no sampled innermost row tile)."""
    return [ds.index for ds in space.design_spaces
            if any(rv.module == "x86-avx2" for rv in ds.random_variables)
            and "conv2d_nhwc.tile_w" not in ds.by_name()]


def test_a_convolution_with_a_prime_row_axis_gets_the_block_that_fills_the_registers():
    assert PRIME_COLUMNS.args[2].shape[2] == 11 and EVEN_COLUMNS.args[2].shape[2] == 12
    space = mx.Space(PRIME_COLUMNS, modules=MODULES, target=HASWELL)
    fixed = _fixed_row_spaces(space)
    # 2 ymm vectors of the 32 channels: 6 rows (12 accumulators), packed or not, where only 1 row divides 11
    assert len(fixed) == 2 and not space.failures
    samples = [s for s in space.sample(24, seed=0) if s.design_space in fixed]
    assert samples and all(s.valid for s in samples), [s.error for s in samples if not s.valid]
    assert all("in T.unroll(6)" in s.tir for s in samples)
    # its k step, where the defaults' unrolling leaves it a loop: an accumulator register per row and vector
    target = mx.resolve_target(HASWELL)
    rolled = [s for s in samples if s.decisions["root.unroll_explicit"] == 0]
    assert rolled
    for sample in rolled:
        loop = _fma_loop(tvm.tirx.build(sample.schedule.mod, target).inspect_source("asm"))
        fmas = re.findall(r"vfmadd\d+ps\s+(\S+), (\S+), (\S+)", loop)
        assert len({dst for *_, dst in fmas}) >= 12, loop[:1500]
    # where 4 rows divide the axis (8 accumulators, enough for the FMAs' latency) the space is left as it was
    assert _fixed_row_spaces(mx.Space(EVEN_COLUMNS, modules=MODULES, target=HASWELL)) == []


@needs_avx2_host
def test_the_block_that_fills_the_registers_on_a_prime_row_axis_gives_the_right_result():
    target = {**HASWELL, "mcpu": mx.host_target().attrs["mcpu"]}
    space = mx.Space(PRIME_COLUMNS, modules=MODULES, target=target)
    fixed = _fixed_row_spaces(space)
    samples = [s for s in space.sample(24, seed=3) if s.design_space in fixed]
    assert len({s.design_space for s in samples}) == 2
    assert_samples_match_the_reference(PRIME_COLUMNS, samples, terms=7 * 7 * 3)
