"""``msexplore`` on the command line: tune, tune-model, show and export over the same calls the notebooks make.

``main(argv)`` parses, runs one subcommand and returns the exit code (the console script calls
``sys.exit(main())``). Results go to stdout (text, or JSON with ``--json``); progress and errors go to stderr.
Each subcommand lives in its own module (``tune``, ``tune_model``, ``runs`` for show, confirm and export, ``workloads``;
``lab`` is ``msexplore.lab``), which adds its parser; they share ``_common`` and never import one another.

Exit codes
----------
0    done
2    bad input: a usage error, an unknown workload or module, a bad ``--shape``/``--target``, a work dir that is
     a file or holds no run, an export folder that exists without ``--overwrite``, a model factory (FILE.py:NAME)
     that is missing, fails or returns no model, a model TVM cannot import (one line on stderr)
3    the search failed, or there is no valid candidate to export or confirm, or a compiled model fails its check
130  interrupted (Ctrl-C): the search stopped after the batch it was measuring; every record is kept
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import msexplore as mx
from msexplore.lab import add_lab_parser  # JupyterLab on the guided notebooks (the README's main job)

from . import html_report, runs, tune, tune_model, workloads
from ._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    SearchFailed,
    UsageError,
    report,
)
from ._common import parse_options as parse_options
from ._common import parse_shape as parse_shape
from ._factory import FACTORY_RETURNS as FACTORY_RETURNS
from ._factory import load_factory as load_factory
from ._factory import model_from_factory as model_from_factory

# parse_shape, parse_options, load_factory, model_from_factory and FACTORY_RETURNS, which msexplore.cli offered
# before it became a package, are re-exported above (``X as X``)
__all__ = ["main", "EXIT_OK", "EXIT_USAGE", "EXIT_FAILED", "EXIT_INTERRUPTED"]


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
    tune.add_parser(commands, parents=[common])
    tune_model.add_parser(commands, parents=[common])
    runs.add_parsers(commands, parents=[common])  # show, confirm, export
    workloads.add_parser(commands, parents=[common])
    html_report.add_parser(commands, parents=[common])  # report
    add_lab_parser(commands, parents=[common])
    return parser


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
        report(args, error, err)
        return EXIT_USAGE
    except SearchFailed as error:
        report(args, error, err)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"msexplore {args.command}: interrupted", file=err)
        return EXIT_INTERRUPTED
