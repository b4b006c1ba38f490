"""PyTorch -> Relax through ``torch.export`` and TVM's ``from_exported_program``, with errors that name what failed.

torch is optional (``pip install 'msexplore[torch]'``): this module imports it only when called.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import tvm

from ..common import error_line

__all__ = ["import_torch", "ModelImportError"]


class ModelImportError(ValueError):
    """A model that torch.export or TVM's Relax frontend cannot take; the message names the construct."""


TORCH_MISSING = (
    "Model.from_torch needs PyTorch, which is not installed in this environment: pip install 'msexplore[torch]' "
    "(or build the model in Relax and use Model.from_relax)"
)
_UNSUPPORTED = re.compile(r"Unsupported function types? (\[.*\])")


def import_torch(module: Any, example_inputs: Sequence[Any], *, custom_convert_map: dict | None = None) -> tvm.IRModule:
    """The Relax module of ``module`` called on ``example_inputs``, its weights bound as constants."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(TORCH_MISSING) from err
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, (tuple, list)) or not all(isinstance(x, torch.Tensor) for x in example_inputs):
        raise TypeError(
            "example_inputs must be a tuple of torch.Tensor (one per argument of forward), got "
            + type(example_inputs).__name__
        )
    if module.training:
        raise ValueError(
            f"{type(module).__name__} is in training mode (dropout, batch-norm statistics); pass module.eval()"
        )
    name = type(module).__name__
    try:
        with torch.no_grad(), _quiet_torch():
            exported = torch.export.export(module, tuple(example_inputs))
    except Exception as err:  # noqa: BLE001 - torch raises many types; the message is what helps
        raise ModelImportError(
            f"torch.export could not trace {name}: {error_line(err, prefer='first', with_type=True, limit=400)}. "
            "Make forward traceable (no Python control flow on tensor values, no unsupported calls), or export "
            "the part that is."
        ) from err
    from tvm.relax.frontend.torch import from_exported_program

    try:
        with _quiet_torch():
            return from_exported_program(exported, unwrap_unit_return_tuple=True, custom_convert_map=custom_convert_map)
    except Exception as err:  # noqa: BLE001 - the frontend asserts, raises ValueError, NotImplementedError, ...
        found = _UNSUPPORTED.search(str(err))
        if found:
            ops = found.group(1)
            first = re.findall(r"'([^']+)'", ops)[:1] or ["<op>.default"]
            raise ModelImportError(
                f"TVM's Relax frontend has no converter for the PyTorch operator(s) {ops} used by {name}: replace "
                f"them in the model with supported operators, or pass custom_convert_map={{{first[0]!r}: converter}} "
                "to Model.from_torch"
            ) from err
        raise ModelImportError(
            f"TVM's Relax frontend could not convert {name}: {error_line(err, with_type=True, limit=400)}"
        ) from err


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """torch 2.13's pytree warns about its own deprecated call whenever an exported program is copied."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
        yield
