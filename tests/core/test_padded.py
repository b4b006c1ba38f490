"""The "x86-padded-conv" module and its AVX2 twin "x86-avx2-padded-conv": where they apply (the padded axis and the
runs of live taps found), that each replaces its ISA's micro-kernels of the block and keeps the default design
spaces, the property they exist for (after TVM's lowering the multiply-adds of the padded depth taps are gone:
counted through the loop nest, as a run executes them), results on full-range inputs, and refusal on a CPU without
the ISA.

Spaces are built for CPUs named explicitly (Skylake-SP for AVX-512, Haswell for AVX2), so those tests pass on any
x86 machine; the tests that run kernels need a host with the ISA and are skipped elsewhere."""

from __future__ import annotations

import itertools

import pytest
import tvm
from reference_check import assert_samples_match_the_reference
from tvm import s_tir, tirx
from x86_targets import HASWELL, SANDY_BRIDGE, SKYLAKE, needs_avx2_host, needs_avx512_host

import msexplore as mx
from msexplore.hardware import padded
from msexplore.hardware.microkernel import NO_MICROKERNEL, PARTITION_HINT, _uses
from msexplore.modules import ModuleNotApplicable
from msexplore.schedules import replay

MODULES = ["default", padded.MODULE_NAME, "x86-avx512"]
AVX2_MODULES = ["default", padded.AVX2_MODULE_NAME, "x86-avx2"]
BLOCK = "conv3d_ndhwc"
# (the modules of a space, the CPU it is built for, the number of micro-kernels: panel widths, packed or not)
ISAS = {
    "avx512": (MODULES, SKYLAKE, 3),  # 4 zmm; 2 zmm packed or not
    "avx2": (AVX2_MODULES, HASWELL, 4),  # 2 ymm packed or not (3 does not divide 64 / 8), 4 or 6 rows (ragged)
}
# the rows of the ragged block, where it is offered: the perfect tiles of 16 output columns hold 4 x 2 ymm, 8
# accumulators, only just the FMAs' latency; 6 x 2 fills the registers (on AVX-512 the 4 x 4 zmm hold 16)
RAGGED_ROWS = {"avx512": None, "avx2": 6}


@pytest.fixture(scope="module")
def c3d() -> mx.Workload:
    return mx.workload("C3D", h=32, w=32)  # 16 x 32 x 32 x 3 -> 8 x 16 x 16 x 64, kernel 7, stride 2, padding 3


@pytest.fixture(scope="module", params=list(ISAS))
def isa(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def c3d_space(c3d, isa) -> mx.Space:
    modules, target, _ = ISAS[isa]
    return mx.Space(c3d, modules=modules, target=target)


def _module_spaces(space: mx.Space) -> list[int]:
    """The design spaces the module made: the ones whose trace partitions a loop."""
    return [k for k, ds in enumerate(space.design_spaces) if "loop_partition" in str(ds.trace)]


def _one_per_space(space: mx.Space, n: int, seed: int = 0) -> list[mx.Sample]:
    """A valid sample of each of the module's design spaces, from ``n`` random samples."""
    mine = _module_spaces(space)
    found = {}
    for sample in space.sample(n, seed=seed):
        if sample.valid and sample.design_space in mine:
            found.setdefault(sample.design_space, sample)
    assert sorted(found) == mine, f"samples of only {sorted(found)} of the module's design spaces {mine}"
    return list(found.values())


# ---- where it applies ----------------------------------------------------------------------------------------


def test_the_modules_are_registered_and_run_before_the_micro_kernel_and_the_tiling(c3d_space, isa):
    modules, target, _ = ISAS[isa]
    assert mx.registered_modules()[padded.MODULE_NAME] is padded.PADDED_CONV
    assert mx.registered_modules()[padded.AVX2_MODULE_NAME] is padded.PADDED_CONV_AVX2
    order = [m.name for m in c3d_space.modules]
    assert order.index(modules[1]) < order.index(modules[2]) < order.index("multi_level_tiling")
    # what the benchmarks tune with: the one of the CPU's ISA, never both (each would take the block)
    assert padded.MODULE_NAME in mx.hardware.cpu_modules(SKYLAKE)
    assert padded.AVX2_MODULE_NAME not in mx.hardware.cpu_modules(SKYLAKE)
    assert padded.AVX2_MODULE_NAME in mx.hardware.cpu_modules(HASWELL)
    assert padded.MODULE_NAME not in mx.hardware.cpu_modules(HASWELL)
    assert not {padded.MODULE_NAME, padded.AVX2_MODULE_NAME} & set(mx.hardware.cpu_modules(SANDY_BRIDGE))


@pytest.mark.parametrize(
    ("name", "target", "reason"),
    [(padded.MODULE_NAME, HASWELL, "no AVX-512F"), (padded.AVX2_MODULE_NAME, SANDY_BRIDGE, "no AVX2 and FMA")],
)
def test_a_target_without_the_isa_is_refused_with_the_reason(c3d, name, target, reason):
    with pytest.raises(ModuleNotApplicable, match=reason):
        mx.Space(c3d, modules=["default", name], target=target)


def test_the_padded_depth_of_a_3d_convolution(c3d):
    sch = s_tir.Schedule(c3d.mod)
    found = padded.borders(sch, sch.get_sblock(BLOCK))
    assert padded.borders(sch, sch.get_sblock(BLOCK), padded.AVX2) == found
    # iterators n, d, h, w, co | rd, rh, rw, rc: output frame d reads input frames 2d - 3 .. 2d + 3 of 0 .. 15:
    # frame 0 its taps 3-6, frame 1 taps 1-6, frames 2-6 all seven, frame 7 taps 0-4
    assert (found.axis, found.reduction, found.taps, found.pad) == (1, 5, 7, "PadInput")
    assert found.runs == ((1, 3, 7), (1, 1, 7), (5, 0, 7), (1, 0, 5))
    assert found.dead == pytest.approx(6 / 56)  # 3 + 1 + 2 dead taps of 8 x 7
    assert padded.borders(sch, sch.get_sblock("PadInput")) is None  # the padding itself: no reduction


@pytest.mark.parametrize(
    "workload",
    [
        mx.workload("C3D", h=32, w=32, padding=0),  # nothing padded, nothing to skip
        mx.workload("C2D", h=56, w=56, ci=16, co=32),  # 7 x 7 at stride 2 over 56 rows: 3.1 % of the taps are padding
        mx.workload("CAP"),  # its image rows: 4.2 % of the taps, under the module's 5 %
        mx.workload("C1D", l=64, ci=16, co=32),  # padded along its rows only: they are the register block's axis
        mx.workload("GMM", n=32, m=32, k=32),
    ],
    ids=["C3D-no-padding", "C2D", "CAP", "C1D", "GMM"],
)
def test_other_workloads_are_left_as_they_were(workload, isa):
    modules, target, _ = ISAS[isa]
    alone = mx.Space(workload, modules=["default", modules[2]], target=target)
    both = mx.Space(workload, modules=modules, target=target)
    assert [d.signature for d in both.design_spaces] == [d.signature for d in alone.design_spaces]


def test_the_module_replaces_the_micro_kernels_and_keeps_the_default_spaces(c3d, c3d_space, isa):
    modules, target, kernels = ISAS[isa]
    mine = _module_spaces(c3d_space)
    # the micro-kernel module's micro-kernels of the block, without the dead taps
    assert len(mine) == kernels and len(c3d_space.design_spaces) == kernels + 3
    # the others are the default space's, the block marked so the micro-kernel module leaves it to them
    default = mx.Space(c3d, modules=["default"], target=target)
    kept = [d.signature for k, d in enumerate(c3d_space.design_spaces) if k not in mine]
    assert all(any(NO_MICROKERNEL in line for line in signature) for signature in kept)
    unmarked = [tuple(line for line in signature if NO_MICROKERNEL not in line) for signature in kept]
    assert sorted(unmarked) == sorted(d.signature for d in default.design_spaces)
    ragged = 0
    for k in mine:
        names = set(c3d_space.design_spaces[k].by_name())
        # sampled: the register block's rows (but in a ragged block), the vector panels and the unpadded channels'
        # k-panel. Not tiled: the depth and its kernel axis (partitioned), the image rows (whole in the parallel
        # tasks) and the window's rows and columns (whole in the k-panel), so TVM's lowering partitions the tasks
        # and the row tiles at constant points; the pad is inlined, not placed
        assert f"{BLOCK}.tile_rc" in names
        if f"{BLOCK}.tile_w" not in names:
            ragged += 1
            assert f"[None, {RAGGED_ROWS[isa]}]" in str(c3d_space.design_spaces[k].trace)
        assert not {f"{BLOCK}.tile_d", f"{BLOCK}.tile_rd", f"{BLOCK}.tile_h", f"{BLOCK}.tile_rh",
                    f"{BLOCK}.tile_rw", "PadInput.compute_location"} & names
    # the ragged blocks, packed or not, where the perfect tiles only just cover the FMAs' latency
    assert ragged == (2 if RAGGED_ROWS[isa] else 0)
    # without the module, the micro-kernel module writes its micro-kernels of the block as before (a convolution's
    # ragged blocks only where no perfect tile reaches the FMAs' latency)
    alone = mx.Space(c3d, modules=["default", modules[2]], target=target)
    assert len(alone.design_spaces) == kernels - ragged + 3 and not _module_spaces(alone)


# ---- what its schedule is ------------------------------------------------------------------------------------


LOWERING = [  # TVM's own lowering up to the simplified loops (the order of s_tir's pipeline), before unrolling
    s_tir.transform.LowerInitBlock(), s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
    s_tir.transform.ConvertBlocksToOpaque(), s_tir.transform.CompactBufferAllocation(),
    s_tir.transform.LowerMatchBuffer(), s_tir.transform.StmtSimplify(), s_tir.transform.LowerOpaqueBlock(),
    tirx.transform.FlattenBuffer(), tirx.transform.StmtSimplify(), tirx.transform.RemoveNoOp(),
]


def _executed_multiply_adds(mod: tvm.IRModule) -> int:
    """Multiply-adds into the output a run executes: each such store times the extents of the loops around it."""
    return _multiply_adds(mod, LOWERING)[0]


def _multiply_adds(mod: tvm.IRModule, lowering: list) -> tuple[int, int]:
    """(multiply-adds into the output a run executes, those whose load of the input is under a condition), after
    ``lowering``. A branch without an else on the loops around it (a ragged block's guarded last tile) runs as
    many times as its condition holds over those loops' iterations."""
    body = tvm.ir.transform.Sequential(lowering)(mod)["main"].body
    counts = [0, 0]

    def holds(cond, loops: list) -> float:
        """The share of the iterations of ``loops`` (the enclosing loops ``cond`` reads) where ``cond`` holds."""
        hits, total = 0, 0
        for values in itertools.product(*(range(int(lp.min), int(lp.min) + int(lp.extent)) for lp in loops)):
            analyzer = tvm.sym.Analyzer()
            for lp, v in zip(loops, values):
                analyzer.bind(lp.loop_var, v)
            value = analyzer.simplify(cond)
            assert isinstance(value, tirx.IntImm), f"the condition {cond} reads more than the loops around it"
            hits, total = hits + int(value.value), total + 1
        return hits / total

    def visit(stmt, times: float, loops: list) -> None:
        if isinstance(stmt, tirx.For):
            visit(stmt.body, times * int(stmt.extent), [*loops, stmt])
        elif isinstance(stmt, tirx.SeqStmt):
            for s in stmt.seq:
                visit(s, times, loops)
        elif isinstance(stmt, tirx.BufferStore):
            if BLOCK in stmt.buffer.name and "weight" in str(stmt.value):
                counts[0] += times
                counts[1] += times if "if_then_else" in str(stmt.value) else 0
        elif isinstance(stmt, tirx.IfThenElse):
            assert stmt.else_case is None, f"a branch with an else around a multiply-add: {stmt.condition}"
            read = [lp for lp in loops if _uses(stmt.condition, lp.loop_var)]
            visit(stmt.then_case, times * holds(stmt.condition, read), loops)
        else:
            body = getattr(stmt, "body", None)
            if body is not None:
                visit(body, times, loops)

    visit(body, 1, [])
    return round(counts[0]), round(counts[1])


def test_no_multiply_add_by_the_depth_padding_is_left(c3d, c3d_space, isa):
    outputs_per_frame = 16 * 16 * 64
    taps_per_depth_tap = 7 * 7 * 3
    live_depth_taps = 4 + 6 + 5 * 7 + 5
    mine = _one_per_space(c3d_space, 24)
    for sample in mine:
        executed = _executed_multiply_adds(sample.schedule.mod)
        assert executed == outputs_per_frame * live_depth_taps * taps_per_depth_tap, sample.decisions
        assert "< 19" not in tvm.ir.transform.Sequential(LOWERING)(sample.schedule.mod).script()  # no depth test
    # the default space's programs multiply every tap of the 8 x 7
    default = [s for s in mx.Space(c3d, modules=["default"], target=ISAS[isa][1]).sample(3, seed=0) if s.valid]
    assert default
    for sample in default:
        assert _executed_multiply_adds(sample.schedule.mod) == outputs_per_frame * 8 * 7 * taps_per_depth_tap


# the same, through the pass that acts on the module's pragma_loop_partition_hint (as in s_tir's pipeline)
PARTITIONED = [*LOWERING[:-3], tirx.transform.NarrowDataType(32), s_tir.transform.LoopPartition(),
               tirx.transform.StmtSimplify(), tirx.transform.RemoveNoOp()]


def _guarded_multiply_adds(mod: tvm.IRModule) -> tuple[int, int]:
    return _multiply_adds(mod, PARTITIONED)


def test_the_interior_runs_without_a_condition_on_the_rows_and_columns(c3d, c3d_space, isa):
    # 16 x 16 outputs per frame; output row/column o reads 2o - 3 .. 2o + 3 of 0 .. 31: rows 0, 1 and 15 read
    # padding, 2 .. 14 do not. The image rows are whole in the tasks (partitioned row by row), the columns are
    # the register block's rows (partitioned tile by tile: a tile with one border column keeps its condition)
    samples = _one_per_space(c3d_space, 24)
    tiles = set()
    for sample in samples:
        rows = sample.decisions.get(f"{BLOCK}.tile_w", (RAGGED_ROWS[isa],))[-1]
        tiles.add(rows)
        interior_columns = sum(rows for t in range(0, 16, rows) if t >= 2 and t + rows - 1 <= 14)
        total, guarded = _guarded_multiply_adds(sample.schedule.mod)
        assert total == _executed_multiply_adds(sample.schedule.mod)  # the partition computes the same
        assert guarded == total * (1 - 13 * interior_columns / (16 * 16)), sample.decisions
    assert tiles != {16}, "every sample's row tile was the whole row: nothing proved about the interior"
    # the same trace without the module's hints: TVM's lowering leaves the condition on every multiply-add
    trace = samples[0].trace
    kept = [i for i in trace.insts if PARTITION_HINT not in str(i.attrs)]
    assert len(kept) < len(trace.insts)
    bare = replay(s_tir.Trace(kept, {i: d for i, d in trace.decisions.items() if i in kept}), c3d)
    total, guarded = _guarded_multiply_adds(bare.mod)
    assert guarded == total > 0


HOST_ISAS = [pytest.param("avx512", marks=needs_avx512_host), pytest.param("avx2", marks=needs_avx2_host)]


@pytest.mark.parametrize("host_isa", HOST_ISAS)
@pytest.mark.parametrize(
    "params",
    [
        {"h": 16, "w": 32},  # the operator's kernel and stride: frames 0, 1 and 7 read padding
        {"d": 6, "h": 8, "w": 16, "co": 32, "kernel_size": 3, "stride": 1, "padding": 1},  # both borders, stride 1
    ],
    ids=["kernel-7-stride-2", "kernel-3-stride-1"],
)
def test_samples_match_the_reference_on_full_range_inputs(params, host_isa):
    wl = mx.workload("C3D", **params)
    space = mx.Space(wl, modules=ISAS[host_isa][0])
    samples = _one_per_space(space, 40, seed=1)
    terms = params.get("kernel_size", 7) ** 3 * 3
    assert_samples_match_the_reference(wl, samples, terms)


@pytest.mark.parametrize("host_isa", HOST_ISAS)
def test_a_short_search_verifies_every_candidate_of_the_module(tmp_path, host_isa):
    wl = mx.workload("C3D", d=6, h=8, w=16, co=32, kernel_size=3, stride=1, padding=1)
    space = mx.Space(wl, modules=ISAS[host_isa][0])
    # replay-trace draws each trial's design space at random, half of them the module's; the evolutionary search's
    # first 8 trials on an AVX-512 host all went to the default spaces, so they proved nothing about the module
    run = mx.search(space, trials=8, batch_size=8, seed=1, strategy="replay-trace", work_dir=tmp_path / "run")
    run.wait()
    assert run.status == "done" and run.best is not None
    assert all(e.ok for e in run.events)
    mine = [e for e in run.events if e.design_space in _module_spaces(space)]
    assert mine  # the module's programs were among those measured and checked against the reference
