"""ChooseSchedule: choose a schedule one decision at a time, coarse to fine, each value with its predicted score.

>>> steer = mx.ui.ChooseSchedule(space, cost_model=run.cost_model)   # or ChooseSchedule(space): a fresh XGB model
>>> steer                                   # the panel
>>> steer.choose(16); steer.wait()          # what clicking a value does (for scripts; the panel shows it)
>>> steer.steering.trace, steer.export("out/steered")

The panel draws an ``msexplore.search.steering.Steering``: the next decision, its values (arrow keys move, Enter or
a click chooses, Backspace goes back), each with the cost model's score of the program it leads to and the spread
over random completions, the TIR that program has or its diff to the current one; "Back", "Measure this" and
"Finish from here" (a beam pass over the remaining decisions, its best programs measured). Every step runs on a
thread; errors appear in the panel.
"""

from __future__ import annotations

import math
from typing import Any

import anywidget
import ipywidgets as widgets
from traitlets import Bool, Dict, Int, List, TraitError, Unicode, observe, validate

from msexplore.widgets import asset

from ._html import error_box, esc, gflops_text, latency_text, table
from ._task_panel import TaskPanel, guarded, row
from .code_view import CodeView

__all__ = ["ChooseSchedule", "OptionList"]

VIEWS = (("diff to current", "diff"), ("TIR it leads to", "tir"), ("current TIR", "current"))


class OptionList(anywidget.AnyWidget):
    """The values of the next decision as focusable buttons; sends ``choose`` and ``back`` events to Python."""

    _esm = asset("choose_schedule.js")
    _css = asset("choose_schedule.css")

    rows = List(Dict(), help="per value: label, score, best, worst, valid, drawn, current (text)").tag(sync=True)
    highlighted = Int(-1, help="the value previewed (arrow keys, focus); -1: none").tag(sync=True)
    busy = Bool(False, help="a step is being computed: choices are ignored").tag(sync=True)
    empty_text = Unicode("", help="what the list says when there is no value to choose").tag(sync=True)

    def _static_body(self) -> str:
        rows = [(r["label"] + (" (current)" if r["current"] else ""), r["score"], r["spread"], r["valid"])
                for r in self.rows]
        if not rows:
            return f"<p>{esc(self.empty_text)}</p>"
        return table(rows, ["value", "predicted score", "spread (best – worst)", "valid programs"],
                     numeric=["predicted score", "valid programs"])


class ChooseSchedule(TaskPanel):
    """Choose your own schedule: the next decision's values, scored; back, measure, finish with the beam.

    Parameters
    ----------
    space
        An ``mx.Space`` (or a ready ``Steering``).
    cost_model
        ``run.cost_model``, a fitted ``mx.CostModel``, or ``None`` for a fresh XGB model (scores show as
        "untrained" until it has learnt from a measurement).
    completions, max_children, seed
        Passed to ``Steering``: random completions scored per value, the most values shown, their seed.
    trials
        Programs "Finish from here" measures.
    """

    step_text = Unicode("", help="the next decision, as the header says it")
    path_labels = List(Unicode(), help="the decisions taken, 'name = value'")
    measurement_text = Unicode("", help="the last measurement (or finish) as the panel shows it")
    view = Unicode("diff", help="what the code pane shows: 'diff', 'tir' (of the highlighted value) or 'current'")

    def __init__(self, space: Any, cost_model: Any = None, *, completions: int = 4, max_children: int | None = None,
                 seed: int = 0, trials: int = 4) -> None:
        from ..search.steering import Steering
        from ..space import Space

        if not isinstance(space, (Space, Steering)):
            raise TypeError(f"ChooseSchedule steers an mx.Space, got {type(space).__name__}")
        if isinstance(trials, bool) or not isinstance(trials, int) or trials <= 0:
            raise ValueError(f"trials must be a positive integer, got {trials!r}")
        super().__init__("msx-choose-schedule")
        self.steering: Steering | None = space if isinstance(space, Steering) else None
        self._options: list[Any] = []
        self.header = widgets.HTML()
        self.path_view = widgets.HTML()
        self.option_list = OptionList()
        self.back_button = widgets.Button(description="Back", icon="arrow-left", disabled=True,
                                          tooltip="Undo the last decision (Backspace in the list)")
        self.measure_button = widgets.Button(description="Measure this", icon="tachometer", disabled=True,
                                             tooltip="Build and run the current program (on a thread)")
        self.finish_button = widgets.Button(description="Finish from here", icon="forward", disabled=True,
                                            button_style="primary",
                                            tooltip="A beam pass over the remaining decisions; measure its best")
        self.trials_input = widgets.BoundedIntText(trials, min=1, max=256, description="measure",
                                                   layout=widgets.Layout(width="150px"))
        self.view_toggle = widgets.ToggleButtons(options=VIEWS, value="diff", style={"button_width": "auto"})
        self.result = widgets.HTML()
        self.code = CodeView()
        self.children = [
            self.stylesheet, self.header, self.path_view, self.option_list,
            row([self.back_button, self.measure_button, self.finish_button, self.trials_input]),
            self.status_line, self.error_area, self.result, self.view_toggle, self.code,
        ]
        self.option_list.on_msg(self._on_list_message)
        self.option_list.observe(self._on_highlight, names=["highlighted"])
        self.view_toggle.observe(self._on_view_toggle, names=["value"])
        self.back_button.on_click(self._on_back)
        self.measure_button.on_click(self._on_measure)
        self.finish_button.on_click(self._on_finish)
        self.observe(self._on_busy, names=["busy"])
        if self.steering is not None:
            self._start("scoring the first decision", self.steering.options, lambda _: self._refresh())
        else:
            options = dict(completions=completions, max_children=max_children, seed=seed)
            self._start("preparing the steering", lambda: _ready(Steering(space, cost_model, **options)),
                        self._set_steering)

    # ---- actions (what the buttons do; for scripts and tests too) ----
    def choose(self, value: Any) -> bool:
        """Take ``value`` for the next decision on a thread (``wait()`` for it); False if a job is running."""
        steering = self._require()
        slot = steering.slot
        label = f"{slot.name} = {value}" if slot is not None else str(value)
        return self._start(f"choosing {label}", lambda: _ready(steering, steering.choose(value)),
                           lambda _: self._refresh())

    def back(self) -> bool:
        steering = self._require()
        return self._start("going back", lambda: _ready(steering, steering.back()), lambda _: self._refresh())

    def measure(self) -> bool:
        """Build and run the current program on a thread; the result appears under the buttons."""
        steering = self._require()
        return self._start("measuring the current program", steering.measure, self._measured)

    def finish(self, trials: int | None = None) -> bool:
        """Hand the remaining decisions to the beam and measure its best ``trials`` programs, on a thread."""
        steering = self._require()
        trials = self.trials_input.value if trials is None else trials
        return self._start(f"finishing from here ({trials} programs to measure)",
                           lambda: steering.finish(trials), self._finished)

    # ---- the current program, as a candidate exports ----
    @property
    def trace(self) -> Any:
        return self._require().trace

    @property
    def schedule(self) -> Any:
        return self._require().schedule

    def export(self, path: Any, *, overwrite: bool = False) -> Any:
        """Write the current program as a kernel bundle (``Steering.export``)."""
        return self._require().export(path, overwrite=overwrite)

    # ---- state -> widgets ----
    def _require(self) -> Any:
        if self.steering is None:
            raise RuntimeError("the steering is still being prepared (or failed: see the panel); call wait() first")
        return self.steering

    def _set_steering(self, steering: Any) -> None:
        self.steering = steering
        self._refresh()

    def _refresh(self) -> None:
        steering = self.steering
        slot = steering.slot
        self._options = steering.options()
        current = next((k for k, o in enumerate(self._options) if o.current), 0 if self._options else -1)
        if slot is None:
            self.step_text = f"Every decision is taken ({len(steering.path)}): the program below is the path's."
        else:
            where = slot.name if slot.phase == slot.name else f"{slot.phase} · {slot.name}"
            self.step_text = f"Step {slot.index + 1} of {slot.total} · {where}: {slot.about}"
        self.path_labels = [c.label if c.slot.kind == "design_space" else f"{c.slot.name} = {c.label}"
                            for c in steering.path]
        with self.option_list.hold_sync():
            self.option_list.rows = [_row(o, steering.trained) for o in self._options]
            self.option_list.empty_text = "Every decision is taken." if slot is None else "No value to choose."
            self.option_list.highlighted = current
        self.header.value = self._header_html()
        self.path_view.value = _path_html(self.path_labels)
        self._show_code()
        self._on_busy({"new": self.busy})
        self._say(self._summary(), kind="ok")

    def _header_html(self) -> str:
        steering = self.steering
        model = ("cost model: trained (higher = predicted faster)" if steering.trained else
                 "cost model: untrained (scores show once it has learnt from a measurement: Measure this)")
        score = "" if steering.predicted is None else f" · current program's score {steering.predicted:.4g}"
        return (f'<div class="msx-cs-step"><b>{esc(self.step_text)}</b></div>'
                f'<div class="msx-cs-model">{esc(model)}{esc(score)}</div>')

    def _summary(self) -> str:
        steering = self.steering
        if steering.slot is None:
            return "Every decision is taken: measure the program, export it, or go back."
        return f"{len(self._options)} values for {steering.slot.name}; ↑/↓ to preview, Enter or click to choose."

    def _show_code(self) -> None:
        steering, k = self.steering, self.option_list.highlighted
        option = self._options[k] if 0 <= k < len(self._options) else None
        if self.view == "current" or option is None:
            code, mode = steering.tir, "code"
        elif self.view == "tir":
            code, mode = option.tir or f"# no valid program has {option.label}: {option.rejection}", "code"
        else:
            code = option.diff or (f"# choosing {option.label} keeps the current program" if option.tir else
                                   f"# no valid program has {option.label}: {option.rejection}")
            mode = "diff" if option.diff else "code"
        with self.code.hold_trait_notifications(), self.code.hold_sync():
            self.code.trace, self.code.line_map, self.code.trace_instructions = "", {}, []
            self.code.highlight_lines, self.code.selected_instruction = [], -1
            self.code.code, self.code.mode = code, mode
        self._static_changed()

    def _measured(self, m: Any) -> None:
        label = f"the current program ({len(self.steering.path)} decisions chosen)"
        if m.ok:
            self.measurement_text = f"{label}: {latency_text(m.latency_s)}, {gflops_text(m.gflops)}"
            self.result.value = f"<b>{esc(self.measurement_text)}</b>"
        else:
            detail = m.build_error if m.build_error is not None else m.run_error
            self.measurement_text = f"{label}: failed: {detail}"
            self.result.value = error_box(self.measurement_text.splitlines()[0], detail, summary="details")
        self._refresh()  # a measurement teaches the model: the scores change

    def _finished(self, finished: Any) -> None:
        rows = [
            ("★" if k == finished.best else "", "–" if p.predicted is None else f"{p.predicted:.4g}",
             latency_text(p.measurement.latency_s) if p.measurement.ok else "failed", gflops_text(p.measurement.gflops))
            for k, p in enumerate(finished.programs)
        ]
        best = finished.best_latency_s
        self.measurement_text = (
            f"finished from step {len(finished.prefix) + 1} by a {finished.how}: {len(rows)} programs measured, "
            + ("none ran" if best is None else f"the fastest {latency_text(best)} is now the path's end")
        )
        self.result.value = (f"<div><b>{esc(self.measurement_text)}</b></div>"
                             + table(rows, ["", "predicted", "latency", "GFLOPS"], numeric=["predicted"]))
        self._refresh()

    # ---- handlers ----
    @guarded
    def _on_list_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        event = content.get("event") if isinstance(content, dict) else None
        if event == "choose":
            index = int(content.get("index", -1))
            if 0 <= index < len(self._options):
                self.choose(self._options[index].value)
        elif event == "back" and self.steering is not None and self.steering.path:
            self.back()

    def _on_highlight(self, change: Any) -> None:
        if self.steering is not None:
            self._show_code()

    def _on_view_toggle(self, change: Any) -> None:
        self.view = change["new"]

    @validate("view")
    def _check_view(self, proposal: Any) -> str:
        accepted = [value for _, value in VIEWS]
        if proposal["value"] not in accepted:
            raise TraitError(f"view must be one of {accepted}, got {proposal['value']!r}")
        return proposal["value"]

    @observe("view")
    def _on_view(self, change: Any) -> None:
        if self.view_toggle.value != change["new"]:
            self.view_toggle.value = change["new"]
        if self.steering is not None:
            self._show_code()

    @guarded
    def _on_back(self, _button: Any = None) -> None:
        self.back()

    @guarded
    def _on_measure(self, _button: Any = None) -> None:
        self.measure()

    @guarded
    def _on_finish(self, _button: Any = None) -> None:
        self.finish()

    def _on_busy(self, change: Any) -> None:
        busy, steering = bool(change["new"]), self.steering
        self.option_list.busy = busy
        self.back_button.disabled = busy or steering is None or not steering.path
        self.measure_button.disabled = busy or steering is None
        self.finish_button.disabled = busy or steering is None


def _ready(steering: Any, _result: Any = None) -> Any:
    """On the job's thread: compute the next decision's options (the slow part) before the panel draws them."""
    steering.options()
    return steering


def _row(option: Any, trained: bool) -> dict[str, Any]:
    def number(x: float | None) -> str:
        return "untrained" if not trained else "–" if x is None or math.isnan(x) else f"{x:.3g}"

    spread = number(None) if not trained else (
        "–" if option.best is None else f"{option.best:.3g} – {option.worst:.3g}"
    )
    return {
        "label": option.label, "score": number(option.score), "spread": spread,
        "valid": f"{option.valid}/{option.drawn}", "current": option.current,
        "bar": 0.0 if not trained or option.score is None else float(option.score),
        "title": option.rejection or "",
    }


def _path_html(labels: list[str]) -> str:
    if not labels:
        return '<div class="msx-cs-path msx-note">No decision taken yet.</div>'
    separator = '<span class="msx-cs-sep">›</span>'
    chips = separator.join(f'<span class="msx-cs-chip">{esc(label)}</span>' for label in labels)
    return f'<div class="msx-cs-path">{chips}</div>'
