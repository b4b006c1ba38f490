"""The random variables of a design space: stable names, the module and block that made them, their domains.

A design space is a MetaSchedule trace whose sampling instructions (``SamplePerfectTile``,
``SampleCategorical``, ``SampleComputeLocation``) are its random variables. Replaying the trace once, this
module names each one after what it decides (``"C.tile_i"``: the tile sizes of loop ``i`` of block ``C``;
``"root.unroll_explicit"``; ``"C.compute_location"``) so that columns line up across samples.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

from tvm.s_tir import Schedule, Trace

from .common import plain_json

__all__ = ["RandomVariable", "describe_random_variables", "perfect_tilings", "decision_value", "decision_raw"]

KINDS = {"SamplePerfectTile": "tile", "SampleCategorical": "categorical", "SampleComputeLocation": "compute_location"}
ROOT, INLINE = -1, -2


@dataclasses.dataclass(frozen=True)
class RandomVariable:
    """One sampling instruction of a design space."""

    name: str
    position: int  # index of the instruction in the design-space trace (and in every sample's trace)
    kind: str  # "tile" | "categorical" | "compute_location"
    module: str
    block: str
    loop: str | None = None  # tiles: the loop being tiled
    extent: int | None = None  # tiles: its extent in this design space
    n: int | None = None  # tiles: number of factors
    max_innermost_factor: int | None = None
    candidates: tuple | None = None  # categorical: the values (decisions are indices into them)
    probs: tuple | None = None
    locations: tuple | None = None  # compute_location: the legal decisions (-1 root, -2 inline, k = k-th loop)

    @property
    def domain(self) -> list:
        """The legal values of this variable in this design space."""
        if self.kind == "tile":
            return [list(t) for t in perfect_tilings(self.extent, self.n, self.max_innermost_factor)]
        if self.kind == "categorical":
            return list(self.candidates)
        return list(self.locations)

    @property
    def domain_size(self) -> int:
        if self.kind == "tile":
            return len(perfect_tilings(self.extent, self.n, self.max_innermost_factor))
        return len(self.candidates if self.kind == "categorical" else self.locations)


@functools.lru_cache(maxsize=4096)
def perfect_tilings(extent: int, n: int, max_innermost_factor: int | None) -> tuple[tuple[int, ...], ...]:
    """Every ordered way to write ``extent`` as a product of ``n`` factors, innermost ≤ the limit (if > 0)."""
    limit = max_innermost_factor if max_innermost_factor and max_innermost_factor > 0 else extent
    out: list[tuple[int, ...]] = []

    def rec(rest: int, prefix: tuple[int, ...]) -> None:
        if len(prefix) == n - 1:
            if rest <= limit:
                out.append(prefix + (rest,))
            return
        for d in _divisors(rest):
            rec(rest // d, prefix + (d,))

    if n >= 1 and extent >= 1:
        rec(extent, ())
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _divisors(x: int) -> tuple[int, ...]:
    small = [d for d in range(1, math.isqrt(x) + 1) if x % d == 0]
    return tuple(sorted(set(small + [x // d for d in small])))


def decision_value(rv: RandomVariable, raw: Any) -> Any:
    """TVM's decision -> what users read: tile factors as a list, the chosen categorical value, a location."""
    if raw is None:
        return None
    if rv.kind == "tile":
        return [int(x) for x in raw]
    if rv.kind == "categorical":
        return rv.candidates[int(raw)]
    return int(raw)


def decision_raw(rv: RandomVariable, value: Any) -> Any:
    """What users write -> TVM's decision, validated against the legal values (raises ValueError)."""
    if rv.kind == "tile":
        try:
            factors = [int(v) for v in value]
        except TypeError:
            raise ValueError(f"{rv.name}: a tile decision is a list of {rv.n} factors, got {value!r}") from None
        legal = perfect_tilings(rv.extent, rv.n, rv.max_innermost_factor)
        if tuple(factors) not in legal:
            raise ValueError(
                f"{rv.name}: {factors} is not a legal tiling of loop {rv.loop!r} (extent {rv.extent}, {rv.n} factors"
                f", innermost <= {rv.max_innermost_factor}); legal values: {_preview([list(t) for t in legal])}"
            )
        return factors
    if rv.kind == "categorical":
        for index, candidate in enumerate(rv.candidates):
            if candidate == value:
                return index
        raise ValueError(f"{rv.name}: {value!r} is not one of the candidates {list(rv.candidates)}")
    if value not in rv.locations:
        raise ValueError(
            f"{rv.name}: {value!r} is not a legal compute location; legal: {list(rv.locations)} "
            "(-1 = root, -2 = inline, k = under the k-th loop)"
        )
    return int(value)


def _preview(values: Sequence[Any], limit: int = 24) -> str:
    if len(values) <= limit:
        return str(list(values))
    return f"{list(values[:limit])[:-1]} ... ({len(values)} in all)"


def describe_random_variables(
    mod: Any, trace: Trace, origin: dict[Any, tuple[str, str]]
) -> list[RandomVariable]:
    """Replay a design space once and describe each of its random variables.

    ``trace`` should carry the design space's own decisions: the extent of a loop split by an earlier sampled
    tile depends on that tile, and replaying with those decisions (rather than fresh random ones) makes the
    description the same every time the space is built.
    """
    sch = Schedule(mod, seed=1, debug_mask=0)
    insts = list(trace.insts)
    position = {inst: k for k, inst in enumerate(insts)}  # TVM objects hash and compare by identity
    found: list[dict[str, Any]] = []

    def provider(inst: Any, inputs: Any, attrs: Any, decision: Any) -> Any:
        kind = KINDS.get(inst.kind.name)
        if kind is None:
            return decision
        pos = position[inst]
        module, block = origin.get(insts[pos], ("postproc", "?"))
        info: dict[str, Any] = {"position": pos, "kind": kind, "module": module, "block": block}
        if kind == "tile":
            loop = sch.get(inputs[0])
            if block == _root_name(sch, inputs[0]):  # a program-scope module: name it after the block it tiles
                inner = sch.get_child_blocks(inputs[0])  # (the first one where a loop nest holds several)
                if inner:
                    info["block"] = sch.get(inner[0]).name_hint
            info.update(
                loop=loop.loop_var.name,
                extent=int(loop.extent),
                n=int(attrs[0]),
                max_innermost_factor=int(attrs[1]),
            )
        elif kind == "categorical":
            info.update(
                candidates=tuple(plain_json(c) for c in attrs[0]),
                probs=tuple(float(p) for p in plain_json(attrs[1])),
                label=_consumer_label(insts, pos),
            )
        else:
            info.update(block=sch.get(inputs[0]).name_hint, locations=_legal_locations(sch, inputs[0]))
        found.append(info)
        return decision

    trace.apply_to_schedule(sch, remove_postproc=True, decision_provider=provider)
    return _name(found)


def _consumer_label(insts: list, pos: int) -> str:
    out = insts[pos].outputs[0]
    for inst in insts[pos + 1 :]:
        if any(getattr(x, "same_as", None) and x.same_as(out) for x in inst.inputs):
            if inst.kind.name == "Annotate":
                return str(inst.attrs[0]).rsplit(".", 1)[-1]
            return f"{inst.kind.name.lower()}_arg"
    return "categorical"


def _legal_locations(sch: Schedule, block_rv: Any) -> tuple[int, ...]:
    """Probe which compute-location decisions TVM keeps unchanged (it silently moves illegal ones)."""
    n_loops = len(_all_loops(sch, block_rv))
    legal = []
    for d in range(INLINE, n_loops):
        probe = sch.copy()
        probe.sample_compute_location(block_rv, decision=d)
        t = probe.trace
        if int(t.get_decision(t.insts[-1])) == d:
            legal.append(d)
    return tuple(legal)


def _root_name(sch: Schedule, rv: Any) -> str:
    """The name of the root block of the function holding a block or loop."""
    sref = sch.get_sref(rv)
    while sref.parent is not None:
        sref = sref.parent
    return sref.stmt.name_hint


def _all_loops(sch: Schedule, block_rv: Any) -> list:
    """Every loop of the function holding ``block_rv`` (TVM 0.27 has no Python TIR visitor)."""
    loops: list = []
    seen: set = set()
    pending = list(sch.get_child_blocks(sch.get_sblock(_root_name(sch, block_rv))))
    while pending:
        block = pending.pop(0)
        for loop in sch.get_loops(block):
            sref = sch.get_sref(loop)  # TVM objects hash and compare by identity
            if sref not in seen:
                seen.add(sref)
                loops.append(loop)
        pending.extend(sch.get_child_blocks(block))
    return loops


def _name(found: list[dict[str, Any]]) -> list[RandomVariable]:
    out: list[RandomVariable] = []
    used: dict[str, int] = {}
    for info in found:
        if info["kind"] == "tile":
            base = f"{info['block']}.tile_{info['loop']}"
        elif info["kind"] == "categorical":
            base = f"{info['block']}.{info.pop('label')}"
        else:
            base = f"{info['block']}.compute_location"
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base}#{used[base]}"
        out.append(RandomVariable(name=name, **info))
    return out
