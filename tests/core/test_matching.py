"""Traces handed back by TVM's search are recognised: simplified, with a mutated parallel extent."""

from __future__ import annotations

import msexplore as mx
from msexplore.matching import match_trace


def _with_parallel_extent(trace_json: list, extent: int) -> list:
    insts, decisions = trace_json
    changed = 0
    for inst in insts:  # [kind, inputs, attrs, outputs]; what TVM's MutateParallel rewrites
        if inst[0] == "Annotate" and inst[2] and inst[2][0] == "meta_schedule.parallel":
            inst[1][1] = extent
            changed += 1
    assert changed == 1
    return [insts, decisions]


def test_a_sample_matches_its_design_space_with_its_decisions(default_space, default_samples):
    sample = default_samples[3]
    ds, decisions = match_trace(default_space, sample.trace)
    assert ds.index == sample.design_space
    assert decisions == dict(sample.decisions)


def test_a_simplified_trace_with_a_mutated_parallel_extent_still_matches(default_space, default_samples):
    sample = default_samples[5]
    mutated = mx.trace_from_json(_with_parallel_extent(mx.trace_to_json(sample.trace), 3), default_space)
    ds, decisions = match_trace(default_space, mutated.simplified(remove_postproc=True))
    assert ds is not None and ds.index == sample.design_space
    assert decisions == dict(sample.decisions)


def test_a_trace_of_another_space_does_not_match(default_space, gmm):
    other = mx.Space(gmm, modules=["auto_inline", "parallelize_vectorize_unroll"])
    sample = other.sample(1, seed=0)[0]
    assert match_trace(default_space, sample.trace) == (None, {})
