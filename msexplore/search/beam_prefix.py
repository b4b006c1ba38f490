"""A design space whose first decision slots are already fixed: the beam's view of "finish from here".

``PrefixedDecisionSpace`` wraps a ``beam_slots.DecisionSpace`` and a *prefix* (the values of its first slots, in the
coarse-to-fine order): its slots are the remaining ones, and every child, completion and trace keeps the prefix.
Handed to ``beam_pass`` (through ``Programs``) in place of the design space, it makes a beam pass search only the
schedules that start with the prefix. This is the hook ``Steering.finish`` uses; ``BeamSearch`` could take the same
view for a ``prefix=`` option (see ``steering.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .beam_slots import DecisionSpace

__all__ = ["PrefixedDecisionSpace", "slot_value"]


class PrefixedDecisionSpace(DecisionSpace):
    """``base`` with the values of its first ``len(prefix)`` slots fixed; ``index`` is its place in a space list.

    It shares the base's variables and instructions (no replay: the base has already read the design space), so a
    full decision of one is a full decision of the other and builds the same program.
    """

    def __init__(self, base: DecisionSpace, prefix: Sequence[Any], index: int = 0) -> None:
        if len(prefix) > len(base):
            raise ValueError(f"a prefix of {len(prefix)} values for a design space of {len(base)} decision slots")
        # Not DecisionSpace.__init__: that replays the design space, which the base already did.
        self.base = base
        self.prefix = tuple(prefix)
        self.index = index
        self.insts = base.insts
        self.variables = base.variables
        self.slots = base.slots[len(self.prefix):]

    def fixed(self, values: Sequence[Any]) -> list[Any]:
        return self.base.fixed((*self.prefix, *values))


def slot_value(space: DecisionSpace, decisions: Sequence[Any], depth: int) -> Any:
    """The value a full decision takes at slot ``depth`` of ``space`` (a tile's factor, or the variable's value)."""
    slot = space.slots[depth]
    chosen = decisions[slot.variable]
    return chosen if slot.factor is None else chosen[slot.factor]
