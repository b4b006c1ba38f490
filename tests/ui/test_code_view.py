"""CodeView at model level: highlighted HTML lines, theme-following CSS, diff mode, the TIR + trace panes."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from traitlets import TraitError

import msexplore as mx
from msexplore.tir_map import instruction_lines
from msexplore.ui.code_view import CodeView
from msexplore.widgets import asset


@pytest.fixture(scope="module")
def samples(target):
    space = mx.Space(mx.workload("GMM", n=32, m=32, k=32), modules=["default"], target=target)
    return space.sample(6, seed=0)


def _lines(html: str) -> list[str]:
    """The HTML of each code line, in order (each ``msx-line`` div)."""
    return re.findall(r'<div class="msx-line[^"]*" data-line="\d+">.*?</span></div>', html)


def _classes(html: str) -> set[str]:
    return {c for attr in re.findall(r'class="([^"]*)"', html) for c in attr.split()}


def _css_rules(css: str) -> dict[str, str]:
    """selector-list text -> declarations, for each rule of a flat stylesheet."""
    return {sel.strip(): body for sel, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css)}


def test_assets_exist_and_are_the_widgets_esm_and_css():
    js, css = asset("code_view.js"), asset("code_view.css")
    view = CodeView("x = 1")
    assert view._esm == js.read_text(encoding="utf-8")
    assert view._css == css.read_text(encoding="utf-8")
    assert "export default { render }" in view._esm
    assert "msx-code-view" in view._dom_classes


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("name", ["code_view.js", "sample_table.js"])
def test_es_modules_have_no_syntax_errors(name, tmp_path):
    module = tmp_path / (name.removesuffix(".js") + ".mjs")  # checked as an ES module
    module.write_text(asset(name).read_text(encoding="utf-8"), encoding="utf-8")
    result = subprocess.run(["node", "--check", str(module)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_python_is_highlighted_with_classes_one_div_per_line():
    code = 'for i in range(3):\n    x = "a<b"  # note\n\n    y = 2.5'
    view = CodeView(code)
    lines = _lines(view.code_html)
    assert len(lines) == 4 and [f'data-line="{n}"' in line for n, line in enumerate(lines, 1)] == [True] * 4
    assert '<span class="msx-t-k">for</span>' in lines[0]
    assert '<span class="msx-t-nb">range</span>' in lines[0]
    assert '<span class="msx-t-s2">"a&lt;b"</span>' in lines[1]  # escaped; the string's tokens in one span
    assert '<span class="msx-t-c1"># note</span>' in lines[1]
    assert '<span class="msx-t-mf">2.5</span>' in lines[3]
    assert "style=" not in view.code_html  # colours come from the stylesheet, never inline
    view.code = "pass"
    assert _lines(view.code_html) == [
        '<div class="msx-line" data-line="1"><span class="msx-ln">1</span>'
        '<span class="msx-src"><span class="msx-t-k">pass</span></span></div>'
    ]


def test_every_token_class_of_a_tir_is_coloured_by_the_jupyterlab_theme(samples):
    view = CodeView(samples[0].tir)
    token_classes = {c for c in _classes(view.code_html) if c.startswith("msx-t-")}
    assert {"msx-t-k", "msx-t-c1", "msx-t-mi", "msx-t-s2"} <= token_classes
    rules = _css_rules(asset("code_view.css").read_text(encoding="utf-8"))
    for cls in token_classes:
        bodies = [body for sel, body in rules.items() if re.search(rf"\.{cls}\b", sel)]
        assert bodies and any("var(--jp-mirror-editor-" in b for b in bodies), cls


def test_diff_mode_colours_added_and_removed_lines(samples):
    a, b = samples[1], samples[2]
    d = mx.diff(a, b)
    view = CodeView(d.tir, mode="diff")
    lines = _lines(view.code_html)
    text = d.tir.splitlines()
    assert len(lines) == len(text)
    for html_line, line in zip(lines, text):
        if line.startswith(("+++", "---")):
            assert "msx-diff-header" in html_line
        elif line.startswith("+"):
            assert "msx-diff-add" in html_line
        elif line.startswith("-"):
            assert "msx-diff-del" in html_line
        elif line.startswith("@@"):
            assert "msx-diff-hunk" in html_line
    assert sum("msx-diff-add" in x for x in lines) == sum(1 for t in text if t[:1] == "+" and t[:3] != "+++") > 0
    rules = _css_rules(asset("code_view.css").read_text(encoding="utf-8"))
    assert any(".msx-diff-add" in sel and "--jp-success-color1" in body for sel, body in rules.items())
    assert any(".msx-diff-del" in sel and "--jp-error-color1" in body for sel, body in rules.items())
    view.mode = "code"
    assert "msx-diff-add" not in view.code_html


def test_sample_shows_tir_and_trace_and_selecting_an_instruction_marks_its_lines(samples):
    s = samples[0]
    view = CodeView(s)
    assert view.code == s.tir and view.trace == s.python()
    assert len(_lines(view.trace_html)) == len(view.trace_instructions) == len(s.python().splitlines())
    assert view.line_map == {str(k): v for k, v in instruction_lines(s).items()}
    parallel = [k for k, inst in enumerate(s.trace.insts) if inst.kind.name == "Parallel"][0]
    line = view.trace_instructions.index(parallel) + 1  # the trace line a person clicks
    assert "sch.parallel(" in view.trace.splitlines()[line - 1]
    view.selected_instruction = view.trace_instructions[line - 1]  # what the browser sets on that click
    assert len(view.selected_lines) == 1
    assert "T.parallel(" in s.tir.splitlines()[view.selected_lines[0] - 1]  # the loop sch.parallel made parallel
    view.selected_instruction = -1
    assert view.selected_lines == []


def test_trace_pane_js_selects_from_the_synced_line_map():
    js = asset("code_view.js").read_text(encoding="utf-8")
    # the browser side reads the synced map and writes the selection back to Python
    assert 'model.get("line_map")' in js and 'model.set("selected_instruction"' in js
    assert "model.save_changes()" in js and 'model.get("trace_instructions")' in js


def test_validation():
    view = CodeView("x")
    with pytest.raises(TraitError, match="not a pygments lexer"):
        view.language = "no-such-language"
    with pytest.raises(TraitError, match="instruction index or -1"):
        view.selected_instruction = -2
    view.line_map = {3: [1, 2]}
    assert view.line_map == {"3": [1, 2]}
    with pytest.raises(TraitError, match="lists of 1-based lines"):
        view.line_map = {"x": [1]}
    with pytest.raises(TypeError, match="str or an mx.Sample"):
        CodeView(42)
    view.language = "text"
    assert "msx-t-k" not in CodeView("for x in y", language="text").code_html
