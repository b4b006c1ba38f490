"""Kernel bundles: export, checksums, atomic replacement, and loading in a fresh process (real TVM, tiny GMM)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tvm
from tvm import te

import msexplore.export
from msexplore.export import Bundle, export_kernel, load_kernel
from msexplore.target import host_target
from msexplore.workloads import workload

FILES = ["kernel.so", "manifest.json", "record.json", "schedule.py", "trace.json", "trace.py", "workload.json"]


def _tiled(workload_):
    sch = tvm.s_tir.Schedule(workload_.mod)
    _, i, _, _ = sch.get_loops(sch.get_sblock("Z"))
    outer, _ = sch.split(i, [None, 8])
    sch.parallel(outer)
    return sch


@pytest.fixture(scope="module")
def gmm():
    return workload("GMM", n=32, m=48, k=16)


@pytest.fixture(scope="module")
def bundle(gmm, tmp_path_factory):
    sch = _tiled(gmm)
    return export_kernel(
        tmp_path_factory.mktemp("bundles") / "gmm",
        mod=sch.mod,
        workload=gmm,
        target=None,
        trace_python=sch.trace.as_python(),
        trace_json=[[["Parallel", ["l9"], [], []]], []],
        record_json='{"run_secs": [1e-05]}',
        latency_s=2e-5,
    )


def _copy(bundle, tmp_path):
    return shutil.copytree(bundle.path, tmp_path / "copy")


def _only_entries(folder):
    return sorted(os.listdir(folder))


def test_export_writes_every_file_with_its_checksum(bundle, gmm):
    assert _only_entries(bundle.path) == FILES
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    assert manifest == bundle.manifest
    assert sorted(manifest["files"]) == [name for name in FILES if name != "manifest.json"]
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((bundle.path / name).read_bytes()).hexdigest() == digest
    assert manifest["workload"] == {"name": "GMM", "params": dict(gmm.params), "flop": gmm.flop}
    assert [(a["name"], a["shape"], a["dtype"], a["output"]) for a in manifest["args"]] == [
        ("X", [1, 32, 16], "float32", False),
        ("Y", [1, 16, 48], "float32", False),
        ("Z", [1, 32, 48], "float32", True),
    ]
    assert manifest["target"]["mcpu"] == str(host_target().attrs["mcpu"])
    assert tvm.target.Target(manifest["target"]).export()["num-cores"] == host_target().export()["num-cores"]
    assert manifest["latency_s"] == 2e-5 and manifest["gflops"] == pytest.approx(gmm.flop / 2e-5 / 1e9)
    assert manifest["tvm_version"] == tvm.__version__ and manifest["msexplore_version"]
    assert json.loads((bundle.path / "workload.json").read_text()) == gmm.to_json()
    assert "T.parallel" in (bundle.path / "schedule.py").read_text()
    assert "sch.parallel" in (bundle.path / "trace.py").read_text()
    assert json.loads((bundle.path / "record.json").read_text()) == {"run_secs": [1e-05]}
    assert "GMM b=1 n=32 m=48 k=16" in repr(bundle) and "GFLOPS" in repr(bundle)


def test_kernel_runs_in_a_fresh_process(bundle):
    script = textwrap.dedent(
        f"""
        import numpy as np
        from msexplore.export import load_kernel
        k = load_kernel({str(bundle.path)!r})
        rng = np.random.default_rng(5)
        x = rng.random((1, 32, 16), dtype=np.float32)
        y = rng.random((1, 16, 48), dtype=np.float32)
        z = k(x, y)
        print(float(np.abs(z - x @ y).max()), k.check().ok, sorted(k.benchmark(number=1, repeat=2)))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    error, ok, keys = done.stdout.strip().split(" ", 2)
    assert float(error) < 1e-4 and ok == "True"
    assert keys == "['gflops', 'mean_s', 'median_s', 'min_s', 'results_s', 'std_s']"


def test_kernel_writes_outputs_in_place_or_allocates_them(bundle, gmm):
    kernel = load_kernel(bundle.path)
    x, y, z = gmm.make_inputs(7)
    returned = kernel(x, y, z)
    assert returned is z
    np.testing.assert_allclose(z, x @ y, rtol=1e-4, atol=1e-4)
    fresh = kernel(x, y)
    assert fresh is not z and np.array_equal(fresh, z)
    assert kernel.check().ok
    timing = kernel.benchmark(number=2, repeat=3, min_repeat_ms=1)
    assert len(timing["results_s"]) == 3 and timing["min_s"] <= timing["median_s"]
    assert timing["gflops"] == pytest.approx(gmm.flop / timing["median_s"] / 1e9)


def test_kernel_names_the_argument_that_does_not_fit(bundle, gmm):
    kernel = load_kernel(bundle.path)
    x, y, z = gmm.make_inputs(0)
    expected = r"argument 1 \(Y\): expected shape \(1, 16, 48\) float32, got shape \(1, 48, 16\) float32"
    with pytest.raises(ValueError, match=expected):
        kernel(x, y.reshape(1, 48, 16), z)
    with pytest.raises(ValueError, match=r"argument 2 \(Z\): expected shape \(1, 32, 48\) float32, got .* float64"):
        kernel(x, y, z.astype(np.float64))
    with pytest.raises(TypeError, match=r"argument 0 \(X\): expected a numpy array, got list"):
        kernel(x.tolist(), y)
    with pytest.raises(TypeError, match=r"takes 3 arrays \(X, Y, Z\) or only its 2 inputs, got 1"):
        kernel(x)


def test_modified_file_is_detected(bundle, tmp_path):
    copy = _copy(bundle, tmp_path)
    library = (copy / "kernel.so").read_bytes()
    (copy / "kernel.so").write_bytes(library + b"\0")
    with pytest.raises(ValueError, match=r"kernel\.so: checksum mismatch .*the bundle was modified after export"):
        load_kernel(copy)
    (copy / "kernel.so").write_bytes(library)
    (copy / "schedule.py").write_text("# edited")
    with pytest.raises(ValueError, match=r"schedule\.py: checksum mismatch"):
        load_kernel(copy)
    (copy / "schedule.py").unlink()
    with pytest.raises(ValueError, match=r"schedule\.py: listed in the manifest but missing"):
        load_kernel(copy, verify_checksums=True)
    assert load_kernel(copy, verify_checksums=False)  # still loads when asked not to check


def test_existing_destination_is_refused_unless_overwrite(bundle, gmm, tmp_path):
    copy = _copy(bundle, tmp_path)
    with pytest.raises(FileExistsError, match="already exists; pass overwrite=True"):
        export_kernel(copy, mod=gmm.mod, workload=gmm, target=None)
    replaced = export_kernel(copy, mod=gmm.mod, workload=gmm, target=None, overwrite=True)
    assert _only_entries(copy) == ["kernel.so", "manifest.json", "schedule.py", "workload.json"]
    assert replaced.manifest["latency_s"] is None and load_kernel(copy).check().ok
    assert _only_entries(tmp_path) == ["copy"]  # the old bundle's retired copy is gone


def test_destination_that_is_a_file_is_refused(gmm, tmp_path):
    target_file = tmp_path / "kernel"
    target_file.write_text("not a folder")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        export_kernel(target_file, mod=gmm.mod, workload=gmm, target=None, overwrite=True)


def test_wrong_kernel_is_refused(tmp_path):
    a, b = te.placeholder((16, 16), name="A"), te.placeholder((16, 16), name="B")
    add = workload([a, b, te.compute((16, 16), lambda i, j: a[i, j] + b[i, j], name="C")])
    subtract = workload([a, b, te.compute((16, 16), lambda i, j: a[i, j] - b[i, j], name="C")])
    with pytest.raises(ValueError, match=r"refusing to export a wrong kernel for main: max abs error 1\.\d+e\+00"):
        export_kernel(tmp_path / "bad", mod=subtract.mod, workload=add, target=None)
    assert _only_entries(tmp_path) == []


def test_failure_mid_export_leaves_nothing_behind(bundle, gmm, tmp_path, monkeypatch):
    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(msexplore.export, "_manifest", fail)  # after kernel.so and the texts are written
    with pytest.raises(OSError, match="disk full"):
        export_kernel(tmp_path / "new", mod=gmm.mod, workload=gmm, target=None)
    assert _only_entries(tmp_path) == []

    copy = _copy(bundle, tmp_path)
    before = {name: (copy / name).read_bytes() for name in _only_entries(copy)}
    with pytest.raises(OSError, match="disk full"):
        export_kernel(copy, mod=gmm.mod, workload=gmm, target=None, overwrite=True)
    assert {name: (copy / name).read_bytes() for name in _only_entries(copy)} == before
    assert _only_entries(tmp_path) == ["copy"]


def test_provenance_arguments_are_checked(gmm, tmp_path):
    with pytest.raises(ValueError, match="trace_json is a string but not JSON text"):
        export_kernel(tmp_path / "k", mod=gmm.mod, workload=gmm, target=None, trace_json="[1,")
    with pytest.raises(TypeError, match="record_json must be JSON-serializable"):
        export_kernel(tmp_path / "k", mod=gmm.mod, workload=gmm, target=None, record_json={"x": object()})
    with pytest.raises(ValueError, match="latency_s must be a positive number"):
        export_kernel(tmp_path / "k", mod=gmm.mod, workload=gmm, target=None, latency_s=0)
    with pytest.raises(FileNotFoundError, match="is not a kernel bundle"):
        load_kernel(tmp_path)
    assert _only_entries(tmp_path) == []


def test_bundle_repr_is_readable(bundle):
    assert isinstance(bundle, Bundle)
    assert repr(bundle).startswith(f"Bundle({str(bundle.path)!r}: GMM b=1 n=32 m=48 k=16 (X[1,32,16]float32")
