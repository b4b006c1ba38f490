"""The "x86-transposed-conv" module: where it applies (the dilated dimensions it finds), the space it replaces, the
property it exists for (after TVM's lowering no multiply-add by a dilation zero is left, where the default space
keeps all of them), results on full-range inputs at strides 2 and 3, and refusal on a CPU without AVX-512.

Spaces are built for an AVX-512 CPU named explicitly, so those tests pass on any x86 machine; the tests that run
kernels need a host with AVX-512 and are skipped elsewhere.
"""

from __future__ import annotations

import re

import pytest
import tvm
from reference_check import assert_samples_match_the_reference
from tvm import s_tir, tirx
from x86_targets import HASWELL, SKYLAKE, needs_avx512_host

import msexplore as mx
from msexplore.hardware import transposed
from msexplore.modules import ModuleNotApplicable

MODULES = ["default", transposed.MODULE_NAME]
BLOCK = "conv2d_transpose_nhwc"


@pytest.fixture(scope="module")
def t2d() -> mx.Workload:
    return mx.workload("T2D", ci=32, co=32)  # 4 x 4 x 32 -> 8 x 8 x 32, kernel 4, stride 2, padding 1


@pytest.fixture(scope="module")
def t2d_samples(t2d) -> list[mx.Sample]:
    samples = [s for s in mx.Space(t2d, modules=MODULES, target=SKYLAKE).sample(6, seed=0) if s.valid]
    assert samples, "no valid sample of the module's design space"
    return samples


# ---- where it applies ----------------------------------------------------------------------------------------


def test_the_module_is_registered_and_runs_before_the_micro_kernel_and_the_tiling():
    assert mx.registered_modules()[transposed.MODULE_NAME] is transposed.TRANSPOSED_CONV
    space = mx.Space(mx.workload("T2D", ci=16, co=16), modules=[*MODULES, "x86-avx512"], target=SKYLAKE)
    order = [m.name for m in space.modules]
    assert order.index(transposed.MODULE_NAME) < order.index("x86-avx512") < order.index("multi_level_tiling")


def test_a_target_without_avx512_is_refused_with_the_reason(t2d):
    with pytest.raises(ModuleNotApplicable, match="no AVX-512F"):
        mx.Space(t2d, modules=MODULES, target=HASWELL)


def test_the_dilated_dimensions_of_a_transposed_convolution(t2d):
    sch = s_tir.Schedule(t2d.mod)
    # iterators n, h, w, co | rh, rw, rc: h pairs with rh and w with rw, stride 2; co is the vector axis
    assert transposed.phases(sch, sch.get_sblock(BLOCK)) == transposed.Phases(pairs=((1, 4, 2), (2, 5, 2)), vector=3)
    assert transposed.phases(sch, sch.get_sblock("PadInput")) is None  # the padding: no reduction


@pytest.mark.parametrize(
    "workload",
    [
        mx.workload("C2D", h=14, w=14, ci=16, co=32),  # a convolution reads no dilated operand
        mx.workload("GMM", n=32, m=32, k=32),
        mx.workload("T2D", ci=16, co=16, stride=1),  # stride 1: nothing dilated, no zeros to skip
        mx.workload("T2D", ci=16, co=24),  # 24 output channels: not a whole number of 16-lane vectors
        mx.workload("T2D", h=4, w=4, ci=16, co=16, kernel_size=3, stride=2),  # 3 taps do not split by 2
    ],
    ids=["C2D", "GMM", "T2D-stride-1", "T2D-co-24", "T2D-kernel-3"],
)
def test_other_workloads_are_left_to_the_defaults(workload):
    alone = mx.Space(workload, modules=["default"], target=SKYLAKE)
    both = mx.Space(workload, modules=MODULES, target=SKYLAKE)
    assert [d.signature for d in both.design_spaces] == [d.signature for d in alone.design_spaces]


def test_the_module_replaces_the_default_schedules_of_the_block(t2d):
    space = mx.Space(t2d, modules=MODULES, target=SKYLAKE)
    assert not space.failures
    (mine,) = space.design_spaces
    assert {rv.module for rv in mine.random_variables} == {transposed.MODULE_NAME}
    # pixel tiles along h and w, output-channel vectors per task, the unrolled input-channel step
    assert len(mine.random_variables) == 4


# ---- what its schedule is ------------------------------------------------------------------------------------


LOWERING = [  # TVM's own lowering, up to the unrolled and simplified loops (the order of s_tir's pipeline)
    s_tir.transform.LowerInitBlock(), s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
    s_tir.transform.ConvertBlocksToOpaque(), s_tir.transform.CompactBufferAllocation(),
    s_tir.transform.LowerMatchBuffer(), s_tir.transform.StmtSimplify(), s_tir.transform.LowerOpaqueBlock(),
    tirx.transform.FlattenBuffer(), tirx.transform.UnrollLoop(), tirx.transform.StmtSimplify(),
    tirx.transform.RemoveNoOp(),
]


def _multiply_adds(mod: tvm.IRModule) -> tuple[int, int]:
    """(multiply-add statements into the output, how many still select the input against a dilation zero)."""
    lowered = tvm.ir.transform.Sequential(LOWERING)(mod).script()
    store = re.compile(rf"^\s*\w*{BLOCK}\w*\[.*\] = .*weight")  # into the output or its local accumulator
    statements = [line for line in lowered.splitlines() if store.match(line)]
    return len(statements), sum("% 2 == 0" in line for line in statements)


def test_no_multiply_add_by_a_dilation_zero_is_left(t2d, t2d_samples):
    for sample in t2d_samples:
        decisions = list(sample.decisions.values())
        tile_h, tile_w, _, channel_step = decisions
        statements, selecting = _multiply_adds(sample.schedule.mod)
        assert selecting == 0
        # per output phase (4) one kernel tap of the four is live: the unrolled copies of the other three are gone
        assert statements == 4 * tile_h * tile_w * channel_step
    # the default space's programs keep the select and multiply every zero
    default = [s for s in mx.Space(t2d, modules=["default"], target=SKYLAKE).sample(4, seed=0) if s.valid]
    assert all(_multiply_adds(s.schedule.mod)[1] > 0 for s in default)


@needs_avx512_host
@pytest.mark.parametrize(
    "params",
    [
        {"ci": 32, "co": 32},  # the operator's shape, fewer channels: stride 2, padding 1
        {"h": 4, "w": 4, "ci": 16, "co": 16, "kernel_size": 6, "stride": 3, "padding": 0},  # a border offset of 1
    ],
    ids=["stride-2", "stride-3"],
)
def test_samples_match_the_reference_on_full_range_inputs(params):
    wl = mx.workload("T2D", **params)
    samples = [s for s in mx.Space(wl, modules=MODULES).sample(4, seed=1) if s.valid]
    assert samples and all(s.design_space == 0 for s in samples)
    terms = params.get("kernel_size", 4) ** 2 * params["ci"]
    assert_samples_match_the_reference(wl, samples, terms)


@needs_avx512_host
def test_a_short_search_verifies_every_candidate_of_the_module(tmp_path, t2d):
    run = mx.search(mx.Space(t2d, modules=MODULES), trials=16, batch_size=8, seed=1, work_dir=tmp_path / "run")
    run.wait()
    assert run.status == "done" and run.best is not None
    assert all(e.ok for e in run.events)
    assert _multiply_adds(run.best.mod)[1] == 0  # the measured program is the module's, without the zeros
