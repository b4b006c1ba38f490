"""Transformation modules: plain functions turned into MetaSchedule schedule rules.

A module is a function ``(sch, block) -> list[Schedule] | Schedule | None`` that applies transformations with
stochastic choices (``sch.sample_perfect_tile``, ``sch.sample_categorical``, ``sch.sample_compute_location``).
``@module`` registers it by name; re-running the cell that defines it replaces the old one, and every space
built afterwards uses the new one. The target's default rules are modules too, each with a name
(``"multi_level_tiling"``, ...), and ``"default"`` stands for all of them in TVM's order.

A module may instead be backed by a MetaSchedule ``ScheduleRule`` (``module(name=..., rule=...)``), and any
module may bring the postprocessors its schedules need, name the targets it needs (``requires=``) and the
modules it must run before (``before=``): that is what a hardware module is (see ``msexplore.hardware``).
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

from .common import check_choice, error_line

__all__ = [
    "TransformModule",
    "ModuleFailure",
    "ModuleNotApplicable",
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
    """A named transformation module: user code, a MetaSchedule rule, or one of the target's default rules."""

    name: str
    fn: Callable[..., Any] | None = dataclasses.field(default=None, repr=False, compare=False)
    scope: Scope = "block"
    blocks: tuple[str, ...] | None = None
    when: Callable[[Schedule, Any], bool] | None = dataclasses.field(default=None, repr=False, compare=False)
    default_kind: str | None = None  # the target kind whose default rule this is ("llvm"), None for user code
    doc: str = ""
    rule: Any = dataclasses.field(default=None, repr=False, compare=False)  # an ms.ScheduleRule instead of ``fn``
    # postprocessors the module's schedules need; a space adds them after its own (once each)
    postprocs: tuple[Any, ...] = dataclasses.field(default=(), repr=False, compare=False)
    # ``requires(target)``: None when the target has what the module needs, else a sentence saying what is missing
    requires: Callable[[Any], str | None] | None = dataclasses.field(default=None, repr=False, compare=False)
    before: tuple[str, ...] = ()  # modules this one must run before when a space has both

    @property
    def is_default(self) -> bool:
        return self.default_kind is not None

    def __call__(self, sch: Schedule, *args: Any) -> Any:
        """Run the module's function directly, e.g. on a hand-made schedule while writing it."""
        if self.fn is None:
            what = "one of TVM's default rules" if self.is_default else f"the MetaSchedule rule {self.rule_name()}"
            raise TypeError(f"module {self.name!r} is {what}; it has no Python function to call")
        return self.fn(sch, *args)

    def make_rule(self) -> Any:
        """A fresh copy of the MetaSchedule rule behind the module (None for a Python function)."""
        return None if self.rule is None else self.rule.clone()

    def rule_name(self) -> str:
        return "" if self.rule is None else getattr(self.rule, "_cls", type(self.rule)).__name__

    def check_target(self, target: Any) -> None:
        """Raise ``ModuleNotApplicable`` if the module says the target lacks what it needs."""
        reason = None if self.requires is None else self.requires(target)
        if reason:
            raise ModuleNotApplicable(f"module {self.name!r} does not apply to the target {target}: {reason}")

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


class ModuleNotApplicable(ValueError):
    """A module was asked for on a target that lacks what it needs (e.g. an instruction set)."""


def module(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    scope: Scope = "block",
    blocks: Iterable[str] | None = None,
    when: Callable[[Schedule, Any], bool] | None = None,
    rule: Any = None,
    postprocs: Sequence[Any] = (),
    requires: Callable[[Any], str | None] | None = None,
    before: Iterable[str] = (),
    doc: str | None = None,
) -> Any:
    """Register a transformation module; use as ``@module`` or ``@module(blocks=["C"])``.

    Or register a MetaSchedule rule as a module, without a function:
    ``module(name="x86-vnni", rule=ms.schedule_rule.MultiLevelTilingWithIntrin(...), postprocs=[...])``.

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
    rule
        Instead of ``fn``: a MetaSchedule ``ScheduleRule`` that does the work (cloned for every space), e.g.
        ``ms.schedule_rule.MultiLevelTilingWithIntrin(...)``. Its random variables are attributed to the
        module like a function's; ``name=`` is required.
    postprocs
        MetaSchedule postprocessors the module's schedules need (e.g. ``RewriteTensorize`` after a rule that
        marks blocks for tensorization). A space runs them after its own, each kind once.
    requires
        ``requires(target) -> str | None``: None when the target has what the module needs, otherwise a
        sentence saying what it lacks; a space for such a target raises ``ModuleNotApplicable`` with it.
    before
        Names of modules this one must run before, per block, when a space lists both (a hardware tiling
        runs before the generic ``multi_level_tiling``, which would otherwise tile the block first).
    doc
        What the module does, in a sentence; defaults to the function's docstring.
    """
    check_choice("scope", scope, _SCOPES)
    if scope == "program" and (blocks is not None or when is not None):
        raise ValueError("a program-scope module runs once on the whole schedule; it takes no blocks= or when=")
    block_names = None if blocks is None else _block_names(blocks)
    extras = _module_extras(postprocs, requires, before)
    if rule is not None:
        if fn is not None:
            raise ValueError("a module is a function or a MetaSchedule rule (rule=), not both")
        if scope != "block":
            raise ValueError("a rule-backed module applies per block, like MetaSchedule's rules; drop scope=")
        if not isinstance(rule, ms.ScheduleRule):
            raise TypeError(
                f"rule must be an ms.ScheduleRule (e.g. MultiLevelTilingWithIntrin), got {type(rule).__name__}"
            )
        _check_name(name)
        mod = TransformModule(name=name, blocks=block_names, when=when, doc=doc or "", rule=rule, **extras)
        _REGISTRY[name] = mod
        return mod

    def register(f: Callable[..., Any]) -> TransformModule:
        if not callable(f):
            raise TypeError(f"@module expects a function, got {type(f).__name__}")
        key = name if name is not None else getattr(f, "__name__", None)
        _check_name(key)
        text = doc if doc is not None else (f.__doc__ or "").strip()
        mod = TransformModule(name=key, fn=f, scope=scope, blocks=block_names, when=when, doc=text, **extras)
        _REGISTRY[key] = mod
        return mod

    return register if fn is None else register(fn)


def _module_extras(postprocs: Any, requires: Any, before: Any) -> dict[str, Any]:
    if isinstance(postprocs, ms.Postproc):
        postprocs = [postprocs]
    postprocs = tuple(postprocs)
    if not all(isinstance(p, ms.Postproc) for p in postprocs):
        raise TypeError(
            "postprocs must be a list of MetaSchedule postprocessors (ms.Postproc, or @derived_object PyPostproc), "
            f"got {', '.join(type(p).__name__ for p in postprocs)}"
        )
    if requires is not None and not callable(requires):
        raise TypeError(f"requires must be a function (target) -> str | None, got {type(requires).__name__}")
    before = (before,) if isinstance(before, str) else tuple(before)
    if not all(isinstance(b, str) and b for b in before):
        raise ValueError(f"before must be a list of module names, got {before!r}")
    return {"postprocs": postprocs, "requires": requires, "before": before}


def registered_modules() -> dict[str, TransformModule]:
    """The modules registered so far, by name (a copy): yours, and msexplore's hardware modules ("x86-vnni")."""
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
    return _honour_before(out)


def _honour_before(modules: list[TransformModule]) -> list[TransformModule]:
    """Move each module that declares ``before=`` ahead of the first of those modules listed earlier."""
    out = list(modules)
    for mod in modules:
        if not mod.before:
            continue
        here = out.index(mod)
        ahead = [k for k, other in enumerate(out[:here]) if other.name in mod.before]
        if ahead:
            out.insert(ahead[0], out.pop(here))
    return out


# ---- modules as MetaSchedule schedule rules, with attribution ---------------------------------------------


class Attribution:
    """What each module did while design spaces were generated: sampling instructions and failures."""

    SAMPLING = ("SamplePerfectTile", "SampleCategorical", "SampleComputeLocation")

    def __init__(self) -> None:
        self.origin: dict[Any, tuple[str, str]] = {}  # sampling Instruction -> (module, block)
        self.failures: list[ModuleFailure] = []
        self.changed: set[str] = set()  # modules that added instructions to some schedule

    def record(self, schedules: Sequence[Schedule], start: int, module_name: str, block_name: str) -> None:
        for sch in schedules:
            insts = list(sch.trace.insts)[start:]
            if insts:
                self.changed.add(module_name)
            for inst in insts:
                if inst.kind.name in self.SAMPLING and inst not in self.origin:
                    self.origin[inst] = (module_name, block_name)


def as_schedule_rules(modules: Sequence[TransformModule], kind: str, attribution: Attribution) -> list[Any]:
    """Schedule rules for PostOrderApply: every module wrapped so its random variables are attributed to it."""
    defaults = {n: r for n, r in zip(_default_names(kind), _default_rules(kind))}
    return [
        _ModuleRule(m, defaults.get(m.name) if m.is_default else m.make_rule(), attribution) for m in modules
    ]


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
                if not self.mod.applies_to(sch, block):
                    return [sch]
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
                ModuleFailure(
                    self.mod.name, block_name, error_line(err, prefer="first", with_type=True), traceback.format_exc()
                )
            )
            return []
        self.attribution.record(out, start, self.mod.name, block_name)
        return out

    def clone(self) -> _ModuleRule:
        return _ModuleRule(self.mod, None if self.inner is None else self.inner.clone(), self.attribution)
