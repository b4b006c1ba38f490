"""Search strategies by name, with their knobs checked before any work."""

from __future__ import annotations

import inspect
from typing import Any, Literal

from tvm.s_tir import meta_schedule as ms

from .beam import BeamSearch

__all__ = ["STRATEGIES", "create_strategy", "described", "StrategyName"]

StrategyName = Literal["evolutionary", "replay-trace", "replay-func", "beam"]
STRATEGIES: dict[str, type] = {
    "evolutionary": ms.search_strategy.EvolutionarySearch,
    "replay-trace": ms.search_strategy.ReplayTrace,
    "replay-func": ms.search_strategy.ReplayFunc,
    "beam": BeamSearch,
}


def knobs(name: str) -> dict[str, Any]:
    """The strategy's options and their defaults."""
    params = inspect.signature(STRATEGIES[name].__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self"}


_MAY_BE_NONE = {("beam", "time_share")}  # numeric options that also take None (the strategy checks the rest)


def create_strategy(strategy: Any, options: dict[str, Any] | None = None) -> Any:
    """``"evolutionary" | "replay-trace" | "replay-func" | "beam"`` (with ``options``) or a ready ``SearchStrategy``."""
    options = dict(options or {})
    if isinstance(strategy, ms.search_strategy.SearchStrategy):
        if options:
            raise ValueError(f"strategy options {sorted(options)} given with a ready strategy object; set them on it")
        return strategy
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise ValueError(
            f"unknown strategy {strategy!r}; accepted: {list(STRATEGIES)} or a tvm SearchStrategy object"
        )
    accepted = knobs(strategy)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"strategy {strategy!r} has no option(s) {unknown}; its options are "
            + ", ".join(f"{k}={v!r}" for k, v in accepted.items())
        )
    for key, value in options.items():
        default = accepted[key]
        if value is None and (strategy, key) in _MAY_BE_NONE:
            continue
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"strategy option {key} must be a non-negative number, got {value!r}")
            if isinstance(default, int) and not isinstance(value, int):
                raise ValueError(f"strategy option {key} must be an integer, got {value!r}")
    return STRATEGIES[strategy](**options)


def described(strategy: Any, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A strategy's name and options as a run folder records them: a ready ``BeamSearch`` reads as ``"beam"`` with
    the knobs it was made with that differ from the defaults."""
    if isinstance(strategy, str):
        return strategy, options
    if isinstance(strategy, BeamSearch):
        defaults = knobs("beam")
        return "beam", {k: v for k, v in strategy.knobs().items() if v != defaults[k]}
    return type(strategy).__name__, options
