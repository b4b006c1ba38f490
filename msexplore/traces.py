"""Trace tools: instruction tables, JSON round trip, diff of two samples, decision edits with replay."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
import tvm
from tvm.s_tir import Trace

from .random_variables import _preview, decision_raw, decision_value, perfect_tilings

if TYPE_CHECKING:
    from .sampling import Sample
    from .space import Space

__all__ = ["instruction_table", "trace_to_json", "trace_from_json", "diff", "Diff", "with_decisions"]


def _builtin(obj: Any) -> Any:
    """``Trace.as_json()`` holds IntImm/FloatImm and TVM containers; turn them into plain JSON values."""
    if isinstance(obj, (str, bool, int, float)) or obj is None:
        return obj
    if isinstance(obj, (tvm.tirx.IntImm, tvm.tirx.FloatImm)):
        return obj.value
    if isinstance(obj, Mapping) or hasattr(obj, "items"):
        return {str(k): _builtin(v) for k, v in obj.items()}
    try:
        return [_builtin(x) for x in obj]
    except TypeError:
        return str(obj)


def trace_to_json(trace: Trace) -> list:
    """The trace as plain JSON (``[instructions, decisions]``), safe to ``json.dumps``.

    Not ``tvm.ir.save_json``: a trace loaded back from that segfaults when printed or replayed (TVM 0.27).
    """
    return _builtin(trace.as_json())


def trace_from_json(data: list, space: Space, *, seed: int = 1) -> Trace:
    """Rebuild a trace from ``trace_to_json`` output by replaying it on the space's workload.

    Raises ``ValueError`` naming the workload and TVM's reason when the data is not a trace or does not
    replay there (a trace of another workload).
    """
    from .space import fresh_schedule

    if not (isinstance(data, (list, tuple)) and len(data) == 2 and all(isinstance(x, (list, tuple)) for x in data)):
        raise ValueError(f"a trace in JSON is [instructions, decisions] as trace_to_json writes it, got {_short(data)}")
    sch = fresh_schedule(space, seed)
    try:
        Trace.apply_json_to_schedule(data, sch)
    except Exception as err:  # noqa: BLE001 - TVM 0.27 raises built-in types (ValueError, RuntimeError, ...)
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        reason = lines[-1] if lines else type(err).__name__  # TVM puts the useful sentence last
        raise ValueError(f"the trace does not replay on workload {space.workload.name}: {reason}") from None
    return sch.trace


def instruction_table(sample: Sample) -> pd.DataFrame:
    """One row per instruction: index, kind, inputs, attributes, outputs, decision, random variable, module."""
    if sample.trace is None:
        raise ValueError(f"sample {sample.id} has no trace: {sample.error}")
    rvs = {}
    if sample.design_space >= 0:
        rvs = {rv.position: rv for rv in sample.space.design_spaces[sample.design_space].random_variables}
    names = _rv_names(sample.trace)
    rows = []
    in_postproc = False
    for k, inst in enumerate(sample.trace.insts):
        in_postproc = in_postproc or inst.kind.name == "EnterPostproc"
        rv = rvs.get(k)
        raw = sample.trace.get_decision(inst)
        rows.append(
            {
                "index": k,
                "kind": inst.kind.name,
                "inputs": ", ".join(names.get(_key(x), _short(x)) for x in inst.inputs),
                "attrs": ", ".join(_short(a) for a in inst.attrs),
                "outputs": ", ".join(names.get(_key(x), "?") for x in inst.outputs),
                "decision": None if raw is None else _hashable(decision_value(rv, raw) if rv else _builtin(raw)),
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
    value = _builtin(x)
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclasses.dataclass(frozen=True)
class Diff:
    """How two samples differ: the decisions that differ, and a unified diff of their TIR."""

    a: int
    b: int
    decisions: pd.DataFrame  # columns: name, a, b
    tir: str
    labels: tuple[str, str] = ("", "")  # "sample 3", "sample 3 (edited Z.tile_j)"

    def __str__(self) -> str:
        a, b = self.labels if all(self.labels) else (f"sample {self.a}", f"sample {self.b}")
        lines = [f"{a} and {b}: {len(self.decisions)} decision(s) differ"]
        for row in self.decisions.itertuples(index=False):
            lines.append(f"  {row.name}: {row.a} -> {row.b}")
        return "\n".join(lines) + "\n" + self.tir

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def diff(a: Sample, b: Sample, *, context: int = 2) -> Diff:
    """The decisions that differ between two samples and a unified diff of the two TIRs."""
    names = list(dict.fromkeys([*a.decisions, *b.decisions]))
    rows = [
        {"name": n, "a": a.decisions.get(n), "b": b.decisions.get(n)}
        for n in names
        if a.decisions.get(n) != b.decisions.get(n)
    ]
    tir_a = a.tir.splitlines() if a.trace is not None else [f"# no TIR: {a.error}"]
    tir_b = b.tir.splitlines() if b.trace is not None else [f"# no TIR: {b.error}"]
    label_a, label_b = _label(a), _label(b)
    text = "\n".join(difflib.unified_diff(tir_a, tir_b, label_a, label_b, n=context, lineterm=""))
    return Diff(a.id, b.id, pd.DataFrame(rows, columns=["name", "a", "b"]), text, (label_a, label_b))


def _check_kept_tile(rv: Any, extent: int, decision: Any, problems: list[str]) -> None:
    """TVM would silently replace a kept tile that no longer divides its loop: report it instead."""
    factors = [int(x) for x in decision]
    legal = perfect_tilings(extent, rv.n, rv.max_innermost_factor)
    if tuple(factors) not in legal:
        problems.append(
            f"{rv.name}: its value {factors} no longer tiles loop {rv.loop!r} (extent {extent} after this change); "
            f"change it too, to one of {_preview([list(t) for t in legal])}"
        )


def _label(sample: Sample) -> str:
    """``sample 3``, or ``sample 3 (edited Z.tile_j)`` for one made by ``with_decisions`` (it keeps the id)."""
    return f"sample {sample.id}" + (f" (edited {', '.join(sample.edited)})" if sample.edited else "")


def with_decisions(sample: Sample, changes: Mapping[str, Any]) -> Sample:
    """Replay ``sample`` with some decisions replaced; every value is checked against its legal values first.

    TVM itself silently "repairs" an illegal tile (``[3, 21]`` of 128 becomes ``[1, 128]``); here it raises
    ``ValueError`` listing the legal values, and the replayed decisions are read back to make sure.
    """
    from .sampling import finish
    from .space import fresh_schedule

    if sample.trace is None or sample.design_space < 0:
        raise ValueError(f"sample {sample.id} has no trace to edit: {sample.error}")
    if not isinstance(changes, Mapping) or not changes:
        raise ValueError("changes must be a non-empty {decision name: value} mapping")
    space = sample.space
    ds = space.design_spaces[sample.design_space]
    by_name = ds.by_name()
    unknown = [n for n in changes if n not in by_name]
    if unknown:
        raise ValueError(f"unknown decision(s) {unknown}; this sample's decisions are {list(by_name)}")
    by_position = {by_name[n].position: (by_name[n], v) for n, v in changes.items()}
    insts = list(sample.trace.insts)
    index = {inst: k for k, inst in enumerate(insts)}  # TVM objects hash and compare by identity
    sch = fresh_schedule(space, sample.seed)
    problems: list[str] = []

    kept_tiles = {rv.position: rv for rv in ds.random_variables if rv.kind == "tile" and rv.name not in changes}

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
        sample.trace.apply_to_schedule(sch, remove_postproc=True, decision_provider=provider)
    except Exception as err:  # noqa: BLE001 - a legal value can still make a later instruction fail
        if problems:
            raise ValueError("; ".join(problems)) from None
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        raise ValueError(
            f"sample {sample.id} with {dict(changes)} does not replay: {lines[-1] if lines else type(err).__name__}"
        ) from None
    if problems:
        raise ValueError("; ".join(problems))
    edited = finish(
        space, ds, sch, [p.clone() for p in space.postprocs], index=sample.id, seed=sample.seed,
        edited=tuple(dict.fromkeys([*sample.edited, *changes])),
    )
    for name, rv in by_name.items():
        got = edited.decisions[name]
        want = changes.get(name, sample.decisions.get(name))
        want = tuple(int(v) for v in want) if rv.kind == "tile" else want
        if got != want:  # pragma: no cover - guards against TVM repairing a value we let through
            raise ValueError(f"{name}: TVM replaced {want!r} by {got!r} on replay")
    return edited

