"""Targets the hardware-module tests build for, named explicitly so spaces build the same on any x86 machine, and
the mark for the tests that run zmm code on this one."""

from __future__ import annotations

import pytest

from msexplore.hardware.avx512 import missing_avx512
from msexplore.target import host_target

SKYLAKE = {"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "skylake-avx512"}
HASWELL = {"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "haswell"}  # no AVX-512

needs_avx512_host = pytest.mark.skipif(
    missing_avx512(host_target()) is not None, reason="this CPU has no AVX-512 to run zmm code"
)
