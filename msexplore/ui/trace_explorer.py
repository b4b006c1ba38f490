"""TraceExplorer: sample a space, pick a trace, read its TIR and instructions, edit a decision, replay, measure.

>>> mx.ui.TraceExplorer(space)                   # draws 50 samples on a thread, then shows the first valid one
>>> mx.ui.TraceExplorer(space, model=model)      # with a fitted mx.CostModel: predicted scores too

Clicking a row shows that sample (TIR and trace side by side); ctrl/shift-clicking a second row shows the diff
of the two. Each decision of the shown sample is a dropdown of its legal values (a text field for very long
domains); a change replays the trace with ``Sample.with_decisions``. "Measure this one" builds and runs the shown
program on a thread. The widget only wires events to core calls; errors appear in the panel's error box.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
from traitlets import Dict, Float, Int, List, Unicode, link, observe

from ..common import error_line
from ._decision_editor import DecisionEditor
from ._html import error_box, esc, gflops_text, latency_text, table
from ._task_panel import TaskPanel, guarded, row
from .code_view import CodeView
from .sample_table import SampleTable, cell_text

__all__ = ["TraceExplorer"]


class TraceExplorer(TaskPanel):
    """Samples of ``space`` as a table; the selected one's TIR, trace and editable decisions; its measurement.

    Parameters
    ----------
    space
        An ``mx.Space``.
    n, seed
        How many samples the first draw takes, and its seed (both editable in the panel).
    model
        A fitted ``mx.CostModel`` of the space's workload: samples and edits then show its predicted score.
    samples
        An ``mx.SampleSet`` of ``space`` to show instead of drawing new ones.
    """

    selected = List(Int(), help="positions of the selected samples: one shows it, two show their diff")
    decisions = Dict(help="the decisions of the sample shown (edits included), tiles as lists")
    predicted = Float(None, allow_none=True, help="the model's score of the sample shown (None without a model)")
    measurement_text = Unicode("", help="the last measurement as the panel shows it")

    def __init__(self, space: Any, *, n: int = 50, seed: int = 0, model: Any = None, samples: Any = None) -> None:
        from ..sampling import SampleSet
        from ..space import Space

        if not isinstance(space, Space):
            raise TypeError(f"TraceExplorer explores an mx.Space, got {type(space).__name__}")
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if model is not None and not getattr(model, "fitted", False):
            raise ValueError("model must be a fitted mx.CostModel (model.fit(run.records)), or None")
        if samples is not None and (not isinstance(samples, SampleSet) or samples.space is not space):
            raise ValueError("samples must be an mx.SampleSet drawn from this space (space.sample(n))")
        super().__init__("msx-trace-explorer")
        self.space, self.model = space, model
        self.samples: Any = None  # the SampleSet in the table
        self.shown: Any = None  # the Sample shown (an edited one after a decision change)
        self.base: Any = None  # the selected sample, before edits
        self.measurement: Any = None  # the last mx.Measurement

        self.n_input = widgets.BoundedIntText(n, min=1, max=100_000, description="samples",
                                              layout=widgets.Layout(width="170px"))
        self.seed_input = widgets.BoundedIntText(seed, min=0, max=2**31 - 2, description="seed",
                                                 layout=widgets.Layout(width="170px"))
        self.sample_button = widgets.Button(description="Sample", icon="random", button_style="primary",
                                            tooltip="Draw this many samples with this seed (on a thread)")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="140px"))
        self.table = SampleTable()
        self.info = widgets.HTML()
        self.editor = DecisionEditor(self._on_decision_edit)
        self.reset_button = widgets.Button(description="Undo edits", icon="undo", disabled=True)
        self.diff_view = widgets.HTML()
        self.code = CodeView()
        self.measure_button = widgets.Button(description="Measure this one", icon="tachometer", disabled=True,
                                             tooltip="Build and run the program shown (on a thread)")
        self.measure_result = widgets.HTML()
        self.children = [
            self.stylesheet,
            row([self.n_input, self.seed_input, self.sample_button, self.progress]),
            self.status_line,
            self.error_area,
            self.table,
            self.info,
            self.editor,
            row([self.reset_button, self.measure_button, self.measure_result]),
            self.diff_view,
            self.code,
        ]
        link((self.table, "selected"), (self, "selected"))
        self.sample_button.on_click(self._on_sample)
        self.reset_button.on_click(self._on_reset)
        self.measure_button.on_click(self._on_measure)
        self.observe(self._on_busy, names=["busy"])
        if samples is None:
            self.sample()
        else:
            self._set_samples(samples)
            if model is not None:
                self._start("scoring the samples", lambda: model.predict(samples), lambda _: self._scored())

    # ---- actions (also for scripts and tests) ----
    def sample(self, n: int | None = None, seed: int | None = None) -> bool:
        """Draw ``n`` samples with ``seed`` (default: the panel's fields) on a thread; False if a job is running."""
        n = self.n_input.value if n is None else n
        seed = self.seed_input.value if seed is None else seed
        space, model = self.space, self.model

        def work() -> Any:
            samples = space.sample(n, seed=seed)
            if model is not None:
                model.predict(samples)  # fills samples.df["predicted"]
            return samples

        return self._start(f"sampling {n} traces (seed {seed})", work, self._set_samples)

    def edit(self, name: str, value: Any) -> None:
        """Change one decision of the sample shown, as its editor would (replays; errors go to the panel)."""
        self._on_decision_edit(name, value)

    def measure(self) -> bool:
        """Build and run the sample shown on a thread; the result appears in ``measurement``."""
        from ..measure import measure

        sample = self.shown
        if sample is None or not sample.valid:
            self._say("Select a valid sample to measure.", kind="warning")
            return False
        schedule, label = sample.schedule, _label(sample)
        workload, target = self.space.workload, self.space.target
        return self._start(
            f"measuring {label}",
            lambda: measure([schedule], workload, target=target)[0],
            lambda m: self._set_measurement(label, m),
        )

    # ---- state -> widgets ----
    def _set_samples(self, samples: Any) -> None:
        self.samples = samples
        n_valid = sum(s.valid for s in samples)
        self.table.df = samples.df
        self.table.caption = (
            f"{len(samples)} samples, {n_valid} valid (seed {samples.seed}). Click a row to see it; "
            "ctrl/shift-click a second row to diff them."
        )
        first_valid = next((k for k, s in enumerate(samples) if s.valid), 0 if len(samples) else None)
        selection = [] if first_valid is None else [first_valid]
        if self.selected == selection:  # no change, no observer call: show the new set's sample here
            self._show_selection()
        else:
            self.selected = selection
        self._say(f"{len(samples)} samples, {n_valid} valid.", kind="ok")

    def _scored(self) -> None:
        self.table.df = self.samples.df  # now with the "predicted" column; the selection stays
        self._say("Samples scored by the cost model (column 'predicted').", kind="ok")

    @observe("selected")
    def _on_selected(self, change: Any) -> None:
        self._show_selection()

    @guarded
    def _show_selection(self) -> None:
        picked = [self.samples[k] for k in self.selected] if self.samples is not None else []
        if len(picked) == 2:
            self._show_diff(*picked)
        elif picked:
            self.base = picked[-1]
            self._show(picked[-1])
        else:
            self.base = None
            self._show(None)

    def _show(self, sample: Any) -> None:
        self.shown = sample
        self.measurement = None
        self.measure_result.value = ""
        self.diff_view.value = ""
        self.editor.layout.display = None
        if sample is None:
            self.code.code, self.code.trace = "", ""
            self.editor.show(None, {})
            self.info.value, self.decisions, self.predicted = "", {}, None
        else:
            self.code.show_sample(sample)
            ds = self.space.design_spaces[sample.design_space] if sample.design_space >= 0 else None
            self.editor.show(ds, sample.decisions)
            self.decisions = {k: list(v) if isinstance(v, tuple) else v for k, v in sample.decisions.items()}
            self.predicted = self._predict(sample)
            self.info.value = self._info_html(sample)
        self.reset_button.disabled = sample is None or not sample.edited
        self._on_busy({"new": self.busy})
        self._static_changed()

    def _show_diff(self, a: Any, b: Any) -> None:
        from ..sampling import diff

        self.shown = None
        self.measurement = None
        self.measure_result.value = ""
        d = diff(a, b)
        self.code.show_diff(d)
        self.editor.layout.display = "none"
        self.decisions, self.predicted = {}, None
        self.reset_button.disabled = True
        self.info.value = f"<b>{esc(d.labels[0])}</b> (−) and <b>{esc(d.labels[1])}</b> (+): " \
                          f"{len(d.decisions)} decision(s) differ"
        rows = [(r.name, cell_text(r.a), cell_text(r.b)) for r in d.decisions.itertuples(index=False)]
        self.diff_view.value = table(rows, ["decision", d.labels[0], d.labels[1]]) if rows else ""
        self._on_busy({"new": self.busy})
        self._static_changed()

    def _predict(self, sample: Any) -> float | None:
        if self.model is None or not sample.valid:
            return None
        return float(self.model.predict([sample.schedule])[0])

    def _info_html(self, sample: Any) -> str:
        parts = [f"<b>{esc(_label(sample))}</b>", f"design space {sample.design_space}"]
        invalid = f'<span class="msx-error">invalid: {esc(error_line(sample.error, limit=160))}</span>'
        parts.append("valid" if sample.valid else invalid)
        if self.predicted is not None:
            parts.append(f"predicted score {self.predicted:.4g}")
        return " · ".join(parts)

    def _set_measurement(self, label: str, m: Any) -> None:
        self.measurement = m
        if m.ok:
            self.measurement_text = f"{label}: {latency_text(m.latency_s)}, {gflops_text(m.gflops)}"
            self.measure_result.value = f"<b>{esc(self.measurement_text)}</b>"
            self._say(f"Measured {label}.", kind="ok")
        else:
            what = "build" if m.build_error is not None else "wrong result" if m.wrong_result else "run"
            detail = m.build_error if m.build_error is not None else m.run_error
            self.measurement_text = f"{label}: {what} failed: {error_line(detail, limit=160)}"
            self.measure_result.value = error_box(self.measurement_text, detail, summary="details")
            self._say(f"Measuring {label} failed ({what}).", kind="error")

    # ---- handlers ----
    @guarded
    def _on_decision_edit(self, name: str, raw: Any) -> None:
        if self.shown is None:
            raise ValueError("select one sample (not two) before editing a decision")
        try:
            edited = self.shown.with_decisions({name: self.editor.parse(name, raw)})
        except Exception:
            self.editor.set_values(self.shown.decisions)  # the editors show the program shown again
            raise
        self.error_text = ""
        self.error_area.value = ""
        self._show(edited)
        self._say(f"Replayed with {name} = {cell_text(edited.decisions[name])}.", kind="ok")

    @guarded
    def _on_reset(self, _button: Any = None) -> None:
        if self.base is not None:
            self._show(self.base)

    @guarded
    def _on_sample(self, _button: Any = None) -> None:
        self.sample()

    @guarded
    def _on_measure(self, _button: Any = None) -> None:
        self.measure()

    def _on_busy(self, change: Any) -> None:
        busy = bool(change["new"])
        self.sample_button.disabled = busy
        self.measure_button.disabled = busy or self.shown is None or not self.shown.valid
        self.progress.layout.visibility = "visible" if busy else "hidden"
        self.progress.bar_style = "info" if busy else ""
        self.progress.value = 0 if busy else 1


def _label(sample: Any) -> str:
    return f"sample {sample.id}" + (f" (edited {', '.join(sample.edited)})" if sample.edited else "")
