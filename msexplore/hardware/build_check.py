"""Do a space's samples compile? The first check of a hardware module, with what the compiler said meanwhile.

>>> build_check(mx.Space(workload, modules=["default", "x86-vnni"]))
8 of 8 samples compile

A module that tensorizes or vectorizes in a way the code generator cannot follow fails here, in seconds, rather
than as failed candidates of a search. Besides each failure's reason, the report keeps the warnings TVM's C++
code logged while compiling (they would otherwise land on stderr, in a notebook's cell): often the warning names
the cause of the failure that follows, e.g. "Detect vectorize inside vectorized loop" before a vectorizer that
cannot broadcast 64 lanes to 256.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import tvm

from .._quiet import native_stderr

__all__ = ["BuildCheck", "SampleBuild", "build_check", "failure_reason"]

# The lines of a compiler error that say what went wrong, in the order they are looked for.
_TELLING = ("does not match", "Cannot broadcast", "Check failed", "error:")


@dataclass(frozen=True)
class SampleBuild:
    """One sample's compile: its id, the error's telling line (None if it compiled), TVM's warnings meanwhile."""

    sample: int
    error: str | None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class BuildCheck:
    """The compile of ``n`` samples of a space: ``str()`` counts them and lists each distinct error and warning."""

    builds: tuple[SampleBuild, ...]

    @property
    def compiled(self) -> int:
        return sum(b.ok for b in self.builds)

    @property
    def warnings(self) -> Counter:
        """Each distinct warning and how many samples logged it."""
        return Counter(w for b in self.builds for w in dict.fromkeys(b.warnings))

    def __str__(self) -> str:
        errors = Counter(b.error for b in self.builds if not b.ok)
        lines = [f"{self.compiled} of {len(self.builds)} samples compile"]
        lines += [f"  {count} x {error}" for error, count in sorted(errors.items())]
        if self.warnings:
            lines.append("TVM warned while compiling:")
            lines += [f"  {count} x {warning}" for warning, count in sorted(self.warnings.items())]
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # a notebook cell shows the text as printed
        printer.text(str(self))


def build_check(space: Any, n: int = 8, *, seed: int = 1) -> BuildCheck:
    """Draw ``n`` samples of ``space`` (with ``seed``) and compile each for the space's target, here.

    An invalid sample (a module or postprocessor rejected it) counts as not compiling, with its error.
    """
    builds = []
    for sample in space.sample(n, seed=seed):
        if not sample.valid:
            builds.append(SampleBuild(sample.id, f"invalid sample: {failure_reason(sample.error)}"))
            continue
        error = None
        with native_stderr() as log:  # TVM's C++ warnings, kept with the sample instead of printed
            try:
                tvm.tirx.build(sample.schedule.mod, space.target)
            except Exception as err:  # noqa: BLE001 - every compiler error is a result here
                error = failure_reason(err)
        builds.append(SampleBuild(sample.id, error, tuple(log.messages)))
    return BuildCheck(tuple(builds))


def failure_reason(error: BaseException | str | None) -> str:
    """The sentence of a compiler error that says what went wrong: LLVM's or TVM's check, without the frames."""
    lines = [line.strip() for line in str(error or "").splitlines() if line.strip()]
    for telling in _TELLING:
        found = [line for line in lines if telling in line]
        if found:
            return found[0].split("is false: ")[-1]
    return lines[-1] if lines else "failed without a message"
