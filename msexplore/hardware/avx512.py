"""AVX-512 fp32 register-blocked micro-kernels: the module ``"x86-avx512"``.

The micro-kernel of ``microkernel.py`` on 16-lane zmm vectors: a register block of up to 28 accumulators (of the
32 zmm registers, the rest hold the panel's ``vecs`` operand vectors and one broadcast), panels of 4, 2 or 3
vectors. Listed with the defaults it runs before ``multi_level_tiling`` (``before=``); the defaults then leave the
block alone (the module marks it ``schedule_rule="None"``) and still inline, place and parallelise the rest. For a
block with several reduction axes (a convolution) the module also keeps the block's default design spaces, whose
tiling can beat a micro-kernel over a short, nested k-panel::

    space = mx.Space(mx.workload("GMM", n=1024, m=1024, k=1024), modules=["default", "x86-avx512"])

It needs a CPU with AVX-512F (Skylake-SP and later Xeons, Ice Lake, Zen 4 and 5); on an AVX2 CPU use
``"x86-avx2"`` (``mx.hardware.microkernel_module()`` names the one the host has).
"""

from __future__ import annotations

import functools
from typing import Any

from tvm.s_tir import Schedule

from ..modules import module
from .isa import AVX512 as ISA
from .isa import missing_isa, missing_microkernel_isa
from .microkernel import design_spaces
from .microkernel import microkernel_applies as _applies

__all__ = [
    "AVX512", "LANES", "MAX_ACCUMULATORS", "has_avx512", "microkernel_applies", "missing_avx512", "panel_widths",
]

LANES = ISA.lanes  # fp32 lanes of a zmm register
MAX_ACCUMULATORS = ISA.max_accumulators
panel_widths = ISA.panel_widths
missing_avx512 = functools.partial(missing_isa, ISA)


@functools.lru_cache(maxsize=None)
def has_avx512(mcpu: str | None = None) -> bool:
    """Whether LLVM's CPU ``mcpu`` (default: this host's) has AVX-512F."""
    import tvm

    from ..target import _host_attrs

    triple, host_cpu = _host_attrs()
    target = tvm.target.Target({"kind": "llvm", "mtriple": triple, "mcpu": mcpu or host_cpu})
    return missing_avx512(target) is None


def microkernel_applies(sch: Schedule, block: Any) -> bool:
    """fp32, one output, a multiply-accumulate reduction, >= 2 spatial axes (not a single row), the last one
    contiguous in the output and 16-divisible."""
    return _applies(ISA, sch, block)


@module(name="x86-avx512", when=microkernel_applies, requires=functools.partial(missing_microkernel_isa, ISA),
        before=("multi_level_tiling",))
def microkernel(sch: Schedule, block: Any) -> list[Schedule]:
    """Register-blocked AVX-512 micro-kernel: zmm-wide vector axis, ``rows x vecs`` accumulators in registers,
    k-panels, cache blocks, one parallel loop; one design space per panel width, with and without packing, and
    for a block with several reduction axes (a convolution) its default design spaces as well."""
    return design_spaces(ISA, sch, block)


AVX512 = microkernel  # the registered module (a TransformModule), as ``mx.registered_modules()["x86-avx512"]``
