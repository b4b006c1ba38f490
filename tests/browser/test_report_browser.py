"""A search's HTML report in headless Chromium with the network cut off: the page draws its plots from what it holds.

The run is made here, without measuring anything: a folder written through ``RunFolder`` (its config, its events)
with real traces of a 32x32x32 GMM (so the best candidate's TIR replays), made-up latencies and predictions, and
failures of three kinds. Playwright drives Debian's Chromium (``/usr/bin/chromium``, as tests/browser/test_jupyterlab
does; skipped where it is missing); every request that is not for the report's own file is aborted and recorded,
and the test asserts there was none. What is drawn is read from the DOM (plotly's SVG paths), not from file sizes.
The whole page goes to ``tests/browser/artifacts/report.png`` for a person to look at.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

import msexplore as mx
from msexplore.report import write_report
from msexplore.schedules import fresh_schedule
from msexplore.search.events import TrialEvent
from msexplore.search.folder import RunFolder
from msexplore.traces import trace_to_json

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
FIGURES = ("progress-figure", "decisions-figure", "cost-model-figure")
TILES_I = ((1, 32), (2, 16), (4, 8), (8, 4))
TILES_J = ((1, 32), (2, 16), (4, 8))

pytestmark = pytest.mark.slow


def _trace(workload: mx.Workload, tile_i: tuple, tile_j: tuple) -> list:
    """A real trace: tile i and j with the given decisions, reorder, vectorize the inner j."""
    sch = fresh_schedule(workload)
    _, i, j, k = sch.get_loops(sch.get_sblock("Z"))
    i0, i1 = sch.split(i, sch.sample_perfect_tile(i, n=2, max_innermost_factor=32, decision=list(tile_i)))
    j0, j1 = sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=32, decision=list(tile_j)))
    sch.reorder(i0, j0, k, i1, j1)
    sch.vectorize(j1)
    return trace_to_json(sch.trace)


def _failure(k: int) -> dict:
    """Candidate ``k``'s failure, if it fails: builds 4, 13 and 22, wrong results 7 and 16, a timeout 11."""
    if k % 9 == 4:
        return {"build_error": 'Traceback (most recent call last):\n  File "b.py", line 3, in build\n'
                               "TVMError: Check failed: vectorized extent must be a constant"}
    if k % 9 == 7:
        return {"run_error": "wrong result: max abs error 0.25", "max_abs_error": 0.25}
    if k == 11:
        return {"run_error": "RuntimeError: run timed out after 60 s"}
    return {}


TRIALS = 24
FIRST_PREDICTED = 8  # the cost model predicts from the second batch on
MEASURED = [k for k in range(TRIALS) if not _failure(k)]
PREDICTED = [k for k in MEASURED if k >= FIRST_PREDICTED]


def _events(workload: mx.Workload) -> list[TrialEvent]:
    events = []
    for k in range(TRIALS):
        tile_i, tile_j = TILES_I[k % len(TILES_I)], TILES_J[k % len(TILES_J)]
        latency = None if _failure(k) else 4e-6 * (1 + ((k * 37) % 23) / 10) / (1 + k / 12)
        events.append(TrialEvent(
            index=k, session=0, batch=k // 8, time_s=0.6 * k, timestamp=1.7e9 + k, design_space=0,
            decisions={"Z.tile_i": tile_i, "Z.tile_j": tile_j},
            latencies_s=() if latency is None else (latency,), latency_s=latency,
            gflops=None if latency is None else workload.flop / latency / 1e9,
            predicted=None if k < FIRST_PREDICTED else 1e-5 * k + (k % 5) / 10,
            trace=_trace(workload, tile_i, tile_j), **_failure(k),
        ))
    return events


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    workload = mx.workload("GMM", n=32, m=32, k=32)
    folder = RunFolder(tmp_path_factory.mktemp("report-browser") / "gmm")
    os.makedirs(folder.path)
    folder.write_config({
        "workload": workload.to_json(), "target": '{"kind": "llvm", "num-cores": 2, "mcpu": "skylake-avx512"}',
        "modules": ["tile_and_vectorize"], "strategy": "evolutionary", "strategy_options": {}, "trials": TRIALS,
        "batch_size": 8, "seed": 1, "cost_model": "xgb", "check": True, "rpc": None, "sessions": 1,
        "started": "2026-01-01T12:00:00",
    })
    folder.events.append(_events(workload))
    folder.write_status(status="done", error=None, session=0, ended=1.7e9 + 30, measured=TRIALS)
    return write_report(folder.path, Path(folder.path) / "report.html")


@pytest.fixture(scope="module")
def page(report: Path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: `make browser-deps` installs Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:  # part of the test extra: `pip install -e .[test]`
        pytest.fail(f"playwright is not installed ({err}); run `make test` or pip install -e '.[test]'")
    ARTIFACTS.mkdir(exist_ok=True)
    own = report.as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            state = SimpleNamespace(page=context.new_page(), elsewhere=[], errors=[])

            def route(r) -> None:  # the report's own file loads; anything else is recorded and aborted
                if r.request.url == own:
                    r.continue_()
                else:
                    state.elsewhere.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            state.page.on("pageerror", lambda error: state.errors.append(str(error)))
            state.page.on("console", lambda msg: state.errors.append(msg.text) if msg.type == "error" else None)
            state.page.goto(own, wait_until="load", timeout=60_000)
            state.page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot').length === {len(FIGURES)}", timeout=30_000)
            state.page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            yield state
        finally:
            browser.close()


def _drawn_paths(page, figure_id: str, selector: str) -> int:
    """How many SVG paths matching ``selector`` plotly drew in the figure, with a non-empty outline."""
    return page.evaluate(
        """([id, sel]) => [...document.getElementById(id).querySelectorAll(sel)]
             .filter((p) => (p.getAttribute("d") || "").replace(/[MZ\\s]/g, "").length > 0).length""",
        [figure_id, selector],
    )


def test_the_report_opens_offline_and_asks_no_other_host(page):
    assert page.elsewhere == []
    assert page.errors == []
    assert page.page.evaluate("typeof Plotly") == "object"  # the inlined bundle


def test_every_figure_is_drawn(page):
    for figure_id in FIGURES:
        assert page.page.locator(f"#{figure_id} .main-svg").count() >= 1, figure_id
    assert _drawn_paths(page.page, "progress-figure", ".subplot.xy .scatterlayer .point") == len(MEASURED)
    assert _drawn_paths(page.page, "progress-figure", ".subplot.xy .scatterlayer .js-line") == 1  # best so far
    assert _drawn_paths(page.page, "progress-figure", ".subplot.x2y2 .scatterlayer .point") == TRIALS - len(MEASURED)
    assert _drawn_paths(page.page, "decisions-figure", ".barlayer .point path") >= len(TILES_I) + len(TILES_J)
    assert _drawn_paths(page.page, "cost-model-figure", ".scatterlayer .point") == len(PREDICTED)


def test_the_progress_buttons_switch_to_search_time_offline(page):
    title = "#progress-figure .g-x2title"
    assert page.page.locator(title).text_content() == "trial"
    page.page.locator("#progress-figure .updatemenu-button", has_text="search time").click()
    page.page.wait_for_function(f"document.querySelector('{title}').textContent.startsWith('search time')")
    assert _drawn_paths(page.page, "progress-figure", ".subplot.xy .scatterlayer .point") == len(MEASURED)
    assert page.elsewhere == []


def test_the_best_candidate_and_the_failures_read_as_text(page):
    best = page.page.locator("#best")
    assert best.locator(".msx-line").count() > 20 and best.locator(".msx-t-k").count() > 0
    assert "T.vectorized" in best.inner_text()
    failures = page.page.locator("#failures details.msx-failure")
    assert failures.count() == 3
    assert "TVMError: Check failed: vectorized extent must be a constant" in failures.first.inner_text()
