"""Which lines of a scheduled program each trace instruction produced or touched.

``instruction_lines(sample)`` maps the index of every instruction of ``sample.trace`` to 1-based line numbers of
``sample.tir``. An instruction's loop and block random variables are looked up in the *final* schedule; those
that still exist there (a loop that was split and then fused away does not) are located in the printed
TVMScript by asking TVM to underline them (``mod.script(obj_to_underline=[node])`` prints ``^^^`` under the
node's first line). Loops that the printer folds into one ``T.grid`` line are not underlined; they are found by
their loop variable's name instead. A sampling instruction (``sample_perfect_tile``, ``sample_categorical``...)
has only expression outputs: it maps to the lines of the instructions that use its value (the ``split`` its
factors feed). Each line is the node's first line: a loop's ``for`` line, a block's ``with T.sblock`` line.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from tvm.s_tir import Schedule
from tvm.tirx import For

__all__ = ["instruction_lines"]

_RV_TYPES = ("LoopRV", "SBlockRV")
_CACHE: weakref.WeakKeyDictionary[Any, dict[int, tuple[int, ...]]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def instruction_lines(sample_or_schedule: Any) -> dict[int, list[int]]:
    """``{instruction index: [1-based TIR line, ...]}`` for every instruction of the trace (``[]`` for none).

    ``sample_or_schedule`` is an ``mx.Sample`` (indices are those of ``sample.trace``, lines those of
    ``sample.tir``; cached per sample) or a ``tvm.s_tir.Schedule`` (indices of ``sch.trace``, lines of
    ``sch.mod.script()``; not cached, as a schedule can still change).
    """
    if isinstance(sample_or_schedule, Schedule):
        sch = sample_or_schedule
        return _expand(_map(sch, sch.mod.script()))
    from .sampling import Sample

    sample = sample_or_schedule
    if not isinstance(sample, Sample):
        raise TypeError(
            f"instruction_lines expects an mx.Sample or a tvm.s_tir.Schedule, got {type(sample).__name__}"
        )
    if sample.trace is None:
        raise ValueError(f"sample {sample.id} has no trace (and no TIR): {sample.error}")
    with _CACHE_LOCK:
        cached = _CACHE.get(sample)
    if cached is None:
        sch = sample.schedule
        n_sample, n_replayed = len(sample.trace.insts), len(sch.trace.insts)
        if n_sample != n_replayed:  # pragma: no cover - the replay records every instruction it applies
            raise RuntimeError(
                f"sample {sample.id}: its trace has {n_sample} instructions, the replayed schedule {n_replayed}"
            )
        cached = _map(sch, sample.tir)
        with _CACHE_LOCK:
            _CACHE[sample] = cached
    return _expand(cached)


def _expand(mapping: dict[int, tuple[int, ...]]) -> dict[int, list[int]]:
    return {k: list(v) for k, v in mapping.items()}


def _map(sch: Schedule, script: str) -> dict[int, tuple[int, ...]]:
    """The mapping for the instructions of ``sch.trace``, whose random variables live in ``sch``."""
    insts = list(sch.trace.insts)
    plain = script.splitlines()
    node_lines: dict[Any, tuple[int, ...]] = {}  # TVM objects hash and compare by identity
    lines: dict[int, set[int]] = {}
    for k, inst in enumerate(insts):
        found: set[int] = set()
        for rv in (*inst.inputs, *inst.outputs):
            if type(rv).__name__ not in _RV_TYPES:
                continue
            node = _resolve(sch, rv)
            if node is None:
                continue
            if node not in node_lines:
                node_lines[node] = _node_lines(sch, node, plain)
            found.update(node_lines[node])
        lines[k] = found
    # Sampling instructions decide values, not loops: they map to what uses their value, latest first so that a
    # chain (a sampled value feeding another sampling instruction) reaches the loops.
    for k in reversed(range(len(insts))):
        outputs = [x for x in insts[k].outputs if type(x).__name__ not in _RV_TYPES]
        if not outputs or any(type(x).__name__ in _RV_TYPES for x in insts[k].outputs):
            continue
        for j in range(k + 1, len(insts)):
            if any(_same(x, out) for x in insts[j].inputs for out in outputs):
                lines[k].update(lines[j])
    return {k: tuple(sorted(v)) for k, v in lines.items()}


def _same(a: Any, b: Any) -> bool:
    same_as = getattr(a, "same_as", None)
    return bool(same_as is not None and same_as(b))


def _resolve(sch: Schedule, rv: Any) -> Any:
    """The loop or block ``rv`` stands for in the final program, or None if it is gone (split, fused, inlined)."""
    try:
        return sch.get(rv)
    except Exception:  # noqa: BLE001 - TVM raises several error types for an RV whose statement no longer exists
        return None


def _node_lines(sch: Schedule, node: Any, plain: Sequence[str]) -> tuple[int, ...]:
    underlined = _underlined_line(sch, node, plain)
    if underlined is not None:
        return (underlined,)
    named = _line_by_name(node, plain)
    return () if named is None else (named,)


def _underlined_line(sch: Schedule, node: Any, plain: Sequence[str]) -> int | None:
    """The 1-based line TVM underlines first for ``node``, or None (a loop folded into a ``T.grid`` line)."""
    try:
        text = sch.mod.script(obj_to_underline=[node])
    except Exception:  # noqa: BLE001 - a printer failure only costs this node its line
        return None
    count = 0
    first = None
    for line in text.splitlines():
        if _is_underline(line):
            if first is None and count > 0:
                first = count
        else:
            count += 1
    if count != len(plain):  # the underlined text is not the plain text plus caret lines: do not guess
        return None
    return first


def _is_underline(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and set(stripped) == {"^"}


_FOR = re.compile(r"^\s*for (.+?) in ")
_BLOCK = 'T.sblock("{}")'


def _line_by_name(node: Any, plain: Sequence[str]) -> int | None:
    """The only ``for`` line binding the loop's variable, or the only line opening the block; else None."""
    if isinstance(node, For):
        name = node.loop_var.name
        hits = [
            n for n, line in enumerate(plain, start=1)
            if (m := _FOR.match(line)) and name in (t.strip() for t in m.group(1).split(","))
        ]
    else:
        name_hint = getattr(node, "name_hint", None)
        if not name_hint:
            return None
        needle = _BLOCK.format(name_hint)
        hits = [n for n, line in enumerate(plain, start=1) if needle in line]
    return hits[0] if len(hits) == 1 else None
