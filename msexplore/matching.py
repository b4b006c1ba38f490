"""Recognise which design space a trace from TVM's search comes from, and read its decisions by name.

The search hands back *simplified* traces (pure instructions whose outputs are unused, such as
``GetConsumers``, are dropped), so instruction positions differ from the design space's. Both sides are
simplified the same way and compared as Python text without decisions; positions then line up.
"""

from __future__ import annotations

import re
from typing import Any

from tvm.s_tir import Trace

from .random_variables import decision_value

__all__ = ["match_trace"]

_DECISION = re.compile(r", decision=.*\)$")
_PARALLEL = re.compile(r'(ann_key="meta_schedule\.parallel", ann_val=)\d+')


def _key(trace: Trace) -> str:
    # Decisions differ between samples; so does the parallel extent, which TVM's MutateParallel rewrites.
    return "\n".join(_PARALLEL.sub(r"\1*", _DECISION.sub(")", line)) for line in trace.as_python())


def _index(space: Any) -> dict[str, tuple[Any, dict[int, Any]]]:
    index = getattr(space, "_match_index", None)
    if index is None:
        index = {}
        for ds in space.design_spaces:
            simple = ds.trace.simplified(remove_postproc=True)
            full = list(ds.trace.insts)
            where = {inst: k for k, inst in enumerate(simple.insts)}  # simplification keeps the objects
            positions = {where[full[rv.position]]: rv for rv in ds.random_variables if full[rv.position] in where}
            index.setdefault(_key(simple), (ds, positions))
        space._match_index = index
    return index


def match_trace(space: Any, trace: Trace) -> tuple[Any, dict[str, Any]]:
    """``(design space, {decision name: value})`` of a trace, or ``(None, {})`` if it is not of this space."""
    simple = trace.simplified(remove_postproc=True)
    found = _index(space).get(_key(simple))
    if found is None:
        return None, {}
    ds, positions = found
    insts = simple.insts
    decisions = {}
    for pos, rv in positions.items():
        value = decision_value(rv, simple.get_decision(insts[pos]))
        decisions[rv.name] = tuple(value) if isinstance(value, list) else value
    return ds, decisions
