"""Notebook 08 (a whole model from PyTorch) runs top to bottom in a fresh kernel, quietly, and shows what it promises.

It needs torch, so it runs here in .venv-torch (``make test``), not with the other notebooks in
``tests/notebooks/test_notebooks.py``; both run notebooks through ``tests/notebook_runner.py``. The notebook is
executed with nbclient in a temp folder, in a kernel of this very interpreter (a kernelspec written for the test,
first on ``JUPYTER_PATH``), with a tiny encoder layer and budget through the ``MSX_*`` variables its ``parameters``
cell reads.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from notebook_runner import CHATTER, execute, output_text, shows_widget, tagged, this_interpreters_kernel

NAME = "08_whole_model.ipynb"
# A tiny layer (seq 16, hidden 32, 2 heads: 21 tasks) and a trial for each task, so that none falls back.
SMALL_BUDGET = {
    "MSX_SEQ": "16",
    "MSX_HIDDEN": "32",
    "MSX_HEADS": "2",
    "MSX_SAMPLES": "8",
    "MSX_TRIALS": "24",
    "MSX_BATCH": "4",
}
CELL_TIMEOUT_S = 900  # the tuning cell waits for 21 task searches, each starting its own worker processes
KERNEL = "msexplore-test-venv-torch"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kernelspec that runs ipykernel with this very interpreter (.venv-torch), found first."""
    yield from this_interpreters_kernel(tmp_path_factory.mktemp("jupyter-path"), KERNEL)


def cell(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    (found,) = tagged(nb, tag)
    return found


@pytest.fixture(scope="module")
def executed(kernel_name: str, tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The notebook run once with the small budget (every test below reads its outputs)."""
    workdir = tmp_path_factory.mktemp("notebook-08")
    nb, elapsed = execute(NAME, workdir, kernel_name, timeout_s=CELL_TIMEOUT_S, env=SMALL_BUDGET)
    print(f"{NAME}: {elapsed:.0f} s (executed copy: {workdir / NAME})")
    return nb


@pytest.mark.slow
def test_runs_quietly(executed: nbformat.NotebookNode):
    for index, code in enumerate(executed.cells):
        if code.cell_type == "code":
            text = output_text(code)
            noise = [marker for marker in CHATTER if marker in text]
            assert not noise, f"{NAME} cell {index} shows TVM's output ({noise}):\n{text[:1500]}"


@pytest.mark.slow
def test_shows_the_task_explorer_and_the_live_model_dashboard(executed: nbformat.NotebookNode):
    assert shows_widget(cell(executed, "widget")), "the TraceExplorer of the opened task was not displayed"
    dashboard = cell(executed, "model-dashboard")
    assert shows_widget(dashboard), f"`run` as the last line did not display the dashboard:\n{output_text(dashboard)}"


@pytest.mark.slow
def test_compiled_model_matches_pytorch_and_reloads(executed: nbformat.NotebookNode):
    check = output_text(cell(executed, "model-check"))
    assert "outputs match PyTorch eager: max abs error" in check, check[:2000]
    assert "fallbacks: none, every task was tuned" in check, f"a budget with a trial per task left a task out:\n{check}"
    versus = output_text(cell(executed, "versus-torch"))
    assert re.search(r"speedup over PyTorch eager: \d+\.\d\dx", versus), versus
    reload = output_text(cell(executed, "reload"))
    assert "reloaded outputs equal the compiled model's: True" in reload, reload
