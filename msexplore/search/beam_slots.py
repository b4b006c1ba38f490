"""The decisions of a design space as slots taken coarse to fine, and random completions of a partial choice.

A design space's sampling instructions are its random variables; the beam search fixes them one *slot* at a time.
A ``SampleCategorical`` or ``SampleComputeLocation`` is one slot; a ``SamplePerfectTile`` of ``n`` factors is
``n - 1`` slots, one factor each (the last factor follows from the others). Slots are taken in phases, coarse to
fine (Adams2019's outer decisions first):

1. the outermost factor of each spatial tile (the parallel granularity),
2. compute locations (which loops are fused),
3. the innermost factor of each spatial tile (vector width, register tile),
4. the middle factors of spatial tiles,
5. reduction tiles,
6. everything else (unroll and other categorical choices),

and within a phase in trace order. Phases 1 and 2 are the *structure* the beam keeps diverse.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tvm_ffi
from tvm.s_tir import Schedule, Trace

from ..random_variables import describe_random_variables, perfect_tilings

__all__ = ["Slot", "Variable", "DecisionSpace", "PHASES", "STRUCTURAL_PHASES", "spread"]

PHASES = ("outer spatial tiles", "compute locations", "inner spatial tiles", "middle spatial tiles",
          "reduction tiles", "other choices")
OUTER, LOCATION, INNER, MIDDLE, REDUCTION, OTHER = range(1, 7)
STRUCTURAL_PHASES = frozenset({OUTER, LOCATION})
_LOOP_ITER_TYPE = "s_tir.schedule.GetLoopIterType"  # "S" spatial, "R" reduction, "O" other


@dataclasses.dataclass(frozen=True)
class Variable:
    """One sampling instruction of a design space, with what the beam needs to choose its value."""

    position: int  # index of the instruction in the design-space trace
    kind: str  # "tile" | "categorical" | "compute_location"
    extent: int = 1  # tiles
    n: int = 1
    max_innermost_factor: int = 0
    spatial: bool = True
    choices: tuple[int, ...] = ()  # categorical: candidate indices; compute_location: the legal locations


@dataclasses.dataclass(frozen=True)
class Slot:
    """One decision the beam takes: a variable, and for a tile the factor it fixes."""

    variable: int  # index into DecisionSpace.variables
    factor: int | None
    phase: int


class DecisionSpace:
    """One design space: its variables, its slots in coarse-to-fine order, children and random completions.

    A partial choice is the tuple of values of the first ``len(values)`` slots; a full decision is one value per
    variable (a tuple of factors for a tile, an int otherwise), which ``trace`` turns into a replayable trace.
    """

    def __init__(self, index: int, mod: Any, design_space: Schedule) -> None:
        self.index = index
        trace = design_space.trace
        self.insts = list(trace.insts)
        spatial = _spatial_tiles(mod, trace)
        self.variables = tuple(_variable(rv, spatial) for rv in describe_random_variables(mod, trace, {}))
        self.slots = tuple(_ordered_slots(self.variables))

    def __len__(self) -> int:
        return len(self.slots)

    def fixed(self, values: Sequence[Any]) -> list[Any]:
        """Per variable: for a tile the ``{factor: value}`` fixed so far, otherwise the value or ``None``."""
        out: list[Any] = [{} if v.kind == "tile" else None for v in self.variables]
        for slot, value in zip(self.slots, values):
            if slot.factor is None:
                out[slot.variable] = value
            else:
                out[slot.variable][slot.factor] = value
        return out

    def children(self, values: Sequence[Any], max_children: int) -> list[Any]:
        """The values tried for the next slot after ``values``: all legal ones, or ``max_children`` spread out."""
        slot = self.slots[len(values)]
        var = self.variables[slot.variable]
        if var.kind == "tile":
            fixed = self.fixed(values)[slot.variable]
            options = sorted({t[slot.factor] for t in _consistent(var, fixed)})
            return spread(options, max_children, log=True)
        return spread(list(var.choices), max_children, log=False)

    def complete(self, values: Sequence[Any], rng: np.random.Generator) -> tuple[Any, ...]:
        """A full decision that agrees with ``values``, the rest drawn uniformly (tiles over their legal tilings)."""
        out = []
        for var, fixed in zip(self.variables, self.fixed(values)):
            if var.kind == "tile":
                options = _consistent(var, fixed)
                out.append(options[int(rng.integers(len(options)))] if options else None)
            elif fixed is not None:
                out.append(fixed)
            else:
                out.append(var.choices[int(rng.integers(len(var.choices)))] if var.choices else None)
        return tuple(out)

    def mutate(self, decisions: Sequence[Any], rng: np.random.Generator) -> tuple[Any, ...]:
        """``decisions`` with one decision (a whole tiling, a categorical choice or a compute location) re-drawn
        among its other legal values: a neighbour of a measured program, as the evolutionary search's mutations."""
        movable = sorted({slot.variable for slot in self.slots})
        if not movable:
            return tuple(decisions)
        k = movable[int(rng.integers(len(movable)))]
        var, current = self.variables[k], decisions[k]
        options = (perfect_tilings(var.extent, var.n, var.max_innermost_factor) if var.kind == "tile"
                   else var.choices)
        others = [v for v in options if v != current]
        out = list(decisions)
        out[k] = others[int(rng.integers(len(others)))]  # a slot's variable has at least two legal values
        return tuple(out)

    def decisions_of(self, trace: Trace) -> tuple[Any, ...] | None:
        """The full decision a measured program's trace took in this design space; ``None`` when the trace is not
        a program of this design space (other instructions before its postprocessors)."""
        insts = list(trace.insts)[: len(self.insts)]
        if len(insts) < len(self.insts) or any(
            a.kind.name != b.kind.name or str(a.attrs) != str(b.attrs) for a, b in zip(insts, self.insts)
        ):
            return None
        out = []
        for var in self.variables:
            decision = trace.decisions.get(insts[var.position])
            if decision is None:
                return None
            out.append(tuple(int(x) for x in decision) if var.kind == "tile" else int(decision))
        return tuple(out)

    def trace(self, decisions: Sequence[Any]) -> Trace:
        """The design space's trace with these decisions (a variable left ``None`` is sampled by TVM)."""
        chosen = {}
        for var, value in zip(self.variables, decisions):
            if value is not None:
                chosen[self.insts[var.position]] = list(value) if var.kind == "tile" else int(value)
        return Trace(self.insts, chosen)

    def agrees(self, decisions: Sequence[Any], depth: int, value: Any) -> bool:
        """Whether a full decision takes ``value`` at slot ``depth`` (a parent's completion that scores a child)."""
        slot = self.slots[depth]
        chosen = decisions[slot.variable]
        return (chosen if slot.factor is None else chosen[slot.factor]) == value

    def structure(self, values: Sequence[Any]) -> tuple:
        """The structural decisions among ``values`` (outer tiles, compute locations): the diversity key."""
        return (self.index, *(v for s, v in zip(self.slots, values) if s.phase in STRUCTURAL_PHASES))


def spread(options: list[Any], limit: int, *, log: bool) -> list[Any]:
    """At most ``limit`` of the sorted ``options``, spread evenly (log-spaced for tile factors), ends included."""
    if len(options) <= limit:
        return list(options)
    if log and options[0] > 0:
        targets = np.geomspace(options[0], options[-1], limit)
        picks = [min(range(len(options)), key=lambda k: abs(math.log(options[k] / t))) for t in targets]
    else:
        picks = [round(k * (len(options) - 1) / (limit - 1)) for k in range(limit)]
    chosen = sorted(set(picks))
    rest = [k for k in range(len(options)) if k not in chosen]
    while len(chosen) < limit and rest:  # two targets fell on one value: fill from the middle of the gaps
        chosen = sorted([*chosen, rest.pop(len(rest) // 2)])
    return [options[k] for k in chosen]


def _consistent(var: Variable, fixed: dict[int, int]) -> tuple[tuple[int, ...], ...]:
    return _tilings_with(var.extent, var.n, var.max_innermost_factor, tuple(sorted(fixed.items())))


@functools.lru_cache(maxsize=16384)
def _tilings_with(extent: int, n: int, limit: int, fixed: tuple[tuple[int, int], ...]) -> tuple[tuple[int, ...], ...]:
    tilings = perfect_tilings(extent, n, limit)
    return tuple(t for t in tilings if all(t[k] == v for k, v in fixed))


def _variable(rv: Any, spatial: dict[int, bool]) -> Variable:
    if rv.kind == "tile":
        return Variable(
            rv.position, "tile", extent=int(rv.extent), n=int(rv.n), max_innermost_factor=int(rv.max_innermost_factor),
            spatial=spatial.get(rv.position, True),
        )
    if rv.kind == "categorical":
        return Variable(rv.position, "categorical", choices=tuple(range(len(rv.candidates))))
    return Variable(rv.position, "compute_location", choices=tuple(int(x) for x in rv.locations))


def _ordered_slots(variables: Sequence[Variable]) -> list[Slot]:
    slots: list[Slot] = []
    for k, var in enumerate(variables):
        if _fixed_by_the_space(var):
            continue
        if var.kind != "tile":
            slots.append(Slot(k, None, LOCATION if var.kind == "compute_location" else OTHER))
        elif var.n >= 2 and not var.spatial:
            slots += [Slot(k, var.n - 1, REDUCTION)] + [Slot(k, f, REDUCTION) for f in range(var.n - 2)]
        elif var.n == 2:
            slots.append(Slot(k, 0, OUTER))
        elif var.n >= 3:
            slots += [Slot(k, 0, OUTER), Slot(k, var.n - 1, INNER)] + [Slot(k, f, MIDDLE) for f in range(1, var.n - 2)]
    ranked = sorted(enumerate(slots), key=lambda pair: (pair[1].phase, pair[0]))  # trace order within a phase
    return [slot for _, slot in ranked]


def _fixed_by_the_space(var: Variable) -> bool:
    """A variable with one legal value (a loop of extent 1) is no decision; completions still fill it in."""
    if var.kind == "tile":
        return len(perfect_tilings(var.extent, var.n, var.max_innermost_factor)) <= 1
    return len(var.choices) <= 1


def _spatial_tiles(mod: Any, trace: Trace) -> dict[int, bool]:
    """Whether each ``SamplePerfectTile`` (by position) tiles a spatial loop, read on a replay of the design space."""
    iter_type = tvm_ffi.get_global_func(_LOOP_ITER_TYPE)
    sch = Schedule(mod, seed=1, debug_mask=0)
    position = {inst: k for k, inst in enumerate(trace.insts)}
    found: dict[int, bool] = {}

    def provider(inst: Any, inputs: Any, attrs: Any, decision: Any) -> Any:
        if inst.kind.name == "SamplePerfectTile":
            try:
                found[position[inst]] = str(iter_type(sch, inputs[0])) != "R"
            except Exception:  # noqa: BLE001 - a loop TVM cannot classify: treat it as spatial
                found[position[inst]] = True
        return decision

    trace.apply_to_schedule(sch, remove_postproc=True, decision_provider=provider)
    return found
