"""instruction_lines: each trace instruction -> the lines of the final TIR it produced or touched, on real samples."""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

import msexplore as mx
from msexplore.tir_map import instruction_lines


def _tile_and_vectorize(sch, block):
    _, i, j, k = sch.get_loops(block)
    j0, j1 = sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=16))
    i0, i1 = sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=8))
    sch.reorder(i0, j0, k, i1, j1)
    sch.vectorize(j1)
    return [sch]


@pytest.fixture(scope="module")
def tv_samples(target):
    module = mx.module(_tile_and_vectorize, name="tir_map_tile_vectorize", blocks=["Z"])
    space = mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=[module], target=target)
    return space.sample(4, seed=0)


@pytest.fixture(scope="module")
def default_samples32(target):
    space = mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=["default"], target=target)
    return space.sample(6, seed=0)


def _kinds(sample):
    return [inst.kind.name for inst in sample.trace.insts]


def _index(sample, kind, nth=0):
    return [k for k, name in enumerate(_kinds(sample)) if name == kind][nth]


def _line(tir: str, pattern: str) -> int:
    """The only 1-based line of ``tir`` matching ``pattern``."""
    hits = [n for n, line in enumerate(tir.splitlines(), start=1) if re.search(pattern, line)]
    assert len(hits) == 1, (pattern, hits)
    return hits[0]


def _loop_line(tir: str, var: str) -> int:
    """The only ``for`` line binding loop variable ``var`` (alone or in a T.grid)."""
    hits = [
        n for n, line in enumerate(tir.splitlines(), start=1)
        if (m := re.match(r"\s*for (.+?) in ", line)) and var in [t.strip() for t in m.group(1).split(",")]
    ]
    assert len(hits) == 1, (var, hits)
    return hits[0]


def test_custom_module_instructions_map_to_their_loops_and_blocks(tv_samples):
    s = tv_samples[0]
    assert s.valid, s.error
    lines, tir = instruction_lines(s), s.tir
    assert sorted(lines) == list(range(len(s.trace.insts)))  # every instruction has an entry
    update, init = _line(tir, r'T\.sblock\("Z_update"\)'), _line(tir, r'T\.sblock\("Z_init"\)')
    vectorized = _line(tir, r"for j_1 in T\.vectorized")
    assert lines[_index(s, "GetSBlock")] == [update]  # get_sblock("Z"): the block, renamed Z_update by decompose
    assert lines[_index(s, "Vectorize")] == [vectorized]  # not the init block's vectorized copy
    split_j = _index(s, "Split", 0)
    assert lines[split_j] == sorted([_loop_line(tir, "j_0"), vectorized])  # j_0 is folded into a T.grid line
    assert lines[_index(s, "SamplePerfectTile", 0)] == lines[split_j]  # a sampled tile maps to its split
    assert lines[_index(s, "Split", 1)] == sorted([_loop_line(tir, "i_0"), _loop_line(tir, "i_1")])
    assert lines[_index(s, "EnterPostproc")] == []
    assert init in lines[_index(s, "DecomposeReduction")] and update in lines[_index(s, "DecomposeReduction")]


def test_default_space_parallel_vectorize_and_decisions(default_samples32):
    for s in default_samples32:
        if not s.valid:
            continue
        lines, tir = instruction_lines(s), s.tir
        n_lines = len(tir.splitlines())
        assert all(1 <= n <= n_lines for v in lines.values() for n in v)
        assert lines[_index(s, "Parallel")] == [_line(tir, r"T\.parallel\(")]
        assert lines[_index(s, "SampleCategorical")] == [_line(tir, r'# with T\.sblock\("root"\)')]
        for k, kind in enumerate(_kinds(s)):
            if kind == "SamplePerfectTile":  # every tile decision points at a loop of the program
                assert lines[k] and all(" for " in f" {tir.splitlines()[n - 1]}" for n in lines[k]), k


def test_schedule_gives_the_same_map_and_samples_are_cached(tv_samples):
    s = tv_samples[1]
    first = instruction_lines(s)
    assert instruction_lines(s.schedule) == first  # the replayed schedule's own trace: same indices, same lines
    first[0].append(999)  # the caller's copy; the cache is not touched
    start = time.perf_counter()
    again = instruction_lines(s)
    assert time.perf_counter() - start < 0.05
    assert 999 not in again[0]


def test_sample_without_trace_and_wrong_type(tv_samples):
    broken = dataclasses.replace(tv_samples[0], valid=False, error="module failed (test)", trace=None)
    with pytest.raises(ValueError, match="has no trace"):
        instruction_lines(broken)
    with pytest.raises(TypeError, match="mx.Sample or a tvm.s_tir.Schedule"):
        instruction_lines("sch")
