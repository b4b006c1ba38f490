"""Targets: the host CPU by default, and conversion of what users pass (dict, Target, old-style string)."""

from __future__ import annotations

import functools
import os
import shlex
from typing import Any, Union

import psutil
import tvm

from .common import check_positive_int

TargetLike = Union[None, str, dict, "tvm.target.Target"]

__all__ = ["host_target", "resolve_target", "host_cores", "kernel_threads"]

# What TVM's thread pool reads its thread count from, once, when it starts.
THREADS_ENV = "TVM_NUM_THREADS"


def host_cores() -> int:
    """Cores this process may use (affinity-aware), the default ``num-cores`` of a target."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def kernel_threads() -> int:
    """Threads a compiled kernel runs on here: physical cores this process may use (hyper-threads share an FMA unit)."""
    logical = host_cores()
    physical = psutil.cpu_count(logical=False) or logical  # None where the OS does not say
    return max(1, min(logical, physical))


def run_kernels_on_every_core() -> None:
    """Make TVM's runtime run parallel kernels on every physical core, unless the user already chose.

    TVM's thread pool starts ``hardware_concurrency() / 2`` threads on x86, assuming two hyper-threads per core.
    On machines without hyper-threading (most cloud VMs: 2 vCPUs that are 2 cores) that halves every kernel,
    while numpy and PyTorch use both cores: a 512^3 GEMM ran at 95 GFLOPS instead of 186. The pool reads
    ``TVM_NUM_THREADS`` when it first starts, and builder/runner worker processes inherit it, so setting it at
    import (before any kernel has run) fixes searches, measurements and exported kernels alike. A user's own
    ``TVM_NUM_THREADS`` or ``OMP_NUM_THREADS`` is left alone.
    """
    if THREADS_ENV in os.environ or "OMP_NUM_THREADS" in os.environ:
        return
    os.environ[THREADS_ENV] = str(kernel_threads())


@functools.lru_cache(maxsize=None)
def _host_attrs() -> tuple[str, str]:
    host = tvm.target.Target.from_device(tvm.cpu())
    return str(host.attrs["mtriple"]), str(host.attrs["mcpu"])


def host_target(num_cores: int | None = None) -> tvm.target.Target:
    """The host CPU as an LLVM target with its real ``mcpu``/``mtriple`` and core count.

    Without ``mcpu`` LLVM emits generic x86-64 code (no AVX), about 5x slower for a tuned GEMM;
    MetaSchedule needs ``num-cores``.
    """
    mtriple, mcpu = _host_attrs()
    cores = check_positive_int("num-cores", num_cores if num_cores is not None else host_cores())
    return tvm.target.Target({"kind": "llvm", "num-cores": cores, "mtriple": mtriple, "mcpu": mcpu})


def resolve_target(target: TargetLike = None) -> tvm.target.Target:
    """Turn what a user passes into a target MetaSchedule accepts.

    Accepts ``None`` (the host CPU), a ``tvm.target.Target``, a dict such as
    ``{"kind": "llvm", "mcpu": "znver5"}``, a dict's JSON, or an old-style string such as
    ``"llvm -mcpu=znver5 -num-cores 2"`` (TVM 0.27 rejects that form; most published examples use it).
    An LLVM target without ``num-cores`` gets this machine's core count, one without ``mtriple`` the
    host's, and one that names no CPU (no ``mcpu`` or ``mattr``, and no ``mtriple`` or the host's, which
    ``tvm.target.Target("llvm")`` fills in by itself) the host's ``mcpu``.
    """
    if target is None:
        return host_target()
    if isinstance(target, tvm.target.Target):
        config = dict(target.export())
    elif isinstance(target, dict):
        config = dict(target)
    elif isinstance(target, str):
        config = _parse_target_string(target)
    else:
        raise TypeError(
            f"target must be None (the host CPU), a dict, a tvm.target.Target or a string such as "
            f"'llvm -mcpu=znver5 -num-cores 2'; got {type(target).__name__}"
        )
    if "kind" not in config:
        raise ValueError(f"target {config!r} has no 'kind'; e.g. {{'kind': 'llvm', 'num-cores': 2}}")
    if config["kind"] == "llvm":
        config.setdefault("num-cores", host_cores())
        config["num-cores"] = check_positive_int("num-cores", config["num-cores"])
        host_triple, host_cpu = _host_attrs()
        # {"kind": "llvm"} means "this CPU"; TVM itself fills in the host's mtriple (Target("llvm") has it), so
        # the host's triple without mcpu or mattr names no CPU either
        if "mcpu" not in config and "mattr" not in config and config.get("mtriple", host_triple) == host_triple:
            config["mcpu"] = host_cpu
        config.setdefault("mtriple", host_triple)  # LLVM does not infer it once mcpu is set
    for key in ("tag", "keys"):
        if config.get(key) in ("", (), []):
            config.pop(key)
    try:
        return tvm.target.Target(config)
    except Exception as err:  # TVM raises ValueError/TVMError with its own text
        raise ValueError(f"TVM rejected the target {config!r}: {err}") from None


def _parse_target_string(text: str) -> dict:
    text = text.strip()
    if text.startswith("{"):
        import json

        return json.loads(text)
    words = shlex.split(text)
    if not words or words[0].startswith("-"):
        raise ValueError(f"target string {text!r} must start with a kind, e.g. 'llvm -mcpu=znver5 -num-cores 2'")
    config: dict[str, Any] = {"kind": words[0]}
    i = 1
    while i < len(words):
        word = words[i]
        if not word.startswith("-"):
            raise ValueError(f"target string {text!r}: expected an option such as '-mcpu=...' at {word!r}")
        key, eq, value = word.lstrip("-").partition("=")
        if not eq:
            if i + 1 < len(words) and not words[i + 1].startswith("-"):
                value = words[i + 1]
                i += 1
            else:
                value = "true"
        config[key] = _parse_value(key, value)
        i += 1
    return config


def _parse_value(key: str, value: str) -> Any:
    if key in ("num-cores", "opt-level", "vector-width"):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"target option -{key} takes an integer, got {value!r}") from None
    if key == "mattr":
        return [v for v in value.split(",") if v]
    if value in ("true", "false"):
        return value == "true"
    return value
