"""``search``: check the arguments, prepare the run folder, and run MetaSchedule's tuning on a thread."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import os
from typing import Any

from .. import _quiet
from ..common import check_positive_int
from ..measure import SCREEN_FACTOR, Screen
from ..target import this_machine
from ..workers import Workers
from .folder import RunFolder
from .run import BatchRecorder, SearchRun
from .strategies import create_strategy, described

__all__ = ["search"]

COST_MODELS = ("xgb", "random")
GENERATION_SIZE = 64  # candidates one generation of the evolutionary search picks by default (TVM's own default)


def search(
    space: Any,
    trials: int = 64,
    *,
    strategy: Any = "evolutionary",
    work_dir: str | os.PathLike | None = None,
    batch_size: int = 16,
    seed: int = 1,
    cost_model: Any = "xgb",
    num_threads: int | None = None,
    check: bool = True,
    evaluator: Any = None,
    rpc: Any = None,
    build_timeout_s: float = 60,
    run_timeout_s: float = 60,
    workers: Any = None,
    batches_per_generation: int | None = None,
    screen: float | None = SCREEN_FACTOR,
    **strategy_options: Any,
) -> SearchRun:
    """Start a search of ``trials`` measured candidates over ``space``; returns at once with the running run.

    Parameters
    ----------
    space
        An ``mx.Space``.
    trials
        Candidates to measure in this session (a folder that already has records continues from them).
    strategy
        ``"evolutionary"`` (default), ``"replay-trace"``, ``"replay-func"``, ``"beam"`` (msexplore's coarse-to-fine
        beam search over the trace's decisions, after Halide's Adams2019), or a tvm ``SearchStrategy``; its options
        as keywords (TVM's ``population_size=...``, ``eps_greedy=...``; the beam's ``beam_size=4``,
        ``completions=2``, ``epsilon=0.05``, ... see ``msexplore.search.beam.BeamSearch``).
    work_dir
        The run's folder: MetaSchedule's JSON database, ``events.jsonl``, ``run.json``, logs. Default: a new
        folder under ``./msexplore-runs``.
    batch_size
        Candidates per measured batch (MetaSchedule's ``num_trials_per_iter``); smaller means livelier progress.
    cost_model
        ``"xgb"`` (trained from the first batch on, not after 100 samples as TVM's default), ``"random"``, or a
        tvm ``CostModel``.
    check
        Compare every candidate's outputs with the workload's reference; a mismatch is a recorded failure.
    evaluator
        A ``ms.runner.EvaluatorConfig`` for timing; ``rpc`` an ``mx.RPCSettings`` to measure through a tracker.
    workers
        ``msexplore.workers.Workers`` to build and measure in, shared with other searches (a model run's task
        searches share one); their timeouts then apply. Default: the search starts its own and stops them at its end.
    batches_per_generation
        Measured batches filled by one generation of the strategy (see ``msexplore.search.guard``): the evolutionary
        search spends most of a small batch's time evolving its population, so by default it picks 64 candidates
        at once (TVM's own generation size), measured and published ``batch_size`` at a time; other strategies 1.
    screen
        Time in full (``evaluator``'s window) only the candidates whose brief timing (2 ms of calls) is within this
        factor of the best latency so far, this folder's earlier sessions included; slower ones are recorded with
        the brief timing (see ``msexplore.measure.Screen``). None times every candidate in full. Not applied with
        ``check=False`` or ``rpc``.
    """
    from ..space import Space

    if not isinstance(space, Space):
        raise TypeError(f"search expects an mx.Space, got {type(space).__name__}")
    check_positive_int("trials", trials)
    check_positive_int("batch_size", batch_size)
    check_positive_int("seed", seed)
    check_positive_int("num_threads", num_threads, or_none=True)
    if workers is not None and (not isinstance(workers, Workers) or workers.closed):
        raise TypeError(f"workers must be open msexplore.workers.Workers or None, got {workers!r}")
    check_positive_int("batches_per_generation", batches_per_generation, or_none=True)
    check_screen(screen)
    strategy_obj = create_strategy(strategy, strategy_options)
    if batches_per_generation is None:
        batches_per_generation = default_batches_per_generation(strategy_obj, batch_size)
    if isinstance(cost_model, str) and cost_model not in COST_MODELS:
        raise ValueError(f"unknown cost_model {cost_model!r}; accepted: {list(COST_MODELS)} or a tvm CostModel")
    space.require_design_spaces()
    folder = RunFolder(_prepare_folder(work_dir, space))

    previous = folder.read_config()
    if previous is not None and previous["workload"] != space.workload.to_json():
        raise ValueError(
            f"{folder.path} holds a run of workload {previous['workload'].get('name')} "
            f"{previous['workload'].get('params', '')}; this space is {space.workload!r}. Use another work_dir."
        )
    history, session = [], 0
    if previous is not None:
        history = folder.reconcile()  # a killed earlier session: its database and log agree again before resuming
        session = int(previous.get("sessions", 0))
    strategy_name, recorded_options = described(strategy, strategy_options)
    config = {
        "workload": space.workload.to_json(),
        "target": str(space.target),
        "modules": [m.name for m in space.modules],
        "strategy": strategy_name,
        "strategy_options": recorded_options,
        "trials": trials,
        "batch_size": batch_size,
        "batches_per_generation": batches_per_generation,
        "seed": seed,
        "cost_model": cost_model if isinstance(cost_model, str) else type(cost_model).__name__,
        "check": check,
        "screen": screen if check and rpc is None else None,
        "rpc": None if rpc is None else dataclasses.asdict(rpc),
        "sessions": session + 1,
        "machine": this_machine(),
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    folder.write_config(config)
    model = make_cost_model(cost_model, batch_size, num_threads)
    run = SearchRun(folder.path, config=config, space=space, session=session, history=history, cost_model=model)
    screening = None  # (factor, the best latency of the earlier sessions)
    if config["screen"] is not None:
        screening = (screen, min((event.latency_s for event in history if event.ok), default=None))
    tune = functools.partial(
        _tune, space, folder, model, strategy_obj, trials, batch_size, batches_per_generation, seed, num_threads,
        check, evaluator, rpc, build_timeout_s, run_timeout_s, workers, screening,
    )
    return run.start(tune)


def check_screen(screen: Any) -> None:
    """``screen=`` of ``search`` (and ``tune_model``): None or a factor above 1."""
    if screen is not None and (isinstance(screen, bool) or not isinstance(screen, (int, float)) or screen <= 1):
        raise ValueError(f"screen must be None or a factor above 1 (e.g. 1.5), got {screen!r}")


def _prepare_folder(work_dir: Any, space: Any) -> str:
    if work_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        work_dir = os.path.join("msexplore-runs", f"{space.workload.name}-{stamp}")
    work_dir = os.path.abspath(os.fspath(work_dir))
    if os.path.exists(work_dir) and not os.path.isdir(work_dir):
        raise ValueError(f"work_dir {work_dir!r} is a file; give a folder (new or one of an earlier run)")
    os.makedirs(work_dir, exist_ok=True)
    return work_dir


def default_batches_per_generation(strategy: Any, batch_size: int) -> int:
    """4 batches of 16 per generation of the evolutionary search (64 candidates, TVM's own), 1 for the others."""
    from tvm.s_tir import meta_schedule as ms

    if isinstance(strategy, ms.search_strategy.EvolutionarySearch):
        return max(1, GENERATION_SIZE // batch_size)
    return 1


def untrained(cost_model: Any) -> bool:
    """Whether ``cost_model`` is an XGBoost model that has seen no measurement yet (its scores would be noise)."""
    from tvm.s_tir import meta_schedule as ms

    return isinstance(cost_model, ms.cost_model.XGBModel) and getattr(cost_model, "data_size", 0) == 0


def make_cost_model(spec: Any, batch_size: int, num_threads: int | None) -> Any:
    """The tvm ``CostModel`` that ``cost_model=spec`` names (a ready one is returned as it is)."""
    from tvm.s_tir import meta_schedule as ms

    if not isinstance(spec, str):
        return spec
    if spec == "random":
        return ms.cost_model.RandomModel()
    # TVM's default waits for 100 measured samples and predicts random numbers until then.
    return ms.cost_model.XGBModel(
        num_warmup_samples=batch_size, num_tuning_cores=num_threads or os.cpu_count() or 1, adaptive_training=True
    )


def _tune(
    space: Any,
    folder: RunFolder,
    cost_model: Any,
    strategy: Any,
    trials: int,
    batch_size: int,
    batches_per_generation: int,
    seed: int,
    num_threads: int | None,
    check: bool,
    evaluator: Any,
    rpc: Any,
    build_timeout_s: float,
    run_timeout_s: float,
    workers: Workers | None,
    screening: tuple[float, float | None] | None,
    recorder: BatchRecorder,
) -> None:
    """The session's work on the run's thread: MetaSchedule's tuning, its batches handed to ``recorder``."""
    from tvm.s_tir import meta_schedule as ms

    from ..measure import make_builder, make_runner
    from .guard import GuardedStrategy
    from .timing import TimedBuilder, TimedRunner

    threads = int(num_threads or space.target.attrs.get("num-cores") or os.cpu_count() or 1)
    own = workers is None
    if own:
        workers = Workers(
            threads, build_timeout_s=build_timeout_s, run_timeout_s=run_timeout_s, log_path=folder.workers_log
        )
    try:
        builder = make_builder(workers=workers, local=rpc is None)
        screen = None if screening is None else Screen(screening[0], best_s=screening[1], tally=recorder.spent)
        runner = make_runner(
            space.workload, check_dir=os.path.join(folder.path, "check"), rpc=rpc, evaluator=evaluator,
            timeout_sec=run_timeout_s, check=check, workers=workers, screen=screen,
        )
        guarded = GuardedStrategy(
            strategy,
            recorder.stop_requested,
            batches_per_generation,
            # random first batch: only where the strategy would otherwise evolve a population by an empty model
            warm_start=isinstance(strategy, ms.search_strategy.EvolutionarySearch) and untrained(cost_model),
            spent=recorder.spent,
        )
        builder, runner = TimedBuilder(builder, recorder.spent), TimedRunner(runner, recorder.spent)
        _run_tune_tir(space, folder, cost_model, guarded, trials, batch_size, seed, threads, builder, runner, recorder)
    finally:
        if own:
            workers.close()


def _run_tune_tir(
    space: Any, folder: RunFolder, cost_model: Any, strategy: Any, trials: int, batch_size: int, seed: int,
    threads: int, builder: Any, runner: Any, recorder: BatchRecorder,
) -> None:
    from tvm.s_tir import meta_schedule as ms

    from .hooks import BatchScores, Predict, Publish
    from .timing import TimedCallback

    scores = BatchScores()
    defaults = [TimedCallback(callback, recorder.spent) for callback in ms.MeasureCallback.create("default")]
    callbacks = [Predict(cost_model, scores, recorder), *defaults]
    callbacks.append(Publish(recorder, scores))
    recorder.restart_clock()
    _quiet.install()  # tune_tir resets TVM's logger to DEBUG; set it back right before the call
    ms.tune_tir(
        space.workload.func,
        space.target,
        work_dir=folder.path,
        max_trials_global=trials,
        num_trials_per_iter=batch_size,
        space=space.space_generator(),
        strategy=strategy,
        builder=builder,
        runner=runner,
        database=folder.database(),
        cost_model=cost_model,
        measure_callbacks=callbacks,
        task_scheduler="round-robin",
        num_tuning_cores=threads,
        seed=seed,
    )
