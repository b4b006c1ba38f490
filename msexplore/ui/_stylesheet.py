"""A hidden anywidget that brings msexplore's panel CSS into the page (anywidget loads ``_css`` with the model).

ipywidgets' boxes take CSS classes but no styles; each panel lists one of these among its children so that
JupyterLab (and a notebook saved with widget state) applies ``msexplore.css``, ``dashboard.css`` and
``panels.css``. anywidget keys a stylesheet by the widget class, so every panel loads the same combined text.
"""

from __future__ import annotations

import anywidget

from msexplore.widgets import asset

from ._static import HIDE_WHEN_LIVE_CSS

__all__ = ["StyleSheet", "stylesheet", "CSS_FILES"]

CSS_FILES = ("msexplore.css", "dashboard.css", "panels.css")


class StyleSheet(anywidget.AnyWidget):
    _esm = "export default { render({ el }) { el.style.display = 'none'; } };\n"
    # + the rule that hides a panel's static copy (for saved notebooks) while the panel itself is drawn
    _css = "\n".join(asset(name).read_text(encoding="utf-8") for name in CSS_FILES) + "\n" + HIDE_WHEN_LIVE_CSS


def stylesheet() -> StyleSheet:
    return StyleSheet()
