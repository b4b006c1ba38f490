"""``exp`` on 16 fp32 lanes at once: the tensor intrinsic ``"msexplore_exp_diff_16_f32"``.

LLVM cannot vectorize a call to libm's ``expf``: a TIR ``T.exp`` in a vectorized loop becomes ``llvm.exp.v16f32``,
which the x86 back end splits into 16 scalar ``call expf`` (the softmax of the named set spent most of its time
there). This intrinsic computes the same ``C[i] = exp(A[i] - M[0])`` (softmax's exp block: an element minus its
row's maximum) as straight-line vector code that LLVM turns into zmm instructions (``vfmadd``, ``vrndscaleps``,
``vpslld``), with the error of a libm:

- Cody-Waite reduction ``x = n ln2 + r`` (``ln2`` split in two constants, so ``r`` is exact to a few ulp of ``r``),
  Cephes' degree-7 polynomial for ``exp(r)`` on ``|r| <= ln2 / 2``, and the scale ``2^n`` built from exponent bits
  in two halves, so that results down to the smallest subnormal and up to ``FLT_MAX`` are right;
- measured against float64 ``exp`` on 4M uniform points per range (``tests/core/test_rows.py``): at most 1.02 ulp
  on [-87, 88.7], at most 0.75 ulp on the subnormal range [-104, -87]; glibc's scalar ``expf`` is within 0.5 ulp,
  numpy's own fp32 ``exp`` (AVX-512) within 2.4 ulp on this machine;
- ``exp(-inf) = 0``, ``exp(+inf) = inf``, ``exp(nan) = nan``, ``exp(x) = 0`` below -104 and ``inf`` above 88.72
  (``ln FLT_MAX``), as libm.

Why a tensor intrinsic: a schedule cannot change what a block computes, except by tensorizing it with an
intrinsic whose description matches the block (``sch.tensorize``, a trace instruction like any other). The
replacement is visible in the TIR and the trace, and a module that does not tensorize keeps libm's ``expf``.
"""

from __future__ import annotations

from typing import Any

import tvm
from tvm import tirx
from tvm.script import tirx as T

__all__ = ["INTRIN_NAME", "LANES", "MAX_ULP", "exp_expr", "register_intrinsic"]

INTRIN_NAME = "msexplore_exp_diff_16_f32"
LANES = 16
MAX_ULP = 1.02  # measured on [-87, 88.7]; the tests hold the intrinsic to it

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375  # ln 2 = _LN2_HI + _LN2_LO; _LN2_HI has 9 significant bits, so n * _LN2_HI is exact
_LN2_LO = -2.12194440e-4
# Cephes expf: exp(r) ~ 1 + r + r^2 (P0 r^5 + ... + P5), |r| <= ln2 / 2
_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
_LOW = -104.0  # below: 0 (exp(-103.97) is the smallest subnormal)
_HIGH = 88.72283935546875  # ln FLT_MAX, rounded to fp32; above: inf


def exp_expr(x: Any) -> Any:
    """``exp(x)`` for an fp32 expression ``x``, as arithmetic that vectorizes (no call to libm).

    Let-bound (``T.Let``) so that each step is computed once and reads as a sequence; not ``LetStmt``, which
    TVM 0.27's loop vectorizer widens wrongly (every lane gets the last lane's value).
    """

    def f32(value: float) -> Any:
        return tirx.const(value, "float32")

    xv, nv, rv = (tirx.Var(name, "float32") for name in ("x", "n", "r"))
    kv = tirx.Var("k", "int32")
    clamped = tirx.max(tirx.min(xv, f32(_HIGH)), f32(_LOW))
    poly = f32(_POLY[0])
    for c in _POLY[1:]:
        poly = poly * rv + f32(c)
    poly = poly * rv * rv + rv + f32(1.0)
    half = tirx.shift_right(kv, 1)
    scaled = poly * _pow2(half) * _pow2(kv - half)  # 2^k in two factors: each stays a normal number
    in_range = tirx.Select(xv < f32(_LOW), f32(0.0), scaled)
    result = tirx.Select(tirx.isnan(xv), xv, tirx.Select(xv > f32(_HIGH), f32(float("inf")), in_range))
    return tirx.Let(
        xv,
        x,
        tirx.Let(
            nv,
            tirx.floor(clamped * f32(_LOG2E) + f32(0.5)),
            tirx.Let(
                rv,
                clamped - nv * f32(_LN2_HI) - nv * f32(_LN2_LO),
                tirx.Let(kv, tirx.Cast("int32", nv), result),
            ),
        ),
    )


def _pow2(k: Any) -> Any:
    """``2^k`` for an int32 ``k`` in [-126, 127]: the exponent bits of an fp32."""
    return tirx.reinterpret("float32", tirx.shift_left(k + 127, 23))


@T.prim_func(s_tir=True)
def exp_diff_desc(
    A: T.Buffer((16,), "float32", offset_factor=1),
    M: T.Buffer((1,), "float32", offset_factor=1),
    C: T.Buffer((16,), "float32", offset_factor=1),
) -> None:
    with T.sblock("root"):
        T.reads(A[0:16], M[0:1])
        T.writes(C[0:16])
        for i in T.serial(0, 16):
            with T.sblock("exp"):
                vi = T.axis.remap("S", [i])
                C[vi] = T.exp(A[vi] - M[0])


@T.prim_func(s_tir=True)
def exp_diff_vector(
    A: T.Buffer((16,), "float32", offset_factor=1),
    M: T.Buffer((1,), "float32", offset_factor=1),
    C: T.Buffer((16,), "float32", offset_factor=1),
) -> None:
    with T.sblock("root"):
        T.reads(A[0:16], M[0:1])
        T.writes(C[0:16])
        for i in T.vectorized(16):
            C[i] = exp_expr(A[i] - M[0])


def register_intrinsic() -> str:
    """Register the intrinsic under ``INTRIN_NAME`` (again: it replaces) and return the name.

    Done on import, so traces that tensorize with it replay in any process that imports msexplore.
    """
    tvm.s_tir.TensorIntrin.register(INTRIN_NAME, exp_diff_desc, exp_diff_vector, override=True)
    return INTRIN_NAME


register_intrinsic()
