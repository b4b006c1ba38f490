"""Hardware modules shipped with msexplore: transformation modules (and the postprocessors they need) for
particular instruction sets, usable by name like the target's defaults, e.g.
``mx.Space(wl, modules=["default", "x86-vnni"])``. Each checks that the target has the instructions it needs.
``build_check(space)`` compiles a few samples of a space, the first check of a module being written.

Importing this package registers them; ``msexplore`` imports it.
"""

from __future__ import annotations

from typing import Any

from ..modules import ModuleNotApplicable, registered_modules
from ..target import resolve_target
from . import avx2, avx512, padded, rows, transposed, transposes, vnni  # noqa: F401  (registration on import)
from .build_check import BuildCheck, build_check
from .isa import AVX2, VectorISA, isa_of

__all__ = ["BuildCheck", "VectorISA", "build_check", "cpu_modules", "isa_of", "microkernel_module"]

# the fp32 CPU modules shipped here besides the micro-kernels, in the order a space lists them (the padded
# convolution's: its AVX2 twin on a CPU without AVX-512)
_OTHER_CPU_MODULES = ("x86-row-reduction", "x86-transposed-conv", padded.MODULE_NAME, "x86-transpose")


def microkernel_module(target: Any = None) -> str:
    """The name of the register-blocked micro-kernel module for ``target``'s CPU (default: this machine's):
    ``"x86-avx512"`` where it has AVX-512F, else ``"x86-avx2"`` where it has AVX2 and FMA."""
    resolved = resolve_target(target)
    isa = isa_of(resolved)
    if isa is None:
        cpu = resolved.attrs.get("mcpu", "") if resolved.kind.name == "llvm" else resolved.kind.name
        raise ModuleNotApplicable(
            f"no micro-kernel module fits the target {cpu or resolved}: 'x86-avx512' needs AVX-512F and 'x86-avx2' "
            "needs AVX2 and FMA; its default space still works (modules=['default'])"
        )
    return isa.module


def cpu_modules(target: Any = None) -> list[str]:
    """The fp32 hardware modules shipped with msexplore that ``target``'s CPU (default: this machine's) can run:
    its micro-kernel module, then the row-reduction, transposed-convolution, padded-convolution (the one for its
    ISA: ``x86-padded-conv`` with AVX-512, ``x86-avx2-padded-conv`` without) and transpose modules where it has what
    each needs. ``modules=["default", *mx.hardware.cpu_modules()]`` is what the benchmarks tune with."""
    resolved = resolve_target(target)
    isa = isa_of(resolved)
    padded_conv = padded.AVX2_MODULE_NAME if isa is AVX2 else padded.MODULE_NAME
    names = ([isa.module] if isa else []) + [padded_conv if name == padded.MODULE_NAME else name
                                             for name in _OTHER_CPU_MODULES]
    registered = registered_modules()
    return [name for name in names if not registered[name].requires(resolved)]
