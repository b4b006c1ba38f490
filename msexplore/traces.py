"""Trace tools: instruction tables, JSON round trip, decision edits with replay. Traces only: samples and spaces
build on these (``sampling``), not the other way round."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from tvm.s_tir import Schedule, Trace

from .common import error_line, plain_json
from .random_variables import RandomVariable, _preview, decision_raw, decision_value, perfect_tilings
from .schedules import fresh_schedule, replay_json

__all__ = ["instruction_table", "trace_to_json", "trace_from_json", "replay_with_decisions"]


def trace_to_json(trace: Trace) -> list:
    """The trace as plain JSON (``[instructions, decisions]``), safe to ``json.dumps``.

    Not ``tvm.ir.save_json``: a trace loaded back from that segfaults when printed or replayed (TVM 0.27).
    """
    return plain_json(trace.as_json())


def trace_from_json(data: list, workload: Any, *, seed: int = 1) -> Trace:
    """Rebuild a trace from ``trace_to_json`` output by replaying it on ``workload`` (an ``mx.Workload``, or a
    space: its workload is used).

    Raises ``ValueError`` naming the workload and TVM's reason when the data is not a trace or does not
    replay there (a trace of another workload).
    """
    return replay_json(data, workload, seed=seed).trace


def instruction_table(trace: Trace, random_variables: Sequence[RandomVariable] = ()) -> pd.DataFrame:
    """One row per instruction: index, kind, inputs, attributes, outputs, decision, random variable, module.

    ``random_variables`` (the design space's, by trace position) name the decisions and read them as values.
    """
    rvs = {rv.position: rv for rv in random_variables}
    names = _rv_names(trace)
    rows = []
    in_postproc = False
    for k, inst in enumerate(trace.insts):
        in_postproc = in_postproc or inst.kind.name == "EnterPostproc"
        rv = rvs.get(k)
        raw = trace.get_decision(inst)
        rows.append(
            {
                "index": k,
                "kind": inst.kind.name,
                "inputs": ", ".join(names.get(_key(x), _short(x)) for x in inst.inputs),
                "attrs": ", ".join(_short(a) for a in inst.attrs),
                "outputs": ", ".join(names.get(_key(x), "?") for x in inst.outputs),
                "decision": None if raw is None else _hashable(decision_value(rv, raw) if rv else plain_json(raw)),
                "random_variable": rv.name if rv else None,
                "module": rv.module if rv else None,
                "block": rv.block if rv else None,
                "postproc": in_postproc,
            }
        )
    return pd.DataFrame(rows)


def _hashable(value: Any) -> Any:
    """Tile factors as a tuple, as in ``Sample.decisions`` and ``SampleSet.df``."""
    return tuple(value) if isinstance(value, list) else value


def _key(x: Any) -> Any:
    return x.__hash__() if hasattr(x, "same_as") else id(x)


def _rv_names(trace: Trace) -> dict[Any, str]:
    """Name the RVs the way ``as_python`` does: b0 (blocks), l1 (loops), v2 (expressions)."""
    names: dict[Any, str] = {}
    counter = 0
    for inst in trace.insts:
        for out in inst.outputs:
            prefix = {"SBlockRV": "b", "LoopRV": "l"}.get(type(out).__name__, "v")
            names[_key(out)] = f"{prefix}{counter}"
            counter += 1
    return names


def _short(x: Any) -> str:
    value = plain_json(x)
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_kept_tile(rv: Any, extent: int, decision: Any, problems: list[str]) -> None:
    """TVM would silently replace a kept tile that no longer divides its loop: report it instead."""
    factors = [int(x) for x in decision]
    legal = perfect_tilings(extent, rv.n, rv.max_innermost_factor)
    if tuple(factors) not in legal:
        problems.append(
            f"{rv.name}: its value {factors} no longer tiles loop {rv.loop!r} (extent {extent} after this change); "
            f"change it too, to one of {_preview([list(t) for t in legal])}"
        )


def replay_with_decisions(
    trace: Trace,
    random_variables: Sequence[RandomVariable],
    changes: Mapping[str, Any],
    workload: Any,
    *,
    seed: int = 1,
    what: str = "trace",
    label: str = "the trace",
) -> Schedule:
    """``trace`` replayed on a fresh schedule of ``workload`` with some decisions replaced, before postprocessing.

    Every value is checked against its legal values first: TVM itself silently "repairs" an illegal tile
    (``[3, 21]`` of 128 becomes ``[1, 128]``); here it raises ``ValueError`` listing the legal values. A kept tile
    whose loop a change resized, so that it no longer tiles it, is reported too. ``what`` and ``label`` name the
    edited thing in messages ("sample", "sample 3").
    """
    if not isinstance(changes, Mapping) or not changes:
        raise ValueError("changes must be a non-empty {decision name: value} mapping")
    by_name = {rv.name: rv for rv in random_variables}
    unknown = [n for n in changes if n not in by_name]
    if unknown:
        raise ValueError(f"unknown decision(s) {unknown}; this {what}'s decisions are {list(by_name)}")
    by_position = {by_name[n].position: (by_name[n], v) for n, v in changes.items()}
    index = {inst: k for k, inst in enumerate(trace.insts)}  # TVM objects hash and compare by identity
    sch = fresh_schedule(workload, seed)
    problems: list[str] = []
    kept_tiles = {rv.position: rv for rv in random_variables if rv.kind == "tile" and rv.name not in changes}

    def provider(inst: Any, inputs: Any, attrs: Any, decision: Any) -> Any:
        k = index.get(inst, -1)
        if k in kept_tiles:  # unchanged, but its loop may have a new extent after an earlier change
            _check_kept_tile(kept_tiles[k], int(sch.get(inputs[0]).extent), decision, problems)
            return decision
        if k not in by_position:
            return decision
        rv, value = by_position[k]
        if rv.kind == "tile":  # the extent may depend on earlier decisions: check the one in this replay
            rv = dataclasses.replace(rv, extent=int(sch.get(inputs[0]).extent))
        try:
            return decision_raw(rv, value)
        except ValueError as err:
            problems.append(str(err))
            return decision

    try:
        trace.apply_to_schedule(sch, remove_postproc=True, decision_provider=provider)
    except Exception as err:  # noqa: BLE001 - a legal value can still make a later instruction fail
        if problems:
            raise ValueError("; ".join(problems)) from None
        raise ValueError(
            f"{label} with {dict(changes)} does not replay: {error_line(err, default=type(err).__name__)}"
        ) from None
    if problems:
        raise ValueError("; ".join(problems))
    return sch
