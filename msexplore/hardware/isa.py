"""The x86 vector instruction sets the hardware modules are written for, and which one a target has.

A register-blocked kernel is the same idea on AVX-512 and on AVX2; what changes is how many fp32 lanes a register
holds and how many registers there are to keep accumulators in. ``VectorISA`` records that, so one implementation
serves both (``x86-avx512`` on Skylake-SP, Ice Lake, Zen 4/5; ``x86-avx2`` on Haswell to Zen 3 and most laptops).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tvm.target.codegen import target_has_features

__all__ = ["AVX2", "AVX512", "ISAS", "VectorISA", "isa_of", "missing_isa", "missing_microkernel_isa"]


@dataclasses.dataclass(frozen=True)
class VectorISA:
    """An x86 SIMD instruction set as a micro-kernel sees it."""

    name: str  # as in the module's name: "avx512", "avx2"
    features: tuple[str, ...]  # LLVM CPU features it needs, all of them
    lanes: int  # fp32 lanes of one vector register
    registers: int  # vector registers
    register: str  # the assembly name of one ("zmm", "ymm")
    # accumulators a register block may keep: the other registers hold the panel's operand vectors and a broadcast
    max_accumulators: int
    panel_vectors: tuple[int, ...]  # register-block widths tried, in vectors, best first; 1 when nothing divides

    @property
    def module(self) -> str:
        """The name of its micro-kernel module."""
        return f"x86-{self.name}"

    def max_rows(self, vecs: int) -> int:
        """Rows of a register block ``vecs`` vectors wide."""
        return max(1, self.max_accumulators // vecs)

    def panel_widths(self, extent: int) -> list[int]:
        """Register-block widths (in vectors) that divide a vector axis of ``extent`` elements."""
        vectors = extent // self.lanes
        widths = [v for v in self.panel_vectors if vectors % v == 0]
        return widths or [1]


# 32 zmm: up to 7 x 4 accumulators (BLIS's Skylake-X kernel is 14 x 2). Measured on Zen 5 (session 12) 7 x 4 leaves
# LLVM two spills in a convolution's nest; on a Sapphire Rapids-class Xeon (2026-12-02) C3D's 7 x 4 ran 10 % slower
# than 4 x 4 (38.2 vs 34.7 ms, padding outside the kernel). Kept until C2D's and ResNet's 7-row blocks, which only
# this cap allows, are re-measured with 6 (issue 14's note)
AVX512 = VectorISA("avx512", ("avx512f",), lanes=16, registers=32, register="zmm", max_accumulators=28,
                   panel_vectors=(4, 2, 3))
# 16 ymm: 12 accumulators, the rest for 2-3 panel vectors and a broadcast: 6 x 2 or 4 x 3, as BLIS's Haswell kernels
AVX2 = VectorISA("avx2", ("avx2", "fma"), lanes=8, registers=16, register="ymm", max_accumulators=12,
                 panel_vectors=(2, 3))
ISAS = (AVX512, AVX2)  # widest first


_FEATURE_NAMES = {"avx512f": "AVX-512F"}  # as Intel writes them; the others are their upper case


def _has(target: Any, isa: VectorISA) -> bool:
    return target.kind.name == "llvm" and all(bool(target_has_features(f, target)) for f in isa.features)


def missing_isa(isa: VectorISA, target: Any) -> str | None:
    """None when ``target`` has ``isa``; otherwise what it lacks and what to use instead (a module's ``requires=``)."""
    if target.kind.name != "llvm":
        return f"it is a {target.kind.name} target, not a CPU (llvm)"
    if _has(target, isa):
        return None
    mcpu = str(target.attrs.get("mcpu", "") or "") or "(generic x86-64)"
    needs = " and ".join(_FEATURE_NAMES.get(f, f.upper()) for f in isa.features)
    attrs = [f"+{f}" for f in isa.features]
    return f"its CPU {mcpu} has no {needs} (pass the mcpu of a CPU that has it, or mattr={attrs})"


def missing_microkernel_isa(isa: VectorISA, target: Any) -> str | None:
    """``missing_isa``, naming the micro-kernel module the target's CPU can run instead where it has one."""
    reason = missing_isa(isa, target)
    other = None if reason is None or target.kind.name != "llvm" else isa_of(target)
    return reason if other is None else f"{reason}; on this CPU use {other.module!r}"


def isa_of(target: Any) -> VectorISA | None:
    """The widest vector ISA an llvm ``target`` has (None for a CPU without AVX2 + FMA, or not a CPU)."""
    return next((isa for isa in ISAS if _has(target, isa)), None)
