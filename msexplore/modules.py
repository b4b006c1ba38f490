"""Transformation modules: plain functions turned into MetaSchedule schedule rules.

A module is a function ``(sch, block) -> list[Schedule] | Schedule | None`` that applies transformations with
stochastic choices (``sch.sample_perfect_tile``, ``sch.sample_categorical``, ``sch.sample_compute_location``).
``@module`` registers it by name; re-running the cell that defines it replaces the old one, and every space
built afterwards uses the new one. The target's default rules are modules too, each with a name
(``"multi_level_tiling"``, ...), and ``"default"`` stands for all of them in TVM's order.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from tvm.ir.utils import derived_object
from tvm.s_tir import Schedule
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.schedule_rule import PyScheduleRule

__all__ = [
    "TransformModule",
    "ModuleFailure",
    "module",
    "registered_modules",
    "unregister",
    "default_module_names",
    "resolve_modules",
]

Scope = Literal["block", "program"]
_SCOPES = ("block", "program")

_REGISTRY: dict[str, TransformModule] = {}


@dataclasses.dataclass(frozen=True)
class TransformModule:
    """A named transformation module: user code, or one of the target's default rules."""

    name: str
    fn: Callable[..., Any] | None = dataclasses.field(default=None, repr=False, compare=False)
    scope: Scope = "block"
    blocks: tuple[str, ...] | None = None
    when: Callable[[Schedule, Any], bool] | None = dataclasses.field(default=None, repr=False, compare=False)
    default_kind: str | None = None  # the target kind whose default rule this is ("llvm"), None for user code
    doc: str = ""

    @property
    def is_default(self) -> bool:
        return self.default_kind is not None

    def __call__(self, sch: Schedule, *args: Any) -> Any:
        """Run the module's function directly, e.g. on a hand-made schedule while writing it."""
        if self.fn is None:
            raise TypeError(f"module {self.name!r} is one of TVM's default rules; it has no Python function to call")
        return self.fn(sch, *args)

    def applies_to(self, sch: Schedule, block: Any) -> bool:
        if self.blocks is not None and sch.get(block).name_hint not in self.blocks:
            return False
        return self.when is None or bool(self.when(sch, block))


@dataclasses.dataclass(frozen=True)
class ModuleFailure:
    """A module that raised (or returned something that is not a schedule) while building a design space."""

    module: str
    block: str
    error: str
    traceback: str

    def __str__(self) -> str:
        return f"module {self.module!r} failed on block {self.block!r}: {self.error}"


def module(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    scope: Scope = "block",
    blocks: Iterable[str] | None = None,
    when: Callable[[Schedule, Any], bool] | None = None,
) -> Any:
    """Register a transformation module; use as ``@module`` or ``@module(blocks=["C"])``.

    Parameters
    ----------
    fn
        ``(sch, block) -> list[Schedule] | Schedule | None`` for ``scope="block"`` (called on every compute
        block the module applies to, in the order MetaSchedule's ``PostOrderApply`` visits them; the root block
        only if ``blocks=`` names ``"root"``), or ``(sch) -> ...`` for ``scope="program"`` (called once with the
        whole schedule, like MetaSchedule's ``ScheduleFn``). Returning ``None`` means "``sch``, modified in
        place"; returning several schedules forks the design space.
    name
        Registry key; defaults to the function's name. Registering the same name again replaces the module.
    blocks, when
        Optional applicability: only the named blocks, and/or only where ``when(sch, block)`` is true.
    """
    if scope not in _SCOPES:
        raise ValueError(f"scope must be one of {list(_SCOPES)}, got {scope!r}")
    if scope == "program" and (blocks is not None or when is not None):
        raise ValueError("a program-scope module runs once on the whole schedule; it takes no blocks= or when=")
    block_names = None if blocks is None else _block_names(blocks)

    def register(f: Callable[..., Any]) -> TransformModule:
        if not callable(f):
            raise TypeError(f"@module expects a function, got {type(f).__name__}")
        key = name if name is not None else getattr(f, "__name__", None)
        _check_name(key)
        mod = TransformModule(
            name=key, fn=f, scope=scope, blocks=block_names, when=when, doc=(f.__doc__ or "").strip()
        )
        _REGISTRY[key] = mod
        return mod

    return register if fn is None else register(fn)


def registered_modules() -> dict[str, TransformModule]:
    """The user modules registered so far, by name (a copy)."""
    return dict(_REGISTRY)


def unregister(name: str) -> None:
    """Forget a registered module."""
    if _REGISTRY.pop(name, None) is None:
        raise KeyError(f"no module named {name!r}; registered: {sorted(_REGISTRY)}")


def _block_names(blocks: Iterable[str]) -> tuple[str, ...]:
    if isinstance(blocks, str):
        blocks = [blocks]
    out = tuple(blocks)
    if not out or not all(isinstance(b, str) and b for b in out):
        raise ValueError(f"blocks must be a non-empty list of block names, got {blocks!r}")
    return out


def _check_name(key: Any) -> None:
    if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", key):
        raise ValueError(
            f"a module name must be an identifier-like string, got {key!r}; name it with @mx.module(name='...')"
        )
    if key == "default" or key in _default_names("llvm") or key in _default_names("cuda"):
        raise ValueError(f"{key!r} is the name of a default module; choose another name")


# ---- the target's default rules as named modules ------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _default_rules(kind: str) -> list[Any]:
    try:
        return list(ms.ScheduleRule.create(kind))
    except Exception:  # TVM raises for kinds it has no defaults for
        raise ValueError(
            f"MetaSchedule has no default modules for target kind {kind!r}; use 'llvm' or 'cuda'"
        ) from None


@functools.lru_cache(maxsize=None)
def _default_names_cached(kind: str) -> tuple[str, ...]:
    return tuple(_snake(type(rule).__name__) for rule in _default_rules(kind))


def _default_names(kind: str) -> list[str]:
    return list(_default_names_cached(kind))


def default_module_names(kind: str = "llvm") -> list[str]:
    """Names of the target kind's default modules, in the order TVM applies them."""
    return _default_names(kind)


def _default_module(kind: str, name: str) -> TransformModule:
    return TransformModule(name=name, default_kind=kind, doc=f"TVM's default {kind} rule {name}")


def resolve_modules(specs: Sequence[Any], kind: str = "llvm") -> list[TransformModule]:
    """Turn ``["default", "auto_inline", my_module, "my_other"]`` into modules, latest registrations first.

    A ``TransformModule`` passed by object is looked up again by name, so a space built after a cell re-ran
    uses the module as redefined there.
    """
    if isinstance(specs, (str, TransformModule)) or callable(specs):
        specs = [specs]
    defaults = _default_names(kind)
    out: list[TransformModule] = []
    for spec in specs:
        if isinstance(spec, TransformModule):
            out.append(_REGISTRY.get(spec.name, spec) if not spec.is_default else spec)
        elif isinstance(spec, str):
            if spec == "default":
                out.extend(_default_module(kind, n) for n in defaults)
            elif spec in defaults:
                out.append(_default_module(kind, spec))
            elif spec in _REGISTRY:
                out.append(_REGISTRY[spec])
            else:
                raise ValueError(
                    f"unknown module {spec!r}; accepted: 'default', the default modules {defaults}, "
                    f"or a registered module {sorted(_REGISTRY)}"
                )
        elif callable(spec):
            raise TypeError(
                f"module {getattr(spec, '__name__', spec)!r} is a plain function; decorate it with @mx.module"
            )
        else:
            raise TypeError(f"a module is a name or an @mx.module function, got {type(spec).__name__}")
    names = [m.name for m in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"modules listed more than once: {dupes}")
    if not out:
        raise ValueError("a space needs at least one module, e.g. modules=['default']")
    return out


# ---- modules as MetaSchedule schedule rules, with attribution ---------------------------------------------


class Attribution:
    """What each module did while design spaces were generated: sampling instructions and failures."""

    SAMPLING = ("SamplePerfectTile", "SampleCategorical", "SampleComputeLocation")

    def __init__(self) -> None:
        self.origin: dict[Any, tuple[str, str]] = {}  # sampling Instruction -> (module, block)
        self.failures: list[ModuleFailure] = []

    def record(self, schedules: Sequence[Schedule], start: int, module_name: str, block_name: str) -> None:
        for sch in schedules:
            for inst in list(sch.trace.insts)[start:]:
                if inst.kind.name in self.SAMPLING and inst not in self.origin:
                    self.origin[inst] = (module_name, block_name)


def as_schedule_rules(modules: Sequence[TransformModule], kind: str, attribution: Attribution) -> list[Any]:
    """Schedule rules for PostOrderApply: every module wrapped so its random variables are attributed to it."""
    defaults = {n: r for n, r in zip(_default_names(kind), _default_rules(kind))}
    return [_ModuleRule(m, defaults.get(m.name) if m.is_default else None, attribution) for m in modules]


def _normalize_result(mod: TransformModule, sch: Schedule, result: Any) -> list[Schedule]:
    if result is None:
        return [sch]
    if isinstance(result, Schedule):
        return [result]
    if isinstance(result, (list, tuple)) and all(isinstance(s, Schedule) for s in result):
        return list(result)
    got = type(result).__name__
    if isinstance(result, (list, tuple)):
        got += " of " + ", ".join(sorted({type(s).__name__ for s in result}))
    raise TypeError(f"module {mod.name!r} returned {got}; a module returns a list of Schedules, a Schedule, or None")


@derived_object
class _ModuleRule(PyScheduleRule):
    def __init__(self, mod: TransformModule, inner: Any, attribution: Attribution) -> None:
        self.mod = mod
        self.inner = inner
        self.attribution = attribution

    def _initialize_with_tune_context(self, context: Any) -> None:
        if self.inner is not None:
            self.inner._initialize_with_tune_context(context)

    def apply(self, sch: Schedule, block: Any) -> list[Schedule]:
        block_name = sch.get(block).name_hint
        start = len(sch.trace.insts)
        try:
            if self.inner is not None:
                out = list(self.inner.apply(sch, block))
            elif self.mod.scope == "program":
                if sch.get_sref(block).parent is not None:
                    return [sch]
                out = _normalize_result(self.mod, sch, self.mod.fn(sch))
            else:
                is_root = sch.get_sref(block).parent is None
                named_root = self.mod.blocks is not None and "root" in self.mod.blocks
                if (is_root and not named_root) or not self.mod.applies_to(sch, block):
                    return [sch]  # block modules see compute blocks; the root only when blocks= names it
                out = _normalize_result(self.mod, sch, self.mod.fn(sch, block))
        except Exception as err:  # a module's bug breaks its branch of the space, not the whole space
            self.attribution.failures.append(
                ModuleFailure(self.mod.name, block_name, _error_line(err), traceback.format_exc())
            )
            return []
        self.attribution.record(out, start, self.mod.name, block_name)
        return out

    def clone(self) -> _ModuleRule:
        return _ModuleRule(self.mod, None if self.inner is None else self.inner.clone(), self.attribution)


def _error_line(err: BaseException) -> str:
    """``"ZeroDivisionError: division by zero"``; for TVM's errors, the sentence that says what went wrong."""
    kind = type(err).__name__
    text = str(err).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    message = next((ln for ln in reversed(lines) if ln.startswith("Error message:")), None)
    if message is not None:  # a rendered ScheduleError: the sentence comes after the IR
        line = message[len("Error message:"):].strip()
    elif lines and "Traceback" in text:  # TVM errors put the useful sentence last, after a C++ backtrace
        line = lines[-1]
    else:
        line = lines[0] if lines else ""
    line = line.removeprefix(f"{kind}: ")
    return f"{kind}: {line}" if line else kind
