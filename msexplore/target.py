"""Targets: the host CPU by default, and conversion of what users pass (dict, Target, old-style string)."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import platform
import shlex
import sys
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


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere), or the architecture."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def this_machine() -> dict[str, Any]:
    """This machine as plain data (recorded in every run folder): CPU model, cores, memory, OS, and the versions
    that build and time kernels."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        msexplore_version = version("msexplore")
    except PackageNotFoundError:  # run from a source tree that was not installed
        msexplore_version = "unknown"
    logical = os.cpu_count() or 1
    return {
        "cpu": cpu_model(),
        "physical_cores": psutil.cpu_count(logical=False) or logical,
        "logical_cores": logical,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "tvm": tvm.__version__,
        "msexplore": msexplore_version,
    }


TENSOR_INTRIN = "tvm.s_tir.tensor_intrin"
# The submodules of TENSOR_INTRIN that register a target's intrinsics (the package's __init__ imports them all).
_INTRINSICS_BY_ARCH = {"x86_64": "x86", "amd64": "x86", "i686": "x86", "aarch64": "arm_cpu", "arm64": "arm_cpu",
                       "riscv64": "riscv_cpu"}
_INTRINSICS_BY_KIND = {"cuda": "cuda", "rocm": "rocm", "metal": "metal", "hexagon": "hexagon"}


def load_tensor_intrinsics(target: tvm.target.Target) -> None:
    """Register TVM's tensor intrinsics for ``target``'s kind only, before a ``TuneContext`` imports them all.

    ``TuneContext`` runs ``import tvm.s_tir.tensor_intrin``, whose ``__init__`` registers every platform's
    intrinsics by parsing ~250 TVMScript functions, each parse walking the call stack through ``inspect``: measured
    on a 2-core VM, 10-20 s once per process, and 30-60 s when torch is loaded (``inspect.getmodule`` scans every
    module in ``sys.modules``). CUDA's alone are most of it. Here the package is entered without running its
    ``__init__`` and only the target's submodule is imported; the others still import on demand
    (``from tvm.s_tir.tensor_intrin import cuda``). A target kind not listed gets the full import.
    """
    kind = target.kind.name
    if kind == "llvm":
        triple = str(target.attrs.get("mtriple", "") or "")
        arch = triple.split("-")[0] if triple else platform.machine().lower()
        wanted = _INTRINSICS_BY_ARCH.get(arch)
    else:
        wanted = _INTRINSICS_BY_KIND.get(kind)
    if wanted is None:
        importlib.import_module(TENSOR_INTRIN)
        return
    if TENSOR_INTRIN not in sys.modules:
        spec = importlib.util.find_spec(TENSOR_INTRIN)
        package = importlib.util.module_from_spec(spec)  # has __path__, so its submodules import as usual
        sys.modules[TENSOR_INTRIN] = package
        parent = sys.modules[TENSOR_INTRIN.rpartition(".")[0]]
        setattr(parent, TENSOR_INTRIN.rpartition(".")[2], package)
    importlib.import_module(f"{TENSOR_INTRIN}.{wanted}")
