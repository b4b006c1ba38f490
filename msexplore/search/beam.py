"""``strategy="beam"``: a coarse-to-fine beam search over a MetaSchedule trace's decisions (Halide's Adams2019).

Each measured batch comes from one beam pass (``beam_pass``): decisions are fixed coarse to fine (design space,
outer spatial tiles, compute locations, inner tiles, reduction tiles, unroll; ``beam_slots``), a partial choice is
scored by the cost model's best prediction over a few random completions, and the beam is kept diverse. The batch
mixes the pass's best-predicted programs, the ends of dropout descents, refinements of the best programs measured
so far (``refine_share``: one decision of an elite re-drawn, the model's favourites among ``mutations`` neighbours
per elite, as the evolutionary search's mutations; Adams2019's later passes refine the earlier ones' winners) and a
few random programs (``epsilon``).
The strategy keeps to ``time_share`` of the search's wall time: when building and measuring a batch is quick next to
a full pass, it narrows the beam for the next batches (``beam_effort``). The account spans every search the same
strategy object runs (``mx.tune_model`` keeps one per task), so a later session's first pass is sized too.
While the cost model is not informative yet (TVM's XGBModel predicts noise until it has been trained; a
``RandomModel`` always does) batches are random programs, as in ``replay-trace``.

No program is measured twice: every candidate handed out, and every record already in the database (a resumed
folder), is remembered by its structural hash. Randomness comes from the tune context's seed only, so the same
seed, the same cost model and the same measurements give the same batches (with ``time_share=None``; with a share,
how wide a pass is depends on the wall time too).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tvm_ffi
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.search_strategy import PySearchStrategy

from ..common import check_non_negative_int, check_positive_int
from .beam_effort import Effort, TimeShare
from .beam_pass import beam_pass
from .beam_programs import BeamStats, Completion, Programs
from .beam_slots import DecisionSpace

__all__ = ["BeamSearch", "BeamStats"]


def _never() -> bool:
    return False


@derived_object
class BeamSearch(PySearchStrategy):
    """A coarse-to-fine beam search over trace decisions, scored by the cost model (``mx.search(strategy="beam")``).

    Parameters
    ----------
    beam_size
        Partial schedules kept at each step of a pass.
    completions
        Random completions that score a partial schedule (its score is the best of their predictions).
    max_children
        Values tried per decision (tile factors log-spaced, other choices spread evenly).
    epsilon
        Share of each batch drawn at random (at least one program when above 0).
    dropout_share
        Share of each batch taken from the dropout descents' programs.
    descents
        Dropout descents per pass: beams of one that pass over each child, in score order, with ``dropout``.
    dropout
        Probability that a descent passes over a child, taken in score order.
    refine_share
        Share of each batch that refines the best measured programs (once some have been measured).
    elites
        Measured programs (the fastest) whose neighbours are refined.
    mutations
        Neighbours drawn per elite for the cost model to rank (one decision re-drawn each).
    bucket_cap
        Beam states per structure (outer tiles and compute locations) before others of that structure may fill it.
    max_fail_count
        Random draws tried per program wanted before giving up (postprocessors may refuse many).
    time_share
        Share of the search's wall time the strategy aims to keep to (building and measuring the rest): later
        passes narrow the beam, its descents, completions and mutations to fit (``None``: always the full effort).
    """

    def __init__(
        self,
        beam_size: int = 4,
        completions: int = 2,
        max_children: int = 5,
        epsilon: float = 0.05,
        dropout_share: float = 0.25,
        descents: int = 2,
        dropout: float = 0.2,
        refine_share: float = 0.5,
        elites: int = 8,
        mutations: int = 16,
        bucket_cap: int = 2,
        max_fail_count: int = 64,
        time_share: float | None = 0.08,
    ) -> None:
        _check_knobs(locals())
        self.beam_size = int(beam_size)
        self.completions = int(completions)
        self.max_children = int(max_children)
        self.epsilon = float(epsilon)
        self.dropout_share = float(dropout_share)
        self.descents = int(descents)
        self.dropout = float(dropout)
        self.refine_share = float(refine_share)
        self.elites = int(elites)
        self.mutations = int(mutations)
        self.bucket_cap = int(bucket_cap)
        self.max_fail_count = int(max_fail_count)
        self.time_share = None if time_share is None else float(time_share)
        self.stats = BeamStats()  # shared with clones: the object a caller made reports what the search spent
        self._stop: Callable[[], bool] = _never
        self._context: Any = None
        self._rng: np.random.Generator | None = None
        self._postprocs: list[Any] = []
        self._programs: Programs | None = None
        self._measured: set[int] = set()
        self._budget = self._batch = self._handed_out = 0
        self._informative = False
        self._batch_picks: list[Completion] = []  # the last batch handed out, in order
        self._elite: list[tuple[float, int, tuple]] = []  # (mean seconds, order, key): the fastest measured
        self._share = TimeShare(self.time_share)  # shared with clones: the account spans every search run with it
        self._per_state: float | None = None  # programs a pass built per state and completion (the last pass)

    def knobs(self) -> dict[str, Any]:
        """The options this strategy was made with."""
        names = ("beam_size", "completions", "max_children", "epsilon", "dropout_share", "descents", "dropout",
                 "refine_share", "elites", "mutations", "bucket_cap", "max_fail_count", "time_share")
        return {name: getattr(self, name) for name in names}

    def watch_stop(self, stop_requested: Callable[[], bool]) -> None:
        """Check ``stop_requested()`` between the steps of a pass, and end the search when it is true."""
        self._stop = stop_requested

    # ---- TVM's SearchStrategy interface ----
    def _initialize_with_tune_context(self, context: Any) -> None:
        self._context = context
        self._rng = np.random.default_rng(int(context.rand_state) & 0x7FFFFFFF)
        generator = context.space_generator
        self._postprocs = list(generator.postprocs) if generator is not None else []

    def pre_tuning(
        self,
        max_trials: int,
        num_trials_per_iter: int,
        design_spaces: Any,
        database: Any = None,
        cost_model: Any = None,
    ) -> None:
        self._share.new_session()
        self._per_state = None
        with self._timed():
            if self._context is None:
                raise RuntimeError("the beam search was not initialised with a tune context")
            mod = self._context.mod
            spaces = [DecisionSpace(k, mod, ds) for k, ds in enumerate(design_spaces)]
            self._programs = Programs(spaces, self._context, self._postprocs, cost_model, self._rng, self.stats)
            self._budget, self._batch, self._handed_out = int(max_trials), int(num_trials_per_iter), 0
            self._measured = _measured_programs(database)
            self._informative = False
            self._batch_picks = []
            self._elite = _elite_of(database, spaces, self.elites)

    def post_tuning(self) -> None:
        if self._programs is not None:
            self._programs.close()
            self._programs = None  # its schedules and candidates are garbage now

    def generate_measure_candidates(self) -> list[Any] | None:
        with self._timed():
            picks = self._next_batch()
            if picks is None:
                return None
            self._handed_out += len(picks)
            self._measured.update(c.shash for c in picks)
            self.stats.batches += 1
            self._batch_picks = picks
        self._share.handed_out()
        return [c.candidate for c in picks]

    def notify_runner_results(self, measure_candidates: Any, results: Any) -> None:
        """Keep the fastest programs measured so far (the elites that later batches refine); the cost model learns
        from the results on its own (TVM's UpdateCostModel)."""
        self._share.results_in()
        with self._timed():
            picks, self._batch_picks = self._batch_picks, []
            if len(picks) != len(results):
                return  # not the batch this strategy handed out: nothing to attribute
            order = len(self._elite)
            for k, (pick, result) in enumerate(zip(picks, results)):
                seconds = _mean_seconds(result)
                if seconds is not None:
                    self._elite.append((seconds, order + k, pick.key))
            self._elite = sorted(self._elite)[: self.elites]

    def clone(self) -> BeamSearch:
        twin = BeamSearch(**self.knobs())
        twin.stats = self.stats
        twin._share = self._share
        twin.watch_stop(self._stop)
        return twin

    # ---- a batch ----
    def _next_batch(self) -> list[Completion] | None:
        programs = self._programs
        if programs is None:
            raise RuntimeError("generate_measure_candidates before pre_tuning")
        n = min(self._batch, self._budget - self._handed_out)
        if n <= 0 or self._stop():
            return None
        programs.new_pass()  # the previous batch's programs: measured, or not worth keeping
        picks: dict[int, Completion] = {}
        n_random = min(n, math.ceil(self.epsilon * n))
        n_refine = min(n - n_random, round(self.refine_share * n)) if self._elite else 0
        if self._model_is_informative(picks):
            n_descents = min(n - n_random - n_refine, round(self.dropout_share * n))
            effort = self._effort(n_refine)
            built = programs.built
            result = beam_pass(
                programs, beam_size=effort.beam_size, completions=effort.completions, max_children=self.max_children,
                bucket_cap=self.bucket_cap, descents=min(effort.descents, n_descents), dropout=self.dropout,
                stop=self._stop,
            )
            if result is None:
                return None  # stopped mid-pass
            self.stats.passes += 1
            self.stats.narrowed += effort != self._full_effort()
            states = effort.beam_size + min(effort.descents, n_descents)
            self._per_state = (programs.built - built) / (states * effort.completions)
            picks.clear()  # the probe's program competes with the others
            trails = [iter(trail) for trail in result.descents]
            while trails and len(picks) < n_descents:  # round robin: each descent's best program not yet taken
                before = len(picks)
                for trail in trails:
                    self._take(picks, trail, min(n_descents, len(picks) + 1))
                if len(picks) == before:
                    break
            if n_refine:
                self._take(picks, self._refinements(effort.mutations, predict=True), len(picks) + n_refine)
            self._take(picks, result.pool, n - n_random)
        elif n_refine:  # a resumed run's first batch: neighbours of the best records, the best one's first
            self._take(picks, self._refinements(self.mutations, predict=False), len(picks) + n_refine)
        self._take_random(picks, n)
        if not picks:
            if programs.valid == 0:
                raise RuntimeError(
                    f"beam search: none of the {programs.built} programs completed from the space's "
                    f"{len(programs.spaces)} design space(s) was valid (last: {self.stats.last_rejection}); there "
                    "is nothing to measure. space.sample(...) shows each sample's error."
                )
            return None  # every valid program the search can reach has been measured
        return list(picks.values())

    def _full_effort(self) -> Effort:
        return Effort(self.beam_size, self.descents, self.completions, self.mutations)

    def _effort(self, n_refine: int) -> Effort:
        """The full effort, narrowed to the programs ``time_share`` leaves for this batch."""
        elites = len(self._elite) if n_refine else 0
        per_state = self._per_state
        if per_state is None:  # no pass yet: about half of each slot's children need new completions
            spaces = self._programs.spaces
            per_state = 0.5 * self.max_children * sum(len(s) for s in spaces) / max(1, len(spaces))
        return self._full_effort().within(self._share.budget(), per_state, elites)

    def _refinements(self, mutations: int, *, predict: bool) -> list[Completion]:
        """Neighbours of the elites (``mutations`` each, one decision re-drawn), valid ones, best predicted first
        (``predict``) or the fastest elite's first."""
        programs = self._programs
        keys = []
        for _, _, (ds, decisions) in self._elite:
            space = programs.spaces[ds]
            keys += [(ds, space.mutate(decisions, programs.rng)) for _ in range(mutations)]
        built = programs.realize(keys, predict=predict).values()
        unique = {c.shash: c for c in built if c is not None}
        self.stats.refined += len(unique)
        return sorted(unique.values(), key=lambda c: -c.predicted if not math.isnan(c.predicted) else math.inf)

    def _take(self, picks: dict[int, Completion], ranked: Any, upto: int) -> None:
        """Add programs from ``ranked`` (best first) that are neither measured nor picked, until there are ``upto``."""
        if len(picks) >= upto:
            return
        for c in ranked:  # (an iterator is consumed only up to the last program taken)
            if c.shash not in self._measured and c.shash not in picks:
                picks[c.shash] = c
                if len(picks) >= upto:
                    return

    def _take_random(self, picks: dict[int, Completion], n: int) -> None:
        programs = self._programs
        attempts = self.max_fail_count * max(1, n - len(picks))
        while len(picks) < n and attempts > 0:
            want = min(attempts, 2 * (n - len(picks)))
            attempts -= want
            drawn = programs.realize(programs.random_keys(want), predict=False).values()
            self._take(picks, [c for c in drawn if c is not None], n)

    def _model_is_informative(self, picks: dict[int, Completion]) -> bool:
        """Whether the cost model ranks programs yet: it predicts one program twice alike (TVM's XGBModel returns
        uniform noise until it has been trained; RandomModel always does)."""
        if self._informative:
            return True
        programs = self._programs
        if programs.cost_model is None:
            return False
        self._take_random(picks, 1)
        if not picks:
            return False
        probe = next(iter(picks.values())).candidate
        first, second = programs.predict([probe, probe])
        self._informative = bool(first == second)
        return self._informative

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        """Time a method: into ``stats.strategy_s``, and with the programs it built into the time-share account."""
        started, built = time.perf_counter(), self.stats.programs
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            self.stats.strategy_s += seconds
            self._share.spent(seconds, self.stats.programs - built)


def _mean_seconds(result: Any) -> float | None:
    """A runner result's mean run time, ``None`` for a failure."""
    if result.error_msg is not None or not result.run_secs:
        return None
    seconds = [float(x) for x in result.run_secs]
    return sum(seconds) / len(seconds)


def _elite_of(database: Any, spaces: list[DecisionSpace], count: int) -> list[tuple[float, int, tuple]]:
    """The fastest records already in the database (a resumed run), as elites: (mean seconds, order, key)."""
    if database is None:
        return []
    timed = []
    for order, record in enumerate(database.get_all_tuning_records()):
        seconds = [float(x) for x in (record.run_secs or [])]
        if seconds and all(math.isfinite(x) and x < 1e9 for x in seconds):  # TVM records a failure as 1e10 s
            timed.append((sum(seconds) / len(seconds), order, record.trace))
    out = []
    for seconds, order, trace in sorted(timed, key=lambda item: item[:2]):
        for space in spaces:
            decisions = space.decisions_of(trace)
            if decisions is not None:
                out.append((seconds, order, (space.index, decisions)))
                break
        if len(out) == count:
            break
    return out


def _measured_programs(database: Any) -> set[int]:
    """Structural hashes of the programs the database already holds (a resumed run measures none again)."""
    out: set[int] = set()
    if database is None:
        return out
    for record in database.get_all_tuning_records():
        try:
            out.add(tvm_ffi.structural_hash(record.as_measure_candidate().sch.mod))
        except Exception:  # noqa: BLE001 - a record that no longer replays cannot be re-measured either
            continue
    return out


def _check_knobs(values: dict[str, Any]) -> None:
    try:
        for name in ("beam_size", "completions", "elites", "mutations", "bucket_cap", "max_fail_count"):
            check_positive_int(name, values[name])
        check_non_negative_int("descents", values["descents"])
        if check_positive_int("max_children", values["max_children"]) < 2:
            raise ValueError(f"max_children must be at least 2, got {values['max_children']!r}")
        share = values["time_share"]
        if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1):
            raise ValueError(f"time_share must be None or a number in (0, 1), got {share!r}")
        for name in ("epsilon", "dropout_share", "dropout", "refine_share"):
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        shares = ("epsilon", "dropout_share", "refine_share")
        if sum(values[name] for name in shares) > 1:
            raise ValueError(
                "epsilon + dropout_share + refine_share must be at most 1 (shares of a batch), got "
                + " + ".join(repr(values[name]) for name in shares)
            )
    except ValueError as err:
        raise ValueError(f"strategy 'beam': {err}") from None
