"""Drawing samples from a space: each sample is a trace with fresh decisions, postprocessed, with its validity."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tvm.s_tir import Schedule, Trace

from . import traces
from .common import check_non_negative_int, check_positive_int, error_line, plain_json
from .modules import ModuleFailure
from .random_variables import decision_value
from .schedules import fresh_schedule, replay, reseeded_copy, run_postprocs

if TYPE_CHECKING:  # a space hands itself to sample_space (Space.sample): sampling never imports space
    from .space import DesignSpace, Space

__all__ = ["Sample", "SampleSet", "sample_space", "Diff", "diff", "instruction_table"]

FORMAT = "msexplore.samples"
VERSION = 1


@dataclasses.dataclass(frozen=True, eq=False)
class Sample:
    """One draw from a space: its decisions, its trace (postprocessed), validity and, when invalid, why."""

    id: int
    seed: int
    design_space: int
    valid: bool
    error: str | None
    decisions: Mapping[str, Any]
    trace: Trace | None = dataclasses.field(repr=False)
    space: Space = dataclasses.field(repr=False)
    module_failure: ModuleFailure | None = dataclasses.field(default=None, repr=False)
    edited: tuple[str, ...] = ()

    @functools.cached_property
    def schedule(self) -> Schedule:
        """The scheduled program (replayed from the trace, postprocessors included)."""
        if self.trace is None:
            raise ValueError(f"sample {self.id} has no schedule: {self.error}")
        return replay(self.trace, self.space.workload, seed=self.seed)

    @functools.cached_property
    def tir(self) -> str:
        """The scheduled TIR as TVMScript text."""
        return self.schedule.mod.script()

    def python(self) -> str:
        """The trace as Python code that replays it on a ``tvm.s_tir.Schedule`` named ``sch``."""
        if self.trace is None:
            raise ValueError(f"sample {self.id} has no trace: {self.error}")
        return "\n".join(self.trace.as_python())

    def instructions(self) -> pd.DataFrame:
        """The trace as a table: one row per instruction, with its decision and random-variable name."""
        return instruction_table(self)

    def with_decisions(self, changes: Mapping[str, Any]) -> Sample:
        """A new sample with some decisions changed (validated first) and the trace replayed.

        TVM itself silently "repairs" an illegal tile (``[3, 21]`` of 128 becomes ``[1, 128]``); here it raises
        ``ValueError`` listing the legal values, and the replayed decisions are read back to make sure.
        """
        if self.trace is None or self.design_space < 0:
            raise ValueError(f"sample {self.id} has no trace to edit: {self.error}")
        space = self.space
        ds = space.design_spaces[self.design_space]
        sch = traces.replay_with_decisions(
            self.trace, ds.random_variables, changes, space.workload,
            seed=self.seed, what="sample", label=f"sample {self.id}",
        )
        edited = finish(
            space, ds, sch, [p.clone() for p in space.postprocs], index=self.id, seed=self.seed,
            edited=tuple(dict.fromkeys([*self.edited, *changes])),
        )
        for rv in ds.random_variables:
            got = edited.decisions[rv.name]
            want = changes.get(rv.name, self.decisions.get(rv.name))
            want = tuple(int(v) for v in want) if rv.kind == "tile" else want
            if got != want:  # pragma: no cover - guards against TVM repairing a value we let through
                raise ValueError(f"{rv.name}: TVM replaced {want!r} by {got!r} on replay")
        return edited

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seed": self.seed,
            "design_space": self.design_space,
            "valid": self.valid,
            "error": self.error,
            "decisions": plain_json(self.decisions),
            "trace": None if self.trace is None else traces.trace_to_json(self.trace),
            "module_failure": None if self.module_failure is None else dataclasses.asdict(self.module_failure),
            "edited": list(self.edited),
        }

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


class SampleSet(Sequence):
    """Samples of one space, in draw order; ``df`` is their table (one column per decision)."""

    def __init__(self, space: Space, samples: Sequence[Sample], *, seed: int | None = None) -> None:
        self.space = space
        self.samples = list(samples)
        self.seed = seed
        self.load_errors: list[str] = []

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return SampleSet(self.space, self.samples[index], seed=self.seed)
        return self.samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    @property
    def valid(self) -> SampleSet:
        return SampleSet(self.space, [s for s in self.samples if s.valid], seed=self.seed)

    @functools.cached_property
    def df(self) -> pd.DataFrame:
        """One row per sample: id, design space, valid, error, seed, then one column per decision name."""
        names: list[str] = []
        for ds in self.space.design_spaces:
            names += [rv.name for rv in ds.random_variables if rv.name not in names]
        rows = []
        for s in self.samples:
            row = {"sample": s.id, "design_space": s.design_space, "valid": s.valid, "error": s.error, "seed": s.seed}
            row.update({n: s.decisions.get(n) for n in names})
            rows.append(row)
        return pd.DataFrame(rows, columns=["sample", "design_space", "valid", "error", "seed", *names])

    def __repr__(self) -> str:
        n_valid = sum(s.valid for s in self.samples)
        return f"SampleSet({len(self.samples)} samples, {n_valid} valid, {self.space.workload.name})"

    def _repr_html_(self) -> str:
        return f"<p>{repr(self)}</p>" + self.df.head(20)._repr_html_()

    # ---- files ----
    def save(self, path: str | os.PathLike) -> None:
        """Write the samples as JSON lines: a header line, then one line per sample (atomically)."""
        header = {
            "format": FORMAT,
            "version": VERSION,
            "workload": self.space.workload.to_json(),
            "target": str(self.space.target),
            "modules": [m.name for m in self.space.modules],
            "seed": self.seed,
        }
        tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(header) + "\n")
            for s in self.samples:
                f.write(json.dumps(s.to_json()) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, space: Space) -> SampleSet:
        """Read samples saved by ``save``; malformed lines are skipped with a warning naming them."""
        samples: list[Sample] = []
        errors: list[str] = []
        seed = None
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if not lines:
            raise ValueError(f"{path}: empty file, not a samples file written by SampleSet.save")
        try:
            header = json.loads(lines[0])
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:1: not a samples file header ({err})") from None
        if not (
            isinstance(header, dict) and header.get("format") == FORMAT and isinstance(header.get("workload"), dict)
        ):
            raise ValueError(f"{path}:1: not a samples file (expected format {FORMAT!r})")
        if header["workload"] != space.workload.to_json():
            raise ValueError(
                f"{path}: the samples are of workload {header['workload'].get('name')!r} "
                f"{header['workload'].get('params', '')}, not of this space's {space.workload!r}"
            )
        modules = [m.name for m in space.modules]
        if header.get("modules") != modules:
            raise ValueError(
                f"{path}: the samples were drawn from a space with modules {header.get('modules')}, "
                f"not this space's {modules}; build the space with the same modules to load them"
            )
        seed = header.get("seed")
        for lineno, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                samples.append(_sample_from_json(json.loads(line), space))
            except Exception as err:  # noqa: BLE001 - any bad line is reported, the good ones load
                errors.append(f"{path}:{lineno}: {type(err).__name__}: {err}")
        out = cls(space, samples, seed=seed)
        out.load_errors = errors
        if errors:
            warnings.warn(
                f"{len(errors)} malformed line(s) skipped in {path}:\n" + "\n".join(errors), stacklevel=2
            )
        return out


_FIELDS = ("id", "seed", "design_space", "valid", "error", "decisions", "trace")


def _sample_from_json(d: dict[str, Any], space: Space) -> Sample:
    if not isinstance(d, dict):
        raise ValueError(f"a sample line is a JSON object, got {type(d).__name__}")
    missing = [k for k in _FIELDS if k not in d]
    if missing:
        raise ValueError(f"missing field(s) {missing}")
    ds_index = int(d["design_space"])
    if not -1 <= ds_index < len(space.design_spaces):
        raise ValueError(f"design space {ds_index} does not exist (this space has {len(space.design_spaces)})")
    trace = None
    if d["trace"] is not None:
        trace = traces.trace_from_json(d["trace"], space.workload, seed=int(d["seed"]))
        if ds_index < 0 or not space.design_spaces[ds_index].matches(trace):
            raise ValueError(f"its trace is not a sample of design space {ds_index} of this space")
    failure = ModuleFailure(**d["module_failure"]) if d.get("module_failure") else None
    decisions = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(d["decisions"]).items()}
    if trace is not None:  # the trace is the truth; a hand-edited decision that disagrees with it is an error
        replayed = _read_decisions(space.design_spaces[ds_index], trace)
        if replayed != decisions:
            wrong = sorted(k for k in {*replayed, *decisions} if replayed.get(k) != decisions.get(k))
            raise ValueError(f"decisions {wrong} do not match the sample's trace")
    return Sample(
        id=int(d["id"]),
        seed=int(d["seed"]),
        design_space=ds_index,
        valid=bool(d["valid"]),
        error=d["error"],
        decisions=decisions,
        trace=trace,
        space=space,
        module_failure=failure,
        edited=tuple(d.get("edited", ())),
    )


# ---- drawing ----------------------------------------------------------------------------------------------


def sample_space(space: Space, n: int, *, seed: int = 0, threads: int | None = None) -> SampleSet:
    """Draw ``n`` samples; the i-th depends only on ``seed`` and i (same seed, same samples, any thread count)."""
    check_positive_int("n", n)
    check_non_negative_int("seed", seed)
    check_positive_int("threads", threads, or_none=True)
    space.require_design_spaces()
    n_branches = len(space.design_spaces) + len(space.failures)
    jobs = []
    # one generator per sample, keyed by (seed, i): sample i is the same whatever n is
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        rng = np.random.default_rng(child)
        jobs.append((i, int(rng.integers(0, n_branches)), int(rng.integers(1, 2**31 - 1))))
    threads = threads or min(2, os.cpu_count() or 1)
    if threads <= 1 or n < 16:
        drawer = _Drawer(space)
        samples = [drawer.draw(*job) for job in jobs]
    else:
        local = threading.local()

        def work(chunk: list[tuple[int, int, int]]) -> list[Sample]:
            if not hasattr(local, "drawer"):
                local.drawer = _Drawer(space)
            return [local.drawer.draw(*job) for job in chunk]

        size = max(8, n // (threads * 4))
        chunks = [jobs[k : k + size] for k in range(0, n, size)]
        with ThreadPoolExecutor(threads, thread_name_prefix="msexplore-sample") as pool:
            samples = [s for part in pool.map(work, chunks) for s in part]
    return SampleSet(space, samples, seed=seed)


class _Drawer:
    """Per-thread state: postprocessors are cloned because TVM's are not shared between threads."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.postprocs = [p.clone() for p in space.postprocs]
        self.blank = fresh_schedule(space.workload)  # copied and re-seeded per draw (schedules.reseeded_copy)

    def draw(self, index: int, branch: int, seed: int) -> Sample:
        space = self.space
        if branch >= len(space.design_spaces):
            failure = space.failures[branch - len(space.design_spaces)]
            return Sample(index, seed, -1, False, str(failure), {}, None, space, module_failure=failure)
        ds = space.design_spaces[branch]
        sch = reseeded_copy(self.blank, seed)
        try:
            ds.trace.apply_to_schedule(sch, remove_postproc=True)
        except Exception as err:  # noqa: BLE001 - TVM 0.27 raises built-in types (ScheduleError is a RuntimeError)
            message = f"replay failed: {error_line(err, default=type(err).__name__)}"
            return Sample(index, seed, ds.index, False, message, {}, None, space)
        return finish(space, ds, sch, self.postprocs, index=index, seed=seed)


def finish(
    space: Space, ds: DesignSpace, sch: Schedule, postprocs: list[Any], *, index: int, seed: int, edited: tuple = ()
) -> Sample:
    """Run the postprocessors on a replayed schedule and read its decisions."""
    error = run_postprocs(sch, postprocs, space.postproc_names)
    trace = sch.trace
    return Sample(index, seed, ds.index, error is None, error, _read_decisions(ds, trace), trace, space, edited=edited)


def _read_decisions(ds: DesignSpace, trace: Trace) -> dict[str, Any]:
    """The trace's decisions by random-variable name (tiles as tuples, so they hash and compare)."""
    insts = trace.insts
    decisions = {rv.name: decision_value(rv, trace.get_decision(insts[rv.position])) for rv in ds.random_variables}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in decisions.items()}


# ---- looking at samples -----------------------------------------------------------------------------------


def instruction_table(sample: Sample) -> pd.DataFrame:
    """One row per instruction of the sample's trace: kind, inputs, attributes, outputs, decision, random variable."""
    if sample.trace is None:
        raise ValueError(f"sample {sample.id} has no trace: {sample.error}")
    rvs = sample.space.design_spaces[sample.design_space].random_variables if sample.design_space >= 0 else ()
    return traces.instruction_table(sample.trace, rvs)


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


def _label(sample: Sample) -> str:
    """``sample 3``, or ``sample 3 (edited Z.tile_j)`` for one made by ``with_decisions`` (it keeps the id)."""
    return f"sample {sample.id}" + (f" (edited {', '.join(sample.edited)})" if sample.edited else "")
