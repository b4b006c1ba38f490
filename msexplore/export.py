"""Kernel bundles: a scheduled kernel, compiled and checked, in a folder that loads without msexplore's state.

``export_kernel`` writes ``kernel.so``, ``schedule.py`` (the scheduled TVMScript), ``workload.json``, the
optional ``trace.py`` / ``trace.json`` / ``record.json``, and ``manifest.json`` (workload, arguments,
target, latency, versions, and a sha256 per file). It refuses a kernel whose outputs are wrong, and the
folder appears at once or not at all. ``load_kernel`` checks the hashes and returns a ``Kernel`` that is
called on numpy arrays.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib.metadata
import json
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import tvm

from msexplore import bundles
from msexplore.bundles import move_into_place, new_sibling, sha256
from msexplore.common import plain_json
from msexplore.measure import verify
from msexplore.target import TargetLike, resolve_target
from msexplore.workloads import Comparison, Workload

__all__ = ["Bundle", "Kernel", "export_kernel", "load_kernel"]

FORMAT = "msexplore-kernel/1"
MANIFEST = "manifest.json"
LIBRARY = "kernel.so"
WORKLOAD = "workload.json"


@dataclasses.dataclass(frozen=True)
class Bundle:
    """An exported kernel folder and its manifest."""

    path: Path
    manifest: dict[str, Any] = dataclasses.field(repr=False)

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}: {_summary(self.manifest)})"


def export_kernel(
    folder: str | os.PathLike,
    *,
    mod: Any,
    workload: Workload,
    target: TargetLike,
    trace_python: str | list[str] | None = None,
    trace_json: Any = None,
    record_json: Any = None,
    latency_s: float | None = None,
    overwrite: bool = False,
) -> Bundle:
    """Compile a scheduled kernel, check it against the reference, and write it as a bundle folder.

    Parameters
    ----------
    folder
        The bundle's path; must not exist unless ``overwrite`` (then it is replaced as a whole).
    mod
        The scheduled ``IRModule`` (or a ``tvm.s_tir.Schedule``) computing ``workload`` as ``main``.
    target
        What to compile for: a ``Target``, a dict, an old-style string, or None for the host CPU.
    trace_python, trace_json, record_json
        Optional provenance, stored as ``trace.py``, ``trace.json`` and ``record.json``: the trace as Python
        (``trace.as_python()``), and JSON-serializable values (e.g. ``msexplore.traces.trace_to_json(trace)``,
        a tuning record's JSON) or their JSON text.
    latency_s
        The measured latency, recorded in the manifest with the GFLOPS it implies.
    """
    destination = Path(folder)
    if destination.exists() and not destination.is_dir():
        raise FileExistsError(f"{destination} is a file, not a folder; choose another path for the kernel bundle")
    if destination.exists() and not overwrite:
        raise FileExistsError(f"{destination} already exists; pass overwrite=True to replace it")
    if isinstance(mod, tvm.s_tir.Schedule):
        mod = mod.mod
    if not isinstance(mod, tvm.IRModule):
        raise TypeError(f"mod must be the scheduled IRModule or a tvm.s_tir.Schedule, got {type(mod).__name__}")
    if latency_s is not None and not (isinstance(latency_s, (int, float)) and latency_s > 0):
        raise ValueError(f"latency_s must be a positive number of seconds or None, got {latency_s!r}")
    texts = {"trace.py": _trace_text(trace_python), "trace.json": _json_text("trace_json", trace_json)}
    texts["record.json"] = _json_text("record_json", record_json)
    target = resolve_target(target)

    lib = tvm.tirx.build(mod, target)
    comparison = verify(lib, workload)
    if not comparison.ok:
        rtol, atol = workload.tolerance
        raise ValueError(
            f"refusing to export a wrong kernel for {workload.name}: max abs error {comparison.max_abs_error:.3e} "
            f"> atol {atol:.1e} (rtol {rtol:.1e}, max rel error {comparison.max_rel_error:.3e})"
        )

    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = new_sibling(destination, "tmp")
    try:
        lib.export_library(str(staging / LIBRARY))
        (staging / "schedule.py").write_text(mod.script())
        (staging / WORKLOAD).write_text(json.dumps(workload.to_json(), indent=1))
        for name, text in texts.items():
            if text is not None:
                (staging / name).write_text(text)
        manifest = _manifest(workload, target, latency_s, comparison, staging)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        move_into_place(staging, destination, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle(destination, manifest)


def _trace_text(trace_python: str | list[str] | None) -> str | None:
    if trace_python is None or isinstance(trace_python, str):
        return trace_python
    lines = [str(line) for line in trace_python]  # Trace.as_python() gives a TVM Array of lines
    return "\n".join(lines) + "\n"


def _json_text(argument: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"{argument} is a string but not JSON text: {err}") from None
        return value
    try:
        return json.dumps(value)
    except TypeError as err:
        raise TypeError(
            f"{argument} must be JSON-serializable ({err}); for a trace pass msexplore.traces.trace_to_json(trace)"
        ) from None


def _manifest(workload: Workload, target: tvm.target.Target, latency_s, comparison: Comparison, folder: Path) -> dict:
    files = sorted(path.name for path in folder.iterdir() if path.name != MANIFEST)
    return {
        "format": FORMAT,
        "workload": {"name": workload.name, "params": dict(workload.params), "flop": workload.flop},
        "args": [
            {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype, "output": index in workload.outputs}
            for index, spec in enumerate(workload.args)
        ],
        "outputs": list(workload.outputs),
        "function": "main",
        "target": plain_json(target.export()),
        "latency_s": latency_s,
        "gflops": workload.flop / latency_s / 1e9 if latency_s and workload.flop else None,
        "verified": {"max_abs_error": comparison.max_abs_error, "max_rel_error": comparison.max_rel_error},
        "tvm_version": tvm.__version__,
        "msexplore_version": importlib.metadata.version("msexplore"),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "files": {name: sha256(folder / name) for name in files},
    }


def load_kernel(folder: str | os.PathLike, *, verify_checksums: bool = True) -> Kernel:
    """Load a bundle written by ``export_kernel``, first checking every file against its recorded sha256."""
    path = Path(folder)
    if not (path / MANIFEST).is_file():
        raise FileNotFoundError(f"{path} is not a kernel bundle: it has no {MANIFEST} (write one with export_kernel)")
    manifest = json.loads((path / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path / MANIFEST}: format {manifest.get('format')!r}, this msexplore reads {FORMAT!r}")
    if verify_checksums:
        bundles.verify_checksums(path, manifest["files"])
    return Kernel(path, manifest, tvm.runtime.load_module(str(path / LIBRARY)))


class Kernel:
    """A loaded kernel, called on numpy arrays.

    ``k(*all_args)`` writes the outputs into the given output arrays and returns them; ``k(*inputs)``
    allocates the outputs. One output is returned as an array, several as a tuple.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], lib: tvm.runtime.Module) -> None:
        self.path = path
        self.manifest = manifest
        self._lib = lib
        self._function = lib[manifest.get("function", "main")]
        self._outputs = [index for index, arg in enumerate(manifest["args"]) if arg["output"]]

    @functools.cached_property
    def workload(self) -> Workload:
        """The workload, rebuilt from ``workload.json``."""
        return Workload.from_json(json.loads((self.path / WORKLOAD).read_text()))

    def __call__(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        args = self.manifest["args"]
        n_inputs = len(args) - len(self._outputs)
        if len(arrays) == len(args):
            full = list(arrays)
        elif len(arrays) == n_inputs:
            given = iter(arrays)
            full = [None if arg["output"] else next(given) for arg in args]
        else:
            names = ", ".join(arg["name"] for arg in args)
            raise TypeError(
                f"kernel takes {len(args)} arrays ({names}) or only its {n_inputs} inputs, got {len(arrays)}"
            )
        device = tvm.cpu(0)
        tensors = []
        for index, (arg, array) in enumerate(zip(args, full)):
            if array is None:
                tensors.append(tvm.runtime.empty(arg["shape"], arg["dtype"], device))
                continue
            _check_argument(index, arg, array)
            tensors.append(tvm.runtime.tensor(array, device))
        self._function(*tensors)
        results = []
        for index in self._outputs:
            value = tensors[index].numpy()
            if full[index] is not None:
                np.copyto(full[index], value)
                value = full[index]
            results.append(value)
        return results[0] if len(results) == 1 else tuple(results)

    def benchmark(self, *, number: int = 10, repeat: int = 5, min_repeat_ms: int = 50) -> dict[str, Any]:
        """Time the kernel on the workload's inputs with TVM's ``time_evaluator``: latencies in seconds.

        Returns ``median_s``, ``mean_s``, ``min_s``, ``std_s``, ``results_s`` (one per repeat, each the mean of
        ``number`` runs) and ``gflops`` at the median.
        """
        device = tvm.cpu(0)
        tensors = [tvm.runtime.tensor(array, device) for array in self.workload.make_inputs(0)]
        timer = self._lib.time_evaluator(
            self.manifest.get("function", "main"), device, number=number, repeat=repeat, min_repeat_ms=min_repeat_ms
        )
        results = [float(seconds) for seconds in timer(*tensors).results]
        median = statistics.median(results)
        flop = self.manifest["workload"]["flop"]
        return {
            "median_s": median,
            "mean_s": statistics.fmean(results),
            "min_s": min(results),
            "std_s": statistics.pstdev(results),
            "results_s": results,
            "gflops": flop / median / 1e9 if flop and median else None,
        }

    def check(self, *, seed: int = 0) -> Comparison:
        """Run on the workload's inputs for ``seed`` and compare with the reference."""
        return verify(self._lib, self.workload, seed=seed)

    def __repr__(self) -> str:
        return f"Kernel({str(self.path)!r}: {_summary(self.manifest)})"


def _check_argument(index: int, arg: dict[str, Any], array: Any) -> None:
    label = f"argument {index} ({arg['name']})"
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{label}: expected a numpy array, got {type(array).__name__}")
    expected = (tuple(arg["shape"]), arg["dtype"])
    got = (array.shape, str(array.dtype))
    if got != expected:
        raise ValueError(f"{label}: expected shape {expected[0]} {expected[1]}, got shape {got[0]} {got[1]}")
    if arg["output"] and not array.flags.writeable:
        raise ValueError(f"{label} is an output, so it must be writeable")


def _summary(manifest: dict[str, Any]) -> str:
    workload = manifest["workload"]
    params = "".join(f" {key}={value}" for key, value in workload["params"].items())
    args = " ".join(
        f"{'->' if arg['output'] else ''}{arg['name']}[{','.join(map(str, arg['shape']))}]{arg['dtype']}"
        for arg in manifest["args"]
    )
    speed = f", {manifest['gflops']:.1f} GFLOPS" if manifest.get("gflops") else ""
    target = manifest["target"]
    cpu = f" {target['mcpu']}" if isinstance(target, dict) and target.get("mcpu") else ""
    return f"{workload['name']}{params} ({args}), {target.get('kind', '?')}{cpu}{speed}"
