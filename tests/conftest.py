"""Shared fixtures: one tiny GMM workload, its spaces and samples (built once per session), golden files.

The first ``mx.Space`` in a process costs 10-30 s (TVM imports its tensor intrinsics once); every later one costs
milliseconds. Spaces and samples that several test files read are therefore session-scoped and must not be mutated.
"""

from __future__ import annotations

import difflib
import importlib.util
import signal
import threading
from pathlib import Path

import pytest
from tvm.script import tirx as T

import msexplore as mx
from msexplore import modules as _modules

GOLDEN_DIR = Path(__file__).parent / "golden"

# tests/pytorch_models imports models from PyTorch: it runs in .venv-torch (`make test` runs it there, see the
# Makefile); the torch-free .venv, where every other test runs, does not collect it. (Not "tests/torch": on sys.path
# a folder of that name would be imported as the torch package.)
collect_ignore = [] if importlib.util.find_spec("torch") else ["pytorch_models"]

# Every attribute spelled out, so spaces, samples and golden files are the same on any machine (the host target
# would bring this machine's core count, which the default rules turn into annotations). The CPU is Haswell (AVX2 +
# FMA) because tests also run what they build: every machine this project has run on (Cascade Lake, Zen 3, 4, 5)
# runs Haswell code, while skylake-avx512 code dies of SIGILL on a Zen 3 (each of its searches' candidates failed).
TARGET = {"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "haswell"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ from the current output instead of comparing",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """``golden(name, text)``: compare ``text`` with ``tests/golden/<name>`` exactly (or rewrite it)."""
    update = request.config.getoption("--update-golden")

    def check(name: str, text: str) -> None:
        path = GOLDEN_DIR / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"no golden file {path}; run `pytest --update-golden` to write it")
        expected = path.read_text(encoding="utf-8")
        if text != expected:
            delta = "\n".join(
                difflib.unified_diff(
                    expected.splitlines(), text.splitlines(), f"golden/{name}", "now", lineterm=""
                )
            )
            pytest.fail(f"output differs from golden/{name} (run `pytest --update-golden` if intended):\n{delta}")

    return check


@pytest.fixture(autouse=True)
def _restore_module_registry():
    """Modules a test registers (cells it "runs") are forgotten after it; session fixtures' modules stay."""
    before = dict(_modules._REGISTRY)
    yield
    _modules._REGISTRY.clear()
    _modules._REGISTRY.update(before)


@pytest.fixture(scope="session")
def target() -> dict:
    return dict(TARGET)


@pytest.fixture(scope="session")
def gmm() -> mx.Workload:
    return mx.workload("GMM", n=64, m=64, k=64)


@T.prim_func(s_tir=True)
def matmul_relu(A: T.Buffer((16, 16), "float32"), B: T.Buffer((16, 16), "float32"), D: T.Buffer((16, 16), "float32")):
    C = T.sblock_alloc_buffer((16, 16), "float32")
    for i, j, k in T.grid(16, 16, 16):
        with T.sblock("matmul"):
            vi, vj, vk = T.axis.remap("SSR", [i, j, k])
            with T.init():
                C[vi, vj] = T.float32(0)
            C[vi, vj] = C[vi, vj] + A[vi, vk] * B[vk, vj]
    for i, j in T.grid(16, 16):
        with T.sblock("relu"):
            vi, vj = T.axis.remap("SS", [i, j])
            D[vi, vj] = T.max(C[vi, vj], T.float32(0))


@pytest.fixture(name="matmul_relu", scope="session")
def matmul_relu_fixture():
    """A TVMScript PrimFunc with two blocks: ``matmul`` (a reduction) feeding ``relu``."""
    return matmul_relu


@pytest.fixture(scope="session")
def default_space(gmm: mx.Workload) -> mx.Space:
    """The target's default modules on a 64x64x64 GMM: 3 design spaces (multi-level tiling variants)."""
    return mx.Space(gmm, modules=["default"], target=TARGET)


@pytest.fixture(scope="session")
def default_samples(default_space: mx.Space) -> mx.SampleSet:
    return default_space.sample(40, seed=0)


def _tile_and_vectorize(sch, block):
    """Tile i and j in two, put the reduction between the tiles and vectorize the inner j."""
    _, i, j, k = sch.get_loops(block)
    j0, j1 = sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=16))
    i0, i1 = sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=8))
    sch.reorder(i0, j0, k, i1, j1)
    sch.vectorize(j1)
    return [sch]


@pytest.fixture(scope="session")
def tile_module() -> mx.TransformModule:
    """The issue's ``tile_and_vectorize``, registered under a name no test redefines."""
    return mx.module(_tile_and_vectorize, name="tv_session", blocks=["Z"])


@pytest.fixture(scope="session")
def tile_space(gmm: mx.Workload, tile_module: mx.TransformModule) -> mx.Space:
    """One custom module and nothing else: 1 design space, 2 random variables."""
    return mx.Space(gmm, modules=[tile_module], target=TARGET)


@pytest.fixture(scope="session")
def tile_samples(tile_space: mx.Space) -> mx.SampleSet:
    return tile_space.sample(24, seed=0)


def press_ctrl_c() -> None:
    """What a terminal's Ctrl-C does: SIGINT, sent to the main thread (where Python runs signal handlers)."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


@pytest.fixture
def sigint_raises():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal: a suite started in the background by a non-interactive
    shell (``bash -c "make test" &``) inherits SIGINT ignored, and Python then never installs its handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
