"""Notebook panels: ipywidgets/anywidget widgets that wire user events to core calls and figure builders.

Widgets only hold traits and observers; schedules, samples and searches are computed by the core, and
long work runs on threads so the kernel stays free. Callback errors go to a visible output area.
Imported lazily (``mx.ui.TraceExplorer``) so scripts and the CLI never load ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import Any

_WIDGETS = {
    "CodeView": "code_view",
    "TraceExplorer": "trace_explorer",
    "DecisionInspector": "decision_inspector",
    "ModuleWorkbench": "module_workbench",
    "CostModelPanel": "cost_model_panel",
    "SearchDashboard": "dashboard",
    "ModelDashboard": "model_dashboard",
    "ExportPanel": "export_panel",
    "ChooseSchedule": "choose_schedule",
}

__all__ = sorted(_WIDGETS)


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        return getattr(importlib.import_module(f"{__name__}.{_WIDGETS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}; widgets: {sorted(_WIDGETS)}")
