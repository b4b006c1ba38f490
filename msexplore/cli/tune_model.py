"""``msexplore tune-model FILE.py:FACTORY``: tune every task of a model under one budget (``mx.tune_model``),
compile it with the best record per task, check it against its source and optionally export it."""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

import msexplore as mx  # called as mx.tune_model(...) etc.: the notebooks' functions, patchable in tests
from msexplore.search import STRATEGIES
from msexplore.search.driver import COST_MODELS

from ..measure import SCREEN_FACTOR
from ..models.tuning import DEFAULT_STRATEGY
from ._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    SCREEN_HELP,
    SearchFailed,
    UsageError,
    bad_input,
    check_output_folders,
    parse_modules,
    parse_options,
    positive,
    print_json,
    rows,
    screen_factor,
    short_error,
    target_text,
    wait_or_stop,
)
from ._factory import call_factory, load_factory, model_from_factory
from ._progress import StepProgress, TrialProgress, wants_bar


def add_parser(commands: Any, *, parents: Sequence[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    tune_model = commands.add_parser(
        "tune-model",
        parents=parents,
        help="tune a whole model's tasks under one budget, compile it, check it against its source",
        description="Tune every task of the model that FILE.py:FACTORY builds (mx.tune_model), compile it with the "
        "best record per task (run.compile()), check its outputs against its source and optionally export it. "
        "FACTORY is a function of FILE.py, called without arguments, that returns (torch.nn.Module in eval mode, "
        "example inputs), a Relax tvm.IRModule, or (IRModule, params dict). Running it again on the same "
        "--work-dir continues from the records there. Ctrl-C stops after the batch being measured (exit 130).",
    )
    tune_model.add_argument("factory", metavar="FILE.py:FACTORY",
                            help="the Python file and the function in it that returns the model")
    tune_model.add_argument("--trials", type=positive, required=True, metavar="N",
                            help="candidates to measure in this session, over all the tasks")
    tune_model.add_argument("--work-dir", metavar="DIR",
                            help="the run's folder (new, or an earlier run's of this model to continue); "
                                 "default ./msexplore-runs/FACTORY-TIME")
    tune_model.add_argument("--modules", default="default", metavar="NAME,...",
                            help="transformation modules of every task, comma-separated (e.g. default,x86-avx512; "
                                 "default: default)")
    tune_model.add_argument("--batch-size", type=positive, default=16, metavar="N",
                            help="candidates per measured batch (16)")
    tune_model.add_argument("--seed", type=positive, default=1, metavar="N", help="random seed of the search (1)")
    tune_model.add_argument("--strategy", choices=list(STRATEGIES), default=DEFAULT_STRATEGY,
                            help=f"search strategy of each task ({DEFAULT_STRATEGY}: a model tunes in about a third "
                                 "of plain tune_relax's time)")
    tune_model.add_argument("--strategy-option", action="append", default=[], metavar="K=V,...",
                            help="strategy options, e.g. beam_size=4, or with --strategy evolutionary "
                                 "population_size=32,init_min_unmeasured=8 (TVM's names)")
    tune_model.add_argument("--cost-model", choices=COST_MODELS, default="xgb", help="cost model (xgb)")
    tune_model.add_argument("--screen", type=screen_factor, default=SCREEN_FACTOR, metavar="FACTOR", help=SCREEN_HELP)
    tune_model.add_argument("--target", metavar="TARGET",
                            help="'llvm -mcpu=znver5 -num-cores 2' or a JSON dict; default: this machine's CPU")
    tune_model.add_argument("--conv-layout", choices=["NHWC"], default=None,
                            help="compute 2-D convolutions channels-last (what the x86-avx512 module needs); "
                            "default: the model's own layout")
    tune_model.add_argument("--export", metavar="DIR",
                            help="export the compiled model to DIR (load it with msexplore.load_model)")
    tune_model.add_argument("--overwrite", action="store_true", help="with --export: replace DIR if it exists")
    tune_model.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    tune_model.set_defaults(handler=_tune_model)
    return tune_model


def _tune_model(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # the cheap checks first; loading the factory file runs the user's code (and maybe imports torch)
    strategy_options = parse_options(args.strategy_option)
    with bad_input("--target: "):
        target = mx.resolve_target(args.target)
    modules = parse_modules(args.modules, target)
    check_output_folders(args.work_dir, args.export, args.overwrite)

    if not args.quiet:
        print(f"[msexplore] building the model: {args.factory}", file=err, flush=True)
    name, factory = load_factory(args.factory)
    model = model_from_factory(call_factory(factory, name), name, target, args.conv_layout)
    with bad_input():  # the tasks are extracted here: a model TVM cannot legalize is a ModelImportError
        run = mx.tune_model(
            model, args.trials, modules=modules, work_dir=args.work_dir, batch_size=args.batch_size, seed=args.seed,
            strategy=args.strategy, cost_model=args.cost_model, screen=args.screen, **strategy_options,
        )

    bar = wants_bar(args, err)
    if not args.quiet:
        cfg, progress = run.config, run.progress
        before = progress.measured_in_folder - progress.trials_done  # the folder's earlier sessions
        print(f"[msexplore] tuning {model!r} on {target_text(model.target)}; {cfg['trials']} trials in batches of "
              f"{cfg['batch_size']}, seed {cfg['seed']}; work dir {run.work_dir}", file=err, flush=True)
        if before:
            print(f"[msexplore] continuing: the work dir already holds {before} measured candidates", file=err)
    trials = TrialProgress(err, run.progress.trials_total, bar=bar, lines=not args.quiet, desc="tune-model")
    unsubscribe = run.subscribe(lambda task, batch: _show_progress(run, task, trials))
    try:
        interrupted = wait_or_stop(run, err, tick=trials.tick)
    finally:
        unsubscribe()
        trials.close()

    failed = run.status == "failed"
    compiled, exported, compile_error, export_error = None, None, None, None
    if not interrupted and not failed:  # errors are reported after the summary: the tuning itself went well
        steps = 2 if args.export else 1
        with StepProgress(err, steps, bar=bar, lines=not args.quiet, desc=model.name) as step:
            step.begin(f"compiling {model.name} with the best record of each task")
            try:
                compiled = _compile_model(run)
            except SearchFailed as error:
                compile_error = error
            if compiled is not None and not compiled.check.ok:
                compile_error = SearchFailed(
                    f"{model.name}: {compiled.check}" + ("; not exported" if args.export else ""))
            elif compiled is not None and args.export:
                step.begin(f"exporting {model.name} to {args.export}")
                try:
                    exported = _export_model(compiled, args.export, args.overwrite)
                except (UsageError, SearchFailed) as error:
                    export_error = error
    summary = _tune_model_summary(args.factory, model, run, compiled, exported, interrupted)
    summary["compile_error"] = None if compile_error is None else str(compile_error)
    summary["export_error"] = None if export_error is None else str(export_error)
    if args.json:
        print_json(summary, out)
    else:
        _print_tune_model_summary(summary, run.tasks, out)
    if interrupted:
        if failed:
            print(f"msexplore tune-model: the tuning failed while stopping: {short_error(run.error)}", file=err)
        print(f"msexplore tune-model: interrupted, nothing compiled; the records are kept: run again with "
              f"--work-dir {run.work_dir} to continue", file=err)
        return EXIT_INTERRUPTED
    if failed:
        raise SearchFailed(f"the tuning failed: {short_error(run.error)} (full text in {run.work_dir}/status.json)")
    if compile_error is not None:
        raise compile_error
    if export_error is not None:
        raise export_error
    return EXIT_OK


def _compile_model(run: Any) -> Any:
    """``run.compile()``; its fallback and check warnings are printed by the CLI itself, so they are not repeated."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*had no tuning record and got a fallback schedule")
            warnings.filterwarnings("ignore", message=r".*: outputs DO NOT match")
            return run.compile()
    except Exception as error:  # noqa: BLE001 - TVM raises built-in types; the CLI reports one line, exit 3
        raise SearchFailed(f"compiling {run.config.get('model')} failed: {short_error(error)}") from error


def _export_model(compiled: Any, path: str, overwrite: bool) -> Any:
    """``compiled.export``; a folder in the way is bad input (2), a library that differs on reload a failure (3)."""
    try:
        return compiled.export(path, overwrite=overwrite)
    except FileExistsError as error:
        raise UsageError(f"export: {error}") from error
    except Exception as error:  # noqa: BLE001 - TVM raises built-in types; the CLI reports one line, exit 3
        raise SearchFailed(f"export of {compiled.name} failed: {short_error(error)}") from error


def _show_progress(run: Any, task: str, trials: TrialProgress) -> None:
    """A measured batch of ``task``: the run's progress line, or the bar with the task and the estimate."""
    p = run.progress
    latency = "" if p.estimated_latency_s is None else f", model {p.estimated_latency_s * 1e3:.4g} ms"
    trials.update(p.trials_done, f"{task}: {_model_progress(run)}",
                  postfix=f"{task}, {p.tasks_verified}/{p.tasks} tasks verified{latency}")


def _model_progress(run: Any) -> str:
    p = run.progress
    latency = (f"estimated model latency {p.estimated_latency_s * 1e3:.4f} ms" if p.estimated_latency_s is not None
               else f"{p.tasks_verified}/{p.tasks} tasks with a verified schedule")
    return f"{p.status}: {p.trials_done}/{p.trials_total} trials, {latency}, {p.elapsed_s:.0f} s"


def _tune_model_summary(
    factory: str, model: Any, run: Any, compiled: Any, exported: Any, interrupted: bool
) -> dict[str, Any]:
    progress = run.progress
    return {
        "model": model.name,
        "factory": factory,
        "source": model.source,
        "inputs": [str(spec) for spec in model.inputs],
        "work_dir": run.work_dir,
        "status": run.status,
        "interrupted": interrupted,
        "trials": progress.trials_done,  # this session
        "trials_budget": progress.trials_total,
        "measured_in_folder": progress.measured_in_folder,
        "failures": progress.failures,  # in the work dir, over every session
        "estimated_latency_s": progress.estimated_latency_s,
        "elapsed_s": progress.elapsed_s,
        "tasks": rows(run.tasks),
        "check": None if compiled is None else dataclasses.asdict(compiled.check),
        "fallbacks": None if compiled is None else [dataclasses.asdict(f) for f in compiled.fallbacks],
        "export": None if exported is None else str(os.path.abspath(exported.path)),
        "error": run.error,
    }


def _print_tune_model_summary(summary: dict[str, Any], tasks: Any, out: TextIO) -> None:
    latency = summary["estimated_latency_s"]
    estimate = "no estimate (a task has no verified schedule)" if latency is None else f"{latency * 1e3:.4f} ms"
    print(f"status: {summary['status']}, {summary['trials']}/{summary['trials_budget']} trials this session over "
          f"{len(summary['tasks'])} tasks ({summary['measured_in_folder']} in the work dir, {summary['failures']} "
          f"failed), {summary['elapsed_s']:.0f} s", file=out)
    print(f"estimated model latency: {estimate}", file=out)
    # a session that just tuned has no confirmation of its tasks to show (more candidates make one stale)
    tasks = tasks.drop(columns=["confirmed_latency_s"])
    table = tasks.assign(best_latency_s=tasks["best_latency_s"] * 1e3, time_s=tasks["time_s"] * 1e3)
    table = table.rename(columns={"best_latency_s": "best_latency_ms", "time_s": "time_ms"})
    print(f"\n{table.to_string(index=False, float_format=lambda x: f'{x:.4g}', na_rep='-')}\n", file=out)
    if summary["check"] is not None:
        check = summary["check"]
        verdict = "match" if check["ok"] else "DO NOT match"
        print(f"check: outputs {verdict} {check['against']} (max abs error {check['max_abs_error']:.2e})", file=out)
        fallbacks = summary["fallbacks"]
        print("fallbacks: none, every task has a tuning record" if not fallbacks else
              f"fallbacks: {len(fallbacks)} task(s) without a tuning record got a measured sample of their space:",
              file=out)
        for f in fallbacks:
            cost = "unmeasured" if f["latency_s"] is None else f"{f['latency_s'] * 1e6:.1f} us x {f['weight']}"
            print(f"  {f['task']}: {f['how']} ({cost})", file=out)
    print(f"work dir: {summary['work_dir']}", file=out)
    if summary["export"]:
        print(f"exported: {summary['export']} (load: msexplore.load_model({summary['export']!r}))", file=out)
