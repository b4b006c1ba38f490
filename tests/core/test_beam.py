"""``strategy="beam"`` on real TVM with tiny workloads: slots, knobs, batches, budget, dedup, determinism, stop,
resume, a space with no valid program, and the CLI.

Most searches here use ``HashModel``, a cost model that scores a program by a hash of its TIR: it is informative
from the first batch (so every batch comes from a beam pass) and blind to measurements (so two runs with the same
seed must hand out the same programs, whatever the timings).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import threading
import time

import numpy as np
import pytest
import tvm_ffi
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.cost_model import PyCostModel
from tvm.s_tir.meta_schedule.postproc import PyPostproc

import msexplore as mx
from msexplore.cli import main
from msexplore.schedules import replay_json
from msexplore.search.beam import BeamSearch
from msexplore.search.beam_effort import Effort, TimeShare, allowed_programs
from msexplore.search.beam_slots import INNER, LOCATION, OTHER, OUTER, REDUCTION, DecisionSpace
from msexplore.search.folder import RunFolder
from msexplore.search.strategies import STRATEGIES, create_strategy

SMALL = dict(beam_size=4, completions=2, max_children=4, time_share=None)  # the full effort: tests below set a share


@derived_object
class HashModel(PyCostModel):
    """Scores a program by a hash of its TIR; ``on_predict`` (if set) is called once, from the next prediction."""

    def __init__(self) -> None:
        self.calls = 0
        self.on_predict = None

    def load(self, path: str) -> None:
        pass

    def save(self, path: str) -> None:
        pass

    def update(self, context, candidates, results) -> None:
        pass

    def predict(self, context, candidates) -> np.ndarray:
        self.calls += 1
        hook, self.on_predict = self.on_predict, None
        if hook is not None:
            hook()
        return np.array([(tvm_ffi.structural_hash(c.sch.mod) % 10007) / 10007 for c in candidates], dtype="float64")


@derived_object
class RejectAll(PyPostproc):
    def _initialize_with_tune_context(self, context) -> None:
        pass

    def apply(self, sch) -> bool:
        return False

    def clone(self):
        return RejectAll()


@pytest.fixture(scope="module")
def gmm32():
    return mx.Space(mx.workload("GMM", n=32, m=32, k=32))


def _context(space, strategy=None, seed=1):
    return ms.TuneContext(mod=space.workload.mod, target=space.target, space_generator=space.space_generator(),
                          search_strategy=strategy, task_name="main", rand_state=seed, num_threads=1)


def _decision_spaces(space):
    context = _context(space)
    return [DecisionSpace(k, context.mod, ds) for k, ds in enumerate(context.generate_design_space())]


def _strategy_batches(space, *, trials, batch_size, seed=1, database=None, model=None, stop=None, seconds=None,
                      measure_s=0.0, strategy=None, **options):
    """Drive a BeamSearch (``strategy``, or one made with ``options``) as TVM's task scheduler does, without building
    or measuring: the batches' programs (each "measured" at ``seconds(schedule)``, 1 ms by default, the batch taking
    ``measure_s`` of wall time)."""
    strategy = strategy or BeamSearch(**{**SMALL, **options})
    if stop is not None:
        strategy.watch_stop(stop)
    context = _context(space, strategy, seed)
    context.pre_tuning(trials, batch_size, context.generate_design_space(), database or ms.database.MemoryDatabase(),
                       model or HashModel())
    batches = []
    while (candidates := context.generate_measure_candidates()) is not None:
        batches.append([c.sch for c in candidates])
        time.sleep(measure_s)
        done = [ms.runner.RunnerResult(run_secs=[seconds(c.sch) if seconds else 1e-3], error_msg=None)
                for c in candidates]
        context.notify_runner_results(candidates, done)
    context.post_tuning()
    return batches, strategy


def _texts(batches):
    return [[str(sch.trace) for sch in batch] for batch in batches]


def _program_hashes(run):
    return [tvm_ffi.structural_hash(replay_json(e.trace, run.workload).mod) for e in run.events]


# ---- slots: the coarse-to-fine order, children, completions ---------------------------------------------------------


def test_slots_go_coarse_to_fine(gmm32):
    space = _decision_spaces(gmm32)[0]
    phases = [slot.phase for slot in space.slots]
    assert phases == sorted(phases)
    kinds = {slot.phase: space.variables[slot.variable] for slot in space.slots}
    assert kinds[OUTER].kind == "tile" and kinds[OUTER].spatial
    assert kinds[INNER].kind == "tile" and kinds[INNER].spatial
    assert kinds[REDUCTION].kind == "tile" and not kinds[REDUCTION].spatial
    assert kinds[OTHER].kind == "categorical"  # the unroll choice comes last
    outer = [s for s in space.slots if s.phase == OUTER]
    assert outer and all(s.factor == 0 for s in outer)
    assert all(s.factor == space.variables[s.variable].n - 1 for s in space.slots if s.phase == INNER)
    # the batch loop has extent 1: no decision there
    assert all(space.variables[s.variable].extent > 1 for s in space.slots if s.factor is not None)


def test_compute_locations_come_after_the_outer_tiles():
    space = _decision_spaces(mx.Space(mx.workload("SFM", m=32, n=32)))[0]
    phases = [slot.phase for slot in space.slots]
    assert LOCATION in phases and phases == sorted(phases)
    assert all(space.variables[s.variable].kind == "compute_location" for s in space.slots if s.phase == LOCATION)


def test_children_are_legal_and_spread_and_completions_keep_the_prefix(gmm32):
    space = _decision_spaces(gmm32)[0]
    rng = np.random.default_rng(0)
    values: tuple = ()
    for depth in range(len(space)):
        children = space.children(values, 4)
        assert 1 <= len(children) <= 4 and children == sorted(set(children))
        slot = space.slots[depth]
        if slot.phase == OUTER:  # log-spaced over the divisors of 32: the ends are kept
            assert children[0] == 1 and children[-1] == 32
        values = (*values, children[int(rng.integers(len(children)))])
        for _ in range(5):
            decisions = space.complete(values, rng)
            assert all(space.agrees(decisions, k, v) for k, v in enumerate(values))
            for var, d in zip(space.variables, decisions):
                if var.kind == "tile":
                    assert int(np.prod(d)) == var.extent and d[-1] <= var.max_innermost_factor
    assert len(set(space.complete(values, rng) for _ in range(5))) == 1  # every slot fixed: one program


# ---- knobs ---------------------------------------------------------------------------------------------------------


def test_beam_is_a_registered_strategy_with_checked_knobs():
    assert STRATEGIES["beam"] is BeamSearch
    strategy = create_strategy("beam", {"beam_size": 3, "epsilon": 0.1})
    assert isinstance(strategy, ms.search_strategy.SearchStrategy)
    assert strategy.knobs()["beam_size"] == 3 and strategy.knobs()["epsilon"] == 0.1


@pytest.mark.parametrize(
    "options, match",
    [
        ({"beam_size": 0}, "strategy 'beam': beam_size must be a positive integer, got 0"),
        ({"beam_size": -2}, "strategy option beam_size must be a non-negative number, got -2"),
        ({"completions": 2.5}, "strategy option completions must be an integer, got 2.5"),
        ({"max_children": 1}, "max_children must be at least 2, got 1"),
        ({"epsilon": 1.5}, r"epsilon must be a number in \[0, 1\], got 1.5"),
        ({"epsilon": 0.5, "dropout_share": 0.75}, "epsilon \\+ dropout_share \\+ refine_share must be at most 1"),
        ({"time_share": 0}, r"time_share must be None or a number in \(0, 1\), got 0"),
        ({"time_share": 1.0}, r"time_share must be None or a number in \(0, 1\), got 1.0"),
        ({"time_share": "10%"}, r"strategy option time_share must be a non-negative number, got '10%'"),
        ({"beams": 4}, r"strategy 'beam' has no option\(s\) \['beams'\]; its options are beam_size=4"),
    ],
)
def test_bad_knobs_fail_before_any_work(options, match, gmm32, tmp_path):
    with pytest.raises(ValueError, match=match):
        mx.search(gmm32, trials=4, strategy="beam", work_dir=tmp_path / "bad", **options)
    assert not (tmp_path / "bad").exists()


def test_time_share_none_asks_for_the_full_effort():
    assert create_strategy("beam", {"time_share": None}).time_share is None
    assert create_strategy("beam", {"time_share": 0.2}).time_share == 0.2
    with pytest.raises(ValueError, match="strategy option beam_size must be a non-negative number, got None"):
        create_strategy("beam", {"beam_size": None})  # None is for the share only


def test_knobs_are_checked_when_made_directly_too():
    with pytest.raises(ValueError, match=r"strategy 'beam': dropout must be a number in \[0, 1\], got True"):
        BeamSearch(dropout=True)


# ---- the strategy alone, driven as TVM's task scheduler does (nothing built or measured) ------------------------


def test_batches_are_the_batch_size_until_the_budget_ends(gmm32):
    batches, strategy = _strategy_batches(gmm32, trials=10, batch_size=4)
    assert [len(b) for b in batches] == [4, 4, 2]  # then None: exactly the budget
    assert strategy.stats.passes == 3 and strategy.stats.rejected == 0
    hashes = [tvm_ffi.structural_hash(sch.mod) for batch in batches for sch in batch]
    assert len(set(hashes)) == 10


def test_the_same_seed_gives_the_same_batches_another_seed_others(gmm32):
    first, _ = _strategy_batches(gmm32, trials=8, batch_size=4, seed=5)
    again, _ = _strategy_batches(gmm32, trials=8, batch_size=4, seed=5)
    other, _ = _strategy_batches(gmm32, trials=8, batch_size=4, seed=6)
    assert _texts(first) == _texts(again)
    assert _texts(first) != _texts(other)


def test_programs_already_in_the_database_are_not_handed_out_again(gmm32):
    earlier, _ = _strategy_batches(gmm32, trials=8, batch_size=8, seed=5)
    database = ms.database.MemoryDatabase()
    workload = database.commit_workload(_context(gmm32).mod)
    for sch in earlier[0]:
        args = ms.arg_info.ArgInfo.from_entry_func(sch.mod, remove_preproc=True)
        database.commit_tuning_record(ms.database.TuningRecord(sch.trace, workload, [1e-3], gmm32.target, args))
    later, _ = _strategy_batches(gmm32, trials=8, batch_size=8, seed=5, database=database)
    before = {tvm_ffi.structural_hash(sch.mod) for sch in earlier[0]}
    assert len(later[0]) == 8 and not before & {tvm_ffi.structural_hash(sch.mod) for sch in later[0]}


def test_a_stop_between_two_steps_of_a_pass_ends_the_search(gmm32):
    one_pass = HashModel()
    _strategy_batches(gmm32, trials=4, batch_size=4, model=one_pass)  # how many predictions the first batch makes
    model = HashModel()
    stop = lambda: model.calls > one_pass.calls + 2  # noqa: E731 - two steps into the second pass
    batches, strategy = _strategy_batches(gmm32, trials=40, batch_size=4, model=model, stop=stop)
    assert len(batches) == 1 and strategy.stats.passes == 1
    assert model.calls == one_pass.calls + 3  # the pass was left at the next step


def _decisions(sch):
    trace = sch.trace
    return [(inst.kind.name, str(trace.decisions[inst])) for inst in trace.insts if inst in trace.decisions]


def test_later_batches_refine_the_fastest_measured_program(gmm32):
    """Half of each batch (``refine_share``) are neighbours of the elites: one decision of the fastest re-drawn."""
    fastest = {}

    def seconds(sch):  # the first program measured is ten times faster than every other
        key = str(sch.trace)
        fastest.setdefault("trace", key)
        return 1e-4 if key == fastest["trace"] else 1e-3

    options = dict(elites=1, mutations=16, refine_share=0.5, dropout_share=0.0, epsilon=0.0)
    batches, strategy = _strategy_batches(gmm32, trials=16, batch_size=8, seconds=seconds, **options)
    best = _decisions(batches[0][0])
    neighbours = [sch for sch in batches[1] if _is_neighbour(_decisions(sch), best)]
    assert len(neighbours) >= 4 and strategy.stats.refined >= 4
    assert all(_is_neighbour(_decisions(sch), best) for sch in batches[1][:4])  # taken before the beam's pool
    without, _ = _strategy_batches(gmm32, trials=16, batch_size=8, seconds=seconds, **{**options, "refine_share": 0})
    assert sum(_is_neighbour(_decisions(sch), best) for sch in without[1]) < len(neighbours)


def test_the_passes_narrow_to_keep_to_the_time_share_when_measuring_is_quick(gmm32):
    """Batches "measured" instantly leave the strategy ~no time: after the first pass, passes run at the floor (one
    state, one completion), yet every batch is full."""
    full, _ = _strategy_batches(gmm32, trials=24, batch_size=4)
    narrow, strategy = _strategy_batches(gmm32, trials=24, batch_size=4, time_share=0.1)
    assert [len(b) for b in narrow] == [len(b) for b in full] == [4] * 6
    assert strategy.stats.passes == 6 and strategy.stats.narrowed >= 5
    _, wide = _strategy_batches(gmm32, trials=24, batch_size=4)
    assert strategy.stats.programs < 0.6 * wide.stats.programs


def test_the_passes_keep_their_full_effort_when_measuring_takes_long(gmm32):
    """Batches that take 2 s to "measure" leave a share of a half ample time for a pass over a 32^3 GEMM
    (~0.15 s on a Zen 5, 0.56 s on a Zen 3 beside the rest of the suite), where a share of 1 % leaves too little."""
    _, strategy = _strategy_batches(gmm32, trials=12, batch_size=4, time_share=0.5, measure_s=2.0)
    assert strategy.stats.passes == 3 and strategy.stats.narrowed == 0
    _, strategy = _strategy_batches(gmm32, trials=12, batch_size=4, time_share=0.01, measure_s=0.6)
    assert strategy.stats.passes == 3 and strategy.stats.narrowed == 2


def test_a_later_session_sizes_its_first_pass_by_what_the_earlier_ones_measured(gmm32):
    """One strategy object for two sessions (as ``tune_model`` keeps one per task): its time-share account carries
    over, so the second session's first pass is narrowed too, where a fresh strategy's first pass is not."""
    strategy = BeamSearch(**{**SMALL, "time_share": 0.1})
    _strategy_batches(gmm32, trials=8, batch_size=4, strategy=strategy)
    assert (strategy.stats.passes, strategy.stats.narrowed) == (2, 1)  # the first pass had nothing to go by
    _strategy_batches(gmm32, trials=8, batch_size=4, seed=2, strategy=strategy)
    assert (strategy.stats.passes, strategy.stats.narrowed) == (4, 3)


def test_an_effort_narrows_to_a_program_budget():
    full = Effort(beam_size=4, descents=2, completions=2, mutations=16)
    assert full.within(None, per_state=10, elites=8) is full
    assert full.within(10_000, per_state=10, elites=8) is full  # 10 * 6 * 2 + 8 * 16 = 248 programs
    half = full.within(124, per_state=10, elites=8)
    assert half == Effort(beam_size=2, descents=1, completions=2, mutations=8)
    assert half.programs(10, 8) <= 124
    quarter = full.within(62, per_state=10, elites=8)  # below half: one completion, the rest narrowed by half
    assert quarter == Effort(beam_size=2, descents=1, completions=1, mutations=8)
    assert full.within(0, per_state=10, elites=8) == Effort(beam_size=1, descents=0, completions=1, mutations=2)


def test_the_time_share_allows_what_keeps_the_strategy_at_its_share():
    # 1 s spent on 100 programs, 19 s building and measuring: at 10 %, 19 / 9 - 1 = 1.11 s more, 111 programs
    assert allowed_programs(0.1, strategy_s=1.0, other_s=19.0, programs=100) == pytest.approx(111.1, abs=0.1)
    assert allowed_programs(0.1, strategy_s=3.0, other_s=19.0, programs=100) == 0  # over: the floor effort next
    share = TimeShare(None)
    share.spent(1.0, 100)
    assert share.budget() is None  # no share: no limit


def _is_neighbour(decisions, other):
    same_space = [kind for kind, _ in decisions] == [kind for kind, _ in other]
    return same_space and sum(a != b for a, b in zip(decisions, other)) == 1


def test_batches_are_random_while_the_model_predicts_noise(gmm32):
    batches, strategy = _strategy_batches(gmm32, trials=8, batch_size=4, model=ms.cost_model.RandomModel(seed=1))
    assert [len(b) for b in batches] == [4, 4]
    assert strategy.stats.passes == 0  # TVM's RandomModel (like an untrained XGBModel) ranks nothing


# ---- searches ------------------------------------------------------------------------------------------------------


def _beam_search(space, work_dir, *, trials, batch_size, model=None, seed=3, **options):
    strategy = BeamSearch(**{**SMALL, **options})
    run = mx.search(space, trials=trials, batch_size=batch_size, seed=seed, work_dir=work_dir, strategy=strategy,
                    cost_model=model if model is not None else HashModel())
    return run, strategy


@pytest.fixture(scope="module")
def two_runs(gmm32, tmp_path_factory):
    """The same 10-trial beam search (batches of 4) twice, same seed, in two folders; without refinement, whose
    picks follow the measured times (tested above with given times)."""
    root = tmp_path_factory.mktemp("beam")
    out = []
    for name in ("a", "b"):
        run, strategy = _beam_search(gmm32, root / name, trials=10, batch_size=4, refine_share=0.0)
        batches: list[int] = []
        run.subscribe(lambda batch, sizes=batches: sizes.append(len(batch)), replay=True)
        run.wait()
        out.append((run, strategy, batches))
    return out


@pytest.mark.slow
def test_batches_and_budget_end(two_runs):
    run, strategy, batches = two_runs[0]
    assert run.status == "done", run.error
    assert len(run.events) == 10 and sum(batches) == 10  # (replay=True hands a late subscriber the past as one)
    assert [e.batch for e in run.events] == [0] * 4 + [1] * 4 + [2] * 2
    assert strategy.stats.batches == 3 and strategy.stats.passes == 3  # the model ranks from the start
    assert strategy.stats.rejected == 0 and strategy.stats.strategy_s > 0
    assert len(RunFolder(run.work_dir).database_lines()) == 10


@pytest.mark.slow
def test_a_beam_run_reads_reopens_and_exports_like_any_run(two_runs, tmp_path):
    run, _, _ = two_runs[0]
    df = run.records
    assert len(df) == 10 and df["ok"].all() and "Z.tile_i" in df.columns
    assert all(e.design_space >= 0 and "Z.tile_i" in e.decisions for e in run.events)
    again = mx.open_run(run.work_dir)
    assert again.status == "done" and again.config["strategy"] == "beam"  # a ready BeamSearch reads as its name
    assert again.config["strategy_options"] == {"max_children": 4, "refine_share": 0.0, "time_share": None}
    assert [e.to_json() for e in again.events] == [e.to_json() for e in run.events]
    bundle = run.best.export(tmp_path / "best")
    kernel = mx.load_kernel(tmp_path / "best")
    x, y, _ = run.workload.make_inputs(seed=1)
    np.testing.assert_allclose(kernel(x, y), x @ y, rtol=1e-4, atol=1e-4)
    assert bundle is not None


@pytest.mark.slow
def test_no_program_is_measured_twice(two_runs):
    run, _, _ = two_runs[0]
    hashes = _program_hashes(run)
    assert len(set(hashes)) == len(hashes)


@pytest.mark.slow
def test_two_searches_with_the_same_seed_measure_the_same_programs(two_runs):
    (a, _, _), (b, _, _) = two_runs
    assert [e.trace for e in a.events] == [e.trace for e in b.events]
    assert [dict(e.decisions) for e in a.events] == [dict(e.decisions) for e in b.events]


@pytest.mark.slow
def test_a_space_without_a_valid_program_fails_with_the_reason(tmp_path):
    postprocs = [RejectAll(), *ms.Postproc.create("llvm")]
    space = mx.Space(mx.workload("GMM", n=32, m=32, k=32), postprocs=postprocs)
    run, strategy = _beam_search(space, tmp_path / "none", trials=8, batch_size=4, max_fail_count=8)
    run.wait(120)
    assert run.status == "failed" and not run.events
    assert "beam search: none of the" in run.error and "rejected by postprocessor PyPostproc #1" in run.error
    assert strategy.stats.rejected == strategy.stats.programs > 0


@pytest.mark.slow
def test_a_stop_mid_pass_ends_before_the_next_batch(gmm32, tmp_path):
    model = HashModel()
    run, strategy = _beam_search(gmm32, tmp_path / "stop", trials=40, batch_size=4, model=model)
    armed = threading.Event()

    def arm(batch):  # after the first batch: stop from inside the next pass (its first prediction)
        if not armed.is_set():
            armed.set()
            model.on_predict = lambda: run.stop(wait=False)

    run.subscribe(arm)
    run.wait(120)
    assert run.status == "stopped", run.error
    assert len(run.events) == 4 and len(RunFolder(run.work_dir).database_lines()) == 4
    assert strategy.stats.passes == 1  # the second pass was left mid-way, nothing of it measured
    assert mx.open_run(run.work_dir).status == "stopped"


@pytest.mark.slow
def test_resume_on_a_beam_folder_measures_nothing_again(two_runs, gmm32, tmp_path):
    """A second session on (a copy of) a beam run's folder, with TVM's XGB model: its first batch refines the
    folder's fastest records and is random otherwise (the fresh model predicts noise), then the beam takes over; it
    knows every program of the first session."""
    work_dir = tmp_path / "resume"
    shutil.copytree(two_runs[0][0].work_dir, work_dir)
    second, strategy = _beam_search(gmm32, work_dir, trials=8, batch_size=4, model="xgb")
    second.wait()
    assert second.status == "done", second.error
    assert [e.session for e in second.events] == [0] * 10 + [1] * 8
    assert strategy.stats.batches == 2 and strategy.stats.passes == 1
    hashes = _program_hashes(second)
    assert len(set(hashes)) == 18, "a program of the first session was measured again"
    assert len(RunFolder(work_dir).database_lines()) == 18
    assert mx.open_run(work_dir).config["sessions"] == 2
    # the first batch of the second session refines the first session's fastest program (refine_share of it)
    first = [e for e in second.events if e.session == 0]
    fastest = min(first, key=lambda e: e.latency_s)
    resumed = [e for e in second.events if e.session == 1 and e.batch == min(x.batch for x in second.events
                                                                               if x.session == 1)]
    assert len(resumed) == 4
    assert sum(_neighbour_events(e, fastest) for e in resumed) >= 2


def _neighbour_events(a, b):
    return a.design_space == b.design_space and sum(a.decisions[k] != b.decisions[k] for k in a.decisions) == 1


@pytest.mark.slow
def test_cli_tune_with_the_beam(tmp_path):
    work = tmp_path / "cli"
    argv = ["tune", "GMM", "--shape", "n=32,m=32,k=32", "--trials", "4", "--batch-size", "4", "--work-dir", str(work),
            "--strategy", "beam", "--strategy-option", "beam_size=4,completions=2,max_children=4", "--json", "-q"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 0, err.getvalue()
    summary = json.loads(out.getvalue())
    assert summary["status"] == "done" and summary["trials"] == 4
    config = json.loads((work / "run.json").read_text())
    assert config["strategy"] == "beam"
    assert config["strategy_options"] == {"beam_size": 4, "completions": 2, "max_children": 4}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err := io.StringIO()):
        code = main(["tune", "GMM", "--strategy", "beam", "--strategy-option", "beam_size=0"])
    assert code == 2 and "beam_size must be a positive integer" in err.getvalue()
