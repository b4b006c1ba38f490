"""The sections of a model run's report: what was tuned, the estimated model latency, the task table, and each
searched task's own search report folded under its name (largest share of the model's time first)."""

from __future__ import annotations

from typing import Any

from ..figures import plot_model_latency
from ..ui._html import esc, note
from ..ui._model_dashboard_parts import model_header_html, task_rows, task_table_html
from ._machine import machine_facts
from ._page import Section, details, facts_table, figure_html, section_html, slug
from ._search import search_header, search_sections, status_notice, target_text

__all__ = ["model_sections", "model_title", "model_header"]


def model_title(run: Any) -> str:
    return f"Tuning of the model {run.config.get('model', '?')}"


def model_header(run: Any) -> str:
    """The model dashboard's header line, and a notice when the run did not end well."""
    return model_header_html(run.progress) + status_notice(run.status, run.error, "what its tasks' folders hold")


def model_sections(run: Any) -> list[Section]:
    rows = task_rows(run.tasks)
    return [
        Section("tuned", "What was tuned", _tuned(run)),
        Section("latency", "Estimated model latency", figure_html(plot_model_latency(run), "latency-figure") + note(
            "The sum over tasks of calls per inference × best latency, after each measured batch of any task; "
            "defined once every task has a verified candidate.")),
        Section("tasks", "Tasks", task_table_html(rows)),
        Section("searches", "The searches of the tasks", _task_searches(run, rows)),
    ]


def _tuned(run: Any) -> str:
    cfg = run.config
    task_modules = cfg.get("task_modules") or {}
    progress = run.progress
    facts = [
        ("model", str(cfg.get("model", "?"))),
        ("target", target_text(cfg.get("target"))),
        ("tasks", f"{len(cfg.get('tasks', []))}: " + ", ".join(run.task_names)),
        ("modules", ", ".join(str(m) for m in cfg.get("modules", [])) or "–"),
        *((f"modules of {task}", ", ".join(mods)) for task, mods in task_modules.items()),
        ("trials", f"{progress.trials_done} of {cfg.get('trials', '?')} in the last session, batches of "
                   f"{cfg.get('batch_size', '?')}; {progress.measured_in_folder} measured in the folder over "
                   f"{cfg.get('sessions', 1)} session(s)"),
        ("seed", str(cfg.get("seed", "?"))),
        ("started", f"{cfg.get('started', '?')} (last session)"),
        ("status", run.status),
        ("folder", str(run.work_dir)),
        *machine_facts(cfg),
    ]
    return facts_table(facts)


def _task_searches(run: Any, rows: list[dict[str, Any]]) -> str:
    """Each task's search report folded under its name, the largest share of the estimated model time first."""
    runs = dict(run.task_runs)
    ordered = sorted(rows, key=lambda r: (-(r["time_share"] or 0), run.task_names.index(r["task"])))
    blocks = []
    for r in ordered:
        name, calls = r["task"], r["calls"]
        task = runs.get(name)
        trials = "not searched yet" if task is None else f"{len(task.events)} trials"
        summary = f"<code>{esc(name)}</code>: {trials}, {calls} call{'s' if calls != 1 else ''} per inference"
        if task is None:
            blocks.append(f'<div id="task-{esc(slug(name))}" class="msx-task-pending">{summary}</div>')
            continue
        anchor = f"task-{slug(name)}"
        inner = "".join(section_html(s, level=3) for s in search_sections(task, prefix=f"{anchor}-", machine=False))
        blocks.append(details(summary, search_header(task) + inner, css_class="msx-task", id_=anchor))
    return note("Open a task to see its search as a search's own report shows it.") + "".join(blocks)
