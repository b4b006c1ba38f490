"""Static copies of the panels (what a saved notebook shows without a kernel), at model level: the copy's content
for a dashboard, a code view and a sample table, the figure as SVG, and how a copy follows its panel (throttled,
at once when a run ends, at a cell's end). ``tests/notebooks/test_static_copies.py`` runs it all in a kernel and
through nbconvert."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

import pandas as pd
import plotly.graph_objects as go
import pytest

import msexplore as mx
from msexplore.figures import plot_search_progress
from msexplore.ui import _static
from msexplore.ui._dashboard_parts import progress_frame
from msexplore.ui._static import HIDE_WHEN_LIVE_CSS, StaticCopy, widget_html
from msexplore.ui._static_figure import figure_svg
from msexplore.ui._stylesheet import StyleSheet
from msexplore.ui.code_view import CodeView
from msexplore.ui.dashboard import SearchDashboard
from msexplore.ui.sample_table import SampleTable


class Publisher:
    """Records what a StaticCopy publishes: (data, display_id, update)."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, str], str, bool]] = []

    def __call__(self, data: dict[str, str], display_id: str, update: bool) -> None:
        self.sent.append((data, display_id, update))


# ---- the figure as SVG ---------------------------------------------------------------------------------------------


def _svg(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # well-formed XML, or this raises


def test_the_progress_figure_as_svg_draws_its_points_line_and_titles(synthetic):
    events = synthetic(trials=30).events(30)
    fig = plot_search_progress(progress_frame(events))
    svg = _svg(figure_svg(fig))
    ok = [e for e in events if e.ok]
    circles = svg.findall("{http://www.w3.org/2000/svg}circle")
    assert len(circles) == len(ok)  # every candidate
    assert svg.findall("{http://www.w3.org/2000/svg}polyline")  # the best-so-far step line
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert fig.layout.title.text in texts and "trial" in texts and "GFLOPS (higher is better)" in texts
    assert "candidates" in texts and "best so far" in texts
    assert "failed" not in texts  # the failure strip is another subplot: its count is in the copy's tables


def test_an_empty_figure_says_so_and_a_large_one_is_thinned():
    empty = _svg(figure_svg(plot_search_progress(progress_frame([]))))
    assert "No trials yet." in [t.text for t in empty.iter("{http://www.w3.org/2000/svg}text")]
    big = go.Figure(go.Scatter(x=list(range(5000)), y=[i % 7 for i in range(5000)], mode="markers"))
    markup = figure_svg(big, max_points=300)
    assert markup.count("<circle") == 300 and len(markup) < 40_000
    bars = _svg(figure_svg(go.Figure(go.Bar(x=["8×64", "16×32"], y=[3, 5]))))
    assert len(bars.findall("{http://www.w3.org/2000/svg}rect")) == 2 + 2  # background, frame, two bars
    log = figure_svg(go.Figure(go.Scatter(x=[1, 2], y=[1e-5, 1e-3]), layout={"yaxis": {"type": "log"}}))
    assert ">1e-05<" in log and ">0.001<" in log


# ---- a panel's content ---------------------------------------------------------------------------------------------


def test_widget_html_shows_what_is_visible_and_leaves_controls_out():
    import ipywidgets as widgets

    hidden = widgets.HTML("<p>hidden</p>", layout=widgets.Layout(display="none"))
    tree = widgets.VBox([StyleSheet(), widgets.HTML("<p>shown</p>"), widgets.Button(description="Stop"), hidden,
                         widgets.HBox([widgets.HTML("<p>nested</p>")]), go.FigureWidget(go.Scatter(y=[1, 2]))])
    html = widget_html(tree)
    assert html.startswith("<p>shown</p><p>nested</p><div><svg") and "hidden" not in html and "Stop" not in html


def test_a_code_view_and_a_sample_table_copy_their_content():
    view = CodeView("def f(x):\n    return x + 1\n", trace="sch.split(l0, [2, 2])")
    body = view._static_body()
    assert body.startswith('<pre class="msx-pre">') and 'style="color:' in body  # inline colours, no classes
    assert "return" in re.sub(r"<[^>]+>", "", body) and "Trace" in body and "split" in body
    diff = CodeView("--- a\n+++ b\n-x = 1\n+x = 2\n", mode="diff")._static_body()
    assert "+x = 2" in re.sub(r"<[^>]+>", "", diff)
    df = pd.DataFrame({"valid": [True, False, True], "latency": [3.0, None, 1.0]}, index=[0, 1, 2])
    table = SampleTable(df, caption="3 samples")
    table.sort_by, table.selected = "latency", [2]
    html = table._static_body(max_rows=2)
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert "3 samples" in html and len(rows) == 1 + 2 and "… 1 more rows" in html  # header + 2 rows
    assert rows[1].startswith('<td class="">▶ ✓</td>') and ">1<" in rows[1]  # sorted; the selected row marked


def test_a_dashboards_copy_holds_its_last_state(synthetic):
    fake = synthetic(trials=20)
    dashboard = SearchDashboard(fake.run, min_interval_s=0.01)
    fake.publish(fake.events(14))
    fake.end("done")
    assert dashboard.wait(10)
    page = dashboard._static_html()
    assert page.startswith('<div class="msx-static"><style>') and "SearchDashboard · static copy" in page
    assert 'msx-status-done">done<' in page and ">14/20<" in page
    assert "Best 10 candidates" in page and page.count("<circle") >= 12
    assert "2 failed candidates" in page and "injected build failure 13" in page
    assert "<details>" not in page  # failures by their one line: no tracebacks in a static copy
    dashboard.close()


# ---- how a copy follows its panel ---------------------------------------------------------------------------------


def test_a_copy_is_published_at_most_every_interval_and_at_once_when_asked():
    state = {"n": 0}
    publish = Publisher()
    copy = StaticCopy(lambda: f"<p>{state['n']}</p>", lambda: "text", min_interval_s=0.3, publish=publish)
    copy.show()
    for n in range(1, 6):  # a burst of changes: the first waits for the interval, the rest join it
        state["n"] = n
        copy.changed()
    assert len(publish.sent) == 1
    time.sleep(0.5)
    assert [(d["text/html"], update) for d, _, update in publish.sent] == [("<p>0</p>", False), ("<p>5</p>", True)]
    state["n"] = 6
    copy.changed(now=True)  # a run's end: no waiting
    assert publish.sent[-1][0]["text/html"] == "<p>6</p>" and {i for _, i, _ in publish.sent} == {copy.display_id}
    copy.flush()  # nothing stale: nothing sent
    assert len(publish.sent) == 3


def test_a_cells_end_settles_and_flushes_the_copies(monkeypatch):
    publish, calls = Publisher(), []
    copy = StaticCopy(lambda: "<p>x</p>", lambda: "x", min_interval_s=60, publish=publish,
                      settle=lambda: calls.append("settled"))
    monkeypatch.setattr(_static, "_COPIES", set())
    copy.show()
    copy.changed()  # within the interval: waits
    assert len(publish.sent) == 1
    _static._flush_all()  # IPython's post_run_cell
    assert calls == ["settled"] and len(publish.sent) == 2


def test_a_displayed_panel_writes_its_widget_then_its_copy(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display",
                        lambda data, raw=False, display_id=None: shown.append((data, display_id)))
    view = CodeView("x = 1")
    view._ipython_display_()
    (widget, widget_id), (copy, copy_id) = shown
    assert widget["application/vnd.jupyter.widget-view+json"]["model_id"] == view.model_id and widget_id is None
    assert 'class="msx-static"' in copy["text/html"] and copy_id == view.static_copies[0].display_id


def test_the_panels_stylesheet_hides_a_copy_after_a_drawn_panel():
    assert HIDE_WHEN_LIVE_CSS in StyleSheet._css
    assert ".jp-OutputArea-child:has(.msx-root) + .jp-OutputArea-child:has(.msx-static)" in HIDE_WHEN_LIVE_CSS


@pytest.mark.parametrize("name", ["TraceExplorer", "DecisionInspector", "ModuleWorkbench", "CostModelPanel",
                                  "ExportPanel", "SearchDashboard", "ModelDashboard", "CodeView"])
def test_every_panel_has_a_static_copy(name):
    assert issubclass(getattr(mx.ui, name), _static.StaticFallback)


def test_in_chromium_the_copy_hides_after_a_drawn_panel_and_shows_after_a_widget_error():
    """JupyterLab's output area, as the DOM it draws: a panel that rendered (its root has msx-root) hides the copy
    after it; "Error displaying widget" (no kernel, no widget state) leaves the copy in view."""
    import os

    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("/usr/bin/chromium is missing (make browser-deps installs it)")
    copy = _static.static_page("CodeView", "<pre>x = 1</pre>")

    def output(inner: str) -> str:
        return f'<div class="jp-OutputArea-child"><div class="jp-OutputArea-output">{inner}</div></div>'

    drawn = output('<div class="jupyter-widgets msx-root msx-panel">panel</div>') + output(copy)
    failed = output('<div class="jupyter-widgets">Error displaying widget: model not found</div>') + output(copy)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.set_content(f"<html><head><style>{StyleSheet._css}</style></head><body>"
                         f'<div class="jp-OutputArea" id="drawn">{drawn}</div>'
                         f'<div class="jp-OutputArea" id="failed">{failed}</div></body></html>')
        visible = {area: page.locator(f"#{area} .msx-static").is_visible() for area in ("drawn", "failed")}
        browser.close()
    assert visible == {"drawn": False, "failed": True}
