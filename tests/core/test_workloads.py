"""Workloads: named operators, TVMScript and TE inputs, references, errors, JSON round trip (real TVM, tiny shapes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tvm
from tvm import te
from tvm.s_tir.meta_schedule.tune_context import _normalize_mod
from tvm.script import ir as I
from tvm.script import tirx as T

from msexplore.workloads import Comparison, TensorSpec, Workload, workload, workload_names
from msexplore.workloads._operators import OPERATORS
from msexplore.workloads._reference import _conv_nd

# Small enough that the unscheduled PrimFunc builds and runs in a fraction of a second.
TINY = {
    "GMM": dict(n=8, m=6, k=5),
    "C1D": dict(l=9, ci=4, co=6),
    "C2D": dict(h=8, w=7, ci=4, co=6, kernel_size=3),
    "C3D": dict(d=4, h=5, w=6, ci=3, co=4, kernel_size=3),
    "DEP": dict(h=8, w=8, c=4, stride=2),
    "DIL": dict(h=10, w=10, ci=4, co=6, kernel_size=3, stride=1, padding=1),
    "GRP": dict(h=8, w=8, ci=8, co=12, groups=4),
    "T2D": dict(h=3, w=4, ci=4, co=6),
    "CAP": dict(h=6, w=6, ci=3, co=4, capsule_size=2),
    "NRM": dict(b=2, m=5, n=7),
    "SFM": dict(m=6, n=9),
    "CBR": dict(h=8, w=8, ci=4, co=6, kernel_size=3, strides=1, padding=1),
    "TBG": dict(batch=2, seq_len=6, n_head=2, n_dim=4),
    "DENSE_U8S8": dict(m=8, n=32, k=16),
    "C2D_U8S8": dict(h=6, w=5, ci=8, co=16, stride=2),
}

EXPECTED_DEFAULTS = {
    "GMM": dict(b=1, n=512, m=512, k=512),
    "C1D": dict(n=1, l=256, ci=64, co=128, kernel_size=3, stride=2, padding=1, dilation=1, groups=1),
    "C2D": dict(n=1, h=224, w=224, ci=3, co=64, kernel_size=7, stride=2, padding=3, dilation=1, groups=1),
    "C3D": dict(n=1, d=16, h=224, w=224, ci=3, co=64, kernel_size=7, stride=2, padding=3, dilation=1, groups=1),
    "DEP": dict(n=1, h=112, w=112, c=32, kernel_size=3, stride=1, padding=1, dilation=1, factor=1),
    "DIL": dict(n=1, h=224, w=224, ci=3, co=64, kernel_size=7, stride=2, padding=3, dilation=2, groups=1),
    "GRP": dict(n=1, h=56, w=56, ci=64, co=128, kernel_size=3, stride=2, padding=1, dilation=1, groups=4),
    "T2D": dict(n=1, h=4, w=4, ci=512, co=256, kernel_size=4, stride=2, padding=1),
    "CAP": dict(n=1, h=16, w=16, ci=32, co=32, kernel_size=3, stride=2, padding=1, capsule_size=4),
    "NRM": dict(b=1, m=256, n=256),
    "SFM": dict(m=256, n=256),
    "CBR": dict(n=1, h=224, w=224, ci=3, co=64, kernel_size=7, strides=2, padding=3, dilation=1),
    "TBG": dict(batch=1, seq_len=128, n_head=12, n_dim=64),
    "DENSE_U8S8": dict(m=128, n=768, k=768),
    "C2D_U8S8": dict(n=1, h=56, w=56, ci=64, co=64, kernel_size=3, stride=1, padding=1),
}


@T.prim_func(s_tir=True)
def matmul16(A: T.Buffer((16, 8), "float32"), B: T.Buffer((8, 12), "float32"), C: T.Buffer((16, 12), "float32")):
    for i, j, k in T.grid(16, 12, 8):
        with T.sblock("C"):
            vi, vj, vk = T.axis.remap("SSR", [i, j, k])
            with T.init():
                C[vi, vj] = T.float32(0)
            C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj]


@T.prim_func
def plain_tir(A: T.Buffer((16,), "float32"), B: T.Buffer((16,), "float32")):
    for i in range(16):
        B[i] = A[i] * T.float32(2)


@T.prim_func(s_tir=True)
def s_tir_without_blocks(A: T.Buffer((16,), "float32"), B: T.Buffer((16,), "float32")):
    for i in range(16):
        B[i] = A[i] * T.float32(2)


def _te_int8_matmul(n=64, m=64, k=64):
    a = te.placeholder((n, k), "uint8", name="A")
    b = te.placeholder((k, m), "int8", name="B")
    r = te.reduce_axis((0, k), name="r")
    c = te.compute((n, m), lambda i, j: te.sum(a[i, r].astype("int32") * b[r, j].astype("int32"), axis=r), name="C")
    return [a, b, c]


def test_workload_names_are_the_paper_set_in_order_then_the_int8_operators():
    assert workload_names() == list(TINY)


@pytest.mark.parametrize("name", list(TINY))
def test_named_operator_reference_matches_unscheduled_tvm_build(name):
    w = workload(name, **TINY[name])
    arrays = w.make_inputs(seed=3)
    numpy_outputs = w.reference(arrays)
    # Same function, without the operator name: the reference comes from TVM's build of the PrimFunc.
    tvm_outputs = workload(w.func).reference(arrays)
    comparison = w.compare(tvm_outputs, numpy_outputs)
    assert comparison.ok, comparison
    assert comparison.max_abs_error < 1e-4
    assert [out.shape for out in numpy_outputs] == [w.args[i].shape for i in w.outputs]
    assert np.any(numpy_outputs[0] != 0)  # a reference of zeros would match zero-initialized outputs


def test_conv_reference_gives_the_same_result_in_slabs():
    rng = np.random.default_rng(0)
    x, w = rng.uniform(-1, 1, (2, 7, 6, 5, 4)), rng.uniform(-1, 1, (3, 3, 3, 2, 6))
    whole = _conv_nd(x, w, stride=2, padding=1, dilation=1, groups=2)
    row_by_row = _conv_nd(x, w, stride=2, padding=1, dilation=1, groups=2, max_patch_elements=1)
    assert whole.shape == (2, 4, 3, 3, 6)
    np.testing.assert_allclose(row_by_row, whole, rtol=1e-12)


def test_named_defaults_and_parameter_names():
    assert {name: op.defaults for name, op in OPERATORS.items()} == EXPECTED_DEFAULTS


def test_gmm_default_is_512_cubed_and_flop_is_exact():
    assert workload("GMM").params == dict(b=1, n=512, m=512, k=512)
    w = workload("gmm", n=64, m=64, k=64)
    assert w.name == "GMM"
    assert w.params == dict(b=1, n=64, m=64, k=64)
    assert w.flop == 2 * 64**3
    assert w.args == (
        TensorSpec("X", (1, 64, 64), "float32"),
        TensorSpec("Y", (1, 64, 64), "float32"),
        TensorSpec("Z", (1, 64, 64), "float32"),
    )
    assert w.outputs == (2,)
    assert repr(w) == "Workload(GMM b=1 n=64 m=64 k=64, 524.3 KFLOP, args X[1,64,64]f32 Y[1,64,64]f32 -> Z[1,64,64]f32)"


def test_override_changes_the_built_shapes():
    w = workload("C2D", h=9, w=9, ci=2, co=5, kernel_size=3, stride=1, padding=0)
    assert [spec.shape for spec in w.args] == [(1, 9, 9, 2), (3, 3, 2, 5), (1, 7, 7, 5)]
    assert w.params["dilation"] == 1 and w.params["groups"] == 1


def test_func_is_normalized_like_metaschedule_does():
    w = workload(matmul16)
    assert w.name == "matmul16"
    assert w.func.attrs["global_symbol"] == "main"
    assert bool(w.func.attrs["tirx.noalias"])
    tvm.ir.assert_structural_equal(_normalize_mod(w.func), w.mod)
    tvm.ir.assert_structural_equal(_normalize_mod(w.mod), w.mod)


def test_tvmscript_workload_reference_is_the_built_function():
    w = workload(matmul16)
    assert w.params == {}
    assert w.outputs == (2,)
    assert w.flop == 2 * 16 * 12 * 8
    a, b, c = w.make_inputs(seed=1)
    (expected,) = w.reference([a, b, c])
    np.testing.assert_allclose(expected, a @ b, rtol=1e-5, atol=1e-5)
    assert not c.any()  # the reference runs on copies; the caller's output array stays zero
    assert w._reference_module is w._reference_module  # built once per workload


def test_irmodule_with_one_prim_func():
    @I.ir_module
    class Module:
        @T.prim_func(s_tir=True)
        def scale(A: T.Buffer((8,), "float32"), B: T.Buffer((8,), "float32")):
            for i in range(8):
                with T.sblock("B"):
                    vi = T.axis.remap("S", [i])
                    B[vi] = A[vi] * T.float32(3)

    w = workload(Module)
    assert w.name == "scale"
    assert w.outputs == (1,)
    a, b = w.make_inputs()
    np.testing.assert_allclose(w.reference([a, b])[0], 3 * a, rtol=1e-6)


def test_irmodule_with_two_functions_is_rejected():
    mod = tvm.IRModule({"f": matmul16, "g": matmul16.with_attr("global_symbol", "g")})
    with pytest.raises(ValueError, match=r"exactly one PrimFunc; it holds \['[fg]', '[fg]'\]"):
        workload(mod)


def test_te_int8_workload_has_full_range_data_and_exact_reference():
    w = workload(_te_int8_matmul())
    assert w.name == "main"
    assert [spec.dtype for spec in w.args] == ["uint8", "int8", "int32"]
    assert w.outputs == (2,)
    assert w.tolerance == (0.0, 0.0)
    a, b, c = w.make_inputs(seed=0)
    assert (a.dtype, b.dtype, c.dtype) == (np.uint8, np.int8, np.int32)
    assert (a.min(), a.max(), b.min(), b.max()) == (0, 255, -128, 127)
    (expected,) = w.reference([a, b, c])
    np.testing.assert_array_equal(expected, a.astype(np.int32) @ b.astype(np.int32))
    off_by_one = expected.copy()
    off_by_one[0, 0] += 1
    assert not w.compare([off_by_one], [expected]).ok


def test_make_inputs_is_deterministic_and_outputs_are_zero():
    w = workload("GMM", n=8, m=8, k=8)
    first, again, other = w.make_inputs(seed=7), w.make_inputs(seed=7), w.make_inputs(seed=8)
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], other[0])
    assert first[0].dtype == np.float32 and -1 <= first[0].min() and first[0].max() < 1
    assert not first[2].any()


def test_tolerance_grows_with_reduction_length_and_compare_flags_errors():
    assert workload("GMM", n=4, m=4, k=8).tolerance == (1e-4, 1e-4)
    rtol, atol = workload("GMM", n=1, m=1, k=8192).tolerance
    assert rtol == 1e-4 and atol == pytest.approx(4 * 1.2e-7 * 8192)
    w = workload("GMM", n=4, m=4, k=8)
    expected = w.reference(w.make_inputs())
    assert w.compare(expected, expected) == Comparison(True, 0.0, 0.0)
    shifted = [expected[0] + np.float32(1e-3)]
    result = w.compare(shifted, expected)
    assert not result.ok and result.max_abs_error == pytest.approx(1e-3, rel=1e-3)
    with_nan = expected[0].copy()
    with_nan[0, 0, 0] = np.nan
    assert w.compare([with_nan], expected) == Comparison(False, np.inf, np.inf)
    with pytest.raises(ValueError, match="output shapes differ"):
        w.compare([expected[0][0]], expected)


@pytest.mark.parametrize(
    "spec",
    [workload("GMM", n=4, m=4, k=4), workload(matmul16), workload(_te_int8_matmul(4, 4, 4))],
    ids=["named", "tvmscript", "te"],
)
def test_json_round_trip(spec):
    data = json.loads(json.dumps(spec.to_json()))
    back = Workload.from_json(data)
    assert (back.name, back.params, back.args, back.outputs, back.flop) == (
        spec.name, spec.params, spec.args, spec.outputs, spec.flop,
    )
    tvm.ir.assert_structural_equal(back.func, spec.func)
    assert data["kind"] == ("named" if spec.params else "tvmscript")


def test_workload_of_a_workload_is_itself():
    w = workload("SFM", m=4, n=4)
    assert workload(w) is w


def test_unknown_operator_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown operator 'XYZ'; valid names: GMM, C1D, C2D, .*TBG"):
        workload("XYZ")


def test_unknown_parameter_lists_parameters_with_defaults():
    with pytest.raises(ValueError, match=r"GMM has no parameter 'x'; .*: b=1 n=512 m=512 k=512$"):
        workload("GMM", x=3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(n=0), "'n' must be a positive integer, got 0"),
        (dict(n=2.5), "'n' must be a positive integer, got 2.5"),
        (dict(n=True), "'n' must be a positive integer, got True"),
        (dict(n="8"), "'n' must be a positive integer, got '8'"),
    ],
)
def test_bad_shape_values(params, message):
    with pytest.raises(ValueError, match=message):
        workload("GMM", **params)


def test_padding_may_be_zero_but_not_negative():
    assert workload("C1D", l=8, ci=2, co=2, padding=0).params["padding"] == 0
    with pytest.raises(ValueError, match="'padding' must be a non-negative integer, got -1"):
        workload("C1D", padding=-1)


def test_shapes_tvm_cannot_build_are_value_errors():
    with pytest.raises(ValueError, match="groups=3 must divide ci=8"):
        workload("GRP", h=8, w=8, ci=8, co=12, groups=3)
    with pytest.raises(ValueError, match="gives conv2d_nhwc the empty shape"):
        workload("C2D", h=2, w=2, ci=2, co=2, kernel_size=7, padding=0)
    with pytest.raises(ValueError, match="DEP cannot be built with .*factor=2"):
        workload("DEP", h=4, w=4, c=2, factor=2)


def test_params_with_a_prim_func_are_rejected():
    with pytest.raises(ValueError, match=r"shape parameters \(n\) apply only to named operators"):
        workload(matmul16, n=4)


@pytest.mark.parametrize("bad", [42, [1, 2], [], None], ids=["int", "list-of-int", "empty-list", "None"])
def test_unsupported_spec_type(bad):
    with pytest.raises(TypeError, match=rf"got a {type(bad).__name__}; it accepts an operator name .*te.Tensor"):
        workload(bad)


def test_te_list_without_a_computed_tensor():
    with pytest.raises(ValueError, match="all placeholders"):
        workload([te.placeholder((4,), name="A")])


def test_plain_tir_prim_func_is_rejected_with_advice():
    # TVM itself accepts it: MetaSchedule gives one empty design space (nothing to tune).
    with pytest.raises(ValueError, match=r"no s_tir blocks.*@T.prim_func\(s_tir=True\).*T.sblock"):
        workload(plain_tir)
    with pytest.raises(ValueError, match=r"no s_tir blocks"):
        workload(s_tir_without_blocks)


def test_blocks_without_the_s_tir_attribute_are_rejected():
    # Such a function prints as plain TVMScript that no longer parses, so it could not round-trip.
    with pytest.raises(tvm.error.DiagnosticError, match="not well-formed"):
        tvm.script.from_source(matmul16.without_attr("s_tir").script())
    message = r"'matmul16' has s_tir blocks but lacks the s_tir attribute.*@T.prim_func\(s_tir=True\)"
    with pytest.raises(ValueError, match=message):
        workload(matmul16.without_attr("s_tir"))
