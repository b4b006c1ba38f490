"""AVX2 fp32 register-blocked micro-kernels: the module ``"x86-avx2"``.

The micro-kernel of ``microkernel.py`` on 8-lane ymm vectors, for the CPUs without AVX-512 (Haswell to Alder
Lake's cores, Zen 1-3, most laptops): with 16 ymm registers a register block keeps at most 12 accumulators, 6 x 2
or 4 x 3 vectors as BLIS's Haswell kernels do, so the 2-3 panel vectors and a broadcast fit beside them and
nothing spills. Everything else is as ``x86-avx512``: packing of the operand along the vector axis per design
space, sampled rows, cache blocks and k-panels, one parallel loop, the defaults' spaces kept for convolutions::

    space = mx.Space(mx.workload("GMM", n=1024, m=1024, k=1024), modules=["default", "x86-avx2"])

It needs AVX2 and FMA (``vfmadd231ps`` on ymm).
"""

from __future__ import annotations

import functools
from typing import Any

from tvm.s_tir import Schedule

from ..modules import module
from .isa import AVX2 as ISA
from .isa import missing_isa, missing_microkernel_isa
from .microkernel import design_spaces, microkernel_applies

__all__ = ["AVX2", "missing_avx2"]

missing_avx2 = functools.partial(missing_isa, ISA)


@module(name="x86-avx2", when=functools.partial(microkernel_applies, ISA),
        requires=functools.partial(missing_microkernel_isa, ISA), before=("multi_level_tiling",))
def microkernel(sch: Schedule, block: Any) -> list[Schedule]:
    """Register-blocked AVX2 micro-kernel: ymm-wide vector axis, ``rows x vecs`` accumulators in registers (at
    most 12), k-panels, cache blocks, one parallel loop; one design space per panel width, with and without
    packing, and for a block with several reduction axes (a convolution) its default design spaces as well."""
    return design_spaces(ISA, sch, block)


AVX2 = microkernel  # the registered module, as ``mx.registered_modules()["x86-avx2"]``
