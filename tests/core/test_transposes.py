"""The "x86-transpose" module: which copies it tiles (and which it leaves to the defaults), the tiled loop nest it
writes (one parallel loop over squares, the output's last axis a vector inside, the input's last axis a short loop
around it), exact results for every program of its space, and refusal on a CPU without AVX-512.

Spaces are built for an AVX-512 CPU named explicitly, so those tests pass on any x86 machine; the tests that run
kernels need a host with AVX-512 and are skipped elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import te, topi
from x86_targets import SANDY_BRIDGE, SKYLAKE, needs_avx2_host

import msexplore as mx
from msexplore.hardware import transposes
from msexplore.modules import ModuleNotApplicable
from msexplore.target import host_target

MODULES = ["default", transposes.MODULE_NAME]


def _transpose(shape: tuple[int, ...], axes: tuple[int, ...], dtype: str = "float32") -> mx.Workload:
    data = te.placeholder(shape, dtype, name="data")
    return mx.workload([data, topi.transpose(data, axes)])


NHWC_TO_NCHW = ((1, 24, 16, 32), (0, 3, 1, 2))  # a ResNet model's output transpose, smaller: 16 x 24 x 32 floats
NCHW_TO_NHWC = ((1, 32, 24, 16), (0, 2, 3, 1))  # and its input transpose


def _design_spaces(wl: mx.Workload, modules: list[str]) -> list[str]:
    return [str(trace) for trace in mx.Space(wl, modules=modules, target=SKYLAKE).design_spaces]


# ---- where it applies ----------------------------------------------------------------------------------------


def test_the_module_is_registered_and_runs_before_the_default_inlining():
    assert mx.registered_modules()[transposes.MODULE_NAME] is transposes.TRANSPOSE
    order = [m.name for m in mx.Space(_transpose(*NHWC_TO_NCHW), modules=MODULES, target=SKYLAKE).modules]
    assert order.index(transposes.MODULE_NAME) < order.index("auto_inline")


def test_a_target_without_avx2_is_refused_with_the_reason():
    with pytest.raises(ModuleNotApplicable, match="no AVX2 and FMA"):
        mx.Space(_transpose(*NHWC_TO_NCHW), modules=MODULES, target=SANDY_BRIDGE)


@pytest.mark.parametrize("shape, axes", [NHWC_TO_NCHW, NCHW_TO_NHWC])
def test_both_contiguous_axes_of_a_transpose_are_found(shape, axes):
    wl = _transpose(shape, axes)
    sch = tvm.s_tir.Schedule(wl.mod)
    found = transposes.transpose_of(sch, sch.get_sblock("T_transpose"))
    # the output's last axis is the block's last; the input's last axis is the block axis that indexes it
    assert found == transposes.Transpose(
        out_axis=3, in_axis=axes.index(3), out_tiles=(8, 16), in_tiles=(8, 16)
    )
    assert len(sch.trace.insts) == 1  # reading the program added nothing to the trace but the get_sblock


def test_tiles_are_the_sizes_that_divide_the_axis():
    wl = _transpose((1, 40, 24, 32), (0, 3, 1, 2))  # output last axis 24: 8 only; input last axis 32: 8 or 16
    sch = tvm.s_tir.Schedule(wl.mod)
    found = transposes.transpose_of(sch, sch.get_sblock("T_transpose"))
    assert (found.out_tiles, found.in_tiles) == ((8,), (8, 16))


def _copy_keeping_the_last_axis() -> mx.Workload:
    data = te.placeholder((16, 32, 48), name="data")
    return mx.workload([data, topi.transpose(data, (1, 0, 2))])


def _transpose_then_add() -> mx.Workload:  # an intermediate transpose, inlined by the defaults
    data = te.placeholder((1, 24, 16, 32), name="data")
    moved = topi.transpose(data, (0, 3, 1, 2))
    return mx.workload([data, te.compute(moved.shape, lambda *i: moved(*i) + 1.0, name="add")])


def _odd_extent() -> mx.Workload:
    return _transpose((1, 12, 12, 30), (0, 3, 1, 2))  # 30 channels, 12 columns: no tile of 8 divides both


def _half_precision() -> mx.Workload:
    return _transpose((1, 24, 16, 32), (0, 3, 1, 2), "float16")


@pytest.mark.parametrize(
    "make", [_copy_keeping_the_last_axis, _transpose_then_add, _odd_extent, _half_precision],
    ids=["last-axis-kept", "intermediate", "odd-extent", "float16"],
)
def test_other_copies_are_left_to_the_defaults(make):
    wl = make()
    assert _design_spaces(wl, MODULES) == _design_spaces(wl, ["default"])


def test_the_module_replaces_the_default_schedule_of_a_transpose():
    wl = _transpose(*NHWC_TO_NCHW)
    space = mx.Space(wl, modules=MODULES, target=SKYLAKE)
    assert not space.failures
    (mine,) = space.design_spaces
    assert {(rv.name, rv.module) for rv in mine.random_variables} == {
        ("T_transpose.split_arg", transposes.MODULE_NAME),  # output tile
        ("T_transpose.split_arg#2", transposes.MODULE_NAME),  # input tile
        ("T_transpose.pragma_auto_unroll_max_step", transposes.MODULE_NAME),
    }
    assert space.size() == 2 * 2 * len(transposes.UNROLL_STEPS)
    assert mx.Space(wl, modules=["default"], target=SKYLAKE).size() == 1  # the default space's one program


# ---- what its schedule is --------------------------------------------------------------------------------------


def test_one_parallel_loop_over_squares_with_the_output_row_a_vector():
    wl = _transpose(*NHWC_TO_NCHW)
    samples = mx.Space(wl, modules=MODULES, target=SKYLAKE).sample(8, seed=0)
    assert len({(s.decisions["T_transpose.split_arg"], s.decisions["T_transpose.split_arg#2"]) for s in samples}) > 1
    for sample in samples:
        out_tile, in_tile = sample.decisions["T_transpose.split_arg"], sample.decisions["T_transpose.split_arg#2"]
        sch = sample.schedule
        loops = [sch.get(lp) for lp in sch.get_loops(sch.get_sblock("T_transpose"))]
        assert len(loops) == 3, [str(lp.kind) for lp in loops]
        parallel, across, along = loops
        # squares: (32 / in_tile) x (16 / out_tile) per image row, 24 rows, in one parallel loop
        assert parallel.kind == tvm.tirx.ForKind.PARALLEL
        assert int(parallel.extent) == 24 * (32 // in_tile) * (16 // out_tile)
        # inside it: the input's last axis (a loop of in_tile), around the output's last axis (a vector of out_tile)
        assert (across.kind, int(across.extent)) == (tvm.tirx.ForKind.SERIAL, in_tile)
        assert (along.kind, int(along.extent)) == (tvm.tirx.ForKind.VECTORIZED, out_tile)


@needs_avx2_host
@pytest.mark.parametrize("shape, axes", [NHWC_TO_NCHW, NCHW_TO_NHWC, ((2, 16, 8, 16), (3, 0, 2, 1))])
def test_every_program_of_the_space_copies_exactly(shape, axes):
    wl = _transpose(shape, axes)
    space = mx.Space(wl, modules=MODULES)
    data = np.random.default_rng(0).uniform(-1e3, 1e3, shape).astype("float32")
    expected = np.transpose(data, axes)
    seen = set()
    for sample in space.sample(24, seed=1):
        key = tuple(sorted(sample.decisions.items()))
        if key in seen:
            continue
        seen.add(key)
        lib = tvm.tirx.build(sample.schedule.mod, host_target())
        out = tvm.runtime.tensor(np.full(expected.shape, np.nan, np.float32))  # every element must be written
        lib["main"](tvm.runtime.tensor(data), out)
        np.testing.assert_array_equal(out.numpy(), expected, err_msg=str(sample.decisions))
    assert len(seen) >= 4


@needs_avx2_host
def test_a_short_search_verifies_every_candidate_and_measures_the_modules_programs(tmp_path):
    space = mx.Space(_transpose(*NHWC_TO_NCHW), modules=MODULES)
    run = mx.search(space, trials=8, batch_size=4, seed=1, work_dir=tmp_path / "run")
    run.wait()
    assert run.status == "done" and run.best is not None
    assert len(run.events) == 8 and all(e.ok for e in run.events)
    assert '"schedule_rule": "None"' in run.best.tir  # the module's program: it marks the block it scheduled
    assert "T.parallel" in run.best.tir and "T.vectorized" in run.best.tir
