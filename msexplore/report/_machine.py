"""The machine a report describes: the one a run recorded in its config, or else the one writing the report.

A run records its machine in its config (``msexplore.target.this_machine``); for a folder written before runs did,
a report made where the search ran fills it in from this machine, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..target import cpu_model, this_machine

__all__ = ["machine_facts", "this_machine", "cpu_model"]

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
