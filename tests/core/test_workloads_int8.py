"""The int8 workloads: layouts, parameters, exact references on full-range data, and a correctness check that
catches a kernel whose int16 arithmetic saturates (AVX-512's vpmaddubsw path without VNNI)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from tvm.s_tir.meta_schedule.runner import EvaluatorConfig
from tvm.s_tir.meta_schedule.schedule_rule import MultiLevelTilingWithIntrin, ReuseType
from tvm.target.codegen import target_has_features

import msexplore as mx
from msexplore.hardware import vnni
from msexplore.measure import verify
from msexplore.target import host_target
from msexplore.workloads import Workload

FAST = EvaluatorConfig(number=1, repeat=1, min_repeat_ms=0, enable_cpu_cache_flush=False)


def test_the_packed_layouts_and_defaults():
    dense = mx.workload("dense_u8s8")  # names are case-insensitive, like the paper's
    assert repr(dense) == (
        "Workload(DENSE_U8S8 m=128 n=768 k=768, 151.0 MFLOP, args A[128,768]u8 B[48,192,16,4]i8 -> C[128,768]i32)"
    )
    conv = mx.workload("C2D_U8S8")
    assert [str(a) for a in conv.args] == ["data[1,16,56,56,4]u8", "kernel[4,16,3,3,16,4]i8", "conv[1,4,56,56,16]i32"]
    assert conv.flop == 2 * 56 * 56 * 64 * 64 * 9
    assert conv.tolerance == (0.0, 0.0)  # integers: exact


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("DENSE_U8S8", dict(n=40), r"DENSE_U8S8: n=40 must be a multiple of 16 \(the packed layout holds 16 of them "
         r"together\); e.g. n=32"),
        ("DENSE_U8S8", dict(k=6), r"DENSE_U8S8: k=6 must be a multiple of 4"),
        ("C2D_U8S8", dict(ci=6), r"C2D_U8S8: ci=6 must be a multiple of 4"),
        ("C2D_U8S8", dict(co=8), r"C2D_U8S8: co=8 must be a multiple of 16 .*e.g. co=16"),
        ("C2D_U8S8", dict(groups=2), r"C2D_U8S8 has no parameter 'groups'; its parameters \(with defaults\) are: n=1"),
    ],
)
def test_sizes_the_layout_cannot_hold_are_refused(name, params, message):
    with pytest.raises(ValueError, match=message):
        mx.workload(name, **params)


def _dense_by_definition(a, packed):
    m, k = a.shape
    n = packed.shape[0] * 16
    out = np.zeros((m, n), np.int64)
    for i, j, r in itertools.product(range(m), range(n), range(k)):
        out[i, j] += int(a[i, r]) * int(packed[j // 16, r // 4, j % 16, r % 4])
    return out


def _conv_by_definition(data, kernel, stride, padding):
    n, cb, h, w, _ = data.shape
    ob, _, k, _, _, _ = kernel.shape
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    out = np.zeros((n, ob, oh, ow, 16), np.int64)
    for b, o, y, x, lane in itertools.product(range(n), range(ob), range(oh), range(ow), range(16)):
        for c, kh, kw, e in itertools.product(range(cb), range(k), range(k), range(4)):
            yy, xx = y * stride + kh - padding, x * stride + kw - padding
            if 0 <= yy < h and 0 <= xx < w:
                out[b, o, y, x, lane] += int(data[b, c, yy, xx, e]) * int(kernel[o, c, kh, kw, lane, e])
    return out


def test_references_are_exact_on_full_range_data():
    dense = mx.workload("DENSE_U8S8", m=3, n=32, k=8)
    a, b, _ = dense.make_inputs(seed=5)
    assert a.dtype == np.uint8 and b.dtype == np.int8
    (expected,) = dense.reference([a, b, None])
    assert expected.dtype == np.int32
    np.testing.assert_array_equal(expected, _dense_by_definition(a, b))

    conv = mx.workload("C2D_U8S8", h=5, w=4, ci=8, co=16, stride=2)
    data, kernel, _ = conv.make_inputs(seed=5)
    (expected,) = conv.reference([data, kernel, None])
    np.testing.assert_array_equal(expected, _conv_by_definition(data, kernel, stride=2, padding=1))


def test_inputs_cover_the_whole_u8_and_s8_ranges():
    a, b, c = mx.workload("DENSE_U8S8").make_inputs(seed=0)
    assert (a.min(), a.max(), b.min(), b.max()) == (0, 255, -128, 127)
    assert not c.any()
    # the case a saturating int16 dot product gets wrong occurs all over the data: 2 * 255 * 127 > 32767
    pairs = a[:, None, :2].astype(np.int64) * b.reshape(48 * 16, -1)[None, :, :2].astype(np.int64)
    assert (np.abs(pairs.sum(-1)) > 32767).any()


def test_json_round_trip_keeps_the_parameters():
    conv = mx.workload("C2D_U8S8", h=7, w=7, ci=4, co=16, kernel_size=1, padding=0)
    again = Workload.from_json(json.loads(json.dumps(conv.to_json())))
    assert again.params == conv.params and again.func.script() == conv.func.script()


@pytest.mark.skipif(
    not target_has_features("avx512bw", host_target()), reason="vpmaddubsw (AVX-512 BW) cannot run on this CPU"
)
def test_a_saturating_int8_kernel_is_reported_as_a_wrong_result():
    """TVM's AVX-512 dot product (vpmaddubsw, int16 sums) tensorized into the same space: it runs, it is fast,
    and the check rejects it, because full-range u8 x s8 pairs overflow int16."""
    from tvm.s_tir.tensor_intrin.x86 import AVX512_DOT_16x4_INTRIN  # TVM's, registered by this import

    saturating = mx.module(
        name="avx512-dot-saturating",
        rule=MultiLevelTilingWithIntrin(
            AVX512_DOT_16x4_INTRIN, structure="SSRSRS", max_innermost_factor=64,
            reuse_write=ReuseType(req="may", levels=[1, 2], scope="global"),
        ),
        postprocs=vnni.VNNI.postprocs,
        before=["multi_level_tiling"],
    )
    dense = mx.workload("DENSE_U8S8", m=16, n=32, k=32)
    space = mx.Space(dense, modules=["default", saturating], target=host_target())
    samples = [s for s in space.sample(2, seed=0) if s.valid]
    assert samples and all(AVX512_DOT_16x4_INTRIN in "\n".join(s.python().splitlines()) for s in samples)

    results = mx.measure([s.schedule for s in samples], dense, evaluator=FAST)
    assert all(r.wrong_result and not r.ok for r in results), results
    assert all(r.max_abs_error > 1000 for r in results)
    assert "WrongResultError: wrong result: output 0 (C) max abs error" in results[0].run_error
    comparison = verify(samples[0].schedule.mod, dense)  # the in-process check agrees
    assert not comparison.ok and comparison.max_abs_error == pytest.approx(results[0].max_abs_error, rel=1e-3)
