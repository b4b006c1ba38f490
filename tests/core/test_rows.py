"""The "x86-row-reduction" module and its vector exp: where it applies, what its schedule is (one parallel loop over
rows, every step of a row inside it, vector accumulators, no libm call), the space it replaces, results on
full-range inputs, the exp's error bound, and refusal on a CPU without AVX-512.

Spaces are built for an AVX-512 CPU named explicitly, so those tests pass on any x86 machine; the tests that run
kernels need a host with AVX-512 and are skipped elsewhere.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tvm
from tvm import te, topi
from tvm.script import tirx as T
from x86_targets import HASWELL, SANDY_BRIDGE, SKYLAKE, needs_avx2_host

import msexplore as mx
import msexplore.hardware.rows  # noqa: F401  (registers "x86-row-reduction")
from msexplore.hardware import rows, vector_exp
from msexplore.modules import ModuleNotApplicable
from msexplore.target import host_target

MODULES = ["default", rows.MODULE_NAME]


@pytest.fixture(scope="module")
def softmax() -> mx.Workload:
    return mx.workload("SFM", m=64, n=256)


@pytest.fixture(scope="module")
def softmax_space(softmax) -> mx.Space:
    return mx.Space(softmax, modules=MODULES, target=SKYLAKE)


# an AVX-512 CPU whose LLVM tuning uses zmm vectors (for skylake-avx512 it prefers 256-bit ones)
ZEN4 = {**SKYLAKE, "mcpu": "znver4"}


@pytest.fixture(scope="module")
def row_samples(softmax_space) -> list[mx.Sample]:
    return [s for s in softmax_space.sample(8, seed=0) if s.valid]


def _layer_norm() -> mx.Workload:
    x = te.placeholder((32, 256), name="x")
    gamma, beta = te.placeholder((256,), name="gamma"), te.placeholder((256,), name="beta")
    return mx.workload([x, gamma, beta, topi.nn.layer_norm(x, gamma, beta, axis=[1])])


# ---- where it applies ----------------------------------------------------------------------------------------


def test_the_module_is_registered_and_runs_before_the_defaults():
    module = mx.registered_modules()[rows.MODULE_NAME]
    assert module is rows.ROW_REDUCTION
    space_order = [m.name for m in mx.Space(mx.workload("SFM", m=16, n=32), modules=MODULES, target=SKYLAKE).modules]
    assert space_order.index(rows.MODULE_NAME) < space_order.index("auto_inline")


def test_a_target_without_avx2_is_refused_with_the_reason(softmax):
    with pytest.raises(ModuleNotApplicable, match="no AVX2 and FMA"):
        mx.Space(softmax, modules=MODULES, target=SANDY_BRIDGE)


def test_softmax_is_one_row_chain_with_its_exp_vectorizable(softmax):
    sch = tvm.s_tir.Schedule(softmax.mod)
    assert rows.row_chain(sch, sch.get_sblock("T_softmax_norm")) == rows.RowChain(
        output="T_softmax_norm",
        reductions=("T_softmax_maxelem", "T_softmax_expsum"),
        elementwise=("T_softmax_exp",),
        per_row=(),
        vector_exp=("T_softmax_exp",),
        order=("T_softmax_maxelem", "T_softmax_exp", "T_softmax_expsum", "T_softmax_norm"),
        rows=(64,),
        cols=256,
    )
    # only the last block starts the chain: the module is called on every block
    assert rows.row_chain(sch, sch.get_sblock("T_softmax_expsum")) is None


def test_layer_norm_is_a_row_chain_without_exp():
    wl = _layer_norm()
    sch = tvm.s_tir.Schedule(wl.mod)
    chain = rows.row_chain(sch, sch.get_sblock("T_layer_norm"))
    assert (chain.reductions, chain.per_row, chain.vector_exp) == (("x_sum", "x_var_sum"), ("x_mean",), ())


@pytest.mark.parametrize(
    "workload",
    [
        mx.workload("GMM", n=32, m=32, k=32),  # a reduction, but no row chain
        mx.workload("NRM", m=16, n=32),  # reduces whole matrices: no columns left to map
        mx.workload("SFM", m=16, n=40),  # rows of 40: not a whole number of 16-lane vectors
    ],
    ids=["GMM", "NRM", "SFM-40"],
)
def test_other_workloads_are_left_to_the_defaults(workload):
    alone = mx.Space(workload, modules=["default"], target=SKYLAKE)
    both = mx.Space(workload, modules=MODULES, target=SKYLAKE)
    assert [d.signature for d in both.design_spaces] == [d.signature for d in alone.design_spaces]


def test_the_module_replaces_the_default_schedules_of_a_row_chain(softmax, softmax_space):
    # one design space, the module's: beside the default's nine (all with scalar expf) a search would rarely
    # measure it (not once in two 16-trial searches)
    assert not softmax_space.failures
    (mine,) = softmax_space.design_spaces
    assert {(rv.name, rv.kind) for rv in mine.random_variables} == {
        ("T_softmax_norm.split_arg", "categorical"),  # zmm accumulators of the max
        ("T_softmax_norm.split_arg#2", "categorical"),  # and of the sum
        ("T_softmax_norm.tile_i0", "tile"),  # rows per task
        ("T_softmax_norm.pragma_auto_unroll_max_step", "categorical"),
    }
    assert {rv.module for rv in mine.random_variables} == {rows.MODULE_NAME}
    assert len(mx.Space(softmax, modules=["default"], target=SKYLAKE).design_spaces) == 9


# ---- what its schedule is ------------------------------------------------------------------------------------


def test_one_parallel_loop_holds_every_step_of_a_row(row_samples):
    assert row_samples, "no valid sample of the module's design space"
    for sample in row_samples:
        sch = sample.schedule
        blocks = _all_blocks(sch)
        names = [sch.get(b).name_hint for b in blocks]
        # max (vector accumulators, then 16 -> 1), exp (tensorized: the block around the intrinsic), sum, scale
        assert [re.sub(r"_(init|update)$", "", n) for n in names if "T_softmax" in n] == [
            "T_softmax_maxelem_rf", "T_softmax_maxelem_rf", "T_softmax_maxelem", "T_softmax_maxelem",
            "T_softmax_exp_o",
            "T_softmax_expsum_rf", "T_softmax_expsum_rf", "T_softmax_expsum", "T_softmax_expsum",
            "T_softmax_norm",
        ]
        outer = {sch.get(sch.get_loops(b)[0]) for b in blocks}
        assert len(outer) == 1  # one loop nest: one fork-join per call, each row read from memory once
        (loop,) = outer
        assert loop.kind == tvm.tirx.ForKind.PARALLEL
        # the reductions accumulate in 16-lane vectors; the scale is vectorized
        for name in ("T_softmax_maxelem_rf_update", "T_softmax_expsum_rf_update", "T_softmax_norm"):
            innermost = sch.get(sch.get_loops(sch.get_sblock(name))[-1])
            assert (innermost.kind, int(innermost.extent)) == (tvm.tirx.ForKind.VECTORIZED, 16)


def _all_blocks(sch: tvm.s_tir.Schedule) -> list:
    out, todo = [], [sch.get_sblock("root")]
    while todo:
        children = list(sch.get_child_blocks(todo.pop(0)))
        out += children
        todo = children + todo
    return out


@pytest.mark.parametrize("cpu, register, rounding", [(ZEN4, "zmm", "vrndscaleps"), (HASWELL, "ymm", "vroundps")],
                         ids=["avx512", "avx2"])
def test_the_compiled_kernel_has_vector_exp_and_no_libm_call(row_samples, cpu, register, rounding):
    lib = tvm.tirx.build(row_samples[0].schedule.mod, mx.resolve_target(cpu))
    asm = lib.inspect_source("asm")
    assert "expf" not in asm  # no `call expf@PLT`: the exp is the polynomial
    for instruction in ("vfmadd", rounding, "vpslld", "vmaxps", "vdivps"):
        assert re.search(rf"\b{instruction}\w*\s[^\n]*{register}", asm), instruction


# ---- correctness ---------------------------------------------------------------------------------------------


@needs_avx2_host
def test_samples_match_the_reference_on_full_range_rows(softmax, row_samples):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 1.0, (64, 256)).astype(np.float32)
    x *= (10.0 ** rng.integers(-3, 3, (64, 1))).astype(np.float32)  # rows from +-1e-3 to +-100
    x[5, ::3] = -np.inf  # masked entries (attention masks): exactly 0 out
    x[6] = 88.0  # a constant row: 1/256 each
    x[7, 0], x[7, 1:] = 50.0, -50.0  # one entry takes it all; the others underflow to subnormals
    expected = softmax.reference([x, np.zeros_like(x)])
    for sample in row_samples[:2]:
        lib = tvm.tirx.build(sample.schedule.mod, host_target())
        out = tvm.runtime.tensor(np.zeros_like(x))
        lib["main"](tvm.runtime.tensor(x), out)
        assert softmax.compare([out], expected).ok
        assert np.all(out.numpy()[5, ::3] == 0.0)
        np.testing.assert_allclose(out.numpy()[6], 1 / 256, rtol=1e-6)


@needs_avx2_host
def test_layer_norm_samples_match_the_reference():
    wl = _layer_norm()
    space = mx.Space(wl, modules=MODULES, target=host_target())
    assert len(space.design_spaces) == 1
    sample = next(s for s in space.sample(4, seed=0) if s.valid)
    (result,) = mx.measure(sample.schedule, wl)
    assert result.ok, result.error


# ---- the vector exp ------------------------------------------------------------------------------------------

N_POINTS = 1 << 20


@T.prim_func(s_tir=True)
def _exp_rows(
    A: T.Buffer((4096, 256), "float32"), M: T.Buffer((4096,), "float32"), C: T.Buffer((4096, 256), "float32")
):
    for i, j in T.grid(4096, 256):
        with T.sblock("exp"):
            vi, vj = T.axis.remap("SS", [i, j])
            C[vi, vj] = T.exp(A[vi, vj] - M[vi])


@pytest.fixture(scope="module")
def vector_exp_kernel():
    sch = tvm.s_tir.Schedule(_exp_rows)
    _, lanes = sch.split(sch.get_loops(sch.get_sblock("exp"))[-1], [None, vector_exp.LANES])
    sch.tensorize(lanes, vector_exp.INTRIN_NAME)
    lib = tvm.tirx.build(sch.mod, host_target())

    def run(x: np.ndarray) -> np.ndarray:
        a = np.resize(x.astype(np.float32), N_POINTS).reshape(4096, 256)
        out = tvm.runtime.tensor(np.zeros_like(a))
        lib["main"](tvm.runtime.tensor(a), tvm.runtime.tensor(np.zeros(4096, np.float32)), out)
        return out.numpy().ravel()[: x.size]

    return run


@needs_avx2_host
@pytest.mark.parametrize(
    "low, high", [(-87.0, 88.7), (-1.0, 1.0), (-104.0, -87.0)], ids=["normal", "small", "subnormal"]
)
def test_vector_exp_is_within_its_ulp_bound(vector_exp_kernel, low, high):
    x = np.random.default_rng(0).uniform(low, high, N_POINTS).astype(np.float32)
    got = vector_exp_kernel(x).astype(np.float64)
    exact = np.exp(x.astype(np.float64))
    ulp = np.maximum(np.spacing(exact.astype(np.float32)).astype(np.float64), 2.0**-149)
    assert np.max(np.abs(got - exact) / ulp) <= vector_exp.MAX_ULP


@needs_avx2_host
def test_vector_exp_special_values_are_libms(vector_exp_kernel):
    x = np.array([0.0, -0.0, -np.inf, np.inf, np.nan, -200.0, 100.0, 88.72, -103.9, 1e-30], np.float32)
    with np.errstate(over="ignore"):
        expected = np.exp(x)
    np.testing.assert_allclose(vector_exp_kernel(x), expected, rtol=2e-7)


# ---- a search ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_avx2_host
def test_a_short_search_verifies_every_candidate_of_the_module(tmp_path, softmax):
    space = mx.Space(softmax, modules=MODULES)
    run = mx.search(space, trials=16, batch_size=8, seed=1, work_dir=tmp_path / "run", population_size=64)
    run.wait()
    assert run.status == "done" and run.best is not None
    assert all(e.ok for e in run.events)
    assert "T_softmax_exp_o" in run.best.mod.script()  # the module's program, with the tensorized exp
