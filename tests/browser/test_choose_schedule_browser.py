"""ChooseSchedule in JupyterLab in headless Chromium, driven with the keyboard only.

Reuses ``test_jupyterlab.py``'s server fixture (``msexplore.lab`` on a temp folder) and its helpers (Debian's
Chromium through Playwright, Run All Cells, waiting for the cells and for what an element shows), on a notebook of
its own: a 32^3 GMM space and its ChooseSchedule, with a stand-in cost model that scores a program by a hash of its
TIR (a real model needs measured records; the panel draws the same). Checks that the values render as focusable
buttons, that ↓ moves the preview (the diff pane changes), Enter chooses (the step advances, the path gains a chip,
the focus stays in the new list), Backspace and the Back button go back. The screenshot is
``tests/browser/artifacts/choose_schedule.png``.
"""

from __future__ import annotations

import re
import time

import nbformat
import pytest
import test_jupyterlab as lab

pytestmark = pytest.mark.slow

lab_server = lab.lab_server  # the same fixture: JupyterLab on a temp folder (this module gets its own server)
NOTEBOOK = "choose_schedule.ipynb"
SCREENSHOT = lab.ARTIFACTS / "choose_schedule.png"
CELLS = [
    """\
import numpy as np
import tvm_ffi
from tvm.ir.utils import derived_object
from tvm.s_tir.meta_schedule.cost_model import PyCostModel

import msexplore as mx
from msexplore.ui.choose_schedule import ChooseSchedule


@derived_object
class TirHashModel(PyCostModel):  # a stand-in: scores a program by a hash of its TIR
    def load(self, path): pass
    def save(self, path): pass
    def update(self, context, candidates, results): pass
    def predict(self, context, candidates):
        return np.array([(tvm_ffi.structural_hash(c.sch.mod) % 10007) / 10007 for c in candidates])


target = {"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "haswell"}
space = mx.Space(mx.workload("GMM", n=32, m=32, k=32), target=target)
""",
    "steer = ChooseSchedule(space, cost_model=TirHashModel())\nsteer",
]
# What the panel shows, read from the DOM.
PANEL = """(el) => ({
  step: el.querySelector(".msx-cs-step")?.innerText ?? "",
  chips: [...el.querySelectorAll(".msx-cs-chip")].map((c) => c.innerText),
  options: [...el.querySelectorAll("button.msx-cs-option")].map((b) => b.querySelector(".msx-cs-label").innerText),
  scores: [...el.querySelectorAll("button.msx-cs-option .msx-cs-num")].map((s) => s.innerText),
  highlighted: [...el.querySelectorAll("button.msx-cs-option")].findIndex((b) => b.classList.contains(
    "msx-cs-highlighted")),
  focused: document.activeElement?.classList.contains("msx-cs-option") && el.contains(document.activeElement),
  code: el.querySelector(".msx-code-view .msx-cv-code")?.innerText ?? "",
  busy: el.querySelector(".msx-cs-options")?.classList.contains("msx-cs-busy") ?? true,
})"""


@pytest.fixture(scope="module")
def page(lab_server, tmp_path_factory: pytest.TempPathFactory):
    """Chromium on the notebook above, every cell run (Run > Run All Cells)."""
    chromium = lab._chromium()
    from playwright.sync_api import sync_playwright

    base, token, folder = lab_server
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, folder / NOTEBOOK)
    lab.ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium, headless=True,
            args=lab.CHROMIUM_ARGS, viewport={"width": 1300, "height": 1400},
        )
        page = context.new_page()
        try:
            page.set_default_timeout(60_000)
            page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}", wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            lab._wait_for_kernel_idle(page, timeout_s=120)
            lab._run_all(page)
            lab._wait_for_all_cells(page, timeout_s=lab.RUN_ALL_S)
            yield page
        finally:
            context.close()


def _wait(panel, ready, what: str, timeout_s: float) -> dict:
    """PANEL's answer once ``ready(shown)`` holds and no step is being computed; fails with what it showed last."""
    deadline = time.monotonic() + timeout_s
    while True:
        shown = panel.evaluate(PANEL)
        if not shown["busy"] and ready(shown):
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not shown within {timeout_s:.0f} s; the panel showed {shown!r}")
        time.sleep(0.3)


def test_choose_schedule_is_driven_with_the_keyboard(page):
    panel = page.locator(".msx-choose-schedule").first
    panel.wait_for(state="attached", timeout=60_000)
    panel.scroll_into_view_if_needed()
    first = _wait(panel, lambda s: s["step"].startswith("Step 1 of 9") and len(s["options"]) == 3,
                  "the first decision (the design space) and its 3 values", 180)
    assert first["options"] == ["design space 0", "design space 1", "design space 2"], first
    assert all(re.fullmatch(r"0\.\d+", score) for score in first["scores"]), first["scores"]
    assert first["chips"] == [] and first["highlighted"] >= 0 and first["code"], first

    # ↓ (↑ from the last value) previews another value: the diff pane shows what choosing it changes
    panel.locator("button.msx-cs-option.msx-cs-highlighted").focus()
    key, moved = ("ArrowDown", first["highlighted"] + 1) if first["highlighted"] < 2 else ("ArrowUp", 1)
    page.keyboard.press(key)
    shown = _wait(panel, lambda s: s["highlighted"] == moved and s["code"] != first["code"], "the preview moved", 30)
    assert shown["focused"] and "--- current" in shown["code"], shown["code"][:300]
    assert f"+++ {first['options'][moved]}" in shown["code"], shown["code"][:300]

    # Enter chooses it: the next decision, a chip for the choice, the keyboard focus in the new list
    page.keyboard.press("Enter")
    second = _wait(panel, lambda s: s["step"].startswith("Step 2 of 9") and s["focused"], "the second step", 60)
    assert second["chips"] == [first["options"][moved]], second
    assert "Z.tile_i[0]" in second["step"] and second["options"] == ["1", "2", "4", "8", "16", "32"], second

    page.keyboard.press("End")
    page.keyboard.press("Enter")
    third = _wait(panel, lambda s: s["step"].startswith("Step 3 of 9") and s["focused"], "the third step", 60)
    assert third["chips"] == [first["options"][moved], "Z.tile_i[0] = 32"], third
    page.keyboard.press("Home")  # preview the first value: its diff to the current program, for the screenshot
    preview = _wait(panel, lambda s: s["highlighted"] == 0, "the first value previewed", 30)
    assert preview["focused"] and ("+++ Z.tile_j[0] = 1" in preview["code"] or "keeps the current" in preview["code"])
    panel.screenshot(path=str(SCREENSHOT))

    # Backspace goes back one decision; so does the Back button, pressed with the keyboard
    page.keyboard.press("Backspace")
    back = _wait(panel, lambda s: s["step"].startswith("Step 2 of 9"), "back at the second step", 60)
    assert back["chips"] == second["chips"] and back["options"] == second["options"], back
    panel.locator("button", has_text="Back").first.focus()
    page.keyboard.press("Enter")
    start = _wait(panel, lambda s: s["step"].startswith("Step 1 of 9"), "back at the first step", 60)
    assert start["chips"] == [] and start["options"] == first["options"], start


def test_the_cells_ran_without_errors(page):
    errors = page.locator(lab.STDERR)
    texts = [errors.nth(k).inner_text() for k in range(errors.count())]
    assert not [t for t in texts if "Traceback" in t or "Error" in t], texts
