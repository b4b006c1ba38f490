"""The sections of a search's report: what was searched, progress, decisions, cost model, the top candidates, the
best one's TIR and trace, and the failures grouped by error. A model run's report repeats them for each task.

Everything is read from the run as it stands (``run.events``, ``run.records``, ``run.config``): a run opened from
its folder, killed mid-way or still running reports what it has measured.
"""

from __future__ import annotations

import json
from typing import Any

from ..common import error_line
from ..figures import plot_decision_distributions, plot_predicted_vs_measured, plot_search_progress
from ..ui._dashboard_parts import header_html, top_table_html
from ..ui._html import error_box, esc, gflops_text, latency_text, note
from ._failures import failure_groups, failures_html
from ._machine import machine_facts
from ._page import Section, code_panes, facts_table, figure_html, notice

__all__ = ["search_sections", "search_title", "search_header", "status_notice", "target_text", "SECTION_TITLES"]

TOP_K = 10
SECTION_TITLES = {
    "searched": "What was searched",
    "progress": "Progress",
    "decisions": "Decisions",
    "cost-model": "Cost model",
    "top": "Top candidates",
    "best": "Best candidate",
    "failures": "Failures",
}


def search_title(run: Any) -> str:
    params = run.config.get("workload", {}).get("params") or {}
    shape = " ".join(f"{k}={v}" for k, v in params.items())
    return f"Search of {run.workload.name}" + (f" ({shape})" if shape else "")


def search_header(run: Any) -> str:
    """The dashboard's header line (status, trials, failures, best, time) and a notice when the run did not end well."""
    n = len(run.events)
    return header_html(run.progress) + status_notice(
        run.status, run.error, f"the {n} measured candidate{'s' if n != 1 else ''} its folder holds")


def status_notice(status: str, error: str | None, holds: str) -> str:
    """What the reader should know about how a run ended (or that it has not); ``""`` when it ended as asked.

    ``holds`` says what the report shows, e.g. "the 12 measured candidates its folder holds".
    """
    if status == "interrupted":
        return notice(f"The process of this run ended without saying how (killed or crashed): the report shows "
                      f"{holds}.")
    if status in ("starting", "running", "stopping"):
        return notice(f"This run was still {status} when the report was written: the report shows {holds}.")
    if status == "failed":
        return error_box(f"The run failed: {error_line(error, default='no error text')}", error)
    return ""


def search_sections(run: Any, *, prefix: str = "", machine: bool = True) -> list[Section]:
    """The sections of ``run``'s report; ``prefix`` keeps their anchors apart when a page holds several runs, and
    ``machine=False`` leaves the machine out (a model run's report says it once)."""
    records = run.records  # one frame for the three figures (thousands of events take a moment)
    bodies = {
        "searched": _searched(run, machine),
        "progress": _progress(records, f"{prefix}progress-figure"),
        "decisions": _decisions(run, records, f"{prefix}decisions-figure"),
        "cost-model": _cost_model(run, records, f"{prefix}cost-model-figure"),
        "top": top_table_html(list(run.events), TOP_K),
        "best": _best(run),
        "failures": failures_html(failure_groups(run.events)),
    }
    return [Section(prefix + key, SECTION_TITLES[key], body) for key, body in bodies.items()]


def _searched(run: Any, machine: bool) -> str:
    cfg = run.config
    progress = run.progress
    options = cfg.get("strategy_options") or {}
    strategy = str(cfg.get("strategy", "?")) + (
        " (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")" if options else "")
    facts = [
        ("workload", repr(run.workload)),
        ("target", target_text(cfg.get("target"))),
        ("modules", ", ".join(cfg.get("modules", [])) or "–"),
        ("strategy", strategy),
        ("cost model", str(cfg.get("cost_model", "?"))),
        ("trials", f"{progress.trials_done} of {cfg.get('trials', '?')} in the last session, batches of "
                   f"{cfg.get('batch_size', '?')}; {progress.measured_in_folder} measured in the folder over "
                   f"{cfg.get('sessions', 1)} session(s)"),
        ("seed", str(cfg.get("seed", "?"))),
        ("check", "outputs compared with the reference" if cfg.get("check", True) else "off"),
        ("started", f"{cfg.get('started', '?')} (last session)"),
        ("status", run.status),
        ("folder", str(run.work_dir)),
        *(machine_facts(cfg) if machine else ()),
    ]
    return facts_table(facts)


def target_text(target: Any) -> str:
    """A target's JSON as ``llvm -mcpu=znver5 -num-cores=2 ...`` (the config keeps it as JSON text)."""
    try:
        config = json.loads(target) if isinstance(target, str) else dict(target or {})
    except (TypeError, ValueError):
        return str(target)
    if not isinstance(config, dict):
        return str(target)
    options = " ".join(f"-{k}={v}" for k, v in config.items() if k not in ("kind", "tag", "keys") and v not in ("", []))
    return f"{config.get('kind', '?')} {options}".strip()


def _progress(records: Any, figure_id: str) -> str:
    metric = "gflops" if records["gflops"].notna().any() or not records["latency_s"].notna().any() else "latency"
    return figure_html(plot_search_progress(records, metric=metric), figure_id) + note(
        "Every measured candidate (colour: session), the best so far, and failures in the strip below; "
        "the buttons switch between trials and search time, linear and log scale.")


def _decisions(run: Any, records: Any, figure_id: str) -> str:
    if not any(e.decisions for e in run.events):
        return note("No event of this run carries its decisions (events rebuilt from the database after a crash "
                    "have none): nothing to draw.")
    summary = None if run.space is None else run.space.summary()  # panels grouped by module when the space is known
    fig = plot_decision_distributions(records, color="latency", summary=summary)
    return figure_html(fig, figure_id) + note(
        "How often each value of each decision was measured; colour: the best latency measured with that value.")


def _cost_model(run: Any, records: Any, figure_id: str) -> str:
    if not records["predicted"].notna().any():
        return note(f"No candidate of this run has a recorded prediction (cost model "
                    f"{run.config.get('cost_model', '?')!r}; the model predicts from its second batch on): "
                    "nothing to compare.")
    return figure_html(plot_predicted_vs_measured(None, records), figure_id) + note(
        "The cost model's score of each candidate before it was measured, against its measured latency.")


def _best(run: Any) -> str:
    best = run.best
    if best is None:
        return note("No valid candidate: no TIR to show.")
    speed = latency_text(best.latency_s) + (f", {gflops_text(best.gflops)}" if best.gflops else "")
    checked = "outputs checked against the reference" if best.verified else "outputs NOT checked"
    summary = f"<p>Trial {best.index}: {esc(speed)}, {checked}</p>"
    try:
        tir, trace, why_not = best.tir, best.python(), ""
    except Exception as err:  # noqa: BLE001 - a trace that no longer replays (another TVM) is reported, not fatal
        tir = trace = None
        why_not = f"The trace does not replay here: {error_line(err, with_type=True)}"
    return summary + code_panes([("TIR (TVMScript)", tir, why_not), ("trace (Python)", trace, why_not)])
