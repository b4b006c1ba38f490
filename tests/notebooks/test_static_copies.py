"""A notebook saved after a run still shows its panels: executed with nbclient (which saves the widget state, as
``jupyter nbconvert --execute`` does), converted to HTML with nbconvert, it holds each panel's static copy in its
last state (the dashboard's final header, figure and table, the explorer's samples and TIR), not only widget views
that need a kernel ("Error displaying widget" where they cannot be drawn).

A real tiny search (GMM 32^3, 8 trials in 2 batches) and a TraceExplorer of 6 samples, in a fresh kernel.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from nbconvert import HTMLExporter
from notebook_runner import WIDGET_MIME, execute, static_copy, this_interpreters_kernel

pytestmark = pytest.mark.slow

CELLS = [
    # the run as the cell's last line: its dashboard, then the dashboard's static copy (drawn while it starts)
    """import msexplore as mx
space = mx.Space(mx.workload("GMM", n=32, m=32, k=32))
run = mx.search(space, trials=8, batch_size=4, population_size=32, init_min_unmeasured=8, work_dir="runs/gmm")
run""",
    # the search ends during this cell: the copy above is published again, in its final state
    "run.wait()\nprint(run.progress)",
    "explorer = mx.ui.TraceExplorer(space, n=6, seed=3)\nexplorer",
    "explorer.wait()\nprint(explorer.message)",
]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> str:
    yield from this_interpreters_kernel(tmp_path_factory.mktemp("jupyter-path"), "msexplore-static-test")


@pytest.fixture(scope="module")
def executed(kernel: str, tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    root = tmp_path_factory.mktemp("static")
    work = root / "work"
    work.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "msexplore test", "language": "python"}
    nbformat.write(nb, work / "static.ipynb")
    executed, _ = execute("static.ipynb", work, kernel, timeout_s=600, folder=work)
    return executed


def test_each_panel_has_a_static_copy_after_its_widget(executed):
    dashboard_cell, _, explorer_cell, _ = executed.cells
    for cell in (dashboard_cell, explorer_cell):
        kinds = [("widget" if WIDGET_MIME in out.get("data", {}) else "copy" if static_copy(out) else out.output_type)
                 for out in cell.outputs]
        assert kinds == ["widget", "copy"], kinds
    assert all(not (out.output_type == "stream" and out.name == "stderr") for c in executed.cells for out in c.outputs)
    # nbclient saved the widget state: nbconvert draws each widget output as a widget view (a script for a widget
    # manager), so the panels' state reaches a static page only through their copies
    assert executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]


def test_the_copies_hold_the_last_state(executed):
    dashboard = static_copy(executed.cells[0].outputs[1])
    assert re.search(r'msx-status-done">done<', dashboard), dashboard[:2000]
    assert re.search(r">trials</span> <span[^>]*>8/8<", dashboard)
    assert "Best " in dashboard and dashboard.count("<tr>") >= 2  # the best candidates, with rows
    assert "<svg" in dashboard and dashboard.count("<circle") >= 1  # the progress figure with its candidates
    explorer = static_copy(executed.cells[2].outputs[1])
    assert "6 samples" in explorer and "Z.tile_i" in explorer and "prim_func" in explorer, explorer[:2000]
    assert len(dashboard) < 200_000 and len(explorer) < 200_000  # modest: no plotly.js, thinned figure


def test_nbconvert_html_shows_the_copies(executed, tmp_path):
    body, _ = HTMLExporter().from_notebook_node(executed)
    (tmp_path / "static.html").write_text(body)
    assert body.count("static copy of the last state") == 2
    assert re.search(r'msx-status-done">done<', body)
    assert "<svg" in body and "<circle" in body and "Best " in body
    assert "prim_func" in body and "Z.tile_i" in body
    assert "application/vnd.jupyter.widget-view+json" in body  # the widgets are there too, for a widget manager
