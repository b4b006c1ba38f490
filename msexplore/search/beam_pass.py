"""One beam pass over a space's decision slots, coarse to fine; a partial choice is scored by its completions.

A state is a design space and the values of its first slots (``beam_slots``). Scoring a state completes it at
random ``completions`` times, runs the postprocessors (so the cost model sees whole programs, like those it was
trained on) and keeps the best prediction. At each step every state of the beam is expanded by one slot, all the
children are scored with one prediction call, and the ``beam_size`` best are kept, at most ``bucket_cap`` per
structure (the outer tiles and compute locations, Adams2019's diversity) before the beam is filled with the rest.
Beside the beam, dropout descents (a beam of one) walk down the same steps, passing over each child in score
order with probability ``dropout``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from .beam_programs import Completion, Programs
from .beam_slots import DecisionSpace

__all__ = ["State", "PassResult", "beam_pass", "select"]

ROOT = -1  # a state whose design space is not chosen yet


@dataclasses.dataclass(frozen=True)
class State:
    """A design space (``ROOT`` before it is chosen) and the values of its first slots, with its completions."""

    ds: int
    values: tuple = ()
    completions: tuple[Completion, ...] = ()  # valid ones, best predicted first

    @property
    def score(self) -> float:
        return self.completions[0].predicted if self.completions else -math.inf


@dataclasses.dataclass(frozen=True)
class PassResult:
    beam: list[State]
    descents: list[list[Completion]]  # per dropout descent, the programs it scored on its way, best first
    pool: list[Completion]  # every valid program the pass scored, best predicted first, one per program


def beam_pass(
    programs: Programs,
    *,
    beam_size: int,
    completions: int,
    max_children: int,
    bucket_cap: int,
    descents: int,
    dropout: float,
    stop: Callable[[], bool],
) -> PassResult | None:
    """Descend from the root to whole programs; ``None`` if ``stop()`` turned true between two steps."""
    programs.new_pass()
    spaces, rng = programs.spaces, programs.rng
    beam: list[State] = [State(ROOT)]
    walkers: list[tuple[State, tuple]] = [(State(ROOT), ())] * descents  # a descent's state and its trail
    ended: list[tuple[State, tuple]] = []
    while walkers or any(not _complete(s, spaces) for s in beam):
        if stop():
            return None
        parents = {(s.ds, s.values): s for s in beam + [w for w, _ in walkers] if not _complete(s, spaces)}
        children = {key: _children(state, spaces, max_children) for key, state in parents.items()}
        inherited = {
            (c.ds, c.values): _inherited(parents[key], c, spaces) for key, kids in children.items() for c in kids
        }
        draws = {
            child: programs.draw(spaces[child[0]], child[1], completions - len(kept))
            for child, kept in inherited.items()
        }
        done = programs.realize([k for keys in draws.values() for k in keys])
        scored = {
            key: [
                c for c in (_scored(c, inherited[(c.ds, c.values)], draws[(c.ds, c.values)], done) for c in kids)
                if c.completions
            ]
            for key, kids in children.items()
        }
        candidates = [s for s in beam if _complete(s, spaces)]
        for s in beam:
            if not _complete(s, spaces):
                candidates += scored[(s.ds, s.values)]
        beam = select(candidates, beam_size, bucket_cap, spaces)
        moved = []
        for state, trail in walkers:
            nxt = _walk(scored[(state.ds, state.values)], rng, dropout)
            if nxt is None:  # no child has a valid completion: the descent ends where it is
                ended.append((state, trail))
            elif _complete(nxt, spaces):
                ended.append((nxt, trail + nxt.completions))
            else:
                moved.append((nxt, trail + nxt.completions))
        walkers = moved
        if not beam:  # no child of any state has a valid completion
            break
    ended += walkers  # left mid-way when the beam died out: their trails still hold programs
    pool: dict[int, Completion] = {}
    for c in programs.memo.values():
        if c is not None and (c.shash not in pool or c.predicted > pool[c.shash].predicted):
            pool[c.shash] = c
    ranked = sorted(pool.values(), key=lambda c: -c.predicted if not math.isnan(c.predicted) else math.inf)
    trails = [sorted(trail, key=lambda c: -c.predicted) for _, trail in ended]
    return PassResult(beam, trails, ranked)


def select(states: Sequence[State], size: int, cap: int, spaces: Sequence[DecisionSpace]) -> list[State]:
    """The ``size`` best states, at most ``cap`` per structure first, then the best of the rest (Adams2019)."""
    ranked = sorted(states, key=lambda s: -s.score)  # stable: ties keep generation order
    chosen: list[State] = []
    passed: list[State] = []
    per_bucket: dict[tuple, int] = {}
    for state in ranked:
        key = _structure(state, spaces)
        if per_bucket.get(key, 0) < cap:
            chosen.append(state)
            per_bucket[key] = per_bucket.get(key, 0) + 1
            if len(chosen) == size:
                return chosen
        else:
            passed.append(state)
    return chosen + passed[: size - len(chosen)]


def _complete(state: State, spaces: Sequence[DecisionSpace]) -> bool:
    return state.ds != ROOT and len(state.values) == len(spaces[state.ds])


def _structure(state: State, spaces: Sequence[DecisionSpace]) -> tuple:
    return (ROOT,) if state.ds == ROOT else spaces[state.ds].structure(state.values)


def _children(state: State, spaces: Sequence[DecisionSpace], max_children: int) -> list[State]:
    if state.ds == ROOT:
        return [State(k) for k in range(len(spaces))]
    space = spaces[state.ds]
    return [State(state.ds, (*state.values, v)) for v in space.children(state.values, max_children)]


def _inherited(parent: State, child: State, spaces: Sequence[DecisionSpace]) -> list[Completion]:
    """The parent's completions that took the child's value: they are completions of the child too."""
    if parent.ds == ROOT:
        return []
    space, depth = spaces[child.ds], len(parent.values)
    return [c for c in parent.completions if space.agrees(c.key[1], depth, child.values[-1])]


def _scored(
    child: State, kept: Sequence[Completion], keys: Sequence[tuple], done: dict[tuple, Completion | None]
) -> State:
    valid = {c.shash: c for c in [*kept, *(done[k] for k in keys)] if c is not None}
    ranked = tuple(sorted(valid.values(), key=lambda c: -c.predicted))
    return dataclasses.replace(child, completions=ranked)


def _walk(kids: Sequence[State], rng: np.random.Generator, dropout: float) -> State | None:
    """A dropout descent's next state: each child in score order is passed over with probability ``dropout``
    (a random child if all were); ``None`` when no child has a valid completion."""
    if not kids:
        return None
    ranked = sorted(kids, key=lambda s: -s.score)
    for state in ranked:
        if rng.random() >= dropout:
            return state
    return ranked[int(rng.integers(len(ranked)))]
