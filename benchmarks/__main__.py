"""``python -m benchmarks [sampling] [search] [--quick]``: print each suite's table and write results/*.json."""

from __future__ import annotations

import argparse
import importlib

SUITES = {"sampling": "benchmarks.sampling", "search": "benchmarks.search_speed"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []][:-1] or None, help=f"default: all of {list(SUITES)}")
    parser.add_argument("--quick", action="store_true", help="small shapes and budgets (a smoke run, not the figures)")
    args = parser.parse_args(argv)
    from ._common import machine, write_results

    print("machine:", machine())
    for name in args.suites or list(SUITES):
        print(f"\n== {name} ==")
        result = importlib.import_module(SUITES[name]).run(quick=args.quick)
        print("written:", write_results(name + ("-quick" if args.quick else ""), result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
