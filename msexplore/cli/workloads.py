"""``msexplore workloads [NAME ...]``: the named operators, their shape parameters (defaults) and arguments."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

import msexplore as mx  # called as mx.workload(...): the notebooks' function, patchable in tests

from ._common import EXIT_OK, bad_input, print_json


def add_parser(commands: Any, *, parents: Sequence[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    workloads = commands.add_parser(
        "workloads", parents=parents, help="the named operators, their shape parameters and defaults",
        description="List the named operators with their shape parameters (defaults) and arguments.",
    )
    workloads.add_argument("names", nargs="*", metavar="NAME", help="only these operators")
    workloads.set_defaults(handler=_workloads)
    return workloads


def _workloads(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    names = args.names or mx.workload_names()
    with bad_input():
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
        print_json(entries, out)
        return EXIT_OK
    for w in loads:
        params = " ".join(f"{key}={value}" for key, value in w.params.items())
        inputs = " ".join(str(spec) for k, spec in enumerate(w.args) if k not in w.outputs)
        outputs = " ".join(str(w.args[k]) for k in w.outputs)
        print(f"{w.name:<4} {params}\n     {inputs} -> {outputs}", file=out)
    print("\nset parameters with --shape, e.g. msexplore tune GMM --shape n=256,m=256,k=256", file=out)
    return EXIT_OK
