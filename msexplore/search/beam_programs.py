"""Decisions -> whole programs for the beam search: replayed, postprocessed and scored by the cost model.

This is where a beam pass spends its time (a replay and the postprocessors, then the cost model's features, a few
milliseconds a program), so programs are built on the tune context's threads (TVM releases the GIL) and memoised
within a pass. A program's key is its design space and full decision; its schedule's seed is a digest of the key, so
what a key builds depends neither on the thread, nor on the order, nor on the process.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import tvm_ffi
from tvm.s_tir import meta_schedule as ms

from ..common import error_line
from ..schedules import fresh_schedule, reseeded_copy, run_postprocs
from .beam_slots import DecisionSpace

__all__ = ["BeamStats", "Completion", "Programs"]

MAX_THREADS = 8
_PARALLEL_FROM = 8  # fewer programs than this are built on the calling thread


@dataclasses.dataclass
class BeamStats:
    """What a beam search spent, accumulated over every search its strategy object (and its clones) ran.

    Written by the search thread only; read it once the search has ended (the benchmarks do).
    """

    strategy_s: float = 0.0  # wall time inside the strategy's methods (passes, replays, predictions)
    predict_s: float = 0.0  # of which in the cost model's predictions
    batches: int = 0
    passes: int = 0
    programs: int = 0  # completions replayed and postprocessed
    rejected: int = 0  # of which the replay or a postprocessor refused
    predicted: int = 0
    refined: int = 0  # valid neighbours of measured elites built for the batches
    narrowed: int = 0  # passes run below the full effort, to keep to the time share
    last_rejection: str | None = None


@dataclasses.dataclass(frozen=True)
class Completion:
    """A whole program completed from a partial choice: its candidate, structural hash and predicted score."""

    key: tuple  # (design space, decisions)
    candidate: Any = dataclasses.field(repr=False)  # ms.MeasureCandidate
    shash: int
    predicted: float = math.nan


class Programs:
    """Build and score programs from keys; one per search session (``close`` it at the end)."""

    def __init__(
        self, spaces: Sequence[DecisionSpace], context: Any, postprocs: Sequence[Any], cost_model: Any,
        rng: np.random.Generator, stats: BeamStats,
    ) -> None:
        self.spaces = spaces
        self.context = context
        self.cost_model = cost_model
        self.rng = rng
        self.stats = stats
        threads = max(1, min(MAX_THREADS, int(context.num_threads or 1)))
        self._builders = [_Builder(context.mod, postprocs) for _ in range(threads)]
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="msexplore-beam") if threads > 1 else None
        self.memo: dict[tuple, Completion | None] = {}
        self.built = 0  # programs built this session
        self.valid = 0  # of which valid

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def new_pass(self) -> None:
        """Forget the previous pass's programs (the cost model has learnt since: their scores are stale)."""
        self.memo = {}

    def draw(self, space: DecisionSpace, values: tuple, count: int) -> list[tuple]:
        """Keys of ``count`` random completions of ``values`` (at most one once every slot is fixed)."""
        if len(values) == len(space):
            count = min(count, 1)
        return [(space.index, space.complete(values, self.rng)) for _ in range(max(0, count))]

    def random_keys(self, count: int) -> list[tuple]:
        """Keys of ``count`` random programs: a design space and every decision drawn uniformly."""
        keys = []
        for _ in range(count):
            space = self.spaces[int(self.rng.integers(len(self.spaces)))]
            keys.append((space.index, space.complete((), self.rng)))
        return keys

    def realize(self, keys: Sequence[tuple], *, predict: bool = True) -> dict[tuple, Completion | None]:
        """Build the keys not seen this pass and (with ``predict``) score them in one call; ``None``: invalid."""
        fresh = [k for k in dict.fromkeys(keys) if k not in self.memo]
        built = self._build_all(fresh)
        self.built += len(fresh)
        self.stats.programs += len(fresh)
        valid = []
        for key, (cand, shash, reason) in zip(fresh, built):
            if cand is None:
                self.memo[key] = None
                self.stats.rejected += 1
                self.stats.last_rejection = reason
            else:
                valid.append((key, cand, shash))
        self.valid += len(valid)
        scores = self.predict([v[1] for v in valid]) if predict and valid else [math.nan] * len(valid)
        for (key, cand, shash), score in zip(valid, scores):
            self.memo[key] = Completion(key, cand, shash, float(score))
        return {k: self.memo[k] for k in keys}

    def predict(self, candidates: Sequence[Any]) -> np.ndarray:
        started = time.perf_counter()
        try:
            return np.asarray(self.cost_model.predict(self.context, list(candidates)), dtype="float64")
        finally:
            self.stats.predict_s += time.perf_counter() - started
            self.stats.predicted += len(candidates)

    def _build_all(self, keys: list[tuple]) -> list[tuple[Any, int, str | None]]:
        n = len(self._builders)
        if self._pool is None or len(keys) < _PARALLEL_FROM:
            return [self._builders[0].build(self.spaces, k) for k in keys]
        parts = list(self._pool.map(lambda b, chunk: [b.build(self.spaces, k) for k in chunk],
                                    self._builders, [keys[j::n] for j in range(n)]))
        return [parts[i % n][i // n] for i in range(len(keys))]


class _Builder:
    """One thread's blank schedule and postprocessors (TVM's postprocessors are not shared between threads)."""

    def __init__(self, mod: Any, postprocs: Sequence[Any]) -> None:
        self.blank = fresh_schedule(mod)
        self.postprocs = [p.clone() for p in postprocs]
        self.names = [_label(k, p) for k, p in enumerate(self.postprocs)]

    def build(self, spaces: Sequence[DecisionSpace], key: tuple) -> tuple[Any, int, str | None]:
        """``(candidate, structural hash, None)``, or ``(None, 0, why)`` when TVM or a postprocessor refuses."""
        ds, decisions = key
        sch = reseeded_copy(self.blank, 1 + zlib.crc32(repr(key).encode()) % 0x7FFFFFFE)  # for what no slot covers
        try:
            spaces[ds].trace(decisions).apply_to_schedule(sch, remove_postproc=True)
        except Exception as err:  # noqa: BLE001 - TVM 0.27 raises built-in types for a decision it cannot apply
            return None, 0, f"replay failed: {error_line(err, default=type(err).__name__)}"
        reason = run_postprocs(sch, self.postprocs, self.names)
        if reason is not None:
            return None, 0, reason
        candidate = ms.MeasureCandidate(sch, ms.arg_info.ArgInfo.from_entry_func(sch.mod, remove_preproc=True))
        return candidate, tvm_ffi.structural_hash(sch.mod), None


def _label(index: int, postproc: Any) -> str:
    """A postprocessor's name for messages; TVM hands a Python one back as ``_PyPostproc``: say which it is."""
    name = type(postproc).__name__
    return f"{name[1:]} #{index + 1}" if name.startswith("_Py") else name
