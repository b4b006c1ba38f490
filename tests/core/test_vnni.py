"""The "x86-vnni" hardware module and int8 spaces on real TVM: valid and correct candidates on full-range data,
``vpdpbusd`` in the tuned kernel, a clear refusal on targets without VNNI, and a default space that stays valid.

Spaces are built for an explicit VNNI target (``cascadelake``) wherever nothing runs, so those tests pass on any
x86 machine; the tests that run kernels need a host with AVX-512 VNNI and are skipped elsewhere.
"""

from __future__ import annotations

import re

import pytest
import tvm
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.runner import EvaluatorConfig
from x86_targets import SKYLAKE

import msexplore as mx
from msexplore.hardware import build_check, vnni
from msexplore.measure import verify
from msexplore.target import host_target

# A VNNI CPU named explicitly: building spaces and compiling for it needs no VNNI on this machine.
VNNI_TARGET = {"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "cascadelake"}
FAST = EvaluatorConfig(number=1, repeat=1, min_repeat_ms=0, enable_cpu_cache_flush=False)

HOST_HAS_VNNI = vnni.missing_vnni(host_target()) is None
needs_vnni_host = pytest.mark.skipif(not HOST_HAS_VNNI, reason="this CPU has no AVX-512 VNNI to run vpdpbusd")


@pytest.fixture(scope="module")
def dense():
    return mx.workload("DENSE_U8S8", m=32, n=64, k=64)


@pytest.fixture(scope="module")
def conv():
    return mx.workload("C2D_U8S8", h=8, w=8, ci=16, co=32)


@pytest.fixture(scope="module")
def vnni_space(dense):
    return mx.Space(dense, modules=["default", "x86-vnni"], target=VNNI_TARGET)


def _asm(mod, target) -> str:
    return tvm.tirx.build(mod, mx.resolve_target(target)).inspect_source("asm")


def _tensorized(trace) -> bool:
    return any(vnni.INTRIN_NAME in line for line in trace.as_python())


# ---- the module as a user sees it ----------------------------------------------------------------------------


def test_the_module_is_registered_by_name_with_its_parts():
    module = mx.registered_modules()["x86-vnni"]
    assert module is vnni.VNNI and module.rule is not None and module.fn is None
    assert module.before == ("multi_level_tiling",)
    assert [type(p).__name__ for p in module.postprocs] == ["UnrollTensorizedVectorLoops", "RewriteTensorize"]
    assert "vpdpbusd" in module.doc
    with pytest.raises(TypeError, match=r"'x86-vnni' is the MetaSchedule rule MultiLevelTilingWithIntrin"):
        module(None, None)
    assert vnni.register_intrinsic() == vnni.INTRIN_NAME  # registering again replaces, it does not raise


def test_the_space_runs_the_module_before_generic_tiling_and_adds_its_postprocessors(vnni_space):
    names = [m.name for m in vnni_space.modules]
    assert names.index("x86-vnni") == names.index("multi_level_tiling") - 1
    assert vnni_space.postproc_names == [
        "DisallowDynamicLoop", "RewriteParallelVectorizeUnroll", "RewriteReductionBlock", "RewriteLayout",
        "UnrollTensorizedVectorLoops", "RewriteTensorize",
    ]
    assert vnni_space.design_spaces and all(_tensorized(ds.trace) for ds in vnni_space.design_spaces)
    modules = set(vnni_space.summary()["module"])
    assert "x86-vnni" in modules and "multi_level_tiling" not in modules  # the int8 block was tiled by VNNI


def test_every_sample_of_the_vnni_space_passes_the_postprocessors(vnni_space, conv):
    samples = vnni_space.sample(16, seed=0)
    assert [s.error for s in samples if not s.valid] == []
    conv_samples = mx.Space(conv, modules=["default", "x86-vnni"], target=VNNI_TARGET).sample(8, seed=0)
    assert [s.error for s in conv_samples if not s.valid] == []
    assert all(_tensorized(s.trace) for s in conv_samples)


def test_without_the_unroll_postprocessor_tensorized_samples_fail_to_compile(dense, capfd):
    """The postprocessor is what makes the space compile: TVM's recipe alone vectorizes a tile loop around the
    tensorized block, and LLVM's vectorizer meets vector code inside a vectorized loop: it warns, then fails."""
    stock = mx.module(
        name="vnni_without_unroll",
        rule=vnni.VNNI.rule,
        postprocs=[ms.postproc.RewriteTensorize(vectorize_init_loop=True)],
        before=["multi_level_tiling"],
    )
    space = mx.Space(dense, modules=["default", stock], target=VNNI_TARGET)
    nested = [s.id for s in space.sample(16, seed=0) if _vector_code_in_vectorized_loops(s.schedule.mod)]
    assert nested, "TVM's recipe alone should vectorize a loop around the tensorized block"
    capfd.readouterr()
    check = build_check(space, 16, seed=0)
    failed = [b for b in check.builds if not b.ok]
    assert failed and all("Cannot broadcast" in b.error for b in failed), str(check)
    assert [b.sample for b in failed] == nested  # exactly the samples with vector code in a vectorized loop
    assert all("Detect vectorize inside vectorized loop, ignoring..." in b.warnings for b in failed), str(check)
    assert "TVM warned while compiling:" in str(check) and "Detect vectorize inside vectorized loop" in str(check)
    assert capfd.readouterr().err == ""  # TVM's warnings are in the report, not on stderr

    grown = build_check(mx.Space(dense, modules=["default", "x86-vnni"], target=VNNI_TARGET), 16, seed=0)
    assert str(grown) == "16 of 16 samples compile" and not grown.warnings  # every one compiles, no warning


@pytest.mark.parametrize("shape", [{"m": 32, "n": 64, "k": 64}, {"m": 128, "n": 768, "k": 768}])  # 06's shipped
def test_no_vnni_sample_holds_vector_code_in_a_vectorized_loop(shape, conv):
    """The cause of TVM's "Detect vectorize inside vectorized loop" and of the failures after it, fixed by
    ``UnrollTensorizedVectorLoops``: around the instruction, and around its initialisation, no loop is vectorized."""
    workloads = [mx.workload("DENSE_U8S8", **shape)] + ([conv] if shape["m"] == 32 else [])
    for workload in workloads:
        samples = mx.Space(workload, modules=["default", "x86-vnni"], target=VNNI_TARGET).sample(32, seed=2)
        assert len(samples.valid) == 32
        assert {s.id: _vector_code_in_vectorized_loops(s.schedule.mod) for s in samples} == {s.id: [] for s in samples}
        assert all("T.vectorized(16)" in s.schedule.mod.script() for s in samples)  # the init's 16 lanes stay


def _vector_code_in_vectorized_loops(mod) -> list[str]:
    """The lines of ``mod``'s TVMScript that are a vectorized loop or the instruction inside a vectorized loop."""
    open_loops: list[int] = []  # indentation of the vectorized loops enclosing the current line
    found = []
    for line in mod.script().splitlines():
        indent = len(line) - len(line.lstrip())
        while open_loops and open_loops[-1] >= indent:
            open_loops.pop()
        vectorized = "T.vectorized(" in line
        if open_loops and (vectorized or "call_llvm_pure_intrin" in line):
            found.append(line.strip())
        if vectorized:
            open_loops.append(indent)
    return found


def test_the_kernel_uses_vpdpbusd_and_the_default_one_does_not(vnni_space, dense):
    (sample,) = [s for s in vnni_space.sample(1, seed=3)]
    assert re.search(r"\bvpdpbusd\b", _asm(sample.schedule.mod, VNNI_TARGET))
    default = mx.Space(dense, target=VNNI_TARGET).sample(1, seed=3)[0]
    assert "vpdpbusd" not in _asm(default.schedule.mod, VNNI_TARGET)


# ---- where it does not apply -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "lacking"),
    [
        (SKYLAKE, "skylake-avx512"),
        ({**VNNI_TARGET, "mattr": ["-avx512vnni"]}, "cascadelake"),  # a VNNI CPU with the feature turned off
    ],
)
def test_a_target_without_vnni_is_refused_with_what_it_lacks(dense, target, lacking):
    with pytest.raises(mx.ModuleNotApplicable) as info:
        mx.Space(dense, modules=["default", "x86-vnni"], target=target)
    message = str(info.value)
    assert message.startswith("module 'x86-vnni' does not apply to the target {")
    assert f"it needs the x86 CPU feature avx512vnni (AVX-512 VNNI), which {lacking} does not have" in message
    assert "mcpu in ['cascadelake'" in message and "mattr ['+avx512vnni']" in message
    assert isinstance(info.value, ValueError)
    mx.Space(dense, modules=["default"], target=target)  # the default space is still there


def test_a_workload_without_int8_blocks_gets_a_warning_and_the_default_space():
    gmm = mx.workload("GMM", n=16, m=16, k=16)
    with pytest.warns(UserWarning, match=r"module 'x86-vnni' changed no block of GMM: int8 dot products"):
        space = mx.Space(gmm, modules=["default", "x86-vnni"], target=VNNI_TARGET)
    assert len(space.design_spaces) == len(mx.Space(gmm, target=VNNI_TARGET).design_spaces)


# ---- running: correct on full-range data ------------------------------------------------------------------------


@needs_vnni_host
@pytest.mark.parametrize("name", ["DENSE_U8S8", "C2D_U8S8"])
def test_vnni_candidates_are_correct_on_full_range_data(name, dense, conv):
    workload = dense if name == "DENSE_U8S8" else conv
    arrays = workload.make_inputs(0)  # what the check feeds the kernels: u8 and s8 over their whole range
    assert (arrays[0].min(), arrays[0].max(), arrays[1].min(), arrays[1].max()) == (0, 255, -128, 127)
    space = mx.Space(workload, modules=["default", "x86-vnni"])  # the host: it has VNNI
    samples = [s for s in space.sample(3, seed=1) if s.valid]
    results = mx.measure([s.schedule for s in samples], workload, evaluator=FAST)
    assert len(results) == 3 and all(r.ok for r in results), results  # checked against the int64 reference


@needs_vnni_host
def test_a_tiny_vnni_search_finds_a_verified_vpdpbusd_kernel(dense, tmp_path):
    space = mx.Space(dense, modules=["default", "x86-vnni"])
    run = mx.search(space, trials=4, batch_size=4, work_dir=tmp_path / "run", evaluator=FAST,
                    population_size=8, init_min_unmeasured=4).wait()
    assert run.status == "done", run.error
    best = run.best
    assert best is not None and best.verified
    assert "vpdpbusd" in _asm(best.mod, space.target)
    reopened = mx.open_run(tmp_path / "run", space=mx.Space(dense, modules=["default", "x86-vnni"]))
    assert reopened.config["modules"][4] == "x86-vnni"
    assert reopened.best.index == best.index and reopened.events[best.index].design_space >= 0
    kernel = mx.load_kernel(best.export(tmp_path / "bundle").path)
    assert kernel.check().ok


# ---- "default" stays valid for int8 ---------------------------------------------------------------------------


def test_the_default_int8_space_is_the_plain_llvm_one(dense):
    """Not MetaSchedule's "from-target" space, whose stock VNNI intrinsic LLVM 22 rejects (0 valid)."""
    space = mx.Space(dense, target=VNNI_TARGET)
    assert [m.name for m in space.modules] == mx.default_module_names()
    assert not any(_tensorized(ds.trace) for ds in space.design_spaces)
    samples = space.sample(16, seed=0)
    assert [s.error for s in samples if not s.valid] == []
    tvm.tirx.build(samples[0].schedule.mod, mx.resolve_target(VNNI_TARGET))


@pytest.mark.parametrize("name", ["DENSE_U8S8", "C2D_U8S8"])
def test_default_int8_candidates_run_correctly_on_this_cpu(name, dense, conv):
    workload = dense if name == "DENSE_U8S8" else conv
    samples = [s for s in mx.Space(workload).sample(3, seed=2) if s.valid]
    results = mx.measure([s.schedule for s in samples], workload, evaluator=FAST)
    assert len(results) == 3 and all(r.ok for r in results), results


def test_a_tiny_default_int8_search_gives_a_correct_best(dense, tmp_path):
    run = mx.search(mx.Space(dense), trials=4, batch_size=4, work_dir=tmp_path / "run", evaluator=FAST,
                    population_size=8, init_min_unmeasured=4).wait()
    assert run.status == "done", run.error
    assert [e.error for e in run.events if not e.ok] == []
    assert run.best.verified and verify(run.best.mod, dense).ok
