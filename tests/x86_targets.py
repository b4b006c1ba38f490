"""Targets the hardware-module tests build for, named explicitly so spaces build the same on any x86 machine, and
the marks for the tests that run zmm or ymm code on this one."""

from __future__ import annotations

import pytest

from msexplore.hardware.avx2 import missing_avx2
from msexplore.hardware.avx512 import missing_avx512
from msexplore.target import host_target

SKYLAKE = {"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "skylake-avx512"}
HASWELL = {"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "haswell"}  # no AVX-512

needs_avx512_host = pytest.mark.skipif(
    missing_avx512(host_target()) is not None, reason="this CPU has no AVX-512 to run zmm code"
)

# AVX without AVX2 and FMA
SANDY_BRIDGE = {"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "sandybridge"}

needs_avx2_host = pytest.mark.skipif(
    missing_avx2(host_target()) is not None, reason="this CPU has no AVX2 and FMA to run ymm FMA code"
)
