"""``msexplore show WORK_DIR``, ``msexplore confirm WORK_DIR`` and ``msexplore export WORK_DIR OUT_DIR``: read a
run's folder (``mx.open_run``) and report on it, re-time its fastest candidates, or export its best kernel."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from typing import Any, TextIO

import msexplore as mx  # called as mx.open_run(...): the notebooks' function, patchable in tests

from ._common import (
    EXIT_OK,
    SearchFailed,
    bad_input,
    best_text,
    candidate_json,
    check_export_target,
    export_best,
    no_valid_candidate,
    positive,
    print_json,
    rows,
    short_error,
)
from ._progress import StepProgress, wants_bar


def add_parsers(commands: Any, *, parents: Sequence[argparse.ArgumentParser]) -> None:
    """The ``show`` and ``export`` subcommands."""
    show = commands.add_parser(
        "show", parents=parents, help="a run's status, config, trials, failures and best candidates",
        description="Show the run in WORK_DIR: status, config, trials, failures, the best candidates.",
    )
    show.add_argument("work_dir", metavar="WORK_DIR", help="the folder of a run (tune --work-dir)")
    show.add_argument("--top", type=positive, default=5, metavar="K", help="rows of the best-candidates table (5)")
    show.set_defaults(handler=_show)

    confirm = commands.add_parser(
        "confirm", parents=parents, help="re-time a run's fastest candidates in turn; its best follows the medians",
        description="Build the TOP fastest verified candidates of WORK_DIR and time them all in turn, ROUNDS times, "
        "ranking them by the median (the search times each once). The ranking is saved in WORK_DIR/confirmed.json: "
        "show and export then take the fastest by it, until another search on the folder measures more.",
    )
    confirm.add_argument("work_dir", metavar="WORK_DIR", help="the folder of a finished run (tune --work-dir), or of "
                         "a model run (tune-model --work-dir): then the TOP fastest of every task")
    confirm.add_argument("--top", type=positive, default=5, metavar="K", help="candidates to re-time (5)")
    confirm.add_argument("--rounds", type=positive, default=5, metavar="N", help="times each is timed in turn (5)")
    confirm.set_defaults(handler=_confirm)

    export = commands.add_parser(
        "export", parents=parents, help="export a run's best kernel as a bundle that loads without msexplore's state",
        description="Compile, check and write the best candidate of WORK_DIR to OUT_DIR (kernel.so, schedule.py, "
        "trace, record, manifest.json); load it with msexplore.export.load_kernel.",
    )
    export.add_argument("work_dir", metavar="WORK_DIR", help="the folder of a run (tune --work-dir)")
    export.add_argument("out_dir", metavar="OUT_DIR", help="the bundle folder to write")
    export.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    export.add_argument("-q", "--quiet", action="store_true", help="no progress bar on stderr")
    export.set_defaults(handler=_export)


def _show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with bad_input():
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
        print_json({
            "work_dir": run.work_dir,
            "status": run.status,
            "error": run.error,
            "config": run.config,
            "progress": dataclasses.asdict(progress),
            "failure_kinds": kinds,
            "best": candidate_json(run.best),
            "top": rows(ok),
            "records": rows(records),
        }, out)
        return EXIT_OK
    cfg = run.config
    print(f"run:       {run.work_dir}", file=out)
    print(f"status:    {run.status}" + (f" ({short_error(run.error)})" if run.error else ""), file=out)
    print(f"workload:  {run.workload!r}", file=out)
    print(f"target:    {cfg.get('target')}", file=out)
    print(f"search:    {cfg.get('strategy')}, batches of {cfg.get('batch_size')}, seed {cfg.get('seed')}, cost model "
          f"{cfg.get('cost_model')}, check {'on' if cfg.get('check', True) else 'off'}, "
          f"{cfg.get('sessions', 1)} session(s), last started {cfg.get('started')}", file=out)
    print(f"modules:   {', '.join(cfg.get('modules', []))}", file=out)
    print(f"trials:    {progress.measured_in_folder} measured ({progress.trials_done}/{progress.trials_total} in the "
          f"last session), {progress.failures} failed ({kinds['build']} build, {kinds['run']} run, "
          f"{kinds['wrong_result']} wrong result)", file=out)
    print(f"best:      {best_text(candidate_json(run.best))}", file=out)
    if len(ok):
        table = ok.drop(columns=["batch", "timestamp", "ok", "build_error", "run_error", "max_abs_error", "after_stop",
                                 "latency_min_s", "latency_max_s", "latency_std_s"], errors="ignore")
        table = table.assign(latency_s=table["latency_s"] * 1e3).rename(columns={"latency_s": "latency_ms"})
        print(f"\ntop {len(ok)}:", file=out)
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"), file=out)
    return EXIT_OK


def _confirm(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if os.path.isfile(os.path.join(args.work_dir, "model.json")):
        return _confirm_model(args, out)
    with bad_input():
        run = mx.open_run(args.work_dir)
        if run.best is None:
            raise SearchFailed(no_valid_candidate(run))
        table = run.confirm(args.top, rounds=args.rounds)
    if args.json:
        print_json({"work_dir": run.work_dir, "best": candidate_json(run.best), "confirmed": rows(table)}, out)
        return EXIT_OK
    print(f"re-timed the {len(table)} fastest of {run.work_dir}, {args.rounds} rounds in turn", file=out)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"), file=out)
    print(f"best:      {best_text(candidate_json(run.best))}", file=out)
    return EXIT_OK


def _confirm_model(args: argparse.Namespace, out: TextIO) -> int:
    """A model run's folder (tune-model --work-dir): every task's fastest re-timed; compile then takes the medians'."""
    with bad_input():
        run = mx.open_model_run(args.work_dir)
        table = run.confirm(args.top, rounds=args.rounds)
    if table.empty:
        raise SearchFailed(f"no task of the model run in {run.work_dir} has a verified candidate to re-time")
    if args.json:
        print_json({"work_dir": run.work_dir, "confirmed": rows(table)}, out)
        return EXIT_OK
    changed = int(table["changed"].sum())
    print(f"re-timed the {args.top} fastest of each of {len(table)} task(s) of {run.work_dir}, {args.rounds} rounds "
          f"in turn; the pick changed in {changed}", file=out)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"), file=out)
    print("mx.open_model_run(WORK_DIR, model).compile() now takes each task's confirmed pick (until another "
          "session tunes the task further)", file=out)
    return EXIT_OK


def _export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    check_export_target(args.out_dir, args.overwrite)
    with StepProgress(err, 2, bar=wants_bar(args, err), desc="export") as steps:
        steps.begin(f"reading {args.work_dir}")
        with bad_input():
            run = mx.open_run(args.work_dir)
        best = run.best
        if best is None:
            raise SearchFailed(no_valid_candidate(run))
        steps.begin(f"trial {best.index}: compiling, checking, writing {args.out_dir}")
        bundle = export_best(best, args.out_dir, args.overwrite)
    manifest = bundle.manifest
    path = os.path.abspath(bundle.path)
    if args.json:
        print_json({"path": path, "trial": best.index, "manifest": manifest}, out)
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
