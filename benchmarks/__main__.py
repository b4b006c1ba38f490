"""``python -m benchmarks [suite ...] [--quick] [--only TEXT] [--tag TEXT]``: print tables, write results/*.json."""

from __future__ import annotations

import argparse
import importlib
import inspect
import re

SUITES = {
    "sampling": "benchmarks.sampling",
    "search": "benchmarks.search_speed",
    "kernels": "benchmarks.kernels",
    "int8": "benchmarks.int8",
    "models": "benchmarks.models",
    "search_quality": "benchmarks.search_quality",
    "operators": "benchmarks.operators",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []][:-1] or None, help=f"default: all of {list(SUITES)}")
    parser.add_argument("--quick", action="store_true", help="small shapes and budgets (a smoke run, not the figures)")
    parser.add_argument(
        "--only", metavar="TEXT", help="kernels, models: only the cases whose label contains one of these "
        "comma-separated texts, e.g. --only '1024,C2D' (written as <suite>-only-1024-C2D.json)",
    )
    parser.add_argument(
        "--strategy", metavar="NAME", help="models: msexplore's search strategy for every task (default "
        "evolutionary; e.g. beam); kernels: the strategy of its searches; search_quality: run this strategy "
        "alone (with --reference); written as <suite>-<strategy>.json",
    )
    parser.add_argument(
        "--reference", metavar="FILE", help="search_quality with --strategy: an earlier result of the suite "
        "whose evolutionary runs set the target",
    )
    parser.add_argument(
        "--tag", metavar="TEXT", help="appended to the results' file name, e.g. the CPU (--tag znver3), so a run on "
        "another machine does not overwrite the figures of this one",
    )
    args = parser.parse_args(argv)
    if args.tag is not None and not _slug([args.tag]):
        parser.error(f"--tag {args.tag!r}: a file name part needs letters or digits (e.g. --tag znver3)")
    from ._common import machine, write_results

    print("machine:", machine())
    for name in args.suites or list(SUITES):
        print(f"\n== {name} ==")
        run = importlib.import_module(SUITES[name]).run
        kwargs = {"quick": args.quick}
        partial = args.only and "only" in inspect.signature(run).parameters
        if partial:
            kwargs["only"] = [t.strip() for t in args.only.split(",") if t.strip()]
        chosen = args.strategy and "strategy" in inspect.signature(run).parameters
        if chosen:
            kwargs["strategy"] = args.strategy
        if args.reference and "reference" in inspect.signature(run).parameters:
            kwargs["reference"] = args.reference
        result = run(**kwargs)
        suffix = ("-quick" if args.quick else "") + (f"-only-{_slug(kwargs['only'])}" if partial else "")
        suffix += f"-{_slug([args.strategy])}" if chosen else ""
        suffix += f"-{_slug([args.tag])}" if args.tag else ""
        print("written:", write_results(name + suffix, result))
    return 0


def _slug(texts: list[str]) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9]+", "", t) for t in texts)


if __name__ == "__main__":
    raise SystemExit(main())
