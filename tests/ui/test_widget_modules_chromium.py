"""The ES modules of CodeView and SampleTable, run in headless Chromium on the state their Python side syncs.

No JupyterLab here (``tests/browser`` covers that): each module's ``render`` gets a real DOM element and a small
stand-in for anywidget's model (get / set / on / off / save_changes), and the test clicks as a person would.
Skipped where Playwright or Debian's Chromium is missing.
"""

from __future__ import annotations

import json
import os

import pytest

import msexplore as mx
from msexplore.ui.code_view import CodeView
from msexplore.ui.sample_table import SampleTable
from msexplore.widgets import asset

CHROMIUM = "/usr/bin/chromium"

FAKE_MODEL = """
window.fakeModel = (state) => {
  const handlers = {};
  return {
    state, saved: 0,
    get(k) { return state[k]; },
    set(k, v) { state[k] = v; (handlers["change:" + k] || []).forEach((h) => h()); },
    on(ev, h) { (handlers[ev] ||= []).push(h); },
    off(ev, h) { handlers[ev] = (handlers[ev] || []).filter((x) => x !== h); },
    save_changes() { this.saved += 1; },
  };
};
window.loadModule = async (text) =>
  (await import(URL.createObjectURL(new Blob([text], { type: "text/javascript" })))).default;
"""


@pytest.fixture(scope="module")
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (make browser-deps installs it)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        css = asset("code_view.css").read_text(encoding="utf-8") + asset("sample_table.css").read_text(encoding="utf-8")
        page.set_content(f"<html><head><style>{css}</style></head><body><div id='w'></div></body></html>")
        page.add_script_tag(content=FAKE_MODEL)
        page.errors = errors
        yield page
        browser.close()


@pytest.fixture(scope="module")
def samples(target):
    space = mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=["default"], target=target)
    return space.sample(6, seed=0)


def _state(widget, names):
    state = widget.get_state()
    return json.loads(json.dumps({k: state[k] for k in names}))  # what the comm sends


def test_code_view_marks_the_lines_of_a_clicked_instruction(page, samples):
    s = samples[0]
    view = CodeView(s)
    parallel = [k for k, inst in enumerate(s.trace.insts) if inst.kind.name == "Parallel"][0]
    names = ["code_html", "trace_html", "mode", "highlight_lines", "line_map", "selected_instruction",
             "trace_instructions"]
    out = page.evaluate(
        """async ([js, state, instruction]) => {
          const el = document.getElementById("w"); el.innerHTML = "";
          const model = fakeModel(state);
          const cleanup = (await loadModule(js)).render({ model, el });
          const traceLines = el.querySelectorAll(".msx-cv-trace .msx-line");
          const line = traceLines[state.trace_instructions.indexOf(instruction)];
          line.querySelector(".msx-src").firstChild.dispatchEvent(new MouseEvent("click", { bubbles: true }));
          const marked = (sel) => [...el.querySelectorAll(sel)].map((d) => Number(d.dataset.line));
          const result = {
            top: el.classList.contains("msx-code-view"),
            codeLines: el.querySelectorAll(".msx-cv-code .msx-line").length,
            traceLines: traceLines.length,
            selected: model.get("selected_instruction"), saved: model.saved,
            codeMarked: marked(".msx-cv-code .msx-line.msx-sel"),
            traceMarked: marked(".msx-cv-trace .msx-line.msx-sel"),
            keywordColor: getComputedStyle(el.querySelector(".msx-t-k")).color,
          };
          document.body.style.setProperty("--jp-mirror-editor-keyword-color", "rgb(1, 2, 3)");  // a theme
          result.themedKeywordColor = getComputedStyle(el.querySelector(".msx-t-k")).color;
          document.body.style.removeProperty("--jp-mirror-editor-keyword-color");
          model.set("highlight_lines", [2, 3]);
          result.highlighted = marked(".msx-cv-code .msx-line.msx-hl");
          line.click();  // a second click deselects
          result.afterSecondClick = [model.get("selected_instruction"), marked(".msx-cv-code .msx-line.msx-sel")];
          cleanup();
          return result;
        }""",
        [asset("code_view.js").read_text(encoding="utf-8"), _state(view, names), parallel],
    )
    assert page.errors == []
    assert out["top"] and out["codeLines"] == len(s.tir.splitlines())
    assert out["traceLines"] == len(s.python().splitlines())
    view.selected_instruction = parallel  # what the synced click does on the Python side
    assert out["selected"] == parallel and out["saved"] == 1
    assert out["codeMarked"] == view.selected_lines and out["codeMarked"]
    assert out["traceMarked"] == [view.trace_instructions.index(parallel) + 1]
    assert out["keywordColor"] == "rgb(0, 128, 0)"  # the fallback of --jp-mirror-editor-keyword-color
    assert out["themedKeywordColor"] == "rgb(1, 2, 3)"  # follows JupyterLab's theme variable
    assert out["highlighted"] == [2, 3]
    assert out["afterSecondClick"] == [-1, []]


def test_sample_table_sorts_and_selects_on_clicks(page, samples):
    table = SampleTable(samples.df)
    names = ["columns", "rows", "row_keys", "numeric", "order", "sort_by", "sort_ascending", "selected",
             "max_selected", "caption"]
    column = table.columns.index("Z.tile_i")
    out = page.evaluate(
        """async ([js, state, column]) => {
          const el = document.getElementById("w"); el.innerHTML = "";
          const model = fakeModel(state);
          (await loadModule(js)).render({ model, el });
          const rows = () => [...el.querySelectorAll("tbody tr")];
          const result = { top: el.classList.contains("msx-sample-table"), n: rows().length };
          el.querySelectorAll("th")[column].click();
          result.sort = [model.get("sort_by"), model.get("sort_ascending")];
          el.querySelectorAll("th")[column].click();
          result.sortAgain = model.get("sort_ascending");
          rows()[3].querySelector("td").click();
          result.one = model.get("selected");
          rows()[1].dispatchEvent(new MouseEvent("click", { bubbles: true, ctrlKey: true }));
          rows()[5].dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: true }));
          result.two = model.get("selected");
          result.marked = rows().filter((r) => r.classList.contains("msx-st-selected")).map((r) => r.dataset.key);
          model.set("order", [...model.get("order")].reverse());
          result.firstAfterOrder = rows()[0].dataset.key;
          return result;
        }""",
        [asset("sample_table.js").read_text(encoding="utf-8"), _state(table, names), column],
    )
    assert page.errors == []
    assert out["top"] and out["n"] == len(samples)
    assert out["sort"] == ["Z.tile_i", True] and out["sortAgain"] is False
    assert out["one"] == [3]
    assert out["two"] == [1, 5]  # at most two rows: the oldest (3) is dropped
    assert sorted(out["marked"]) == ["1", "5"]
    assert out["firstAfterOrder"] == str(len(samples) - 1)
