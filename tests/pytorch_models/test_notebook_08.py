"""Notebook 08 (a whole model from PyTorch) runs top to bottom in a fresh kernel, quietly, and shows what it promises.

It needs torch, so it runs here in .venv-torch (``make test``), not with the other notebooks in
``tests/notebooks/test_notebooks.py``; what this file needs of that one's helpers is copied, since a test file is
not a library. The notebook is executed with nbclient in a temp folder, in a kernel of this very interpreter (a
kernelspec written for the test, first on ``JUPYTER_PATH``), with a tiny encoder layer and budget through the
``MSX_*`` variables its ``parameters`` cell reads.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

REPO = Path(__file__).resolve().parents[2]
NAME = "08_whole_model.ipynb"
# A tiny layer (seq 16, hidden 32, 2 heads: 21 tasks) and a trial for each task, so that none falls back.
SMALL_BUDGET = {
    "MSX_SEQ": "16",
    "MSX_HIDDEN": "32",
    "MSX_HEADS": "2",
    "MSX_SAMPLES": "8",
    "MSX_TRIALS": "24",
    "MSX_BATCH": "4",
    "MSX_POPULATION": "16",
}
CELL_TIMEOUT_S = 900  # the tuning cell waits for 21 task searches, each starting its own worker processes
KERNEL = "msexplore-test-venv-torch"
# What TVM prints during tuning when it is not silenced (as in tests/notebooks/test_notebooks.py).
CHATTER = ("Total trials", "[INFO]", "LocalBuilder", "task_scheduler", "LocalRunner", "[DEBUG]")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kernelspec that runs ipykernel with this very interpreter (.venv-torch), found first."""
    root = tmp_path_factory.mktemp("jupyter-path")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "msexplore test (venv-torch)",
        "language": "python",
    }))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(root))
    yield KERNEL
    mp.undo()


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


def tagged(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]
    return cell


def shows_widget(cell: nbformat.NotebookNode) -> bool:
    return any(WIDGET_MIME in out.get("data", {}) for out in cell.get("outputs", []))


@pytest.fixture(scope="module")
def executed(kernel_name: str, tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The notebook run once with the small budget (every test below reads its outputs)."""
    workdir = tmp_path_factory.mktemp("notebook-08")
    shutil.copy(REPO / "notebooks" / NAME, workdir / NAME)
    nb = nbformat.read(workdir / NAME, as_version=4)
    mp = pytest.MonkeyPatch()
    for key, value in SMALL_BUDGET.items():
        mp.setenv(key, value)
    client = NotebookClient(
        nb, kernel_name=kernel_name, timeout=CELL_TIMEOUT_S, startup_timeout=180,
        resources={"metadata": {"path": str(workdir)}}, allow_errors=False,
    )
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, DeadKernelError) as err:
        nbformat.write(nb, workdir / NAME)  # keep what ran, for the failure report
        what = "the kernel died" if isinstance(err, DeadKernelError) else "a cell raised"
        pytest.fail(f"{NAME}: {what} (executed copy: {workdir / NAME})\n{err}", pytrace=False)
    finally:
        mp.undo()
    nbformat.write(nb, workdir / NAME)
    print(f"{NAME}: {time.perf_counter() - start:.0f} s (executed copy: {workdir / NAME})")
    return nb


@pytest.mark.slow
def test_runs_quietly(executed: nbformat.NotebookNode):
    for index, cell in enumerate(executed.cells):
        if cell.cell_type == "code":
            text = output_text(cell)
            noise = [marker for marker in CHATTER if marker in text]
            assert not noise, f"{NAME} cell {index} shows TVM's output ({noise}):\n{text[:1500]}"


@pytest.mark.slow
def test_shows_the_task_explorer_and_the_live_model_dashboard(executed: nbformat.NotebookNode):
    assert shows_widget(tagged(executed, "widget")), "the TraceExplorer of the opened task was not displayed"
    dashboard = tagged(executed, "model-dashboard")
    assert shows_widget(dashboard), f"`run` as the last line did not display the dashboard:\n{output_text(dashboard)}"


@pytest.mark.slow
def test_compiled_model_matches_pytorch_and_reloads(executed: nbformat.NotebookNode):
    check = output_text(tagged(executed, "model-check"))
    assert "outputs match PyTorch eager: max abs error" in check, check[:2000]
    assert "fallbacks: none, every task was tuned" in check, f"a budget with a trial per task left a task out:\n{check}"
    versus = output_text(tagged(executed, "versus-torch"))
    assert re.search(r"speedup over PyTorch eager: \d+\.\d\dx", versus), versus
    reload = output_text(tagged(executed, "reload"))
    assert "reloaded outputs equal the compiled model's: True" in reload, reload
