"""``msexplore`` on the command line: tune, tune-model, show and export over the same calls the notebooks make.

``main(argv)`` parses, runs one subcommand and returns the exit code (the console script calls
``sys.exit(main())``). Results go to stdout (text, or JSON with ``--json``); progress and errors go to stderr.

Exit codes
----------
0    done
2    bad input: a usage error, an unknown workload or module, a bad ``--shape``/``--target``, a work dir that is
     a file or holds no run, an export folder that exists without ``--overwrite``, a model factory (FILE.py:NAME)
     that is missing, fails or returns no model, a model TVM cannot import (one line on stderr)
3    the search failed, or there is no valid candidate to export, or a compiled model fails its check
130  interrupted (Ctrl-C): the search stopped after the batch it was measuring; every record is kept
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import reprlib
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import tvm

import msexplore as mx  # called as mx.search(...) etc.: the notebooks' functions, patchable in tests
from msexplore.common import error_line, plain_json
from msexplore.measure import RPCSettings
from msexplore.models.torch_import import TORCH_MISSING
from msexplore.modules import resolve_modules
from msexplore.search import STRATEGIES
from msexplore.search.driver import COST_MODELS

__all__ = ["main", "EXIT_OK", "EXIT_USAGE", "EXIT_FAILED", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 130


class UsageError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


class SearchFailed(Exception):
    """The search failed or found nothing valid: reported on stderr, exit code 3."""


@contextlib.contextmanager
def _bad_input(what: str = "") -> Iterator[None]:
    """The library raises ValueError/TypeError (and FileExistsError) for arguments it rejects: that is bad input."""
    try:
        yield
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as err:
        raise UsageError(f"{what}{err}") from err


# ---- the parser ----
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument("--debug", action="store_true", help="show the Python traceback of every error")

    parser = argparse.ArgumentParser(
        prog="msexplore",
        description="Explore, tune and export TVM MetaSchedule kernels (the notebooks' calls, headless).",
        epilog="Exit codes: 0 ok, 2 bad input, 3 search failed or no valid candidate, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {mx.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tune = commands.add_parser(
        "tune",
        parents=[common],
        help="search a workload's schedules and keep the records in a work dir",
        description="Search a workload's schedules with MetaSchedule. Running it again on the same --work-dir "
        "continues from the records there. Ctrl-C stops after the batch being measured (exit 130).",
    )
    tune.add_argument("workload", metavar="WORKLOAD",
                      help="an operator name: GMM, C2D, ... (see `msexplore workloads`)")
    tune.add_argument("--shape", action="append", default=[], metavar="K=V,...",
                      help="shape parameters, e.g. n=512,m=512,k=512 (the rest keep their defaults)")
    tune.add_argument("--trials", type=_positive, default=64, metavar="N",
                      help="candidates to measure in this session (64)")
    tune.add_argument("--work-dir", metavar="DIR",
                      help="the run's folder (new, or an earlier run's to continue); "
                           "default ./msexplore-runs/NAME-TIME")
    tune.add_argument("--strategy", choices=list(STRATEGIES), default="evolutionary",
                      help="search strategy (evolutionary)")
    tune.add_argument("--strategy-option", action="append", default=[], metavar="K=V,...",
                      help="strategy options, e.g. population_size=32,init_min_unmeasured=8 (TVM's names)")
    tune.add_argument("--batch-size", type=_positive, default=16, metavar="N",
                      help="candidates per measured batch (16)")
    tune.add_argument("--seed", type=_positive, default=1, metavar="N", help="random seed of the search (1)")
    tune.add_argument("--cost-model", choices=COST_MODELS, default="xgb", help="cost model (xgb)")
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

    tune_model = commands.add_parser(
        "tune-model",
        parents=[common],
        help="tune a whole model's tasks under one budget, compile it, check it against its source",
        description="Tune every task of the model that FILE.py:FACTORY builds (mx.tune_model), compile it with the "
        "best record per task (run.compile()), check its outputs against its source and optionally export it. "
        "FACTORY is a function of FILE.py, called without arguments, that returns (torch.nn.Module in eval mode, "
        "example inputs), a Relax tvm.IRModule, or (IRModule, params dict). Running it again on the same "
        "--work-dir continues from the records there. Ctrl-C stops after the batch being measured (exit 130).",
    )
    tune_model.add_argument("factory", metavar="FILE.py:FACTORY",
                            help="the Python file and the function in it that returns the model")
    tune_model.add_argument("--trials", type=_positive, required=True, metavar="N",
                            help="candidates to measure in this session, over all the tasks")
    tune_model.add_argument("--work-dir", metavar="DIR",
                            help="the run's folder (new, or an earlier run's of this model to continue); "
                                 "default ./msexplore-runs/FACTORY-TIME")
    tune_model.add_argument("--modules", default="default", metavar="NAME,...",
                            help="transformation modules of every task, comma-separated (e.g. default,x86-avx512; "
                                 "default: default)")
    tune_model.add_argument("--batch-size", type=_positive, default=16, metavar="N",
                            help="candidates per measured batch (16)")
    tune_model.add_argument("--seed", type=_positive, default=1, metavar="N", help="random seed of the search (1)")
    tune_model.add_argument("--strategy", choices=list(STRATEGIES), default="evolutionary",
                            help="search strategy of each task (evolutionary)")
    tune_model.add_argument("--strategy-option", action="append", default=[], metavar="K=V,...",
                            help="strategy options, e.g. population_size=32,init_min_unmeasured=8 (TVM's names)")
    tune_model.add_argument("--cost-model", choices=COST_MODELS, default="xgb", help="cost model (xgb)")
    tune_model.add_argument("--target", metavar="TARGET",
                            help="'llvm -mcpu=znver5 -num-cores 2' or a JSON dict; default: this machine's CPU")
    tune_model.add_argument("--export", metavar="DIR",
                            help="export the compiled model to DIR (load it with msexplore.load_model)")
    tune_model.add_argument("--overwrite", action="store_true", help="with --export: replace DIR if it exists")
    tune_model.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    tune_model.set_defaults(handler=_tune_model)

    show = commands.add_parser(
        "show", parents=[common], help="a run's status, config, trials, failures and best candidates",
        description="Show the run in WORK_DIR: status, config, trials, failures, the best candidates.",
    )
    show.add_argument("work_dir", metavar="WORK_DIR", help="the folder of a run (tune --work-dir)")
    show.add_argument("--top", type=_positive, default=5, metavar="K", help="rows of the best-candidates table (5)")
    show.set_defaults(handler=_show)

    export = commands.add_parser(
        "export", parents=[common], help="export a run's best kernel as a bundle that loads without msexplore's state",
        description="Compile, check and write the best candidate of WORK_DIR to OUT_DIR (kernel.so, schedule.py, "
        "trace, record, manifest.json); load it with msexplore.export.load_kernel.",
    )
    export.add_argument("work_dir", metavar="WORK_DIR", help="the folder of a run (tune --work-dir)")
    export.add_argument("out_dir", metavar="OUT_DIR", help="the bundle folder to write")
    export.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    export.set_defaults(handler=_export)

    workloads = commands.add_parser(
        "workloads", parents=[common], help="the named operators, their shape parameters and defaults",
        description="List the named operators with their shape parameters (defaults) and arguments.",
    )
    workloads.add_argument("names", nargs="*", metavar="NAME", help="only these operators")
    workloads.set_defaults(handler=_workloads)

    from .lab import add_lab_parser  # JupyterLab on the guided notebooks (the README's main job)

    add_lab_parser(commands, parents=[common])
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


# ---- entry point ----
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``msexplore`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error argparse already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    err = sys.stderr
    try:
        return args.handler(args, sys.stdout, err)
    except UsageError as error:
        _report(args, error, err)
        return EXIT_USAGE
    except SearchFailed as error:
        _report(args, error, err)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"msexplore {args.command}: interrupted", file=err)
        return EXIT_INTERRUPTED


def _report(args: argparse.Namespace, error: Exception, err: TextIO) -> None:
    if args.debug:
        traceback.print_exception(error.__cause__ or error, file=err)
    print(f"msexplore {args.command}: error: {error}", file=err)


# ---- tune ----
def _tune(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # every cheap check first: building the space costs seconds (TVM imports its intrinsics once per process)
    params = parse_shape(args.shape)
    strategy_options = parse_options(args.strategy_option)
    with _bad_input():
        workload = mx.workload(args.workload, **params)
    with _bad_input("--target: "):
        target = mx.resolve_target(args.target)
    rpc = _rpc_settings(args.rpc_tracker, args.rpc_key)
    modules = [name.strip() for name in args.modules.split(",") if name.strip()]
    if not modules:
        raise UsageError("--modules: give at least one module name, e.g. 'default'")
    with _bad_input("--modules: "):
        resolve_modules(modules, target.kind.name)
    if args.overwrite and not args.export:
        raise UsageError("--overwrite applies to --export DIR; give --export too")
    if args.work_dir and os.path.isfile(args.work_dir):
        raise UsageError(f"--work-dir {args.work_dir!r} is a file; give a folder (new or one of an earlier run)")
    if args.export:
        _check_export_target(args.export, args.overwrite)

    if not args.quiet:
        print(f"[msexplore] building the search space of {workload!r}", file=err, flush=True)
    with _bad_input():
        space = mx.Space(workload, modules=modules, target=target)
    try:
        with _bad_input():
            run = mx.search(
                space, args.trials, strategy=args.strategy, work_dir=args.work_dir, batch_size=args.batch_size,
                seed=args.seed, cost_model=args.cost_model, check=not args.no_check, rpc=rpc,
                **strategy_options,
            )
    except mx.SpaceError as error:
        raise SearchFailed(str(error)) from error

    if not args.quiet:
        _print_start(run, space, err)
        unsubscribe = run.subscribe(lambda batch: print(f"[msexplore] {run.progress}", file=err, flush=True))
    interrupted = _wait_or_stop(run, err)
    if not args.quiet:
        unsubscribe()

    exported, export_error = None, None
    best = run.best
    failed = run.status == "failed"
    if args.export and not interrupted and not failed and best is not None:
        try:
            exported = _export_best(best, args.export, args.overwrite)
        except (UsageError, SearchFailed) as error:  # reported after the summary: the search itself went well
            export_error = error
    summary = _tune_summary(run, best, exported, interrupted)
    summary["export_error"] = None if export_error is None else str(export_error)
    if args.json:
        _print_json(summary, out)
    else:
        _print_tune_summary(summary, out)
    if interrupted:
        if failed:
            print(f"msexplore tune: the search failed while stopping: {_error_line(run.error)}", file=err)
        if args.export:
            print(f"msexplore tune: interrupted, nothing exported; later: msexplore export {run.work_dir} "
                  f"{args.export}", file=err)
        return EXIT_INTERRUPTED
    if failed:
        raise SearchFailed(f"the search failed: {_error_line(run.error)} (full text in {run.work_dir}/status.json)")
    if best is None:
        raise SearchFailed(_no_valid_candidate(run))
    if export_error is not None:
        raise export_error
    return EXIT_OK


def _export_best(best: Any, path: str, overwrite: bool) -> Any:
    """``best.export``; a folder in the way is bad input (2), a kernel that fails its check a failure (3)."""
    try:
        return best.export(path, overwrite=overwrite)
    except FileExistsError as error:
        raise UsageError(f"export: {error}") from error
    except (ValueError, TypeError) as error:
        raise SearchFailed(f"export of trial {best.index} failed: {error}") from error


def parse_shape(items: Sequence[str]) -> dict[str, int]:
    """``["n=512,m=512", "k=64"]`` -> ``{"n": 512, "m": 512, "k": 64}``; UsageError on anything else."""
    return {key: _number(value, "--shape", key, integer=True) for key, value in _pairs(items, "--shape")}


def parse_options(items: Sequence[str]) -> dict[str, int | float]:
    """``["population_size=32,eps_greedy=0.1"]`` -> ``{"population_size": 32, "eps_greedy": 0.1}``."""
    return {key: _number(value, "--strategy-option", key) for key, value in _pairs(items, "--strategy-option")}


def _pairs(items: Sequence[str], flag: str) -> Iterator[tuple[str, str]]:
    for item in items:
        for part in item.split(","):
            key, eq, value = (text.strip() for text in part.partition("="))
            if not eq or not key or not value:
                raise UsageError(f"{flag}: expected KEY=VALUE pairs separated by commas (n=512,m=512), got {item!r}")
            yield key, value


def _number(text: str, flag: str, key: str, *, integer: bool = False) -> int | float:
    try:
        return int(text)
    except ValueError:
        if not integer:
            try:
                return float(text)
            except ValueError:
                pass
    raise UsageError(f"{flag}: {key}={text!r} is not {'an integer' if integer else 'a number'}")


def _rpc_settings(tracker: str | None, key: str | None) -> RPCSettings | None:
    if tracker is None:
        if key is not None:
            raise UsageError("--rpc-key needs --rpc-tracker HOST:PORT (or --rpc-tracker env)")
        return None
    if tracker == "env":
        with _bad_input("--rpc-tracker env: "):
            settings = RPCSettings.from_env()
        return settings if key is None else dataclasses.replace(settings, key=key)
    host, colon, port = tracker.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise UsageError(f"--rpc-tracker: expected HOST:PORT (e.g. 127.0.0.1:9190) or 'env', got {tracker!r}")
    if key is None:
        raise UsageError("--rpc-tracker needs --rpc-key KEY, the device key registered with the tracker")
    with _bad_input("--rpc-tracker: "):
        return RPCSettings(host, int(port), key)


def _check_export_target(path: str, overwrite: bool) -> None:
    if os.path.isfile(path):
        raise UsageError(f"export folder {path!r} is a file; choose another path for the kernel bundle")
    if os.path.exists(path) and not overwrite:
        raise UsageError(f"export folder {path!r} already exists; pass --overwrite to replace it")


def _wait_or_stop(run: Any, err: TextIO) -> bool:
    """Wait for the search; on Ctrl-C stop it cooperatively. Returns whether it was interrupted."""
    interrupted = False
    try:
        _wait_until_done(run)
    except KeyboardInterrupt:
        interrupted = True
        print("\n[msexplore] stopping after the batch being measured; every record is kept "
              "(Ctrl-C again to quit now)", file=err, flush=True)
        run.stop(wait=False)
        try:
            _wait_until_done(run)
        except KeyboardInterrupt:
            print("[msexplore] quitting now; the batch being measured is lost", file=err, flush=True)
            sys.stdout.flush()
            os._exit(EXIT_INTERRUPTED)  # the search thread is inside TVM: a normal exit would abort the process
    run.wait()  # the thread unwinds TVM's tuning objects just after it reports done; exiting sooner aborts
    return interrupted


def _wait_until_done(run: Any) -> None:
    """Short waits, so Ctrl-C is handled at once.

    Not one ``run.wait()``: on Python 3.11 a KeyboardInterrupt that lands inside ``Thread.join`` marks the running
    thread as finished (CPython's ``_wait_for_tstate_lock``), and nothing waits for it afterwards.
    """
    while not run.wait(0.2).ended:
        pass


def _print_start(run: Any, space: Any, err: TextIO) -> None:
    cfg = run.config
    print(f"[msexplore] tuning on {_target_text(space.target)}; "
          f"{cfg['trials']} trials in batches of {cfg['batch_size']}, "
          f"{cfg['strategy']}, seed {cfg['seed']}; work dir {run.work_dir}", file=err)
    before = run.progress.measured_in_folder
    if before:
        print(f"[msexplore] continuing: the work dir already holds {before} measured candidates", file=err)
    err.flush()


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
        "best": _candidate_json(best),
        "elapsed_s": progress.elapsed_s,
        "export": None if exported is None else str(os.path.abspath(exported.path)),
        "error": run.error,
    }


def _print_tune_summary(summary: dict[str, Any], out: TextIO) -> None:
    folder = summary["measured_in_folder"]
    print(f"status: {summary['status']}, {summary['trials']}/{summary['trials_budget']} trials this session "
          f"({folder} in the work dir), {summary['failures']} failed, {summary['elapsed_s']:.0f} s", file=out)
    print(f"best: {_best_text(summary['best'])}", file=out)
    print(f"work dir: {summary['work_dir']}", file=out)
    if summary["export"]:
        print(f"exported: {summary['export']}", file=out)


# ---- tune-model ----
def _tune_model(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # the cheap checks first; loading the factory file runs the user's code (and maybe imports torch)
    strategy_options = parse_options(args.strategy_option)
    with _bad_input("--target: "):
        target = mx.resolve_target(args.target)
    modules = [name.strip() for name in args.modules.split(",") if name.strip()]
    if not modules:
        raise UsageError("--modules: give at least one module name, e.g. 'default'")
    with _bad_input("--modules: "):
        resolve_modules(modules, target.kind.name)
    if args.overwrite and not args.export:
        raise UsageError("--overwrite applies to --export DIR; give --export too")
    if args.work_dir and os.path.isfile(args.work_dir):
        raise UsageError(f"--work-dir {args.work_dir!r} is a file; give a folder (new or one of an earlier run)")
    if args.export:
        _check_export_target(args.export, args.overwrite)

    if not args.quiet:
        print(f"[msexplore] building the model: {args.factory}", file=err, flush=True)
    name, factory = load_factory(args.factory)
    model = model_from_factory(_call_factory(factory, name), name, target)
    before = _measured_in(args.work_dir)  # ModelProgress.trials_done counts the folder's earlier sessions too
    with _bad_input():  # the tasks are extracted here: a model TVM cannot legalize is a ModelImportError
        run = mx.tune_model(
            model, args.trials, modules=modules, work_dir=args.work_dir, batch_size=args.batch_size, seed=args.seed,
            strategy=args.strategy, cost_model=args.cost_model, **strategy_options,
        )

    if not args.quiet:
        cfg = run.config
        print(f"[msexplore] tuning {model!r} on {_target_text(model.target)}; {cfg['trials']} trials in batches of "
              f"{cfg['batch_size']}, seed {cfg['seed']}; work dir {run.work_dir}", file=err, flush=True)
        if before:
            print(f"[msexplore] continuing: the work dir already holds {before} measured candidates", file=err)
        unsubscribe = run.subscribe(lambda task, batch: print(f"[msexplore] {task}: {_model_progress(run, before)}",
                                                              file=err, flush=True))
    interrupted = _wait_or_stop(run, err)
    if not args.quiet:
        unsubscribe()

    failed = run.status == "failed"
    compiled, exported, compile_error, export_error = None, None, None, None
    if not interrupted and not failed:  # errors are reported after the summary: the tuning itself went well
        if not args.quiet:
            print(f"[msexplore] compiling {model.name} with the best record of each task", file=err, flush=True)
        try:
            compiled = _compile_model(run)
        except SearchFailed as error:
            compile_error = error
    if compiled is not None and not compiled.check.ok:
        compile_error = SearchFailed(f"{model.name}: {compiled.check}" + ("; not exported" if args.export else ""))
    elif compiled is not None and args.export:
        try:
            exported = _export_model(compiled, args.export, args.overwrite)
        except (UsageError, SearchFailed) as error:
            export_error = error
    summary = _tune_model_summary(args.factory, model, run, before, compiled, exported, interrupted)
    summary["compile_error"] = None if compile_error is None else str(compile_error)
    summary["export_error"] = None if export_error is None else str(export_error)
    if args.json:
        _print_json(summary, out)
    else:
        _print_tune_model_summary(summary, run.tasks, out)
    if interrupted:
        if failed:
            print(f"msexplore tune-model: the tuning failed while stopping: {_error_line(run.error)}", file=err)
        print(f"msexplore tune-model: interrupted, nothing compiled; the records are kept: run again with "
              f"--work-dir {run.work_dir} to continue", file=err)
        return EXIT_INTERRUPTED
    if failed:
        raise SearchFailed(f"the tuning failed: {_error_line(run.error)} (full text in {run.work_dir}/status.json)")
    if compile_error is not None:
        raise compile_error
    if export_error is not None:
        raise export_error
    return EXIT_OK


def load_factory(spec: str) -> tuple[str, Callable[[], Any]]:
    """``"models/mlp.py:make"`` -> ``("make", make)``, the file loaded with importlib; UsageError on anything else."""
    path, colon, name = spec.rpartition(":")
    if not colon or not path or not name.isidentifier():
        raise UsageError(f"expected FILE.py:FACTORY, a Python file and the function in it that returns the model "
                         f"(e.g. models/mlp.py:make), got {spec!r}")
    if not os.path.isfile(path):
        raise UsageError(f"no file {path!r}; give FILE.py:FACTORY, the Python file that defines {name}")
    module_name = f"msexplore_factory_{os.path.splitext(os.path.basename(path))[0]}"
    module_spec = importlib.util.spec_from_file_location(module_name, os.path.abspath(path))
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"{path} is not a Python file importlib can load; give FILE.py:FACTORY")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # classes defined in the file (a TVMScript module, a dataclass) look it up
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # its own imports resolve as when Python runs it
    try:
        with _user_code(f"loading {path}"):
            module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        sys.path.remove(os.path.dirname(os.path.abspath(path)))
    factory = getattr(module, name, None)
    if factory is None:
        functions = [key for key, value in vars(module).items() if not key.startswith("_") and callable(value)
                     and getattr(value, "__module__", None) == module_name]
        raise UsageError(f"{path} has no {name!r}; the functions and classes it defines: "
                         f"{', '.join(functions) or 'none'}")
    if not callable(factory):
        raise UsageError(f"{path}:{name} is not a function (it is {reprlib.repr(factory)}); give the function that "
                         "returns the model")
    return name, factory


def _call_factory(factory: Callable[[], Any], name: str) -> Any:
    with _user_code(f"{name}()"):
        return factory()


@contextlib.contextmanager
def _user_code(what: str) -> Iterator[None]:
    """The user's file or factory failing is bad input; torch missing is said as Model.from_torch says it."""
    try:
        yield
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] == "torch":
            raise UsageError(TORCH_MISSING) from error
        raise UsageError(f"{what} failed: {_error_line(error)}") from error
    except Exception as error:  # noqa: BLE001 - any error of the user's code is reported in one line
        raise UsageError(f"{what} failed: {_error_line(error)}") from error


FACTORY_RETURNS = ("(torch.nn.Module in eval mode, example inputs tuple), a Relax tvm.IRModule, "
                   "or (IRModule, params dict)")


def model_from_factory(result: Any, name: str, target: Any) -> Any:
    """The ``mx.Model`` of what a factory returned (named after the factory); UsageError for anything else."""
    pair = isinstance(result, (tuple, list)) and len(result) == 2
    with _bad_input():
        if isinstance(result, tvm.IRModule):
            return mx.Model.from_relax(result, name=name, target=target)
        if pair and isinstance(result[0], tvm.IRModule):
            return mx.Model.from_relax(result[0], result[1], name=name, target=target)
        if pair and _is_torch_module(result[0]):
            try:
                return mx.Model.from_torch(result[0], result[1], name=name, target=target)
            except ImportError as error:  # torch missing: Model.from_torch's text says what to install
                raise UsageError(str(error)) from error
    got = f"({', '.join(type(x).__name__ for x in result)})" if pair else type(result).__name__
    raise UsageError(f"{name}() returned {reprlib.repr(result)} of type {got}; a model factory returns "
                     + FACTORY_RETURNS)


def _is_torch_module(value: Any) -> bool:
    """Whether ``value`` is a torch.nn.Module, without importing torch."""
    return any(f"{c.__module__}.{c.__qualname__}" == "torch.nn.modules.module.Module" for c in type(value).__mro__)


def _compile_model(run: Any) -> Any:
    """``run.compile()``; its fallback and check warnings are printed by the CLI itself, so they are not repeated."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*had no tuning record and got a fallback schedule")
            warnings.filterwarnings("ignore", message=r".*: outputs DO NOT match")
            return run.compile()
    except Exception as error:  # noqa: BLE001 - TVM raises built-in types; the CLI reports one line, exit 3
        raise SearchFailed(f"compiling {run.config.get('model')} failed: {_error_line(error)}") from error


def _export_model(compiled: Any, path: str, overwrite: bool) -> Any:
    """``compiled.export``; a folder in the way is bad input (2), a library that differs on reload a failure (3)."""
    try:
        return compiled.export(path, overwrite=overwrite)
    except FileExistsError as error:
        raise UsageError(f"export: {error}") from error
    except Exception as error:  # noqa: BLE001 - TVM raises built-in types; the CLI reports one line, exit 3
        raise SearchFailed(f"export of {compiled.name} failed: {_error_line(error)}") from error


def _measured_in(work_dir: str | None) -> int:
    """Candidates measured in the model run folder ``work_dir`` so far (0 for a new folder)."""
    try:
        return 0 if work_dir is None else int(mx.open_model_run(work_dir).tasks["trials"].sum())
    except ValueError:  # not a model run's folder (yet): tune_model says so if it cannot use it
        return 0


def _model_progress(run: Any, before: int) -> str:
    p = run.progress
    latency = (f"estimated model latency {p.estimated_latency_s * 1e3:.4f} ms" if p.estimated_latency_s is not None
               else f"{p.tasks_verified}/{p.tasks} tasks with a verified schedule")
    return f"{p.status}: {p.trials_done - before}/{p.trials_total} trials, {latency}, {p.elapsed_s:.0f} s"


def _tune_model_summary(
    factory: str, model: Any, run: Any, before: int, compiled: Any, exported: Any, interrupted: bool
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
        "trials": progress.trials_done - before,
        "trials_budget": progress.trials_total,
        "measured_in_folder": progress.trials_done,
        "failures": progress.failures,  # in the work dir, over every session
        "estimated_latency_s": progress.estimated_latency_s,
        "elapsed_s": progress.elapsed_s,
        "tasks": _rows(run.tasks),
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


# ---- show ----
def _show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _bad_input():
        run = mx.open_run(args.work_dir)
    records = run.records.drop(columns=["trace"], errors="ignore")
    records["ok"] = records["ok"].astype(bool)
    ok = records[records["ok"]].sort_values("latency_s").head(args.top)
    failures = records[~records["ok"]]
    kinds = {
        "build": int(failures["build_error"].notna().sum()),
        "wrong_result": int((failures["build_error"].isna() & failures["max_abs_error"].notna()).sum()),
    }
    kinds["run"] = len(failures) - kinds["build"] - kinds["wrong_result"]
    progress = run.progress
    if args.json:
        _print_json({
            "work_dir": run.work_dir,
            "status": run.status,
            "error": run.error,
            "config": run.config,
            "progress": dataclasses.asdict(progress),
            "failure_kinds": kinds,
            "best": _candidate_json(run.best),
            "top": _rows(ok),
            "records": _rows(records),
        }, out)
        return EXIT_OK
    cfg = run.config
    print(f"run:       {run.work_dir}", file=out)
    print(f"status:    {run.status}" + (f" ({_error_line(run.error)})" if run.error else ""), file=out)
    print(f"workload:  {run.workload!r}", file=out)
    print(f"target:    {cfg.get('target')}", file=out)
    print(f"search:    {cfg.get('strategy')}, batches of {cfg.get('batch_size')}, seed {cfg.get('seed')}, cost model "
          f"{cfg.get('cost_model')}, check {'on' if cfg.get('check', True) else 'off'}, "
          f"{cfg.get('sessions', 1)} session(s), last started {cfg.get('started')}", file=out)
    print(f"modules:   {', '.join(cfg.get('modules', []))}", file=out)
    print(f"trials:    {progress.measured_in_folder} measured ({progress.trials_done}/{progress.trials_total} in the "
          f"last session), {progress.failures} failed ({kinds['build']} build, {kinds['run']} run, "
          f"{kinds['wrong_result']} wrong result)", file=out)
    print(f"best:      {_best_text(_candidate_json(run.best))}", file=out)
    if len(ok):
        table = ok.drop(columns=["batch", "timestamp", "ok", "build_error", "run_error", "max_abs_error", "after_stop",
                                 "latency_min_s", "latency_max_s", "latency_std_s"], errors="ignore")
        table = table.assign(latency_s=table["latency_s"] * 1e3).rename(columns={"latency_s": "latency_ms"})
        print(f"\ntop {len(ok)}:", file=out)
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"), file=out)
    return EXIT_OK


# ---- export ----
def _export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _check_export_target(args.out_dir, args.overwrite)
    with _bad_input():
        run = mx.open_run(args.work_dir)
    best = run.best
    if best is None:
        raise SearchFailed(_no_valid_candidate(run))
    bundle = _export_best(best, args.out_dir, args.overwrite)
    manifest = bundle.manifest
    path = os.path.abspath(bundle.path)
    if args.json:
        _print_json({"path": path, "trial": best.index, "manifest": manifest}, out)
        return EXIT_OK
    print(f"exported trial {best.index} of {run.work_dir}", file=out)
    print(f"bundle:   {path}", file=out)
    print(f"kernel:   {bundle!r}", file=out)
    latency = manifest.get("latency_s")
    if latency:
        print(f"latency:  {latency * 1e3:.4f} ms ({manifest.get('gflops') or 0:.1f} GFLOPS), checked against the "
              f"reference (max abs error {manifest['verified']['max_abs_error']:.2e})", file=out)
    print(f"files:    {', '.join(manifest['files'])}, manifest.json", file=out)
    print(f"load:     msexplore.export.load_kernel({path!r})", file=out)
    return EXIT_OK


# ---- workloads ----
def _workloads(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    names = args.names or mx.workload_names()
    with _bad_input():
        loads = [mx.workload(name) for name in names]  # built with their defaults: cheap (no TVM tuning context)
    entries = [
        {
            "name": w.name,
            "params": dict(w.params),
            "flop": w.flop,
            "args": [
                {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype, "output": k in w.outputs}
                for k, spec in enumerate(w.args)
            ],
        }
        for w in loads
    ]
    if args.json:
        _print_json(entries, out)
        return EXIT_OK
    for w in loads:
        params = " ".join(f"{key}={value}" for key, value in w.params.items())
        inputs = " ".join(str(spec) for k, spec in enumerate(w.args) if k not in w.outputs)
        outputs = " ".join(str(w.args[k]) for k in w.outputs)
        print(f"{w.name:<4} {params}\n     {inputs} -> {outputs}", file=out)
    print("\nset parameters with --shape, e.g. msexplore tune GMM --shape n=256,m=256,k=256", file=out)
    return EXIT_OK


# ---- shared helpers ----
def _candidate_json(candidate: Any) -> dict[str, Any] | None:
    if candidate is None:
        return None
    return {
        "trial": candidate.index,
        "latency_s": candidate.latency_s,
        "gflops": candidate.gflops,
        "verified": candidate.verified,
        "decisions": plain_json(candidate.decisions),
    }


def _best_text(best: dict[str, Any] | None) -> str:
    if best is None:
        return "no valid candidate"
    check = "verified" if best["verified"] else "NOT verified (--no-check)"
    return f"trial {best['trial']}, {best['latency_s'] * 1e3:.4f} ms, {best['gflops']:.1f} GFLOPS, {check}"


def _no_valid_candidate(run: Any) -> str:
    failed = [e for e in run.events if not e.ok]
    if not run.events:
        return f"{run.work_dir} holds no measured candidate"
    reason = f"; e.g. trial {failed[-1].index}: {_error_line(failed[-1].error)}" if failed else ""
    return f"no valid candidate among the {len(run.events)} measured in {run.work_dir}{reason}"


def _error_line(error: BaseException | str | None) -> str:
    """An error's useful line as the CLI prints it: one line, at most 300 characters (an exception's with its type)."""
    return error_line(error, default="no error text", with_type=True, limit=300)


def _rows(frame: Any) -> list[dict[str, Any]]:
    return plain_json(frame.to_dict(orient="records"))


def _print_json(data: Any, out: TextIO) -> None:
    json.dump(plain_json(data), out, indent=2)
    out.write("\n")


def _target_text(target: Any) -> str:
    attrs = target.attrs
    extra = "".join(f" -{key}={attrs[key]}" for key in ("mcpu", "num-cores") if key in attrs)
    return f"{target.kind.name}{extra}"


if __name__ == "__main__":  # pragma: no cover - `python -m msexplore` goes through __main__.py
    sys.exit(main())
