"""Notebook 09 (steering the search) runs top to bottom in a fresh kernel with tiny budgets, quietly, and shows what
its text promises: the beam run's dashboard, both searches side by side, the ChooseSchedule panel, a schedule chosen
by hand and measured, "finish from here" by a beam pass, and the steered kernel exported and checked.

Run like ``test_notebooks.py`` runs the others (nbclient, a kernelspec of this interpreter, ``MSX_*`` budgets).
"""

from __future__ import annotations

import re

import nbformat
import pytest
from notebook_runner import (
    check_quiet,
    execute,
    output_text,
    shows_widget,
    tagged,
    this_interpreters_kernel,
)

pytestmark = pytest.mark.slow

NAME = "09_steering_the_search.ipynb"
# Two measured batches of 4 per search on a 64^3 GMM; "finish from here" measures 2 programs.
BUDGET = {"MSX_SIZE": "64", "MSX_TRIALS": "8", "MSX_BATCH": "4", "MSX_POPULATION": "16", "MSX_BEAM": "4",
          "MSX_FINISH": "2"}
CELL_TIMEOUT_S = 600  # the first mx.Space of a kernel alone can take 90 s on a loaded 2-core machine


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    kernels = this_interpreters_kernel(tmp_path_factory.mktemp("jupyter-path"), "msexplore-test-09")
    kernel = next(kernels)
    try:
        nb, elapsed = execute(NAME, tmp_path_factory.mktemp("nb09"), kernel, timeout_s=CELL_TIMEOUT_S, env=BUDGET)
    finally:
        kernels.close()
    print(f"{NAME}: {elapsed:.0f} s")
    return nb


def test_it_runs_quietly_and_every_widget_has_its_static_copy(executed):
    check_quiet(NAME, executed)


def test_the_beam_run_has_its_dashboard_and_both_searches_are_side_by_side(executed):
    (dashboard,) = tagged(executed, "dashboard")
    assert shows_widget(dashboard), output_text(dashboard)[:300]
    (figure,) = tagged(executed, "side-by-side")
    assert any("application/vnd.plotly.v1+json" in out.get("data", {}) for out in figure.outputs), "no figure"
    table = output_text(figure)
    assert re.search(r"^evolutionary\s+8\s", table, re.M) and re.search(r"^beam\s+8\s", table, re.M), table[:1500]


def test_a_schedule_chosen_by_hand_is_measured_then_finished_by_the_beam_and_exported(executed):
    (panel,) = tagged(executed, "widget")
    assert shows_widget(panel) and "ChooseSchedule" in output_text(panel)
    (chosen,) = tagged(executed, "chosen")
    text = output_text(chosen)
    assert re.search(r"^path: design space \d › Z\.tile_i\[0\] = \d+ › ", text, re.M), text[:1500]
    assert re.search(r"chosen by hand: the current program \(9 decisions chosen\): [\d.]+ (µs|ms), [\d.]+ GFLOPS",
                     text), text[:1500]
    (finish,) = tagged(executed, "finish")
    text = output_text(finish)
    assert re.search(r"finished from step 4 by a beam pass: 2 programs measured, the fastest [\d.]+ (µs|ms) is now "
                     r"the path's end", text), text[:1500]
    (check,) = tagged(executed, "kernel-check")
    assert "the steered kernel matches numpy: True" in output_text(check), output_text(check)[:1500]

