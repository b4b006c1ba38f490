"""``msexplore report RUN_DIR -o report.html``: one self-contained HTML file about a search's or a model run's folder
(``msexplore.report.write_report``), which opens offline in a browser with no kernel.

(Not ``cli/report.py``: ``msexplore.cli`` already has a ``report`` function, the one that prints errors, and a
submodule of that name would replace it as the package's attribute.)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

from msexplore.report import write_report

from ._common import EXIT_OK, bad_input, print_json


def add_parser(commands: Any, *, parents: Sequence[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    report = commands.add_parser(
        "report", parents=parents, help="write a run's report: one HTML file that opens offline, without a kernel",
        description="Write the report of RUN_DIR, the folder of a search (tune --work-dir) or of a model run "
        "(tune-model --work-dir), to one self-contained HTML file: what was searched, progress, decisions, cost "
        "model, the top candidates, the best one's TIR and trace, the failures; a model run adds its tasks. "
        "Reading the folder changes nothing in it; a killed run's folder reports what it holds.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="the folder of a search or of a model run")
    report.add_argument("-o", "--output", default="report.html", metavar="FILE",
                        help="the HTML file to write, replaced if it exists (report.html)")
    report.set_defaults(handler=_report)
    return report


def _report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with bad_input():
        path = write_report(args.run_dir, args.output)
    if args.json:
        print_json({"run_dir": args.run_dir, "report": str(path), "bytes": path.stat().st_size}, out)
    else:
        print(f"report: {path} ({path.stat().st_size / 2**20:.1f} MiB, opens offline)", file=out)
    return EXIT_OK
