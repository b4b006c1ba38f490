"""Show a ``SearchRun`` as a live ``SearchDashboard``, and a ``ModelRun`` as a live ``ModelDashboard``, when it is
the last expression of a notebook cell.

``register()`` adds mime-bundle formatters for both to the running IPython kernel: the cell's result is the
dashboard's widget view, with ``repr(run)`` as its plain-text fallback (what a saved notebook shows
without widget state, and what a console shows). Outside a kernel nothing is registered, so scripts, the CLI
and a terminal IPython keep the plain-text repr. This module imports no widget library; the dashboard is
imported when a run is first displayed.
"""

from __future__ import annotations

from typing import Any

from ..models.tuning import ModelRun
from ..search.run import SearchRun

__all__ = ["register", "unregister", "dashboard_mimebundle"]

RUN_TYPES = (SearchRun, ModelRun)


def dashboard_mimebundle(run: SearchRun | ModelRun) -> dict[str, Any]:
    """The mime bundle of a new dashboard for ``run`` (each display gets its own, with the whole history)."""
    if isinstance(run, ModelRun):
        from .model_dashboard import ModelDashboard

        dashboard: Any = ModelDashboard(run)
    else:
        from .dashboard import SearchDashboard

        dashboard = SearchDashboard(run)
    bundle = dashboard._repr_mimebundle_()
    if isinstance(bundle, tuple):  # (data, metadata) from some widget versions
        bundle = bundle[0]
    bundle = dict(bundle or {})
    bundle["text/plain"] = repr(run)
    return bundle


def register(ip: Any = None, *, only_in_kernel: bool = True) -> bool:
    """Display ``SearchRun`` and ``ModelRun`` results as dashboards in ``ip`` (default: the running IPython).

    Idempotent. Returns whether the formatters were registered: ``False`` outside IPython, and (with
    ``only_in_kernel``) in an IPython without a kernel, i.e. a terminal, where a widget cannot be drawn.
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
        ip.display_formatter.mimebundle_formatter.for_type(run_type, dashboard_mimebundle)
    return True


def unregister(ip: Any = None) -> None:
    """Back to the plain-text repr."""
    if ip is None:
        from IPython import get_ipython

        ip = get_ipython()
    if ip is not None:
        for run_type in RUN_TYPES:
            ip.display_formatter.mimebundle_formatter.pop(run_type, None)
