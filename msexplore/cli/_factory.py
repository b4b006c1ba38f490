"""A model factory, ``FILE.py:FACTORY``: load the user's file, call the function, and make an ``mx.Model`` of what it
returns. Anything wrong with the file, the function or its result is bad input (UsageError, exit code 2)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import reprlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import tvm

import msexplore as mx  # mx.Model: the notebooks' class, patchable in tests
from msexplore.models.torch_import import TORCH_MISSING

from ._common import UsageError, bad_input, short_error

FACTORY_RETURNS = ("(torch.nn.Module in eval mode, example inputs tuple), a Relax tvm.IRModule, "
                   "or (IRModule, params dict)")


def load_factory(spec: str) -> tuple[str, Callable[[], Any]]:
    """``"models/mlp.py:make"`` -> ``("make", make)``, the file loaded with importlib; UsageError on anything else."""
    path, colon, name = spec.rpartition(":")
    if not colon or not path or not name.isidentifier():
        raise UsageError(f"expected FILE.py:FACTORY, a Python file and the function in it that returns the model "
                         f"(e.g. models/mlp.py:make), got {spec!r}")
    if not os.path.isfile(path):
        raise UsageError(f"no file {path!r}; give FILE.py:FACTORY, the Python file that defines {name}")
    module_name = f"msexplore_factory_{os.path.splitext(os.path.basename(path))[0]}"
    module_spec = importlib.util.spec_from_file_location(module_name, os.path.abspath(path))
    if module_spec is None or module_spec.loader is None:
        raise UsageError(f"{path} is not a Python file importlib can load; give FILE.py:FACTORY")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # classes defined in the file (a TVMScript module, a dataclass) look it up
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # its own imports resolve as when Python runs it
    try:
        with _user_code(f"loading {path}"):
            module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        sys.path.remove(os.path.dirname(os.path.abspath(path)))
    factory = getattr(module, name, None)
    if factory is None:
        functions = [key for key, value in vars(module).items() if not key.startswith("_") and callable(value)
                     and getattr(value, "__module__", None) == module_name]
        raise UsageError(f"{path} has no {name!r}; the functions and classes it defines: "
                         f"{', '.join(functions) or 'none'}")
    if not callable(factory):
        raise UsageError(f"{path}:{name} is not a function (it is {reprlib.repr(factory)}); give the function that "
                         "returns the model")
    return name, factory


def call_factory(factory: Callable[[], Any], name: str) -> Any:
    """``factory()``; any error it raises is bad input, said in one line."""
    with _user_code(f"{name}()"):
        return factory()


@contextlib.contextmanager
def _user_code(what: str) -> Iterator[None]:
    """The user's file or factory failing is bad input; torch missing is said as Model.from_torch says it."""
    try:
        yield
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] == "torch":
            raise UsageError(TORCH_MISSING) from error
        raise UsageError(f"{what} failed: {short_error(error)}") from error
    except Exception as error:  # noqa: BLE001 - any error of the user's code is reported in one line
        raise UsageError(f"{what} failed: {short_error(error)}") from error


def model_from_factory(result: Any, name: str, target: Any, conv_layout: str | None = None) -> Any:
    """The ``mx.Model`` of what a factory returned (named after the factory); UsageError for anything else."""
    pair = isinstance(result, (tuple, list)) and len(result) == 2
    options = dict(name=name, target=target, conv_layout=conv_layout)
    with bad_input():
        if isinstance(result, tvm.IRModule):
            return mx.Model.from_relax(result, **options)
        if pair and isinstance(result[0], tvm.IRModule):
            return mx.Model.from_relax(result[0], result[1], **options)
        if pair and _is_torch_module(result[0]):
            try:
                return mx.Model.from_torch(result[0], result[1], **options)
            except ImportError as error:  # torch missing: Model.from_torch's text says what to install
                raise UsageError(str(error)) from error
    got = f"({', '.join(type(x).__name__ for x in result)})" if pair else type(result).__name__
    raise UsageError(f"{name}() returned {reprlib.repr(result)} of type {got}; a model factory returns "
                     + FACTORY_RETURNS)


def _is_torch_module(value: Any) -> bool:
    """Whether ``value`` is a torch.nn.Module, without importing torch."""
    return any(f"{c.__module__}.{c.__qualname__}" == "torch.nn.modules.module.Module" for c in type(value).__mro__)
