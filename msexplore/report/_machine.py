"""The machine a report describes: the one a run recorded in its config, or else the one writing the report.

A run folder records its target (``mcpu``, ``num-cores``) but not the machine's CPU model, memory or software
versions; a report written where the search ran (``run.report(...)`` after it) fills those in from here, and says so.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from typing import Any

__all__ = ["machine_facts", "this_machine", "cpu_model"]

CPUINFO = "/proc/cpuinfo"


def cpu_model(cpuinfo: str = CPUINFO) -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere), or the architecture."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def this_machine() -> dict[str, Any]:
    """This machine as plain data: CPU model, cores, memory, OS and the versions that build and time kernels."""
    import psutil
    import tvm

    from msexplore import __version__

    logical = os.cpu_count() or 1
    return {
        "cpu": cpu_model(),
        "physical_cores": psutil.cpu_count(logical=False) or logical,
        "logical_cores": logical,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "tvm": tvm.__version__,
        "msexplore": __version__,
    }


def machine_facts(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rows of the report's "machine" facts: where candidates were measured, and the machine's CPU and software."""
    facts = []
    rpc = config.get("rpc")
    if rpc:
        facts.append(("measured on", f"the devices of the RPC tracker {rpc.get('host')}:{rpc.get('port')}, "
                                     f"key {rpc.get('key')!r} (built by the machine that ran the search)"))
    recorded = config.get("machine")
    machine = dict(recorded) if isinstance(recorded, Mapping) else this_machine()
    cores = f"{machine.get('physical_cores', '?')} cores, {machine.get('logical_cores', '?')} threads"
    where = "" if recorded else " (where this report was written: the run folder does not record its machine)"
    facts.append(("machine", f"{machine.get('cpu', 'unknown CPU')}; {cores}; {machine.get('memory_gib', '?')} GiB"
                             f"{where}"))
    facts.append(("software", f"{machine.get('os', '?')}; Python {machine.get('python', '?')}, "
                              f"TVM {machine.get('tvm', '?')}, msexplore {machine.get('msexplore', '?')}"))
    return facts
