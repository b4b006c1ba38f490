"""Model bundles: a compiled model on disk (its library, with the weights inside as constants, the tuning records it
was compiled with, a manifest with a sha256 per file), loaded again by ``load_model`` in a process without torch."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import tvm
from tvm import relax

from ..bundles import checksums, move_into_place, new_sibling, verify_checksums
from ..workloads import TensorSpec

__all__ = ["export_model", "read_bundle", "input_specs", "ModelBundle"]

FORMAT, VERSION = "msexplore.model", 1
MANIFEST, LIBRARY, RECORDS = "manifest.json", "model.so", "records.json"


@dataclasses.dataclass(frozen=True)
class ModelBundle:
    """A model bundle on disk: its folder and manifest."""

    path: Path
    manifest: dict[str, Any]

    def __repr__(self) -> str:
        return f"ModelBundle({str(self.path)!r}, {self.manifest['name']}, {len(self.manifest['files'])} files)"


def export_model(compiled: Any, path: str | os.PathLike, *, overwrite: bool = False) -> ModelBundle:
    """Write ``compiled`` as a bundle folder, whole or not at all; the library is loaded back and re-checked first."""
    destination = Path(path)
    if destination.exists() and not destination.is_dir():
        raise FileExistsError(f"{destination} is a file, not a folder; choose another path for the model bundle")
    if destination.exists() and not overwrite:
        raise FileExistsError(f"{destination} already exists; pass overwrite=True to replace it")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = new_sibling(destination, "tmp")
    try:
        compiled.executable.export_library(str(staging / LIBRARY))
        (staging / RECORDS).write_text(json.dumps(list(compiled.records), indent=1))
        inputs = compiled.random_inputs(0)
        vm = relax.VirtualMachine(tvm.runtime.load_module(str(staging / LIBRARY)), tvm.cpu())
        reloaded = vm["main"](*[tvm.runtime.tensor(a) for a in inputs])
        for got, want in zip(_numpy_tuple(reloaded), _tuple(compiled(*inputs))):
            if not np.array_equal(got, want):
                raise RuntimeError(f"the exported library of {compiled.name} gives other outputs than the model")
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "name": compiled.name,
            "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in compiled.inputs],
            "target": str(compiled.model.target) if compiled.model is not None else None,
            "parameters": "bound into model.so as constants",
            "fallbacks": [dataclasses.asdict(f) for f in compiled.fallbacks],
            "check": None if compiled.check is None else dataclasses.asdict(compiled.check),
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "versions": {name: _version(name) for name in ("msexplore", "apache-tvm", "apache-tvm-ffi", "numpy")},
            "files": checksums(staging),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        move_into_place(staging, destination, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ModelBundle(destination, manifest)


def read_bundle(path: str | os.PathLike, *, verify: bool = True) -> tuple[dict[str, Any], Any, list[Any]]:
    """``(manifest, library, records)`` of a model bundle, every file checked against its sha256 first."""
    folder = Path(path)
    if not (folder / MANIFEST).is_file():
        raise FileNotFoundError(f"{folder} is not a model bundle: it has no {MANIFEST} (write one with .export())")
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{folder / MANIFEST}: format {manifest.get('format')!r}, load_model reads {FORMAT!r}")
    if verify:
        verify_checksums(folder, manifest["files"])
    records = json.loads((folder / RECORDS).read_text()) if (folder / RECORDS).exists() else []
    return manifest, tvm.runtime.load_module(str(folder / LIBRARY)), records


def input_specs(manifest: dict[str, Any]) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in manifest["inputs"])


def _tuple(out: Any) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def _numpy_tuple(out: Any) -> tuple:
    if isinstance(out, tvm.runtime.Tensor):
        return (out.numpy(),)
    return tuple(x for item in out for x in _numpy_tuple(item))


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
