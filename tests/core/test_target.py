"""Targets: the host CPU, and what users pass (None, dict, Target, JSON, old-style strings) -> a MetaSchedule target."""

from __future__ import annotations

import os

import pytest
import tvm

import msexplore as mx
from msexplore.target import host_cores


@pytest.fixture(scope="module")
def host() -> dict:
    detected = tvm.target.Target.from_device(tvm.cpu())
    return {"mtriple": str(detected.attrs["mtriple"]), "mcpu": str(detected.attrs["mcpu"])}


def attrs(target: tvm.target.Target) -> dict:
    """The target's attributes as plain Python values (lists for arrays)."""
    out = {}
    for key, value in target.attrs.items():
        out[str(key)] = [str(v) for v in value] if isinstance(value, (list, tuple, tvm.ir.Array)) else value
    return out


def test_host_target_is_this_cpu(host):
    target = mx.host_target()
    assert target.kind.name == "llvm"
    assert attrs(target) == {"num-cores": host_cores(), **host}
    assert host_cores() == len(os.sched_getaffinity(0))


def test_host_target_with_explicit_cores(host):
    assert attrs(mx.host_target(num_cores=3)) == {"num-cores": 3, **host}


@pytest.mark.parametrize("bad", [0, -2, True, 2.0, "2"])
def test_host_target_rejects_bad_core_counts(bad):
    with pytest.raises(ValueError, match=r"num-cores must be a positive integer, got"):
        mx.host_target(num_cores=bad)


def test_none_is_the_host():
    assert str(mx.resolve_target(None)) == str(mx.host_target())


def test_dict_without_cpu_gets_the_host_cpu_and_cores(host):
    assert attrs(mx.resolve_target({"kind": "llvm"})) == {"num-cores": host_cores(), **host}


def test_dict_keeps_what_it_names_and_fills_the_rest(host):
    target = mx.resolve_target({"kind": "llvm", "mcpu": "znver5", "num-cores": 4})
    assert attrs(target) == {"num-cores": 4, "mcpu": "znver5", "mtriple": host["mtriple"]}


def test_mattr_alone_names_a_cpu_so_no_mcpu_is_added(host):
    target = mx.resolve_target({"kind": "llvm", "mattr": ["+avx2"], "num-cores": 1})
    assert attrs(target) == {"num-cores": 1, "mattr": ["+avx2"], "mtriple": host["mtriple"]}


def test_old_style_string_is_converted(host):
    target = mx.resolve_target("llvm -mcpu=znver5 -num-cores 2")
    assert target.kind.name == "llvm"
    assert attrs(target) == {"num-cores": 2, "mcpu": "znver5", "mtriple": host["mtriple"]}
    # "-key=value" and "-key value" are the same; mattr is a comma list
    same = mx.resolve_target("llvm -mcpu znver5 -num-cores=2 -mattr=+avx2,+fma")
    assert attrs(same) == {"num-cores": 2, "mcpu": "znver5", "mtriple": host["mtriple"], "mattr": ["+avx2", "+fma"]}


def test_json_string_is_a_dict(host):
    target = mx.resolve_target('{"kind": "llvm", "num-cores": 3, "mcpu": "skylake"}')
    assert attrs(target) == {"num-cores": 3, "mcpu": "skylake", "mtriple": host["mtriple"]}


def test_target_object_passes_through_with_what_metaschedule_needs(host):
    full = tvm.target.Target({"kind": "llvm", "num-cores": 5, "mcpu": "znver5", "mtriple": "x86_64-linux-gnu"})
    assert attrs(mx.resolve_target(full)) == {"num-cores": 5, "mcpu": "znver5", "mtriple": "x86_64-linux-gnu"}
    # Target("llvm") gets the host triple from TVM itself; it still means "this CPU", not generic x86-64
    assert attrs(mx.resolve_target(tvm.target.Target("llvm"))) == {"num-cores": host_cores(), **host}


def test_a_foreign_triple_gets_no_host_cpu():
    target = mx.resolve_target({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "num-cores": 4})
    assert str(target.attrs["mtriple"]) == "aarch64-linux-gnu"
    assert "mcpu" not in target.attrs


def test_resolving_twice_changes_nothing():
    once = mx.resolve_target("llvm -mcpu=znver5 -num-cores 2")
    assert str(mx.resolve_target(once)) == str(once)


def test_non_llvm_kinds_get_no_cpu_attributes():
    target = mx.resolve_target("c")
    assert target.kind.name == "c"
    assert "num-cores" not in target.attrs and "mcpu" not in target.attrs


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (42, TypeError, r"target must be None \(the host CPU\), a dict, a tvm.target.Target or a string .*got int"),
        ("-mcpu=znver5", ValueError, r"must start with a kind, e.g. 'llvm -mcpu=znver5 -num-cores 2'"),
        ("", ValueError, r"must start with a kind"),
        ("llvm mcpu=znver5", ValueError, r"expected an option such as '-mcpu=...' at 'mcpu=znver5'"),
        ("llvm -num-cores two", ValueError, r"target option -num-cores takes an integer, got 'two'"),
        ({"mcpu": "znver5"}, ValueError, r"has no 'kind'; e.g. \{'kind': 'llvm', 'num-cores': 2\}"),
        ({"kind": "llvm", "num-cores": 0}, ValueError, r"num-cores must be a positive integer, got 0"),
        ({"kind": "nosuch"}, ValueError, r"TVM rejected the target .*'nosuch'.*not defined"),
        ("llvm -bogus-opt=1", ValueError, r"TVM rejected the target .*Unknown config option 'bogus-opt'"),
    ],
)
def test_bad_targets_say_what_is_accepted(bad, error, message):
    with pytest.raises(error, match=message):
        mx.resolve_target(bad)


# Kernels run on every physical core. TVM alone starts hardware_concurrency()/2 threads on x86, so on a VM whose
# vCPUs are real cores (this machine: 2 vCPUs, 1 thread per core) every kernel ran on one core.
_THREADS_PROBE = """
import msexplore, tvm
from tvm.support.popen_pool import PopenWorker
from msexplore.target import kernel_threads
worker = PopenWorker()
worker.send(tvm.runtime.num_threads)
print(tvm.runtime.num_threads(), worker.recv(), kernel_threads())
"""


def _probe_threads(**env: str) -> list[int]:
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_PROBE], env={**clean, **env}, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return [int(x) for x in out.stdout.split()]


def test_kernels_run_on_every_physical_core_in_this_process_and_in_workers():
    here, worker, physical = _probe_threads()
    assert physical >= 1
    assert here == physical, "msexplore's own process (Kernel.time, mx.measure in-process) uses every core"
    assert worker == physical, "builder/runner worker processes inherit the thread count"


def test_a_users_own_thread_count_is_kept():
    here, worker, _ = _probe_threads(TVM_NUM_THREADS="1")
    assert (here, worker) == (1, 1)


_INTRINSICS_PROBE = """
import sys
import msexplore as mx
import tvm
from msexplore.target import load_tensor_intrinsics
mx.Space(mx.workload("GMM", n=16, m=16, k=16))  # a TuneContext: TVM would import every platform's intrinsics
print("tvm.s_tir.tensor_intrin.cuda" in sys.modules, "tvm.s_tir.tensor_intrin.x86" in sys.modules)
print(tvm.s_tir.TensorIntrin.get("dot_16x4_vnni") is not None)
load_tensor_intrinsics(tvm.target.Target("cuda"))  # another target kind in the same process gets its own
print(tvm.s_tir.TensorIntrin.get("mma_ldmatrix_f16_a") is not None)
"""


def test_only_the_targets_tensor_intrinsics_are_registered_and_the_rest_on_demand():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _INTRINSICS_PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded, vnni, cuda = out.stdout.split("\n")[:3]
    assert loaded == "False True"  # x86's registered, CUDA's (most of TVM's 10-60 s import) not parsed
    assert vnni == "True" and cuda == "True"
