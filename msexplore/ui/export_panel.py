"""ExportPanel: export a run's best candidate as a kernel bundle, then load it back, check it and time it."""

from __future__ import annotations

import os
from typing import Any

import ipywidgets as widgets
from traitlets import Unicode

from ..search.run import SearchRun
from ._html import esc, gflops_text, latency_text, table
from ._task_panel import TaskPanel, guarded, row

__all__ = ["ExportPanel"]


class NoValidCandidate(ValueError):
    """The run has no candidate whose outputs matched the reference: there is nothing to export."""


class ExportPanel(TaskPanel):
    """A folder, an overwrite box, "Export best" (on a thread) and "Load and check" for a ``SearchRun``.

    Parameters
    ----------
    run
        The search whose best candidate is exported (``run.best`` when the button is pressed).
    folder
        The bundle's folder; default ``out/<workload name>`` (relative to the kernel's working directory).
    benchmark
        Options of ``Kernel.benchmark`` used by "Load and check" (``number``, ``repeat``, ``min_repeat_ms``).
    """

    exported_path = Unicode("", help="absolute path of the last bundle written ('' before)")

    def __init__(self, run: SearchRun, *, folder: str | os.PathLike | None = None,
                 benchmark: dict[str, int] | None = None) -> None:
        if not isinstance(run, SearchRun):
            raise TypeError(f"ExportPanel expects a SearchRun (mx.search or mx.open_run), got {type(run).__name__}")
        super().__init__("msx-export-panel")
        self.run = run
        self.benchmark_options = {"number": 10, "repeat": 3, "min_repeat_ms": 20, **(benchmark or {})}
        self.bundle: Any = None  # the mx.Bundle written last
        self.kernel: Any = None  # the mx.Kernel loaded back
        self.check_result: Any = None  # its Comparison with the reference
        self.benchmark_result: dict[str, Any] | None = None

        default = os.path.join("out", run.workload.name) if folder is None else os.fspath(folder)
        self.folder = widgets.Text(value=default, description="Folder", layout=widgets.Layout(width="420px"))
        self.overwrite = widgets.Checkbox(value=False, description="overwrite", indent=False,
                                          layout=widgets.Layout(width="auto"))
        self.export_button = widgets.Button(description="Export best", icon="download", button_style="primary")
        self.check_button = widgets.Button(description="Load and check", icon="check", disabled=True,
                                           tooltip="Load the exported bundle, compare with the reference, time it")
        self.manifest_view = widgets.HTML()
        self.check_view = widgets.HTML()
        self.children = [
            self.stylesheet,
            row([self.folder, self.overwrite]),
            row([self.export_button, self.check_button]),
            self.status_line,
            self.error_area,
            self.manifest_view,
            self.check_view,
        ]
        self.export_button.on_click(self._on_export)
        self.check_button.on_click(self._on_check)
        self.observe(self._on_busy, names=["busy"])

    # ---- export ----
    @guarded
    def _on_export(self, _button: Any = None) -> None:
        folder = self.folder.value.strip()
        if not folder:
            raise ValueError("give a folder for the kernel bundle")
        path = os.path.abspath(folder)
        if os.path.exists(path) and not self.overwrite.value:  # answered at once, without a thread
            raise FileExistsError(f"{path} already exists; tick 'overwrite' to replace it, or choose another folder")
        self.check_view.value = ""
        self._start("exporting", lambda: self._export(path, self.overwrite.value), self._exported)

    def _export(self, path: str, overwrite: bool) -> Any:
        best = self.run.best
        if best is None:
            n = len(self.run.events)
            raise NoValidCandidate(
                f"the run has no valid candidate to export ({n} measured, none both built, ran and matched the "
                "reference); wait for one or run a longer search"
            )
        return best.export(path, overwrite=overwrite)

    def _exported(self, bundle: Any) -> None:
        self.bundle = bundle
        self.kernel = self.check_result = self.benchmark_result = None
        self.exported_path = str(bundle.path.resolve())
        self.manifest_view.value = _manifest_html(bundle.path, bundle.manifest)
        self._say(f"Exported to {self.exported_path}", kind="ok")

    # ---- load and check ----
    @guarded
    def _on_check(self, _button: Any = None) -> None:
        if not self.exported_path:
            raise ValueError("export a bundle first")
        self._start("checking", lambda: self._load_and_check(self.exported_path), self._checked)

    def _load_and_check(self, path: str) -> tuple[Any, Any, dict[str, Any]]:
        from ..export import load_kernel

        kernel = load_kernel(path)
        return kernel, kernel.check(), kernel.benchmark(**self.benchmark_options)

    def _checked(self, result: tuple[Any, Any, dict[str, Any]]) -> None:
        self.kernel, self.check_result, self.benchmark_result = result
        self.check_view.value = _check_html(*result)
        if self.check_result.ok:
            self._say(f"Loaded {self.exported_path}: outputs match the reference.", kind="ok")
        else:
            self._say(f"Loaded {self.exported_path}: outputs do NOT match the reference.", kind="error")

    @guarded
    def _on_busy(self, change: dict) -> None:
        self.export_button.disabled = change["new"]
        self.check_button.disabled = change["new"] or not self.exported_path


def _manifest_html(path: Any, manifest: dict[str, Any]) -> str:
    target = manifest.get("target", {})
    target_text = target.get("kind", "?") if isinstance(target, dict) else str(target)
    if isinstance(target, dict) and target.get("mcpu"):
        target_text += f" ({target['mcpu']})"
    workload = manifest.get("workload", {})
    params = ", ".join(f"{k}={v}" for k, v in workload.get("params", {}).items())
    facts = [
        ["workload", f"{workload.get('name', '?')} {params}".strip()],
        ["latency", latency_text(manifest.get("latency_s"))],
        ["GFLOPS", gflops_text(manifest.get("gflops"))],
        ["target", target_text],
        ["verified", f"max abs error {manifest.get('verified', {}).get('max_abs_error', float('nan')):.3g}"],
        ["TVM", manifest.get("tvm_version", "?")],
    ]
    files = []
    for name, digest in manifest.get("files", {}).items():
        file = os.path.join(os.fspath(path), name)
        size = os.path.getsize(file) if os.path.exists(file) else None
        files.append([name, "–" if size is None else f"{size:,} B", digest[:12]])
    return (
        f'<div class="msx-section-title">Bundle {esc(os.fspath(path))}</div>'
        + table(facts, ["", "value"])
        + table(files, ["file", "size", "sha256"], numeric=("size",))
    )


def _check_html(kernel: Any, comparison: Any, bench: dict[str, Any]) -> str:
    verdict = "outputs match the reference" if comparison.ok else "outputs do NOT match the reference"
    rows = [
        ["check", verdict],
        ["max abs error", f"{comparison.max_abs_error:.3g}"],
        ["max rel error", f"{comparison.max_rel_error:.3g}"],
        ["median latency", latency_text(bench.get("median_s"))],
        ["min latency", latency_text(bench.get("min_s"))],
        ["GFLOPS (median)", gflops_text(bench.get("gflops"))],
        ["repeats", f"{len(bench.get('results_s', ()))}"],
    ]
    css = "msx-ok" if comparison.ok else "msx-error"
    return f'<div class="msx-section-title {css}">Load and check: {esc(verdict)}</div>' + table(rows, ["", "value"])
