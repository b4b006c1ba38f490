"""What the hardware modules' correctness tests share: full-range inputs and the check of a sample's results against
the workload's reference, within float32's rounding over the reduction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import tvm

from msexplore.target import host_target


def full_range(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values of both signs from 1e-3 to 1e2."""
    x = rng.uniform(-1.0, 1.0, shape)
    return (x * 10.0 ** rng.integers(-3, 3, shape)).astype(np.float32)


def assert_samples_match_the_reference(workload: Any, samples: Iterable[Any], terms: int) -> None:
    """Build each sample for this host, run it on full-range inputs and compare with the reference. Such values
    cancel in the sums: the error is bounded by the sum of the terms' magnitudes (the reference on |inputs|) times
    float32's rounding over ``terms`` multiply-adds, in either summation order. The output starts as NaN, so an
    element a program leaves unwritten fails."""
    rng = np.random.default_rng(2)
    inputs = [full_range(rng, tuple(spec.shape)) for spec in workload.args[:2]]
    out_shape = tuple(workload.args[2].shape)
    zeros = np.zeros(out_shape, np.float32)
    (expected,) = workload.reference([*inputs, zeros])
    (magnitude,) = workload.reference([np.abs(a) for a in inputs] + [zeros])
    for sample in samples:
        lib = tvm.tirx.build(sample.schedule.mod, host_target())
        out = tvm.runtime.tensor(np.full(out_shape, np.nan, np.float32))
        lib["main"](*(tvm.runtime.tensor(a) for a in inputs), out)
        error = np.abs(out.numpy() - expected)
        assert np.all(error <= terms * np.finfo(np.float32).eps * magnitude), sample.decisions
