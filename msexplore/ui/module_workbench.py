"""ModuleWorkbench: switch a space's transformation modules on and off and see the space each choice makes.

Every toggle rebuilds the ``Space`` on a thread (the latest toggles win: clicks made during a build are built
next) and shows ``space.summary()`` as a table and as ``plot_space_summary``. A module that raised while the
design spaces were generated shows its error, block and traceback in its own row. The registry is read again by
``refresh()`` (the "Reload modules" button, and after every cell in IPython): a module redefined in another cell
is a different object under the same name, and the space is rebuilt with it.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd
import plotly.graph_objects as go
from traitlets import List, Unicode

from ..figures import format_count, plot_space_summary
from ..modules import ModuleFailure, TransformModule, default_module_names, registered_modules, resolve_modules
from ..target import resolve_target
from ..workloads import Workload
from ..workloads import workload as make_workload
from ._html import error_box, esc, note, table
from ._task_panel import TaskPanel, guarded

__all__ = ["ModuleWorkbench"]

_SUMMARY_COLUMNS = ["name", "module", "block", "kind", "loop", "extent", "domain_size", "domain", "design_spaces"]


class ModuleWorkbench(TaskPanel):
    """The modules of a space with on/off toggles, the space's random variables, and each module's last error.

    Parameters
    ----------
    workload
        A ``Workload`` or what ``mx.workload`` accepts.
    modules
        The modules switched on at first, in order of application (as for ``mx.Space``). The target's other
        default modules and every registered module are listed too, switched off.
    target
        As for ``mx.Space``; ``None`` for the host CPU.
    """

    enabled = List(Unicode(), help="names of the modules in the space, in order of application")
    available = List(Unicode(), help="every module listed: the defaults and the registered user modules")

    def __init__(self, workload: Any, modules: Sequence[Any] = ("default",), *, target: Any = None) -> None:
        super().__init__("msx-module-workbench")
        self.workload = workload if isinstance(workload, Workload) else make_workload(workload)
        self.target = resolve_target(target)
        self.kind = self.target.kind.name
        initial = [m.name for m in resolve_modules(list(modules), self.kind)]  # bad names fail here, at once
        self.space: Any = None  # the Space of the enabled modules (None until built, or when it cannot be)
        self.summary: Any = None  # space.summary()
        self.figure: go.FigureWidget | None = None
        self.toggles: dict[str, widgets.Checkbox] = {}
        self.failure_views: dict[str, widgets.HTML] = {}
        self._used: dict[str, TransformModule] = {}  # user modules as the last build resolved them
        self._wanted = 0  # build requests so far
        self._built = 0  # the request the shown space answers

        self.reload_button = widgets.Button(description="Reload modules", icon="refresh",
                                            tooltip="Read the module registry again (modules defined or redefined "
                                                    "in other cells)")
        self.module_list = widgets.VBox()
        self.space_header = widgets.HTML()
        self.summary_view = widgets.HTML()
        self.figure_box = widgets.Box()
        self.children = [
            self.stylesheet,
            widgets.HTML('<div class="msx-section-title">Modules</div>'),
            self.module_list,
            self.reload_button,
            self.status_line,
            self.error_area,
            self.space_header,
            self.summary_view,
            self.figure_box,
        ]
        self.reload_button.on_click(self._on_reload)
        self.observe(self._on_busy, names=["busy"])
        names = list(dict.fromkeys([*initial, *default_module_names(self.kind), *registered_modules()]))
        self._set_rows(names, enabled=initial)
        self._cell_hook = _install_cell_hook(self)
        self._request_build()

    # ---- modules listed and switched on ----
    def _set_rows(self, names: list[str], enabled: list[str]) -> None:
        defaults = set(default_module_names(self.kind))
        rows = []
        for name in names:
            toggle = self.toggles.get(name)
            if toggle is None:
                toggle = widgets.Checkbox(value=name in enabled, description=name, indent=False,
                                          layout=widgets.Layout(width="260px"))
                toggle.observe(self._on_toggle, names=["value"])
                self.toggles[name] = toggle
                self.failure_views[name] = widgets.HTML()
            kind = "default rule" if name in defaults else "user module"
            label = widgets.HTML(f'<span class="msx-module-kind">{esc(kind)}</span>')
            row = widgets.VBox([widgets.HBox([toggle, label]), self.failure_views[name]])
            row.add_class("msx-module-row")
            rows.append(row)
        for gone in [n for n in self.toggles if n not in names]:
            self.toggles.pop(gone).close()
            self.failure_views.pop(gone).close()
        self.available = names
        self.enabled = [n for n in names if self.toggles[n].value]
        self.module_list.children = rows

    def set_enabled(self, name: str, on: bool = True) -> None:
        """Switch a module on or off (as its toggle does), which rebuilds the space."""
        if name not in self.toggles:
            raise KeyError(f"no module {name!r} in this workbench; listed: {self.available}")
        self.toggles[name].value = bool(on)

    @guarded
    def _on_toggle(self, change: dict) -> None:
        self.enabled = [n for n in self.available if self.toggles[n].value]
        self._request_build()

    @guarded
    def _on_reload(self, _button: Any = None) -> None:
        self.refresh()

    def refresh(self) -> bool:
        """Read the registry again: list new modules (off), drop removed ones, rebuild if an enabled module was
        redefined (same name, another object). Returns whether a rebuild was started."""
        registry = registered_modules()
        defaults = default_module_names(self.kind)
        names = [n for n in self.available if n in registry or n in defaults]
        names += [n for n in registry if n not in names]
        removed = [n for n in self.enabled if n not in names]
        self._set_rows(names, enabled=self.enabled)
        changed = [n for n in self.enabled if n in registry and self._used.get(n) is not registry[n]]
        if removed or changed:
            self._request_build()
            return True
        return False

    # ---- building the space (on a thread; the latest toggles win) ----
    def _request_build(self) -> None:
        self._wanted += 1
        if not self.busy:  # else the running build sees the new request when it ends (_on_busy)
            self._start("building the space", self._build_latest, self._show_space)

    @guarded
    def _on_busy(self, change: dict) -> None:
        if not change["new"] and self._built != self._wanted:  # toggled while the last build ran
            self._start("building the space", self._build_latest, self._show_space)

    def _build_latest(self) -> tuple[int, Any]:
        from ..space import Space

        while True:
            wanted, names = self._wanted, list(self.enabled)
            self._built = wanted
            if not names:
                raise ValueError("no module is switched on; a space needs at least one (e.g. the default ones)")
            modules = resolve_modules(names, self.kind)
            self._used = {m.name: m for m in modules if not m.is_default}
            space = Space(self.workload, modules=modules, target=self.target)
            if wanted == self._wanted:
                return wanted, space

    def _show_space(self, built: tuple[int, Any]) -> None:
        _, space = built
        summary = space.summary()
        self.space, self.summary = space, summary
        self._show_failures(space.failures)
        n_rv = len(summary)
        self.space_header.value = (
            f'<div class="msx-section-title">Space: {len(space.design_spaces)} design space(s), {n_rv} random '
            f'variable{"s" if n_rv != 1 else ""}, {esc(format_count(space.size()))} programs</div>'
        )
        self.summary_view.value = _summary_html(summary)
        old, self.figure = self.figure, go.FigureWidget(plot_space_summary(summary))
        self.figure_box.children = [self.figure]
        if old is not None:
            old.close()
        failed = sorted({f.module for f in space.failures})
        if failed:
            self._say(f"Built the space; module(s) {', '.join(failed)} failed (see their rows).", kind="warning")
        else:
            self._say(f"Built the space of {', '.join(m.name for m in space.modules)}.", kind="ok")

    def _show_failures(self, failures: Sequence[ModuleFailure]) -> None:
        last = {f.module: f for f in failures}
        counts = {m: sum(f.module == m for f in failures) for m in last}
        for name, view in self.failure_views.items():
            failure = last.get(name)
            if failure is None:
                view.value = ""
                continue
            times = f" ({counts[name]} times)" if counts[name] > 1 else ""
            view.value = error_box(f"{failure.module} failed on block {failure.block}{times}: {failure.error}",
                                   failure.traceback)

    def _report_error(self, where: str, err: BaseException, trace: str) -> None:
        super()._report_error(where, err, trace)
        if where == "building the space":
            self.space = self.summary = None
            self.space_header.value = self.summary_view.value = ""
            for view in self.failure_views.values():
                view.value = ""

    def close(self) -> None:
        _remove_cell_hook(getattr(self, "_cell_hook", None))  # None when the constructor refused its arguments
        if getattr(self, "figure", None) is not None:
            self.figure.close()
        super().close()


def _summary_html(summary: Any) -> str:
    if len(summary) == 0:
        return note("No random variables: every program of this space is the same.")
    rows = []
    for rec in summary[_SUMMARY_COLUMNS].itertuples(index=False):
        row = ["" if _missing(v) else v for v in rec]  # no loop or extent for a categorical: blank, not "nan"
        row[6] = f"{int(row[6]):,}"
        row[8] = ", ".join(str(k) for k in rec[8])
        rows.append(row)
    return table(rows, _SUMMARY_COLUMNS, numeric=("extent", "domain_size"))


def _missing(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# ---- picking up modules redefined in other cells ------------------------------------------------------------


def _install_cell_hook(workbench: ModuleWorkbench) -> Any:
    """In IPython, refresh the workbench after every cell (a cheap identity check unless a module changed)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    ip = get_ipython()
    if ip is None:
        return None
    ref = weakref.ref(workbench)

    def after_cell(_result: Any = None) -> None:
        bench = ref()
        if bench is None:
            _remove_cell_hook((ip, after_cell))
            return
        try:
            bench.refresh()
        except Exception as err:  # noqa: BLE001 - shown in the workbench, never in the user's cell
            import traceback

            bench._report_error("refresh", err, traceback.format_exc())

    ip.events.register("post_run_cell", after_cell)
    return ip, after_cell


def _remove_cell_hook(hook: Any) -> None:
    if hook is None:
        return
    ip, callback = hook
    try:
        ip.events.unregister("post_run_cell", callback)
    except ValueError:
        pass
