"""A search space: a workload, a target and transformation modules (plus postprocessors and mutators)."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd
from tvm.s_tir import Trace
from tvm.s_tir import meta_schedule as ms

from . import _quiet
from .common import check_int_in_range
from .modules import Attribution, ModuleFailure, TransformModule, as_schedule_rules, resolve_modules
from .random_variables import RandomVariable, describe_random_variables
from .sampling import SampleSet, sample_space
from .target import TargetLike, load_tensor_intrinsics, resolve_target
from .workloads import Workload
from .workloads import workload as make_workload

__all__ = ["Space", "DesignSpace", "SpaceError"]


class SpaceError(RuntimeError):
    """The space has no design space to sample from (every branch failed)."""


@dataclasses.dataclass(frozen=True)
class DesignSpace:
    """One design space: a trace whose sampling instructions are re-drawn for every sample."""

    index: int
    trace: Trace = dataclasses.field(repr=False)  # without decisions
    random_variables: tuple[RandomVariable, ...]
    signature: tuple[str, ...] = dataclasses.field(repr=False)  # its instructions as text, to recognise samples

    @property
    def size(self) -> int:
        return math.prod(rv.domain_size for rv in self.random_variables)

    def by_name(self) -> dict[str, RandomVariable]:
        return {rv.name: rv for rv in self.random_variables}

    def matches(self, trace: Trace) -> bool:
        """Whether ``trace`` is a sample of this design space (same instructions, any decisions)."""
        return _signature(trace) == self.signature


class Space:
    """Design spaces built from ``modules`` for ``workload`` on ``target``.

    Parameters
    ----------
    workload
        A ``Workload`` or anything ``mx.workload`` accepts (an operator name, a PrimFunc, TE tensors).
    modules
        Names and ``@mx.module`` functions: ``"default"`` (the target's default modules), a default module by
        name (``"multi_level_tiling"``), or a registered module, such as the hardware modules of
        ``msexplore.hardware`` (``"x86-vnni"``). Order is the order of application per block, except that a
        module declaring ``before=`` runs ahead of those modules. A module whose ``requires`` says the target
        lacks what it needs raises ``ModuleNotApplicable`` before any work.
    target
        ``None`` for the host CPU, a dict, a ``tvm.target.Target`` or an old-style string.
    postprocs, mutators
        ``"default"`` (the target's, named explicitly so int8 workloads do not get a broken tensorized space)
        or lists of MetaSchedule postprocessors / a ``{mutator: probability}`` dict. The postprocessors the
        modules bring (``mx.module(postprocs=...)``) run after these, each kind once.
    seed
        Seed of the design-space generation (the structure; decisions are drawn by ``sample``).
    """

    def __init__(
        self,
        workload: Any,
        modules: Sequence[Any] = ("default",),
        *,
        target: TargetLike = None,
        postprocs: Any = "default",
        mutators: Any = "default",
        seed: int = 1,
    ) -> None:
        _quiet.install()
        self.workload: Workload = workload if isinstance(workload, Workload) else make_workload(workload)
        self.target = resolve_target(target)
        self.kind = self.target.kind.name
        self.modules: list[TransformModule] = resolve_modules(modules, self.kind)
        for mod in self.modules:
            mod.check_target(self.target)
        self._postprocs_spec = postprocs
        self._mutators_spec = mutators
        self.seed = _check_seed(seed)
        attribution = Attribution()
        postprocs = self.postprocs_list()
        # C++ (and clone()) hand Python postprocessors back as "_PyPostproc": keep the user's names for messages
        self.postproc_names: list[str] = [_postproc_name(p) for p in self._named_postprocs()]
        context = self._tune_context(self._post_order_apply(attribution, postprocs))
        schedules = context.generate_design_space()
        self.postprocs = list(context.space_generator.postprocs)  # initialised with the context
        self.mutator_probs = dict(context.space_generator.mutator_probs)
        self.failures: list[ModuleFailure] = list(attribution.failures)
        self.design_spaces: list[DesignSpace] = [
            _design_space(k, self.workload.mod, sch.trace, attribution.origin) for k, sch in enumerate(schedules)
        ]
        for mod in self.modules:  # a rule-backed module that matched no block is most likely a surprise
            if mod.rule is not None and mod.name not in attribution.changed and not self.failures:
                warnings.warn(
                    f"module {mod.name!r} changed no block of {self.workload.name}"
                    + (f": {mod.doc.splitlines()[0]}" if mod.doc else ""),
                    stacklevel=2,
                )

    # ---- what MetaSchedule needs ----
    def postprocs_list(self) -> list[Any]:
        """Fresh postprocessors: the space's own, then those its modules bring that are not there yet."""
        return [p.clone() for p in self._named_postprocs()]

    def _named_postprocs(self) -> list[Any]:
        spec = self._postprocs_spec
        if isinstance(spec, str):
            if spec != "default":
                raise ValueError(f"postprocs must be 'default' or a list of postprocessors, got {spec!r}")
            own = list(ms.Postproc.create(self.kind))
        elif not isinstance(spec, (list, tuple)) or not all(isinstance(p, ms.Postproc) for p in spec):
            raise TypeError(
                f"postprocs must be 'default' or a list of MetaSchedule postprocessors (ms.Postproc, or "
                f"@derived_object PyPostproc), got {_describe(spec)}"
            )
        else:
            own = list(spec)
        return _add_module_postprocs(own, self.modules)

    def mutators_dict(self) -> dict[Any, float]:
        spec = self._mutators_spec
        if isinstance(spec, str):
            if spec != "default":
                raise ValueError(f"mutators must be 'default' or a {{mutator: probability}} dict, got {spec!r}")
            return dict(ms.Mutator.create(self.kind))
        if not isinstance(spec, dict) or not all(
            isinstance(m, ms.Mutator) and isinstance(p, (int, float)) and not isinstance(p, bool) and p >= 0
            for m, p in spec.items()
        ):
            raise TypeError(
                f"mutators must be 'default' or a {{ms.Mutator: probability}} dict with probabilities >= 0, "
                f"got {_describe(spec)}"
            )
        return dict(spec)

    def _post_order_apply(self, attribution: Attribution, postprocs: list[Any] | None = None) -> Any:
        return ms.space_generator.PostOrderApply(
            sch_rules=as_schedule_rules(self.modules, self.kind, attribution),
            postprocs=self.postprocs_list() if postprocs is None else postprocs,
            mutator_probs=self.mutators_dict(),
        )

    def _tune_context(self, space_generator: Any, **kwargs: Any) -> Any:
        load_tensor_intrinsics(self.target)  # the target's only: TuneContext would parse every platform's
        return ms.TuneContext(
            mod=self.workload.mod,
            target=self.target,
            space_generator=space_generator,
            task_name=self.workload.name,
            rand_state=self.seed,
            num_threads=kwargs.pop("num_threads", 1),
            **kwargs,
        )

    def space_generator(self) -> Any:
        """A fresh MetaSchedule space generator for a search, attributing variables like this space does."""
        return self._post_order_apply(Attribution())

    # ---- what users look at ----
    def require_design_spaces(self) -> None:
        if not self.design_spaces:
            details = "\n".join(f"  - {f}" for f in self.failures) or "  (no module failed; no schedule came out)"
            raise SpaceError(
                f"the space for {self.workload.name} has no design space: every branch failed.\n{details}\n"
                "Fix the module(s) above (space.failures[i].traceback has the full traceback)."
            )

    def summary(self) -> pd.DataFrame:
        """One row per random variable: module, block, kind, loop, extent, domain size, design spaces."""
        rows: dict[str, dict[str, Any]] = {}
        for ds in self.design_spaces:
            for rv in ds.random_variables:
                row = rows.get(rv.name)
                if row is None:
                    rows[rv.name] = {
                        "name": rv.name,
                        "module": rv.module,
                        "block": rv.block,
                        "kind": rv.kind,
                        "loop": rv.loop,
                        "extent": rv.extent,
                        "domain_size": rv.domain_size,
                        "domain": _domain_text(rv),
                        "design_spaces": [ds.index],
                    }
                else:
                    row["design_spaces"].append(ds.index)
        columns = ["name", "module", "block", "kind", "loop", "extent", "domain_size", "domain", "design_spaces"]
        df = pd.DataFrame(list(rows.values()), columns=columns)
        df["extent"] = df["extent"].astype("Int64")  # <NA> for non-tiles, not floats
        df.attrs["size"] = self.size()
        df.attrs["failures"] = [str(f) for f in self.failures]
        return df

    def size(self) -> int:
        """Number of distinct decision assignments, summed over the design spaces (an upper bound on programs)."""
        return sum(ds.size for ds in self.design_spaces)

    def sample(self, n: int, *, seed: int = 0, threads: int | None = None) -> SampleSet:
        """Draw ``n`` samples: fresh decisions on a randomly chosen design space, then the postprocessors."""
        return sample_space(self, n, seed=seed, threads=threads)

    def design_space_of(self, trace: Trace) -> DesignSpace | None:
        """The design space a (sampled, mutated or measured) trace comes from, if it is one of this space's."""
        signature = _signature(trace)
        for ds in self.design_spaces:  # the first of identical design spaces (a module that forked a copy)
            if signature == ds.signature:
                return ds
        return None

    def __repr__(self) -> str:
        names = ", ".join(m.name for m in self.modules)
        fails = f", {len(self.failures)} module failure(s)" if self.failures else ""
        return (
            f"Space({self.workload.name}, {len(self.design_spaces)} design space(s), "
            f"{sum(len(d.random_variables) for d in self.design_spaces)} random variables, ~{self.size():.3g} "
            f"programs, modules=[{names}]{fails})"
        )


def _check_seed(seed: Any) -> int:
    seed = check_int_in_range("seed", seed, 0, 2**31 - 2)
    return seed + 1 if seed == 0 else seed  # TVM wants [1, 2**31 - 1]


_DECISION = re.compile(r", decision=.*\)$")
_PARALLEL = re.compile(r'(ann_key="meta_schedule\.parallel", ann_val=)\d+')


def _signature(trace: Trace) -> tuple[str, ...]:
    """The trace's instructions before postprocessing as Python, without decisions.

    Instruction kinds alone do not tell design spaces apart: the default multi-level tiling makes two spaces
    that differ only in the loop a cache-write block is computed at. The parallel extent is left out as
    ``MutateParallel`` changes it during a search.
    """
    return tuple(
        _PARALLEL.sub(r"\1*", _DECISION.sub(")", line)) for line in trace.as_python(remove_postproc=True)
    )


def _design_space(index: int, mod: Any, trace: Trace, origin: dict) -> DesignSpace:
    bare = Trace(trace.insts, {})
    return DesignSpace(
        index=index,
        trace=bare,
        random_variables=tuple(describe_random_variables(mod, trace, origin)),  # its decisions: deterministic
        signature=_signature(bare),
    )


def _add_module_postprocs(own: list[Any], modules: Sequence[TransformModule]) -> list[Any]:
    """``own`` plus each module's postprocessors that are not there yet, keeping each module's order.

    One that is missing goes before the first of the same module's later postprocessors already present
    (a user's list with ``RewriteTensorize`` keeps an unroll step ahead of it), else at the end.
    """
    out = list(own)
    for mod in modules:
        wanted = list(mod.postprocs)
        for k, post in enumerate(wanted):
            names = [_postproc_name(p) for p in out]
            if _postproc_name(post) in names:
                continue
            later = [names.index(_postproc_name(p)) for p in wanted[k + 1 :] if _postproc_name(p) in names]
            out.insert(min(later) if later else len(out), post)
    return out


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{type(k).__name__}: {v!r}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of " + ", ".join(type(v).__name__ for v in value)
    return repr(value)


def _postproc_name(postproc: Any) -> str:
    return getattr(postproc, "_cls", type(postproc)).__name__  # @derived_object keeps the user's class in _cls


def _domain_text(rv: RandomVariable) -> str:
    if rv.kind == "tile":
        limit = rv.max_innermost_factor
        inner = f", innermost <= {limit}" if limit and limit > 0 else ""
        return f"{rv.n} factors of {rv.extent}{inner}"
    if rv.kind == "categorical":
        return str(list(rv.candidates))
    return str(list(rv.locations))
