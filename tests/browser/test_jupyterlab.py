"""JupyterLab in headless Chromium: the widgets render and respond in a real browser, not only at model level.

Starts ``python -m msexplore.lab`` (127.0.0.1, a token, a free port) on a temp folder holding one small notebook
made here, opens it with Playwright driving Debian's Chromium (``/usr/bin/chromium``; ``make browser-deps``
installs it; Playwright never downloads a browser), runs every cell through JupyterLab's "Run All Cells" menu
item, and checks what a user would see, in the page's DOM: the marks plotly drew (points, lines, bars), each
msexplore panel's own content (code lines, table rows, buttons, the dashboard's header), clicks that change the
page. Screenshots go to ``tests/browser/artifacts/`` (and ``/tmp/msexplore-lab.png``) for a person to look at;
nothing is asserted from them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
# Outputs on stderr: warnings, and the traceback of a cell that raised (JupyterLab renders both as stderr).
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
RAISED = """() => [...document.querySelectorAll(STDERR)]
  .filter((e) => e.textContent.includes("Traceback (most recent call last)")).map((e) => e.innerText)""".replace(
    "STDERR", json.dumps(STDERR))
LEAD_SCREENSHOT = Path("/tmp/msexplore-lab.png")
SERVER_START_S = 180  # a loaded 2-core machine
RUN_ALL_S = 480  # the first mx.Space in a kernel costs up to 90 s there, a tiny search 20-60 s

# The notebook this test opens. Each msexplore panel is checked by the CSS class its widget adds.
SETUP = """\
import ipywidgets as W
import plotly.graph_objects as go
import msexplore as mx
"""
PLOTLY_CELL = """\
fig = go.FigureWidget(go.Scatter(y=[3, 1, 2], mode="lines+markers", name="plotly"))
fig.update_layout(title="plotly FigureWidget", height=260, margin=dict(t=40, b=20, l=40, r=10))
fig
"""
BUTTON_CELL = """\
button = W.Button(description="Click me")
button.add_class("msx-test-button")
clicked = W.HTML("not clicked")
clicked.add_class("msx-test-clicked")
button.on_click(lambda _: setattr(clicked, "value", "clicked"))
W.HBox([button, clicked])
"""
SPACE_CELL = """\
target = {"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "haswell"}
space = mx.Space(mx.workload("GMM", n=64, m=64, k=64), modules=["default"], target=target)
samples = space.sample(8, seed=0)
"""
# A search long enough to still be running when the Stop button is clicked (the kernel dies with the server).
SEARCH_CELL = """\
import tempfile
run = mx.search(space, trials=64, batch_size=8, work_dir=tempfile.mkdtemp(prefix="msx-browser-"),
                population_size=16, init_min_unmeasured=8)
"""
# A whole model tuned with a tiny budget, the run as the cell's last line: the display hook shows its dashboard.
MODEL_CELL = """\
import tempfile
import numpy as np
from tvm.script import ir as I
from tvm.script import relax as R


@I.ir_module
class MLP:
    @R.function
    def main(x: R.Tensor((1, 64), "float32"), w1: R.Tensor((64, 128), "float32"), w2: R.Tensor((128, 128), "float32")):
        with R.dataflow():
            h1 = R.nn.relu(R.matmul(x, w1))
            h2 = R.nn.relu(R.matmul(h1, w2))
            R.output(h2)
        return h2


rng = np.random.default_rng(0)
weights = {name: rng.uniform(-1, 1, shape).astype("float32") for name, shape in (("w1", (64, 128)), ("w2", (128, 128)))}
model_run = mx.tune_model(mx.Model.from_relax(MLP, weights, name="mlp"), trials=8, batch_size=4,
                          work_dir=tempfile.mkdtemp(prefix="msx-browser-model-"))
model_run
"""
# css class -> the cell that displays that widget
WIDGET_CELLS = {
    "msx-code-view": "mx.ui.CodeView(samples[0].tir)",
    "msx-trace-explorer": "mx.ui.TraceExplorer(space, samples=samples)",
    "msx-decision-inspector": "mx.ui.DecisionInspector(samples)",
    "msx-module-workbench": "mx.ui.ModuleWorkbench(space.workload, target=target)",
    "msx-dashboard": "mx.ui.SearchDashboard(run)",
    "msx-cost-model-panel": "mx.ui.CostModelPanel(run, samples)",
    "msx-export-panel": "mx.ui.ExportPanel(run)",
}
# classes drawn inside the panels above by their own anywidget front ends
NESTED_CLASSES = ["msx-sample-table"]

# What an element shows, read from the DOM: its text, the marks plotly drew in it (a path whose ``d`` has
# coordinates), code lines, table rows, buttons and text inputs.
SHOWN = """(el) => {
  const all = (sel) => [...el.querySelectorAll(sel)];
  const drawn = (sel) => all(sel).filter((p) => /\\d/.test(p.getAttribute("d") || "")).length;
  const box = el.getBoundingClientRect();
  return {
    height: box.height,
    text: el.innerText.slice(0, 3000),
    plots: all(".js-plotly-plot").length,
    traces: all(".js-plotly-plot .scatterlayer .trace, .js-plotly-plot .barlayer .trace").length,
    points: drawn(".js-plotly-plot .scatterlayer .trace .points path.point"),
    lines: drawn(".js-plotly-plot .scatterlayer .trace path.js-line"),
    bars: drawn(".js-plotly-plot .barlayer .trace .point path"),
    codeLines: all(".msx-cv-code .msx-line").length,
    keywords: all(".msx-cv-code .msx-t-k").length,
    tableRows: all("table tbody tr").length,
    sampleRows: all(".msx-sample-table tbody tr").length,
    buttons: all("button").map((b) => [b.textContent.trim(), b.disabled]),
    inputs: all("input[type=text]").map((i) => i.value),
    header: el.querySelector(".msx-dashboard-header")?.textContent ?? null,
  };
}"""


def _enabled(shown: dict, label: str) -> bool | None:
    """Whether the button labelled ``label`` is enabled (None: there is no such button)."""
    states = [not disabled for text, disabled in shown["buttons"] if text == label]
    return states[0] if states else None


# css class -> what that panel shows once it has drawn (a predicate of SHOWN's answer)
WIDGET_SHOWS = {
    # the sample's TIR, highlighted: numbered lines, keyword spans
    "msx-code-view": lambda s: s["codeLines"] > 10 and s["keywords"] > 0 and "T." in s["text"],
    # the 8 samples in its table, the selected one's TIR
    "msx-trace-explorer": lambda s: s["sampleRows"] == 8 and s["codeLines"] > 10,
    # a bar per decision value, and the 8 samples in the table below
    "msx-decision-inspector": lambda s: s["bars"] > 0 and s["sampleRows"] == 8,
    # the module toggles, the summary table of the space's random variables and its bar chart
    "msx-module-workbench": lambda s: "Modules" in s["text"] and s["tableRows"] > 0 and s["bars"] > 0,
    # the header (this session's trials out of 64), the Stop button, the progress figure's axes
    "msx-dashboard": lambda s: bool(re.search(r"trials\s*\d+/64", s["header"] or "")) and s["plots"] == 1
    and _enabled(s, "Stop") is not None,
    # Fit offered; Predict only once fitted
    "msx-cost-model-panel": lambda s: _enabled(s, "Fit") is True and _enabled(s, "Predict samples") is False,
    # the default folder, Export offered, Load and check only once exported
    "msx-export-panel": lambda s: s["inputs"] == [os.path.join("out", "GMM")] and _enabled(s, "Export best") is True
    and _enabled(s, "Load and check") is False,
    "msx-sample-table": lambda s: s["tableRows"] > 0,
}


def notebook_cells() -> list[str]:
    return [SETUP, PLOTLY_CELL, BUTTON_CELL, SPACE_CELL, SEARCH_CELL, *WIDGET_CELLS.values(), MODEL_CELL]


# ---- the browser and the server ----
def _chromium() -> str:
    """Debian's Chromium; installed here with apt-get (as root) when missing, skipped only without apt-get."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and apt-get is not available to install it (Debian's chromium package)")
    if os.geteuid() != 0:
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install chromium, needs root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900)
    assert os.access(CHROMIUM, os.X_OK), f"apt-get install chromium did not provide {CHROMIUM}"
    return CHROMIUM


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_settings(config_dir: Path) -> None:
    """User settings of this throwaway JupyterLab: no news or update checks (there is no network anyway)."""
    folder = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory):
    """``msexplore.lab`` on a temp folder with ``browser.ipynb``; yields (base URL, token, folder)."""
    root = tmp_path_factory.mktemp("lab")
    folder = root / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in notebook_cells()]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, folder / "browser.ipynb")
    _write_settings(root / "config")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
    )
    log_path = root / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "msexplore.lab", str(folder), "--port", str(port), "--token", token],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"msexplore.lab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield base, token, folder
    finally:
        # the lab process leads its own session: stop it and the jupyter server (and kernels) it started
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def page(lab_server, tmp_path_factory: pytest.TempPathFactory):
    """A Chromium page on the test notebook with every cell run (JupyterLab's Run > Run All Cells)."""
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:  # part of the test extra: `pip install -e .[test]`
        pytest.fail(f"playwright is not installed ({err}); run `make test` or pip install -e '.[test]'")
    base, token, _ = lab_server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1800},
        )
        page = context.new_page()
        try:
            page.set_default_timeout(60_000)
            page.goto(f"{base}/lab/tree/browser.ipynb?token={token}", wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            _wait_for_kernel_idle(page, timeout_s=120)
            _run_all(page)
            _wait_for_all_cells(page, timeout_s=RUN_ALL_S)
            yield page
        finally:
            _screenshots(page)
            context.close()


def _screenshots(page) -> None:
    """For a person reviewing: the top of the notebook, each panel on its own, the whole page
    (``/tmp/msexplore-lab.png``: the TraceExplorer). Each is taken if it can be; none is asserted."""

    def panel(css_class: str, path: Path) -> None:
        widget = page.locator(f".{css_class}").first
        widget.scroll_into_view_if_needed(timeout=10_000)
        widget.screenshot(path=str(path), timeout=10_000)

    def lead() -> None:
        page.locator(".msx-trace-explorer").first.scroll_into_view_if_needed(timeout=10_000)
        page.screenshot(path=str(LEAD_SCREENSHOT))

    shots = [
        lambda: page.screenshot(path=str(ARTIFACTS / "final.png"), full_page=True),
        lambda: page.locator(".jp-WindowedPanel-outer, .jp-Notebook").first.evaluate("el => el.scrollTop = 0"),
        lambda: page.screenshot(path=str(ARTIFACTS / "notebook.png")),
        *(lambda c=c: panel(c, ARTIFACTS / f"{c}.png") for c in WIDGET_CELLS),
        lead,
    ]
    for shot in shots:
        try:
            shot()
        except Exception:  # noqa: BLE001 - a panel that is not there has no screenshot; the tests say why
            pass


def _wait_for_kernel_idle(page, *, timeout_s: float) -> None:
    """The status bar says the kernel is connected and idle (the toolbar indicator says idle before that)."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')].some(e => /\\|\\s*Idle/.test(e.textContent))",
        timeout=timeout_s * 1000,
        polling=500,
    )


def _run_all(page, *, attempts: int = 3) -> None:
    """Run > Run All Cells, retried until a cell is queued ([*]) or has run: a click can land too early."""
    for _ in range(attempts):
        page.locator(".jp-Notebook").first.click()  # focus the notebook so the Run menu applies to it
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        item = page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first
        item.wait_for(state="visible", timeout=10_000)
        item.click()
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))",
                timeout=20_000,
            )
            return
        except Exception:  # noqa: BLE001 - nothing started: open the menu again
            page.keyboard.press("Escape")
    raise AssertionError(f"Run > Run All Cells did not start any cell after {attempts} attempts")


def _wait_for_all_cells(page, *, timeout_s: float) -> None:
    """Every code cell has an execution count ([n]:), none is queued or running ([*]:); fails at once, with the
    traceback, when a cell raised (Run All Cells stops there, so the others would never run)."""
    page.wait_for_function(
        "() => { const ps = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];"
        " return (ps.length > 0 && ps.every(p => /\\[\\d+\\]/.test(p.textContent)))"
        f" || ({RAISED})().length > 0; }}",
        timeout=timeout_s * 1000,
        polling=1000,
    )
    raised = page.evaluate(RAISED)
    if raised:
        pytest.fail("a cell raised; Run All Cells stopped there:\n" + raised[0][-3000:])


def _shown_when(locator, ready, *, what: str, timeout_s: float = 120) -> dict:
    """SHOWN of ``locator`` once ``ready(shown)`` holds; fails with what the element showed last."""
    deadline = time.monotonic() + timeout_s
    while True:
        shown = locator.evaluate(SHOWN)
        if ready(shown):
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not shown within {timeout_s:.0f} s; the element showed {shown!r}")
        time.sleep(0.5)


# ---- the checks ----
def test_cells_ran_without_errors(page):
    errors = page.locator(STDERR)
    texts = [errors.nth(k).inner_text() for k in range(errors.count())]
    tracebacks = [t for t in texts if "Traceback" in t or "Error" in t]
    assert not tracebacks, "cells raised:\n" + "\n---\n".join(tracebacks)


def test_plotly_figure_draws_its_data(page):
    plot = page.locator(".js-plotly-plot", has_text="plotly FigureWidget").first
    plot.wait_for(state="attached", timeout=60_000)
    plot.scroll_into_view_if_needed()
    shown = _shown_when(plot, lambda s: s["points"] == 3, what="the FigureWidget's 3 markers")
    assert (shown["traces"], shown["lines"], shown["points"]) == (1, 1, 3), shown


def test_ipywidgets_button_click_reaches_the_kernel(page):
    page.locator(".msx-test-button").click()
    page.wait_for_function(
        "() => document.querySelector('.msx-test-clicked').textContent.includes('clicked')"
        " && !document.querySelector('.msx-test-clicked').textContent.includes('not')",
        timeout=30_000,
    )


@pytest.mark.parametrize("css_class", [*WIDGET_CELLS, *NESTED_CLASSES])
def test_msexplore_widget_shows_its_content(page, css_class):
    assert set(WIDGET_SHOWS) == {*WIDGET_CELLS, *NESTED_CLASSES}
    locator = page.locator(f".{css_class}").first
    locator.wait_for(state="attached", timeout=60_000)
    locator.scroll_into_view_if_needed()
    locator.wait_for(state="visible", timeout=60_000)
    shown = _shown_when(locator, WIDGET_SHOWS[css_class], what=f"the content of .{css_class}")
    assert shown["height"] > 10


def test_trace_explorer_row_click_shows_that_sample(page):
    explorer = page.locator(".msx-trace-explorer").first
    code = explorer.locator(".msx-code-view .msx-cv-code").first
    code.wait_for(state="visible", timeout=60_000)
    page.wait_for_function(
        "() => { const c = document.querySelector('.msx-trace-explorer .msx-code-view .msx-cv-code');"
        " return c && c.textContent.includes('T.'); }",
        timeout=120_000,
    )
    before = code.inner_text()
    explorer.scroll_into_view_if_needed()
    explorer.locator(".msx-sample-table tbody tr[data-key='1']").first.click()
    page.wait_for_function(
        "(before) => { const c = document.querySelector('.msx-trace-explorer .msx-code-view .msx-cv-code');"
        " return c && c.textContent.includes('T.') && c.textContent !== before; }",
        arg=before,
        timeout=120_000,
    )
    assert explorer.locator(".msx-sample-table tr.msx-st-selected[data-key='1']").count() == 1
    explorer.screenshot(path=str(ARTIFACTS / "trace-explorer-after-click.png"))
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(LEAD_SCREENSHOT))


def test_dashboard_draws_the_search_and_stop_stops_it(page):
    dashboard = page.locator(".msx-dashboard").first
    dashboard.scroll_into_view_if_needed()

    def measured(shown: dict) -> int:
        found = re.search(r"trials\s*(\d+)/64", shown["header"] or "")
        return int(found[1]) if found else 0

    # a measured batch: counted in the header, drawn as marks in the progress figure, the best in the table
    shown = _shown_when(dashboard, lambda s: measured(s) > 0 and s["points"] > 0 and s["tableRows"] > 0,
                        what="a measured batch in the dashboard", timeout_s=300)
    assert shown["header"].startswith("running") and _enabled(shown, "Stop") is True, shown
    assert "best " in shown["text"].lower() and "gflops" in shown["text"].lower()  # the top-k table
    dashboard.locator("button", has_text="Stop").first.click()
    shown = _shown_when(dashboard, lambda s: re.match(r"stopp(ing|ed)", s["header"] or "") is not None,
                        what="the header saying the search stops", timeout_s=60)
    assert _enabled(shown, "Stopping…") is False or _enabled(shown, "Stop") is False, shown["buttons"]
    shown = _shown_when(dashboard, lambda s: (s["header"] or "").startswith("stopped"),
                        what="the header saying the search stopped", timeout_s=300)
    assert _enabled(shown, "Stop") is False and measured(shown) < 64, shown


def test_model_run_displays_its_dashboard_with_the_tasks_and_the_estimate(page):
    dashboard = page.locator(".msx-model-dashboard").first
    dashboard.wait_for(state="attached", timeout=60_000)
    dashboard.scroll_into_view_if_needed()
    # the run ends: the header says done, the estimate is drawn (a point per batch once every task has one)
    shown = _shown_when(dashboard, lambda s: (s["header"] or "").startswith("done") and s["points"] > 0,
                        what="the model run's end in its dashboard", timeout_s=360)
    assert re.search(r"trials\s*8/8", shown["header"]) and re.search(r"tasks verified\s*2/2", shown["header"]), shown
    assert shown["plots"] == 1 and "Estimated model latency" in shown["text"]
    tasks = dashboard.locator(".msx-model-tasks tbody tr")
    assert tasks.count() == 2 and "fused_matmul_relu" in tasks.first.inner_text() + tasks.last.inner_text()
    assert _enabled(shown, "Stop") is False and _enabled(shown, "Open") is True
    # the widget is the cell's only visible output: no TVM log, printed table or warning (its static copy, for a
    # saved notebook, follows it hidden)
    cell = page.locator(".jp-CodeCell", has=page.locator(".msx-model-dashboard"))
    outputs = cell.locator(".jp-OutputArea-output")
    visible = [i for i in range(outputs.count()) if outputs.nth(i).is_visible()]
    assert len(visible) == 1, cell.locator(".jp-OutputArea").inner_text()
    assert cell.locator(".msx-static").count() == 1 and not cell.locator(".msx-static").is_visible()
    dashboard.screenshot(path=str(ARTIFACTS / "msx-model-dashboard.png"))
    # a task opens its own search dashboard under the table
    dashboard.locator("button", has_text="Open").first.click()
    task = dashboard.locator(".msx-dashboard").first  # inside the model dashboard: the task's SearchDashboard
    task.wait_for(state="visible", timeout=60_000)
    shown = _shown_when(task, lambda s: (s["header"] or "").startswith("done") and s["points"] > 0,
                        what="the opened task's search dashboard", timeout_s=60)
    assert re.search(r"trials\s*[1-8]/[1-8]", shown["header"]), shown  # that task's share of the 8
    dashboard.screenshot(path=str(ARTIFACTS / "msx-model-dashboard-task.png"))
