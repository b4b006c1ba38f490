"""CodeView: highlighted code (TIR, a trace, a unified diff) that follows JupyterLab's theme; optionally two panes.

>>> mx.ui.CodeView(sample.tir)                       # one pane, TVMScript highlighted
>>> mx.ui.CodeView(sample)                           # TIR + trace: click an instruction to see its TIR lines
>>> mx.ui.CodeView(mx.diff(a, b).tir, mode="diff")   # a unified diff, + and - lines coloured

Python turns the code into HTML lines (pygments tokens as classed spans, see ``_highlight``); the browser only
inserts them and marks lines. Everything it draws is in traits, so a saved notebook redraws it.
"""

from __future__ import annotations

from typing import Any

import anywidget
from traitlets import Dict, Enum, Int, List, TraitError, Unicode, observe, validate

from msexplore.widgets import asset

from ._highlight import code_html, lexer_for, static_code_html
from ._static import StaticFallback, static_page

__all__ = ["CodeView"]


class CodeView(StaticFallback, anywidget.AnyWidget):
    """Highlighted code; with ``trace`` set, a second pane whose lines select instructions.

    Parameters
    ----------
    code
        The text of the main pane, or an ``mx.Sample`` to show its TIR and its trace side by side.
    language
        A pygments lexer name: ``"python"`` (TVMScript and traces are Python) or ``"text"``.
    mode
        ``"code"``, or ``"diff"`` for a unified diff (``mx.diff(a, b).tir``).
    highlight_lines
        1-based lines of ``code`` to mark.
    """

    _esm = asset("code_view.js")
    _css = asset("code_view.css")

    code = Unicode("", help="the text of the main pane (TIR, or a unified diff in diff mode)").tag(sync=True)
    language = Unicode("python", help="pygments lexer name used to highlight code and trace").tag(sync=True)
    mode = Enum(("code", "diff"), "code", help="'code', or 'diff' for a unified diff").tag(sync=True)
    highlight_lines = List(Int(), help="1-based lines of code to mark").tag(sync=True)
    trace = Unicode("", help="the second pane's text (a trace as Python); '' for one pane").tag(sync=True)
    trace_instructions = List(Int(), help="per trace line, the instruction it shows (-1: none)").tag(sync=True)
    line_map = Dict(help="str(instruction index) -> 1-based lines of code it produced or touched").tag(sync=True)
    selected_instruction = Int(-1, help="the selected instruction (-1: none); set by clicking a trace line").tag(
        sync=True
    )
    code_html = Unicode("", help="code as highlighted HTML lines (computed here)").tag(sync=True)
    trace_html = Unicode("", help="trace as highlighted HTML lines (computed here)").tag(sync=True)

    def __init__(self, code: Any = "", **kwargs: Any) -> None:
        from ..sampling import Sample

        sample = None
        if not isinstance(code, str):
            if not isinstance(code, Sample):
                raise TypeError(f"CodeView shows a str or an mx.Sample, got {type(code).__name__}")
            sample, code = code, ""
        super().__init__(code=code, **kwargs)
        self.add_class("msx-code-view")
        self._render_code()
        self._render_trace()
        if sample is not None:
            self.show_sample(sample)

    def show_sample(self, sample: Any) -> None:
        """Show ``sample``'s TIR and trace; a sample without a trace shows why instead."""
        from msexplore.tir_map import instruction_lines

        if sample.trace is None:
            values: dict[str, Any] = {"code": f"# sample {sample.id} has no TIR: {sample.error}", "trace": "",
                                      "trace_instructions": [], "line_map": {}}
        else:
            entries = list(sample.trace.as_python())
            numbered = len(entries) == len(sample.trace.insts)  # one entry per instruction, as TVM prints it
            trace_instructions: list[int] = []
            for k, entry in enumerate(entries):
                trace_instructions += [k if numbered else -1] * len(entry.split("\n"))
            lines = instruction_lines(sample)
            values = {
                "code": sample.tir,
                "trace": "\n".join(entries),
                "trace_instructions": trace_instructions,
                "line_map": {str(k): v for k, v in lines.items()},
            }
        with self.hold_trait_notifications(), self.hold_sync():
            self.mode = "code"
            self.highlight_lines = []
            self.selected_instruction = -1
            for name, value in values.items():
                setattr(self, name, value)

    def show_diff(self, diff: Any) -> None:
        """One pane: the unified diff of two samples' TIR (``mx.diff(a, b)``), in diff mode."""
        a, b = diff.labels if all(diff.labels) else (f"sample {diff.a}", f"sample {diff.b}")
        code = diff.tir or f"# {a} and {b} have the same TIR"
        with self.hold_trait_notifications(), self.hold_sync():
            self.highlight_lines = []
            self.selected_instruction = -1
            self.line_map = {}
            self.trace_instructions = []
            self.trace = ""
            self.code = code
            self.mode = "diff"

    @property
    def selected_lines(self) -> list[int]:
        """The lines of ``code`` the selected instruction produced or touched (what the browser marks)."""
        return list(self.line_map.get(str(self.selected_instruction), []))

    # ---- validation ----
    @validate("language")
    def _check_language(self, proposal: Any) -> str:
        try:
            lexer_for(proposal["value"])
        except ValueError as err:
            raise TraitError(str(err)) from None
        return proposal["value"]

    @validate("line_map")
    def _check_line_map(self, proposal: Any) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for key, lines in proposal["value"].items():
            try:
                index = int(key)
                out[str(index)] = [int(n) for n in lines]
            except (TypeError, ValueError):
                raise TraitError(
                    f"line_map maps instruction indices to lists of 1-based lines, got {key!r}: {lines!r}"
                ) from None
        return out

    @validate("selected_instruction")
    def _check_selected(self, proposal: Any) -> int:
        if proposal["value"] < -1:
            raise TraitError(f"selected_instruction is an instruction index or -1, got {proposal['value']}")
        return proposal["value"]

    # ---- rendering ----
    @observe("code", "language", "mode")
    def _on_code(self, change: Any) -> None:
        self._render_code()
        if change["name"] == "language":
            self._render_trace()
        self._static_changed()

    @observe("trace")
    def _on_trace(self, change: Any) -> None:
        self._render_trace()
        self._static_changed()

    # ---- a saved notebook's copy ----
    def _static_body(self) -> str:
        """The code (and the trace under it), highlighted with inline colours."""
        body = static_code_html(self.code, self.language, self.mode)
        if self.trace:
            body += '<div class="msx-section-title">Trace</div>' + static_code_html(self.trace, self.language)
        return body

    def _static_html(self) -> str:
        return static_page("CodeView", self._static_body())

    def _render_code(self) -> None:
        self.code_html = code_html(self.code, self.language, self.mode)

    def _render_trace(self) -> None:
        self.trace_html = code_html(self.trace, self.language, "code")
