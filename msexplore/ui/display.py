"""Show a ``SearchRun`` as a live ``SearchDashboard``, and a ``ModelRun`` as a live ``ModelDashboard``, when it is
the last expression of a notebook cell (or given to ``display()``).

``register()`` adds a display hook for both to the running IPython kernel: the cell shows the dashboard's widget
view, with ``repr(run)`` as its plain-text fallback, then the dashboard's static copy (``_static.py``), which a
saved notebook shows where the widget cannot be drawn. Outside a kernel nothing is registered, so scripts, the CLI
and a terminal IPython keep the plain-text repr. This module imports no widget library; the dashboard is imported
when a run is first displayed.
"""

from __future__ import annotations

from typing import Any

from ..models.tuning import ModelRun
from ..search.run import SearchRun

__all__ = ["register", "unregister", "new_dashboard", "show_dashboard"]

RUN_TYPES = (SearchRun, ModelRun)


def new_dashboard(run: SearchRun | ModelRun) -> Any:
    """A new dashboard for ``run`` (each display gets its own, with the whole history)."""
    if isinstance(run, ModelRun):
        from .model_dashboard import ModelDashboard

        return ModelDashboard(run)
    from .dashboard import SearchDashboard

    return SearchDashboard(run)


def show_dashboard(run: SearchRun | ModelRun) -> Any:
    """Display a new dashboard for ``run`` and its static copy; returns the dashboard."""
    dashboard = new_dashboard(run)
    dashboard.display_with_copy(text=repr(run))
    return dashboard


def register(ip: Any = None, *, only_in_kernel: bool = True) -> bool:
    """Display ``SearchRun`` and ``ModelRun`` results as dashboards in ``ip`` (default: the running IPython).

    Idempotent. Returns whether the hook was registered: ``False`` outside IPython, and (with ``only_in_kernel``)
    in an IPython without a kernel, i.e. a terminal, where a widget cannot be drawn.
    """
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        ip = get_ipython()
    if ip is None or (only_in_kernel and getattr(ip, "kernel", None) is None):
        return False
    for run_type in RUN_TYPES:
        ip.display_formatter.ipython_display_formatter.for_type(run_type, show_dashboard)
    return True


def unregister(ip: Any = None) -> None:
    """Back to the plain-text repr."""
    if ip is None:
        from IPython import get_ipython

        ip = get_ipython()
    if ip is not None:
        for run_type in RUN_TYPES:
            ip.display_formatter.ipython_display_formatter.pop(run_type, None)
