"""Steering: choose a schedule by hand, one decision at a time, coarse to fine, each value scored by the cost model.

Halide's ``HL_CYOS`` ("choose your own schedule") over a MetaSchedule space. Decisions come in the beam search's
order (``beam_slots``: the design space, outer spatial tiles, compute locations, inner, middle and reduction tiles,
then unroll and the other choices). There is always a *current program*, a whole postprocessed schedule that takes
every value chosen so far. At each step every legal value of the next decision is an ``Option``: the program that
choosing it leads to (the current one with that decision changed, its other decisions kept where they still fit),
its TIR and the diff to the current TIR, and the cost model's scores of that program and of a few random
completions, scored as the beam scores a partial choice (whole programs, postprocessed; the best and the spread).

>>> steer = Steering(space, cost_model=run.cost_model)   # None: a fresh XGB model, "untrained" until it measures
>>> steer.slot, steer.options()          # the next decision and its values, as plain data
>>> steer.choose(16); steer.back()       # take a value; undo it (the previous program, exactly)
>>> steer.measure()                      # build and run the current program (mx.measure); the model learns from it
>>> steer.finish(trials=4)               # a beam pass over the remaining decisions; its best programs measured
>>> steer.export("out/steered")          # a kernel bundle, as a search candidate exports

"Finish from here" runs one beam pass (``beam_pass``) restricted to the path so far (``PrefixedDecisionSpace``),
measures its ``trials`` best-predicted programs and makes the fastest the end of the path. With an untrained model it
measures random completions of the path instead, as the beam search does while its model is not informative.
No widget here: ``mx.ui.ChooseSchedule`` draws a ``Steering`` and calls these methods on a thread.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from tvm.s_tir import Schedule, Trace
from tvm.s_tir import meta_schedule as ms

from ..common import check_non_negative_int, check_positive_int
from ..random_variables import perfect_tilings
from .beam_pass import beam_pass
from .beam_prefix import PrefixedDecisionSpace, slot_value
from .beam_programs import BeamStats, Completion, Programs
from .beam_slots import PHASES, DecisionSpace

__all__ = ["Steering", "SlotInfo", "Option", "Choice", "Finished", "FinishedProgram"]

DESIGN_SPACE = "design space"
_ALL = 1 << 30  # "every legal value" for DecisionSpace.children
_BUCKET_CAP = 2  # finish's beam: states per structure (the beam search's default)


@dataclasses.dataclass(frozen=True)
class SlotInfo:
    """The decision a step takes: ``index`` of ``total`` along the path, its name, kind, phase and a sentence."""

    index: int  # 0-based
    total: int  # decisions on a whole path (the longest design space's while none is chosen)
    name: str  # "design space", "Z.tile_i[0]" (a tile's factor), "root.unroll_explicit", ...
    kind: str  # "design_space" | "tile" | "categorical" | "compute_location"
    phase: str  # "design space" or one of beam_slots.PHASES
    about: str


@dataclasses.dataclass(frozen=True)
class Option:
    """One value of the next decision and what choosing it leads to."""

    value: Any  # what choose() takes: a tile factor, a categorical's candidate, a location, a design space's index
    label: str
    score: float | None  # the cost model's score of the program choosing it leads to (None: untrained or invalid)
    scores: tuple[float, ...]  # scores of its valid programs (that one and random completions), best first
    valid: int  # distinct valid programs among those drawn
    drawn: int
    tir: str  # the TIR of the program choosing it leads to ("" when none is valid)
    diff: str  # unified diff from the current program's TIR to that one ("" when the same)
    current: bool  # the current program takes this value
    rejection: str | None = None  # why no program was valid, when none was

    @property
    def best(self) -> float | None:
        return self.scores[0] if self.scores else None

    @property
    def worst(self) -> float | None:
        return self.scores[-1] if self.scores else None


@dataclasses.dataclass(frozen=True)
class Choice:
    """A decision taken on the path: the slot, the value and its label."""

    slot: SlotInfo
    value: Any
    label: str


@dataclasses.dataclass(frozen=True)
class FinishedProgram:
    predicted: float | None
    measurement: Any  # mx.Measurement
    decisions: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Finished:
    """What ``finish`` did: the path it started from, how it completed it, the programs measured, the fastest."""

    prefix: tuple[Choice, ...]
    how: str  # "beam pass" | "random completions"
    programs: tuple[FinishedProgram, ...]
    best: int | None  # index of the fastest valid program (now the end of the path); None if none ran

    @property
    def best_latency_s(self) -> float | None:
        return None if self.best is None else self.programs[self.best].measurement.latency_s


@dataclasses.dataclass(frozen=True)
class _State:
    ds: int | None  # None: the design space is not chosen yet
    values: tuple  # the values of the design space's first slots (raw: categorical indices)
    program: Completion  # the current program, a completion of ``values``
    choice: Choice | None  # how the path got here


class Steering:
    """A path through a space's decisions, chosen by hand, with the cost model's view of every value.

    Parameters
    ----------
    space
        An ``mx.Space``.
    cost_model
        ``run.cost_model`` (a tvm ``CostModel``), a fitted ``mx.CostModel`` (its ``tvm_model``) or ``None`` for a
        fresh XGB model. A model that predicts noise (TVM's XGB model before it has trained) is *untrained*:
        options then have no scores.
    completions
        Random completions scored per value (beside the program the value leads to).
    max_children
        At most this many values per decision (tile factors log-spaced); ``None``: every legal value.
    seed
        Seed of the random completions: the same seed and the same choices show the same programs.
    num_threads
        Threads that build and featurize programs (default: the cores, at most 4).
    learn
        Train the cost model on every measurement made here, as a search does (this very object: save an
        ``mx.CostModel`` first to keep it as it is). An untrained model becomes trained this way.
    """

    def __init__(
        self,
        space: Any,
        cost_model: Any = None,
        *,
        completions: int = 4,
        max_children: int | None = None,
        seed: int = 0,
        num_threads: int | None = None,
        learn: bool = True,
    ) -> None:
        from ..space import Space
        from ..target import load_tensor_intrinsics

        if not isinstance(space, Space):
            raise TypeError(f"Steering steers an mx.Space, got {type(space).__name__}")
        self.completions = check_positive_int("completions", completions)
        self.max_children = check_positive_int("max_children", max_children, or_none=True)
        seed = check_non_negative_int("seed", seed)
        threads = check_positive_int("num_threads", num_threads, or_none=True) or min(4, os.cpu_count() or 1)
        space.require_design_spaces()
        self.space = space
        self.learn = bool(learn)
        self.cost_model = _resolve_model(cost_model, threads)
        load_tensor_intrinsics(space.target)
        self._context = ms.TuneContext(
            mod=space.workload.mod, target=space.target, space_generator=space.space_generator(),
            task_name=space.workload.name, rand_state=space.seed, num_threads=threads,
        )
        design_spaces = self._context.generate_design_space()
        self._postprocs = list(self._context.space_generator.postprocs)
        self.spaces = tuple(DecisionSpace(k, self._context.mod, ds) for k, ds in enumerate(design_spaces))
        self._names = [
            {rv.position: rv for rv in ds.random_variables} for ds in space.design_spaces
        ] if len(space.design_spaces) == len(self.spaces) else [{} for _ in self.spaces]
        self._rng = np.random.default_rng(seed)
        self._stats = BeamStats()
        self._programs = Programs(self.spaces, self._context, self._postprocs, self.cost_model, self._rng, self._stats)
        self._version = 0  # bumped whenever the cost model learns: scores and options are computed again
        self._trained: bool | None = None
        self._scores: dict[tuple, float] = {}  # program key -> score, this version
        self._draws: dict[tuple, list[tuple]] = {}  # (ds, values) -> keys of its random completions
        self._options: dict[tuple, dict[Any, tuple[Option, Completion | None]]] = {}  # per state and version
        self._tirs: dict[int, str] = {}
        self.measurements: dict[int, Any] = {}  # structural hash -> mx.Measurement
        self._stack: list[_State] = [self._first_state()]

    # ---- where the path stands ----
    @property
    def slot(self) -> SlotInfo | None:
        """The next decision (``None`` once every decision is taken)."""
        return self._slot_info(self._state)

    @property
    def done(self) -> bool:
        return self.slot is None

    @property
    def path(self) -> tuple[Choice, ...]:
        """The decisions taken so far, in order."""
        return tuple(s.choice for s in self._stack[1:])

    @property
    def trained(self) -> bool:
        """Whether the cost model ranks programs (it scores one program twice alike; an untrained XGB does not)."""
        if self._trained is None:
            probe = self._state.program.candidate if self._stack else None
            self._trained = probe is not None and _predicts_alike(self._programs, probe)
        return self._trained

    # ---- the current program ----
    @property
    def schedule(self) -> Schedule:
        """The current program: every value chosen so far, the rest completed (postprocessed)."""
        return self._state.program.candidate.sch

    @property
    def trace(self) -> Trace:
        return self.schedule.trace

    @property
    def tir(self) -> str:
        return self._tir(self._state.program)

    @property
    def decisions(self) -> dict[str, Any]:
        """The current program's decisions by name, as a search's records show them."""
        from ..matching import match_trace

        return match_trace(self.space, self.trace)[1]

    @property
    def design_space(self) -> int:
        return self._state.program.key[0]

    @property
    def predicted(self) -> float | None:
        """The cost model's score of the current program (None while it is untrained)."""
        return self._score(self._state.program)

    @property
    def measurement(self) -> Any:
        """The current program's measurement, if it was measured here."""
        return self.measurements.get(self._state.program.shash)

    # ---- steps ----
    def options(self) -> list[Option]:
        """The values of the next decision (every legal one, or ``max_children`` spread out), in value order."""
        state = self._state
        if self._slot_info(state) is None:
            return []
        return [option for option, _ in self._options_of(state).values()]

    def accepted(self) -> list[Any]:
        """What ``choose`` accepts now: every legal value of the next decision (``[]`` once the path is complete)."""
        state = self._state
        return [self._value(state, raw) for raw in self._legal(state)] if self._slot_info(state) else []

    def choose(self, value: Any) -> Option:
        """Take ``value`` for the next decision (a value or an option's label); returns its ``Option``.

        The current program becomes the program the option leads to. ``ValueError`` names the accepted values.
        """
        state = self._state
        slot = self._slot_info(state)
        if slot is None:
            raise ValueError("choose: every decision is taken; back() to change one, or measure() / export()")
        legal = self._legal(state)
        raw = self._raw(state, value, legal)
        if raw is _NOT_LEGAL:
            raise ValueError(
                f"choose: {value!r} is not a legal value of {slot.name} ({slot.about}); accepted: {self.accepted()}"
            )
        offered = self._options_of(state)
        option, lead = offered[raw] if raw in offered else self._compute_options(state, [raw])[raw]
        if lead is None:
            raise ValueError(
                f"choose: no valid program has {slot.name} = {option.label} (none of {option.drawn} tried: "
                f"{option.rejection}); choose another value: {self.accepted()}"
            )
        ds, values = (raw, ()) if state.ds is None else (state.ds, (*state.values, raw))
        self._stack.append(_State(ds, values, lead, Choice(slot, option.value, option.label)))
        return option

    def back(self) -> Steering:
        """Undo the last decision: the path, the options and the current program are those before it, exactly."""
        if len(self._stack) == 1:
            raise ValueError("back: no decision has been taken yet")
        self._stack.pop()
        return self

    # ---- measuring ----
    def measure(self) -> Any:
        """Build and run the current program (``mx.measure``); returns its ``mx.Measurement``."""
        return self._measure([self._state.program])[0]

    def finish(self, trials: int = 4, *, beam_size: int = 4, completions: int = 2, max_children: int = 5) -> Finished:
        """Hand the remaining decisions to the beam: one beam pass restricted to the path so far, its ``trials``
        best-predicted programs measured (random completions of the path while the model is untrained); the fastest
        becomes the end of the path (``back()`` walks back from it). Programs measured here before are skipped."""
        trials = check_positive_int("trials", trials)
        for name, value in (("beam_size", beam_size), ("completions", completions), ("max_children", max_children)):
            check_positive_int(name, value)
        state, prefix = self._state, self.path
        if self.done:
            predicted = self.predicted  # before the model learns from the measurement
            measurement = self.measure()
            program = FinishedProgram(predicted, measurement, self.decisions)
            return Finished(prefix, "the path was complete", (program,), 0 if measurement.ok else None)
        picks, how = self._completions_to_measure(state, trials, beam_size, completions, max(2, max_children))
        predicted = [None if math.isnan(p.predicted) else p.predicted for p in picks]  # before the model learns
        results = self._measure(picks)
        programs = tuple(
            FinishedProgram(score, m, self._decisions_of(p)) for p, score, m in zip(picks, predicted, results)
        )
        ok = [(m.latency_s, k) for k, m in enumerate(results) if m.ok]
        best = min(ok)[1] if ok else None
        if best is not None:
            self._extend_to(picks[best])
        return Finished(prefix, how, programs, best)

    def export(self, path: str | os.PathLike, *, overwrite: bool = False) -> Any:
        """Write the current program as a kernel bundle (``export_kernel``: library, TVMScript, trace, manifest)."""
        from ..export import export_kernel
        from ..traces import trace_to_json

        sch, measurement = self.schedule, self.measurement
        return export_kernel(
            path, mod=sch.mod, workload=self.space.workload, target=self.space.target,
            trace_python="\n".join(sch.trace.as_python()), trace_json=trace_to_json(sch.trace),
            latency_s=measurement.latency_s if measurement is not None and measurement.ok else None,
            overwrite=overwrite,
        )

    def close(self) -> None:
        """Stop the threads that build programs (later steps build theirs on the calling thread)."""
        self._programs.close()

    def __repr__(self) -> str:
        slot = self.slot
        where = "every decision taken" if slot is None else f"step {slot.index + 1}/{slot.total}: {slot.name}"
        model = "trained" if self.trained else "untrained"
        return f"Steering({self.space.workload.name}, {where}, {len(self.path)} chosen, cost model {model})"

    # ---- states and options ----
    @property
    def _state(self) -> _State:
        return self._stack[-1]

    def _first_state(self) -> _State:
        ds = None if len(self.spaces) > 1 else 0
        keys = [k for d in range(len(self.spaces)) for k in self._draw(d, ())] if ds is None else self._draw(0, ())
        valid = [p for p in self._programs.realize(keys, predict=False).values() if p is not None]
        if not valid:
            raise ValueError(
                f"Steering: none of {len(keys)} random programs of the space is valid (last: "
                f"{self._stats.last_rejection}); space.sample(...) shows each sample's error"
            )
        self._trained = _predicts_alike(self._programs, valid[0].candidate)
        return _State(ds, (), self._lead(self._programs_of(keys)), None)

    def _options_of(self, state: _State) -> dict[Any, tuple[Option, Completion | None]]:
        """Raw value -> (its option, the program choosing it leads to), for the values offered, in value order."""
        key = (state.ds, state.values, self._version)
        if key not in self._options:
            offered = self._legal(state)
            if state.ds is not None and self.max_children is not None:
                offered = self.spaces[state.ds].children(state.values, self.max_children)
            self._options[key] = self._compute_options(state, offered)
        return self._options[key]

    def _compute_options(self, state: _State, raws: Sequence[Any]) -> dict[Any, tuple[Option, Completion | None]]:
        plans = []
        for raw in raws:
            if state.ds is None:
                near, drawn = None, self._draw(raw, ())
            else:
                near, drawn = self._neighbour(state, raw), self._draw(state.ds, (*state.values, raw))
            plans.append((raw, near, list(dict.fromkeys([near, *drawn] if near else drawn))))
        every = list(dict.fromkeys(k for _, _, keys in plans for k in keys))
        built = dict(zip(every, self._programs_of(every)))
        out = {}
        for raw, near, keys in plans:
            valid = list({p.shash: p for p in (built[k] for k in keys) if p is not None}.values())
            lead = built[near] if near is not None and built[near] is not None else self._lead(valid)
            out[raw] = (self._option(state, raw, lead, valid, len(keys)), lead)
        return out

    def _option(self, state: _State, raw: Any, lead: Completion | None, valid: list[Completion], drawn: int) -> Option:
        current = state.program
        takes = current.key[0] == raw if state.ds is None else self.spaces[state.ds].agrees(
            current.key[1], len(state.values), raw
        )
        label = self._label(state, raw)
        scores = tuple(sorted((s for s in (self._score(p) for p in valid) if s is not None), reverse=True))
        tir = "" if lead is None else self._tir(lead)
        diff = ""
        if lead is not None and lead.shash != current.shash:
            slot = self._slot_info(state)
            after = label if slot.kind == "design_space" else f"{slot.name} = {label}"
            diff = "\n".join(difflib.unified_diff(
                self._tir(current).splitlines(), tir.splitlines(), "current", after, n=2, lineterm="",
            ))
        rejection = None if valid else (self._stats.last_rejection or "rejected")
        return Option(self._value(state, raw), label, None if lead is None else self._score(lead), scores,
                      len(valid), drawn, tir, diff, takes, rejection)

    def _neighbour(self, state: _State, raw: Any) -> tuple | None:
        """The current program's key with the next slot set to ``raw`` and its other decisions kept where they fit
        (a tile's unfixed factors change as little as the product allows): the smallest change that takes ``raw``."""
        space = self.spaces[state.ds]
        slot = space.slots[len(state.values)]
        var = space.variables[slot.variable]
        decisions = list(state.program.key[1])
        if var.kind == "tile":
            fixed = space.fixed((*state.values, raw))[slot.variable]
            fitting = [t for t in perfect_tilings(var.extent, var.n, var.max_innermost_factor)
                       if all(t[f] == v for f, v in fixed.items())]
            if not fitting:
                return None
            now = decisions[slot.variable]
            decisions[slot.variable] = max(fitting, key=lambda t: sum(a == b for a, b in zip(t, now)))
        else:
            decisions[slot.variable] = raw
        return (state.ds, tuple(decisions))

    def _lead(self, valid: Sequence[Completion | None]) -> Completion | None:
        """The program to show for a choice without a neighbour: the best scored (the first valid when untrained)."""
        valid = [p for p in valid if p is not None]
        if not valid:
            return None
        if not self.trained:
            return valid[0]
        return max(valid, key=lambda p: self._scores.get(p.key, -math.inf))

    def _draw(self, ds: int, values: tuple) -> list[tuple]:
        """Keys of the random completions of ``values`` (drawn once per prefix, so going back is exact)."""
        if (ds, values) not in self._draws:
            self._draws[(ds, values)] = self._programs.draw(self.spaces[ds], values, self.completions)
        return self._draws[(ds, values)]

    def _programs_of(self, keys: Sequence[tuple]) -> list[Completion | None]:
        """The programs of ``keys`` (built once), scored by the model as it is now (when trained)."""
        built = self._programs.realize(keys, predict=False)
        if self.trained:
            todo = [k for k in dict.fromkeys(keys) if built[k] is not None and k not in self._scores]
            if todo:
                scores = self._programs.predict([built[k].candidate for k in todo])
                self._scores.update(zip(todo, (float(s) for s in scores)))
        return [built[k] for k in keys]

    def _score(self, program: Completion) -> float | None:
        if not self.trained:
            return None
        if program.key not in self._scores:
            self._programs_of([program.key])
        return self._scores.get(program.key)

    def _tir(self, program: Completion) -> str:
        if program.shash not in self._tirs:
            self._tirs[program.shash] = program.candidate.sch.mod.script()
        return self._tirs[program.shash]

    def _decisions_of(self, program: Completion) -> dict[str, Any]:
        from ..matching import match_trace

        return match_trace(self.space, program.candidate.sch.trace)[1]

    # ---- values, labels, slots ----
    def _legal(self, state: _State) -> list[Any]:
        if state.ds is None:
            return list(range(len(self.spaces)))
        return self.spaces[state.ds].children(state.values, _ALL)

    def _rv(self, ds: int, variable: int) -> Any:
        return self._names[ds].get(self.spaces[ds].variables[variable].position)

    def _next_variable(self, state: _State) -> tuple[Any, Any]:
        space = self.spaces[state.ds]
        slot = space.slots[len(state.values)]
        return space.variables[slot.variable], self._rv(state.ds, slot.variable)

    def _value(self, state: _State, raw: Any) -> Any:
        """A raw slot value as users write it: a categorical's candidate rather than its index."""
        if state.ds is None:
            return raw
        var, rv = self._next_variable(state)
        return rv.candidates[raw] if var.kind == "categorical" and rv is not None else raw

    def _raw(self, state: _State, value: Any, legal: Sequence[Any]) -> Any:
        """The raw slot value for ``value`` (a value or an option's label) among ``legal``, or ``_NOT_LEGAL``."""
        for raw in legal:
            if _same(self._value(state, raw), value) or (isinstance(value, str) and value == self._label(state, raw)):
                return raw
        return _NOT_LEGAL

    def _label(self, state: _State, raw: Any) -> str:
        if state.ds is None:
            return f"{DESIGN_SPACE} {raw}"
        var, _ = self._next_variable(state)
        if var.kind == "compute_location":
            return {-1: "root", -2: "inline"}.get(int(raw), f"loop {raw}")
        return str(self._value(state, raw))

    def _slot_info(self, state: _State) -> SlotInfo | None:
        offset = 1 if len(self.spaces) > 1 else 0
        if state.ds is None:
            total = offset + max(len(s) for s in self.spaces)
            about = f"which of the space's {len(self.spaces)} design spaces (program structures) to start from"
            return SlotInfo(0, total, DESIGN_SPACE, "design_space", DESIGN_SPACE, about)
        space, depth = self.spaces[state.ds], len(state.values)
        if depth == len(space):
            return None
        slot = space.slots[depth]
        var, rv = space.variables[slot.variable], self._rv(state.ds, slot.variable)
        name = rv.name if rv is not None else f"{var.kind}@{var.position}"
        if var.kind == "tile":
            name = f"{name}[{slot.factor}]"
            which = ("outermost" if slot.factor == 0 else "innermost" if slot.factor == var.n - 1
                     else f"{_ORDINALS.get(slot.factor, f'#{slot.factor + 1}')} factor from the outside")
            loop = f"loop {rv.loop}" if rv is not None and rv.loop else "its loop"
            about = f"the {which} of the {var.n} factors of {loop} (extent {var.extent})"
        elif var.kind == "categorical":
            about = f"one of {list(rv.candidates) if rv is not None else list(var.choices)}"
        else:
            block = f"block {rv.block}" if rv is not None else "the block"
            about = f"where {block} is computed: root, inline, or under a loop of its consumer"
        return SlotInfo(offset + depth, offset + len(space), name, var.kind, PHASES[slot.phase - 1], about)

    # ---- measuring and finishing ----
    def _measure(self, programs: Sequence[Completion]) -> list[Any]:
        from ..measure import measure

        results = measure([p.candidate.sch for p in programs], self.space.workload, target=self.space.target)
        for program, result in zip(programs, results):
            self.measurements[program.shash] = result
        if self.learn:
            self._learn(programs, results)
        return results

    def _learn(self, programs: Sequence[Completion], results: Sequence[Any]) -> None:
        """Train the cost model on measurements, as a search does after each batch (failures as ~zero throughput)."""
        runner_results = [
            ms.runner.RunnerResult(run_secs=list(m.latencies), error_msg=None) if m.ok
            else ms.runner.RunnerResult(run_secs=None, error_msg=m.build_error or m.run_error or "failed")
            for m in results
        ]
        self.cost_model.update(self._context, [p.candidate for p in programs], runner_results)
        self._version += 1
        self._trained = None
        self._scores = {}

    def _completions_to_measure(
        self, state: _State, trials: int, beam_size: int, completions: int, max_children: int
    ) -> tuple[list[Completion], str]:
        """Up to ``trials`` programs that complete the path and were not measured here: a beam pass's best, or
        random completions while the model is untrained."""
        spaces = list(self.spaces) if state.ds is None else [PrefixedDecisionSpace(self.spaces[state.ds], state.values)]
        programs = Programs(spaces, self._context, self._postprocs, self.cost_model, self._rng, self._stats)
        try:
            if self.trained:
                result = beam_pass(programs, beam_size=beam_size, completions=completions, max_children=max_children,
                                   bucket_cap=_BUCKET_CAP, descents=0, dropout=0.0, stop=_never)
                ranked, how = result.pool, "beam pass"
            else:
                drawn = programs.realize(programs.random_keys(4 * trials), predict=False).values()
                ranked, how = [p for p in drawn if p is not None], "random completions"
        finally:
            programs.close()
        picks: dict[int, Completion] = {}
        for p in ranked:
            if p.shash not in self.measurements and p.shash not in picks:
                ds = p.key[0] if state.ds is None else state.ds  # a prefixed space is index 0 of its own list
                picks[p.shash] = dataclasses.replace(p, key=(ds, p.key[1]))
                if len(picks) == trials:
                    break
        if not picks:
            raise RuntimeError(
                f"finish: no valid program that completes this path is left to measure (last rejection: "
                f"{self._stats.last_rejection}); back() and choose other values"
            )
        return list(picks.values()), how

    def _extend_to(self, program: Completion) -> None:
        """Push a state for each decision left, each taking ``program``'s value, with ``program`` as current."""
        state = self._state
        if state.ds is None:
            ds = program.key[0]
            self._stack.append(_State(ds, (), program, Choice(self._slot_info(state), ds, self._label(state, ds))))
            state = self._state
        space = self.spaces[state.ds]
        for depth in range(len(state.values), len(space)):
            raw = slot_value(space, program.key[1], depth)
            choice = Choice(self._slot_info(state), self._value(state, raw), self._label(state, raw))
            self._stack.append(_State(state.ds, (*state.values, raw), program, choice))
            state = self._state


_NOT_LEGAL = object()
_ORDINALS = {1: "second", 2: "third", 3: "fourth", 4: "fifth"}


def _never() -> bool:
    return False


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and not isinstance(b, bool)
    except Exception:  # noqa: BLE001 - an array or an odd object compared with an int: not the same value
        return False


def _predicts_alike(programs: Programs, candidate: Any) -> bool:
    """Whether the cost model scores one program twice alike (TVM's XGB model returns noise until it has trained)."""
    first, second = programs.predict([candidate, candidate])
    return bool(first == second)


def _resolve_model(cost_model: Any, threads: int) -> Any:
    """The tvm ``CostModel`` to score with: ``cost_model`` itself, an ``mx.CostModel``'s, or a fresh XGB model."""
    from ..cost_model import CostModel
    from .driver import make_cost_model

    if cost_model is None:
        return make_cost_model("xgb", 1, threads)  # trains from its first measurement on
    if isinstance(cost_model, CostModel):
        return cost_model.tvm_model
    if isinstance(cost_model, ms.cost_model.CostModel):
        return cost_model
    raise TypeError(
        f"cost_model must be run.cost_model (a tvm CostModel), a fitted mx.CostModel or None (a fresh XGB model), "
        f"got {type(cost_model).__name__}"
    )
