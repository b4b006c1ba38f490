"""``msexplore tune WORKLOAD``: search one workload's schedules (``mx.search``), keep the records in a work dir and
optionally export the best kernel."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from typing import Any, TextIO

import msexplore as mx  # called as mx.search(...) etc.: the notebooks' functions, patchable in tests
from msexplore.measure import RPCSettings
from msexplore.search import STRATEGIES
from msexplore.search.driver import COST_MODELS

from ..measure import SCREEN_FACTOR
from ._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    SCREEN_HELP,
    SearchFailed,
    UsageError,
    bad_input,
    best_text,
    candidate_json,
    check_output_folders,
    export_best,
    no_valid_candidate,
    parse_modules,
    parse_options,
    parse_shape,
    positive,
    print_json,
    screen_factor,
    short_error,
    target_text,
    wait_or_stop,
)
from ._progress import StepProgress, TrialProgress, wants_bar


def add_parser(commands: Any, *, parents: Sequence[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    tune = commands.add_parser(
        "tune",
        parents=parents,
        help="search a workload's schedules and keep the records in a work dir",
        description="Search a workload's schedules with MetaSchedule. Running it again on the same --work-dir "
        "continues from the records there. Ctrl-C stops after the batch being measured (exit 130).",
    )
    tune.add_argument("workload", metavar="WORKLOAD",
                      help="an operator name: GMM, C2D, ... (see `msexplore workloads`)")
    tune.add_argument("--shape", action="append", default=[], metavar="K=V,...",
                      help="shape parameters, e.g. n=512,m=512,k=512 (the rest keep their defaults)")
    tune.add_argument("--trials", type=positive, default=64, metavar="N",
                      help="candidates to measure in this session (64)")
    tune.add_argument("--work-dir", metavar="DIR",
                      help="the run's folder (new, or an earlier run's to continue); "
                           "default ./msexplore-runs/NAME-TIME")
    tune.add_argument("--strategy", choices=list(STRATEGIES), default="evolutionary",
                      help="search strategy (evolutionary)")
    tune.add_argument("--strategy-option", action="append", default=[], metavar="K=V,...",
                      help="strategy options, e.g. population_size=32,init_min_unmeasured=8 (TVM's names)")
    tune.add_argument("--batch-size", type=positive, default=16, metavar="N",
                      help="candidates per measured batch (16)")
    tune.add_argument("--seed", type=positive, default=1, metavar="N", help="random seed of the search (1)")
    tune.add_argument("--cost-model", choices=COST_MODELS, default="xgb", help="cost model (xgb)")
    tune.add_argument("--screen", type=screen_factor, default=SCREEN_FACTOR, metavar="FACTOR", help=SCREEN_HELP)
    tune.add_argument("--target", metavar="TARGET",
                      help="'llvm -mcpu=znver5 -num-cores 2' or a JSON dict; default: this machine's CPU")
    tune.add_argument("--modules", default="default", metavar="NAME,...",
                      help="transformation modules, comma-separated: 'default', default module names, or "
                           "hardware modules such as 'x86-vnni' (e.g. default,x86-vnni; default: default)")
    tune.add_argument("--export", metavar="DIR", help="export the best kernel to DIR when the search ends")
    tune.add_argument("--overwrite", action="store_true", help="with --export: replace DIR if it exists")
    tune.add_argument("--rpc-tracker", metavar="HOST:PORT",
                      help="measure on a device from this RPC tracker; 'env' reads TVM_TRACKER_HOST/PORT/KEY")
    tune.add_argument("--rpc-key", metavar="KEY", help="the device key registered with the tracker")
    tune.add_argument("--no-check", action="store_true",
                      help="do not compare each candidate's outputs with the workload's reference")
    tune.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    tune.set_defaults(handler=_tune)
    return tune


def _tune(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # every cheap check first: building the space costs seconds (TVM imports its intrinsics once per process)
    params = parse_shape(args.shape)
    strategy_options = parse_options(args.strategy_option)
    with bad_input():
        workload = mx.workload(args.workload, **params)
    with bad_input("--target: "):
        target = mx.resolve_target(args.target)
    rpc = _rpc_settings(args.rpc_tracker, args.rpc_key)
    modules = parse_modules(args.modules, target)
    check_output_folders(args.work_dir, args.export, args.overwrite)

    if not args.quiet:
        print(f"[msexplore] building the search space of {workload!r}", file=err, flush=True)
    with bad_input():
        space = mx.Space(workload, modules=modules, target=target)
    try:
        with bad_input():
            run = mx.search(
                space, args.trials, strategy=args.strategy, work_dir=args.work_dir, batch_size=args.batch_size,
                seed=args.seed, cost_model=args.cost_model, check=not args.no_check, rpc=rpc, screen=args.screen,
                **strategy_options,
            )
    except mx.SpaceError as error:
        raise SearchFailed(str(error)) from error

    bar = wants_bar(args, err)
    if not args.quiet:
        _print_start(run, space, err)
    progress = TrialProgress(err, run.progress.trials_total, bar=bar, lines=not args.quiet, desc="tune")
    unsubscribe = run.subscribe(lambda batch: _show_progress(run.progress, progress))
    try:
        interrupted = wait_or_stop(run, err, tick=progress.tick)
    finally:
        unsubscribe()
        progress.close()

    exported, export_error = None, None
    best = run.best
    failed = run.status == "failed"
    if args.export and not interrupted and not failed and best is not None:
        try:
            with StepProgress(err, 1, bar=bar, desc="export") as steps:
                steps.begin(f"trial {best.index}: compiling, checking, writing {args.export}")
                exported = export_best(best, args.export, args.overwrite)
        except (UsageError, SearchFailed) as error:  # reported after the summary: the search itself went well
            export_error = error
    summary = _tune_summary(run, best, exported, interrupted)
    summary["export_error"] = None if export_error is None else str(export_error)
    if args.json:
        print_json(summary, out)
    else:
        _print_tune_summary(summary, out)
    if interrupted:
        if failed:
            print(f"msexplore tune: the search failed while stopping: {short_error(run.error)}", file=err)
        if args.export:
            print(f"msexplore tune: interrupted, nothing exported; later: msexplore export {run.work_dir} "
                  f"{args.export}", file=err)
        return EXIT_INTERRUPTED
    if failed:
        raise SearchFailed(f"the search failed: {short_error(run.error)} (full text in {run.work_dir}/status.json)")
    if best is None:
        raise SearchFailed(no_valid_candidate(run))
    if export_error is not None:
        raise export_error
    return EXIT_OK


def _rpc_settings(tracker: str | None, key: str | None) -> RPCSettings | None:
    """``--rpc-tracker`` and ``--rpc-key`` as RPCSettings (None: measure on this machine); UsageError if they clash."""
    if tracker is None:
        if key is not None:
            raise UsageError("--rpc-key needs --rpc-tracker HOST:PORT (or --rpc-tracker env)")
        return None
    if tracker == "env":
        with bad_input("--rpc-tracker env: "):
            settings = RPCSettings.from_env()
        return settings if key is None else dataclasses.replace(settings, key=key)
    host, colon, port = tracker.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise UsageError(f"--rpc-tracker: expected HOST:PORT (e.g. 127.0.0.1:9190) or 'env', got {tracker!r}")
    if key is None:
        raise UsageError("--rpc-tracker needs --rpc-key KEY, the device key registered with the tracker")
    with bad_input("--rpc-tracker: "):
        return RPCSettings(host, int(port), key)


def _print_start(run: Any, space: Any, err: TextIO) -> None:
    cfg = run.config
    print(f"[msexplore] tuning on {target_text(space.target)}; "
          f"{cfg['trials']} trials in batches of {cfg['batch_size']}, "
          f"{cfg['strategy']}, seed {cfg['seed']}; work dir {run.work_dir}", file=err)
    before = run.progress.measured_in_folder
    if before:
        print(f"[msexplore] continuing: the work dir already holds {before} measured candidates", file=err)
    err.flush()


def _show_progress(p: Any, progress: TrialProgress) -> None:
    """A measured batch: the run's progress line, or the bar (its ETA is tqdm's) with the best and the failures."""
    best = "no valid candidate yet" if p.best_latency_s is None else f"best {p.best_latency_s * 1e3:.4g} ms"
    progress.update(p.trials_done, str(p), postfix=f"{best}, {p.failures} failed")


def _tune_summary(run: Any, best: Any, exported: Any, interrupted: bool) -> dict[str, Any]:
    progress = run.progress
    return {
        "status": run.status,
        "interrupted": interrupted,
        "workload": run.workload.to_json(),
        "work_dir": run.work_dir,
        "trials": progress.trials_done,
        "trials_budget": progress.trials_total,
        "measured_in_folder": progress.measured_in_folder,
        "failures": progress.failures,
        "best_latency_s": progress.best_latency_s,
        "best_gflops": progress.best_gflops,
        "best": candidate_json(best),
        "elapsed_s": progress.elapsed_s,
        "export": None if exported is None else str(os.path.abspath(exported.path)),
        "error": run.error,
    }


def _print_tune_summary(summary: dict[str, Any], out: TextIO) -> None:
    folder = summary["measured_in_folder"]
    print(f"status: {summary['status']}, {summary['trials']}/{summary['trials_budget']} trials this session "
          f"({folder} in the work dir), {summary['failures']} failed, {summary['elapsed_s']:.0f} s", file=out)
    print(f"best: {best_text(summary['best'])}", file=out)
    print(f"work dir: {summary['work_dir']}", file=out)
    if summary["export"]:
        print(f"exported: {summary['export']}", file=out)
