"""How much work the beam puts into a batch, so that it keeps to a share of the search's wall time (``time_share``).

A beam pass replays, postprocesses and predicts a few hundred programs (3-9 ms each on a 2-core machine), while the
builder and the runner spend a few seconds on the batch it hands out. ``TimeShare`` keeps account of both over every
search session the strategy object (and its clones) runs: the strategy's own time and the time between handing a
batch out and hearing its results (building, measuring, the cost model's update). Before each batch it says how
many programs the strategy may build so that its share of the wall time so far, the next batch included, stays at
``time_share``; ``Effort.within`` narrows the beam (fewer states, descents, completions and neighbours of the
elites) to fit. A batch that overspends leaves less for the next ones, so the share holds over the search, not only
per batch.

With ``time_share=None`` every batch gets the full effort, and the same seed, cost model and measurements give the
same batches; with a share, the effort depends on the wall time too.
"""

from __future__ import annotations

import dataclasses
import math
import time

__all__ = ["Effort", "TimeShare"]


@dataclasses.dataclass(frozen=True)
class Effort:
    """The beam's knobs for one batch: states kept, dropout descents, completions per state, neighbours per elite."""

    beam_size: int
    descents: int
    completions: int
    mutations: int

    def programs(self, per_state: float, elites: int) -> float:
        """Programs a batch at this effort builds: ``per_state`` per kept state (or descent) and completion."""
        return per_state * (self.beam_size + self.descents) * self.completions + elites * self.mutations

    def within(self, budget: float | None, per_state: float, elites: int) -> Effort:
        """This effort (the full one) narrowed to build about ``budget`` programs; itself when ``budget`` is None
        or enough. The floor is one state, one completion and two neighbours per elite."""
        full = self.programs(per_state, elites)
        if budget is None or budget >= full:
            return self
        scale = max(0.0, budget) / full
        completions = self.completions if scale >= 0.5 else 1
        scale = min(1.0, scale * self.completions / completions)  # one completion halves a pass at two
        return Effort(
            beam_size=max(1, math.floor(self.beam_size * scale)),
            descents=math.floor(self.descents * scale),
            completions=completions,
            mutations=min(self.mutations, max(2, round(self.mutations * scale))),
        )


class TimeShare:
    """The strategy's time against the rest of its searches' time, and the programs the next batch may build.

    ``share`` of ``None`` allows every batch its full effort.
    """

    def __init__(self, share: float | None) -> None:
        self.share = share
        self.strategy_s = 0.0  # in the strategy's methods
        self.other_s = 0.0  # between handing a batch out and its results: building, measuring, learning
        self.last_other_s = 0.0
        self.programs = 0  # built by the strategy
        self._handed_out_at: float | None = None

    def new_session(self) -> None:
        """A search session starts: the account so far carries over (a batch handed out before is forgotten)."""
        self._handed_out_at = None

    def spent(self, seconds: float, programs: int) -> None:
        """The strategy spent ``seconds`` and built ``programs`` (one of its methods)."""
        self.strategy_s += seconds
        self.programs += programs

    def handed_out(self) -> None:
        self._handed_out_at = time.perf_counter()

    def results_in(self) -> None:
        if self._handed_out_at is not None:
            self.last_other_s = time.perf_counter() - self._handed_out_at
            self.other_s += self.last_other_s
            self._handed_out_at = None

    def budget(self) -> float | None:
        """Programs the next batch may build; ``None``: no limit (no share, or no batch measured yet to go by; in a
        later session the last batch of an earlier one stands for the next)."""
        if self.share is None or self.programs == 0 or self.last_other_s <= 0:
            return None
        return allowed_programs(self.share, self.strategy_s, self.other_s + self.last_other_s, self.programs)


def allowed_programs(share: float, strategy_s: float, other_s: float, programs: int) -> float:
    """Programs the strategy may build next so that ``strategy / (strategy + other)`` stays at ``share``, at the
    cost per program it has had so far (``other_s`` includes the next batch's, expected as the last one's)."""
    allowed_s = share / (1 - share) * other_s - strategy_s
    return max(0.0, allowed_s) / (strategy_s / programs) if strategy_s > 0 else math.inf
