"""Hardware modules shipped with msexplore: transformation modules (and the postprocessors they need) for
particular instruction sets, usable by name like the target's defaults, e.g.
``mx.Space(wl, modules=["default", "x86-vnni"])``. Each checks that the target has the instructions it needs.
``build_check(space)`` compiles a few samples of a space, the first check of a module being written.

Importing this package registers them; ``msexplore`` imports it.
"""

from __future__ import annotations

from . import avx512, rows, transposed, transposes, vnni  # noqa: F401  (registration on import)
from .build_check import BuildCheck, build_check

__all__ = ["BuildCheck", "build_check"]
