"""The decisions of one sample as a form: a dropdown of legal values per random variable, a text field for long ones.

The form only reports ``(name, raw value)`` edits to a callback; parsing a text field (``parse``), replaying
(``Sample.with_decisions``) and showing what an illegal value does are the owner's job, in its error-guarded
handler. ``set_values`` puts values back without reporting them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets

from msexplore.figures import value_label

__all__ = ["DecisionEditor", "parse_decision", "decision_label", "MAX_DROPDOWN"]

MAX_DROPDOWN = 300  # longer domains (tiles of big loops) get a text field, checked by the replay


def decision_label(rv: Any, value: Any) -> str:
    if rv.kind == "compute_location":
        return {-1: "root", -2: "inline"}.get(int(value), f"loop {value}")
    return value_label(value)


def parse_decision(rv: Any, text: str) -> Any:
    """What a text field holds -> a decision value (tiles ``"2, 16"`` or ``"2×16"``; ``root``/``inline``)."""
    text = text.strip()
    if rv.kind == "tile":
        parts = [p for p in re.split(r"[\s,×x*\[\]()]+", text) if p]
        try:
            return tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"{rv.name}: a tile is {rv.n} integer factors like '2, 16', got {text!r}") from None
    if rv.kind == "compute_location":
        named = {"root": -1, "inline": -2}
        if text in named:
            return named[text]
        try:
            return int(text.removeprefix("loop").strip())
        except ValueError:
            raise ValueError(
                f"{rv.name}: a compute location is 'root', 'inline' or a loop number, got {text!r}"
            ) from None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class DecisionEditor(widgets.GridBox):
    """One labelled editor per random variable of a design space; ``on_edit(name, value)`` on each change."""

    def __init__(self, on_edit: Callable[[str, Any], None]) -> None:
        super().__init__(
            layout=widgets.Layout(grid_template_columns="repeat(auto-fill, minmax(350px, 1fr))", grid_gap="2px 12px")
        )
        self.add_class("msx-decision-editor")
        self._on_edit = on_edit
        self._design_space: Any = None
        self.editors: dict[str, widgets.Widget] = {}
        self._rvs: dict[str, Any] = {}
        self._quiet = False

    def show(self, design_space: Any, decisions: Mapping[str, Any]) -> None:
        """Editors for ``design_space`` (rebuilt only when it changes) holding ``decisions``."""
        if design_space is not self._design_space:
            self._design_space = design_space
            self._rvs = {rv.name: rv for rv in design_space.random_variables} if design_space is not None else {}
            self.editors = {name: self._editor(rv, decisions.get(name)) for name, rv in self._rvs.items()}
            self.children = [self._row(rv, self.editors[name]) for name, rv in self._rvs.items()]
        self.set_values(decisions)

    def set_values(self, decisions: Mapping[str, Any]) -> None:
        self._quiet = True
        try:
            for name, editor in self.editors.items():
                value = _hashable(decisions.get(name))
                if isinstance(editor, widgets.Dropdown):
                    if value not in [v for _, v in editor.options]:
                        editor.options = [*editor.options, (decision_label(self._rvs[name], value), value)]
                    editor.value = value
                else:
                    editor.value = "" if value is None else decision_label(self._rvs[name], value)
        finally:
            self._quiet = False

    def edit(self, name: str, value: Any) -> None:
        """Set one editor as a person would (the callback runs); for scripts and tests."""
        editor = self.editors[name]
        editor.value = _hashable(value) if isinstance(editor, widgets.Dropdown) else str(value)

    def _editor(self, rv: Any, value: Any) -> widgets.Widget:
        domain = [_hashable(v) for v in rv.domain]
        if len(domain) <= MAX_DROPDOWN:
            editor: widgets.Widget = widgets.Dropdown(
                options=[(decision_label(rv, v), v) for v in domain], layout=widgets.Layout(width="160px")
            )
        else:
            editor = widgets.Text(
                continuous_update=False, placeholder=f"{rv.n} factors of {rv.extent}",
                tooltip=f"{len(domain)} legal values: type the factors, e.g. {decision_label(rv, domain[0])}",
                layout=widgets.Layout(width="160px"),
            )
        editor.observe(lambda change, name=rv.name: self._changed(name, change), names=["value"])
        return editor

    def _row(self, rv: Any, editor: widgets.Widget) -> widgets.HBox:
        label = widgets.Label(rv.name, tooltip=f"{rv.kind} · module {rv.module} · {rv.domain_size} values")
        label.layout = widgets.Layout(width="180px", overflow="hidden")
        return widgets.HBox([label, editor], layout=widgets.Layout(align_items="center"))

    def _changed(self, name: str, change: Any) -> None:
        if self._quiet:
            return
        if isinstance(change["new"], str) and not change["new"].strip():
            return
        self._on_edit(name, change["new"])

    def parse(self, name: str, raw: Any) -> Any:
        """An editor's value as a decision: a dropdown's as is, a text field's parsed (ValueError if it is not)."""
        if isinstance(self.editors.get(name), widgets.Text):
            return parse_decision(self._rvs[name], str(raw))
        return raw
