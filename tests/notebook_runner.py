"""Running a guided notebook in a test, shared by tests/notebooks (the torch-free .venv) and
tests/pytorch_models/test_notebook_08.py (.venv-torch): a kernelspec of the interpreter running the tests, the
execution with nbclient (an executed copy kept for the failure report), and reading what cells show.

Importable as ``notebook_runner`` because pytest puts ``tests/`` (the root conftest's folder) on ``sys.path``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
# What TVM prints during tuning when it is not silenced: logging lines, the statistics table, builder/runner logs.
CHATTER = ("Total trials", "[INFO]", "LocalBuilder", "task_scheduler", "LocalRunner", "[DEBUG]")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def this_interpreters_kernel(root: Path, name: str) -> Iterator[str]:
    """A kernelspec ``name`` that runs ipykernel with the tests' own interpreter, first on ``JUPYTER_PATH`` while the
    generator is open (use it as a fixture body: ``yield from this_interpreters_kernel(...)``)."""
    spec = root / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"msexplore test ({Path(sys.prefix).name})",
        "language": "python",
    }))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(root))
    try:
        yield name
    finally:
        mp.undo()


def execute(
    name: str,
    workdir: Path,
    kernel: str,
    *,
    timeout_s: int,
    env: Mapping[str, str] | None = None,
    folder: Path = NOTEBOOK_DIR,
) -> tuple[nbformat.NotebookNode, float]:
    """Run ``<folder>/<name>`` (a guided notebook by default) in ``workdir`` (with ``env`` set meanwhile); returns it
    with its outputs, and the wall time. A cell that raises, or a kernel that dies, fails the test with the executed
    copy's path."""
    if Path(folder) != Path(workdir):
        shutil.copy(Path(folder) / name, workdir / name)
    nb = nbformat.read(workdir / name, as_version=4)
    client = NotebookClient(
        nb, kernel_name=kernel, timeout=timeout_s, startup_timeout=180,
        resources={"metadata": {"path": str(workdir)}}, allow_errors=False, record_timing=True,
    )
    mp = pytest.MonkeyPatch()
    for key, value in (env or {}).items():
        mp.setenv(key, value)
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, DeadKernelError) as err:
        nbformat.write(nb, workdir / name)  # keep what ran, for the failure report
        what = "the kernel died" if isinstance(err, DeadKernelError) else "a cell raised"
        pytest.fail(f"{name}: {what} (executed copy: {workdir / name})\n{err}", pytrace=False)
    finally:
        mp.undo()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, workdir / name)
    return nb, elapsed


def output_text(cell: nbformat.NotebookNode) -> str:
    """Everything a reader sees of a code cell's outputs, as text (streams, plain text, HTML, errors)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append("\n".join(out.traceback))
        else:
            for mime in ("text/plain", "text/html", "text/markdown"):
                if mime in out.get("data", {}):
                    parts.append(str(out.data[mime]))
    return "\n".join(parts)


def tagged(nb: nbformat.NotebookNode, tag: str) -> list[nbformat.NotebookNode]:
    """The code cells carrying ``tag``."""
    return [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


def shows_widget(cell: nbformat.NotebookNode) -> bool:
    return any(WIDGET_MIME in out.get("data", {}) for out in cell.get("outputs", []))


def static_copy(output: nbformat.NotebookNode) -> str:
    """The HTML of a panel's static copy (what a saved notebook shows without a kernel), or '' for another output."""
    html = str(output.get("data", {}).get("text/html", ""))
    return html if 'class="msx-static"' in html else ""


def shows_static_copy(cell: nbformat.NotebookNode) -> bool:
    """A widget output followed by its panel's static copy."""
    outputs = cell.get("outputs", [])
    return any(WIDGET_MIME in a.get("data", {}) and static_copy(b) for a, b in zip(outputs, outputs[1:]))


def stderr_text(cell: nbformat.NotebookNode) -> str:
    """What the cell wrote to stderr (Python's or a native library's, on fd 2)."""
    return "".join(out.text for out in cell.get("outputs", []) if out.output_type == "stream" and out.name == "stderr")


def check_quiet(name: str, nb: nbformat.NotebookNode) -> None:
    """No cell writes to stderr or shows TVM's chatter; every widget shown has its static copy after it."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        stderr = stderr_text(cell)
        assert not stderr, f"{name} cell {index} writes to stderr:\n{stderr[:1500]}"
        text = output_text(cell)
        noise = [marker for marker in CHATTER if marker in text]
        assert not noise, f"{name} cell {index} shows TVM's output ({noise}):\n{text[:1500]}"
        if shows_widget(cell):
            assert shows_static_copy(cell), f"{name} cell {index} shows a widget without its static copy"
