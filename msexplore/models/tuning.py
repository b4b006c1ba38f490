"""Tuning a whole model under one budget: one ``mx.search`` per task, on a background thread, with live progress.

The budget is spent in two passes, with two rules TVM's task scheduler lacks:

1. **Every task first.** Each task gets one batch (up to three, until one candidate is verified), so no task is left
   without a measured schedule while others take the budget; a task whose space holds one program gets one trial.
2. **Then by estimated time.** The rest goes to the tasks in proportion to their share of the estimated model time
   (calls per inference x best latency so far), in one search session per task. A task whose search ends before
   its share is spent (its strategy proposes only programs already measured) gives the rest back, and it is shared
   again among the others in the same way.

Each task's search is an ordinary run folder (``tasks/<name>/``): stop, resume without re-measuring, and reopening
after a crash work per task as for any search, and the dashboard of one task is the usual search dashboard.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import inspect
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ..common import check_positive_int, latency_text
from ..search.background import BackgroundRun
from ..search.events import TrialEvent
from ..search.run import SearchRun, SearchTimings
from ..target import this_machine
from .folder import ModelFolder
from .model import Model

__all__ = ["tune_model", "open_model_run", "ModelRun", "ModelProgress"]

# the strategy of every task's search unless told: it tuned the benchmark models in 0.23-0.34x of plain tune_relax's
# time, the evolutionary search the ResNet block in 0.79x (see tune_model)
DEFAULT_STRATEGY = "beam"
FIRST_PASS_TRIES = 3  # batches a task may take in the first pass before it is left to the fallback schedule


@dataclasses.dataclass(frozen=True)
class ModelProgress:
    """Where a model run stands: trials against the budget, tasks with a verified schedule, estimated latency."""

    status: str
    trials_done: int  # this session
    trials_total: int  # this session's budget
    measured_in_folder: int  # every session on the folder
    tasks: int
    tasks_verified: int
    failures: int
    estimated_latency_s: float | None  # sum over tasks of calls x best latency; None until every task has one
    elapsed_s: float

    def __str__(self) -> str:
        latency = (
            f"estimated model latency {latency_text(self.estimated_latency_s)}"
            if self.estimated_latency_s is not None
            else f"{self.tasks_verified}/{self.tasks} tasks with a verified schedule"
        )
        folder = "" if self.measured_in_folder == self.trials_done else f" ({self.measured_in_folder} in the folder)"
        return (
            f"{self.status}: {self.trials_done}/{self.trials_total} trials{folder} over {self.tasks} tasks, "
            f"{self.failures} failed, {latency}, {self.elapsed_s:.0f} s"
        )


class ModelRun(BackgroundRun):
    """The tuning of a model's tasks, running or finished; ``task_runs`` holds one ``SearchRun`` per task searched.

    Made by ``mx.tune_model`` (which starts it) or ``mx.open_model_run`` (which reads a folder).
    """

    def __init__(self, folder: ModelFolder, config: dict[str, Any], model: Model | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.work_dir = folder.path
        self.config = config
        self.model = model
        self.trials_total = int(config.get("trials", 0))
        self.task_runs: dict[str, SearchRun] = {}
        self._current: SearchRun | None = None
        # Each task is searched in two sessions (first pass, then its share); its cost model carries over, so the
        # second session's first batch is ranked by a model trained on the first's, not by an untrained one.
        self._cost_models: dict[str, Any] = {}
        # With strategy="beam", one strategy object per task too: its time-share account spans the task's sessions,
        # so the first pass of a later session is sized by what the earlier ones measured.
        self._strategies: dict[str, Any] = {}
        self._started_at = float(config.get("started_at", time.time()))
        self._sessions: list[SearchRun] = []  # every task search of this session, for ``timings``
        self._session_started: float | None = None

    # ---- reading ----
    @property
    def task_names(self) -> list[str]:
        return [t["name"] for t in self.config["tasks"]]

    def weights(self) -> dict[str, int]:
        return {t["name"]: int(t["weight"]) for t in self.config["tasks"]}

    @property
    def tasks(self) -> pd.DataFrame:
        """One row per task: calls per inference, trials, failures, best latency (the search's single timing) and
        GFLOPS, share of model time, and the confirmed best's median where ``confirm`` re-timed the task."""
        from ..search.confirm import confirmed_latencies

        rows = []
        with self._lock:
            runs = dict(self.task_runs)
        for t in self.config["tasks"]:
            events = runs[t["name"]].events if t["name"] in runs else ()
            ok = [e for e in events if e.ok]
            best = min(ok, key=lambda e: e.latency_s) if ok else None
            confirmed = confirmed_latencies(runs[t["name"]]) if t["name"] in runs else None
            rows.append(
                {
                    "task": t["name"],
                    "weight": int(t["weight"]),
                    "trials": len(events),
                    "failures": sum(not e.ok for e in events),
                    "best_latency_s": None if best is None else best.latency_s,
                    "gflops": None if best is None else best.gflops,
                    "time_s": None if best is None else int(t["weight"]) * best.latency_s,
                    "confirmed_latency_s": min(confirmed.values()) if confirmed else None,
                }
            )
        columns = ["task", "weight", "trials", "failures", "best_latency_s", "gflops", "time_s", "confirmed_latency_s"]
        df = pd.DataFrame(rows, columns=columns)
        df["confirmed_latency_s"] = df["confirmed_latency_s"].astype(float)
        df["best_latency_s"] = df["best_latency_s"].astype(float)
        df["gflops"] = df["gflops"].astype(float)
        df["time_s"] = df["time_s"].astype(float)
        total = df["time_s"].sum()
        df["time_share"] = df["time_s"] / total if total > 0 else float("nan")
        return df

    @property
    def progress(self) -> ModelProgress:
        tasks = self.tasks
        verified = int(tasks["best_latency_s"].notna().sum())
        estimate = float(tasks["time_s"].sum()) if verified == len(tasks) and len(tasks) else None
        end = self._ended_at or time.time()
        measured = int(tasks["trials"].sum())
        earlier = sum(int(n) for n in self.config.get("measured_before", {}).values())
        return ModelProgress(
            status=self.status,
            trials_done=measured - earlier,
            trials_total=self.trials_total,
            measured_in_folder=measured,
            tasks=len(tasks),
            tasks_verified=verified,
            failures=int(tasks["failures"].sum()),
            estimated_latency_s=estimate,
            elapsed_s=end - self._started_at,
        )

    @property
    def latency_history(self) -> pd.DataFrame:
        """The estimated model latency after each measured batch of any task, rebuilt from the tasks' events (so a
        run opened from its folder has it too): seconds since this session started, trials measured in the folder,
        and the estimate (NaN until every task has a verified candidate)."""
        weights = self.weights()
        with self._lock:
            runs = dict(self.task_runs)
        batches: dict[tuple, list] = {}
        for name, run in runs.items():
            for e in run.events:
                batches.setdefault((name, e.session, e.batch if e.batch >= 0 else e.index), []).append(e)
        best: dict[str, float] = {}
        rows, trials = [], 0
        for (name, _, _), events in sorted(batches.items(), key=lambda item: max(e.timestamp for e in item[1])):
            trials += len(events)
            for e in events:
                if e.ok and (name not in best or e.latency_s < best[name]):
                    best[name] = e.latency_s
            estimate = sum(weights[n] * best[n] for n in weights) if set(best) >= set(weights) else None
            rows.append((max(e.timestamp for e in events) - self._started_at, trials, estimate))
        df = pd.DataFrame(rows, columns=["time_s", "trials", "estimated_latency_s"])
        df["estimated_latency_s"] = df["estimated_latency_s"].astype(float)
        return df

    # ---- control ----
    def subscribe(self, callback: Callable[[str, list[TrialEvent]], Any]) -> Callable[[], None]:
        """Call ``callback(task_name, batch)`` with each measured batch of any task, on the search thread."""
        return self._add_subscriber(callback, "(task name, events)")

    def stop(self, *, wait: bool = True, timeout: float | None = None) -> ModelProgress:
        """Stop after the batch being measured; no further task is started. Every measured record is kept."""
        self._request_stop()
        current = self._current
        if current is not None:
            current.stop(wait=False)
        if wait:
            self.wait(timeout)
        return self.progress

    # ---- the tuning thread ----
    def _start(self, plan: Callable[[ModelRun], None]) -> ModelRun:
        def tune() -> None:
            plan(self)
            failed = [name for name, run in self.task_runs.items() if run.status == "failed"]
            if failed:
                raise RuntimeError(f"the search of task(s) {failed} failed: {self.task_runs[failed[0]].error}")

        self._session_started = time.time()
        self._launch(tune, "msexplore-model")
        return self

    @property
    def sessions(self) -> tuple[SearchRun, ...]:
        """Every task search this session ran, in order (a task searched twice appears twice; ``task_runs`` keeps
        each task's last)."""
        with self._lock:
            return tuple(self._sessions)

    @property
    def timings(self) -> SearchTimings:
        """Where this session's wall time went, added up over every task search it ran; ``other`` includes the
        model-level work between them (building each task's space, planning the budget). Zero for an opened run."""
        if self._session_started is None:
            return SearchTimings()
        total = sum((run.timings for run in self.sessions), SearchTimings())
        ended = self._ended_at if self._ended_at is not None else time.time()
        return dataclasses.replace(total, wall_s=ended - self._session_started)

    def _write_status(self) -> None:
        self.folder.write_status(status=self.status, error=self.error, ended=self._ended_at)

    def _search_task(self, name: str, space: Any, trials: int, options: dict[str, Any]) -> SearchRun:
        from ..search.driver import search
        from ..search.strategies import create_strategy, knobs

        if options.get("cost_model", "xgb") == "xgb":  # one model per task, trained on all its sessions' batches
            if name not in self._cost_models:
                self._cost_models[name] = _new_cost_model(options)
            options = dict(options, cost_model=self._cost_models[name])
        if options.get("strategy") == "beam":
            beam_knobs = set(knobs("beam"))
            if name not in self._strategies:
                self._strategies[name] = create_strategy("beam", {k: options[k] for k in beam_knobs & set(options)})
            options = {k: v for k, v in options.items() if k not in beam_knobs}
            options["strategy"] = self._strategies[name]
        run = search(space, trials=trials, work_dir=self.folder.task_folder(name).path, **options)
        with self._lock:
            self.task_runs[name] = run
            self._sessions.append(run)
        self._current = run
        run.subscribe(lambda batch: self._on_batch(name, batch))
        if self._stop_requested.is_set():
            run.stop(wait=False)
        return run.wait()

    def _on_batch(self, name: str, batch: list[TrialEvent]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        self._notify(subscribers, name, batch=batch)

    def _spend(self, model: Model, modules: dict[str, Any], trials: int, batch: int, options: dict) -> None:
        """The budget spent over the tasks, every task's search building and measuring in the same worker
        processes (started once for the run, not per task or per batch)."""
        from ..workers import Workers

        if options.get("workers") is not None:  # the caller's, shared further still
            self._spend_budget(model, modules, trials, batch, options)
            return
        threads = options.get("num_threads") or model.target.attrs.get("num-cores") or os.cpu_count() or 1
        with Workers(
            int(threads),
            build_timeout_s=options.get("build_timeout_s", 60),
            run_timeout_s=options.get("run_timeout_s", 60),
            log_path=self.folder.workers_log,
        ) as workers:
            self._spend_budget(model, modules, trials, batch, dict(options, workers=workers))

    def _spend_budget(self, model: Model, modules: dict[str, Any], trials: int, batch: int, options: dict) -> None:
        """The two passes of the module docstring (on the run's thread)."""
        from ..space import Space

        names = [t.name for t in model.task_list]
        workloads = {t.name: t.workload for t in model.task_list}
        built: dict[str, Any] = {}

        def space(name: str) -> Any:  # built when first searched: the first task starts without waiting for the rest
            if name not in built:
                built[name] = Space(workloads[name], modules[name], target=model.target)
            return built[name]

        weights = {t.name: t.weight for t in model.task_list}
        used = 0
        session_start = {name: len(r.events) for name, r in self.task_runs.items()}

        def spent(name: str) -> int:
            r = self.task_runs.get(name)
            return 0 if r is None else len(r.events) - session_start.get(name, 0)

        def best(name: str) -> float | None:
            r = self.task_runs.get(name)
            found = None if r is None else r.best
            return None if found is None else found.latency_s

        def single(name: str) -> bool:  # a space that holds one program: one trial says all
            return space(name).size() <= 1

        for _ in range(FIRST_PASS_TRIES):
            todo = [name for name in names if best(name) is None]
            for k, name in enumerate(todo):
                if self._stop_requested.is_set() or used >= trials:
                    return
                share = max(1, (trials - used) // (len(todo) - k))
                n = 1 if single(name) else min(batch, share, trials - used)
                before = spent(name)
                self._search_task(name, space(name), n, options)
                used += spent(name) - before
            if all(best(name) is not None for name in names):
                break
        exhausted: set[str] = set()  # tasks whose search ended before its share: nothing new left to propose
        while used < trials and not self._stop_requested.is_set():
            rest = trials - used
            growing = {
                name: weights[name] * best(name)
                for name in names
                if not single(name) and best(name) is not None and name not in exhausted
            }
            total = sum(growing.values())
            if not growing or total <= 0:
                return
            plan = {name: int(rest * value / total) for name, value in growing.items()}
            for name in sorted(growing, key=lambda n: -growing[n]):  # leftover trials from rounding, largest first
                if sum(plan.values()) >= rest:
                    break
                plan[name] += 1
            measured = 0
            for name in sorted(plan, key=lambda n: -plan[n]):
                if self._stop_requested.is_set():
                    return
                n = min(plan[name], trials - used)  # what is left, should a search have measured less or more
                if n <= 0:
                    continue
                before = spent(name)
                self._search_task(name, space(name), n, options)
                got = spent(name) - before
                used += got
                measured += got
                if got < n:  # its strategy ran out of programs it had not measured: the rest goes to the others
                    exhausted.add(name)
            if measured == 0:
                return

    def confirm(
        self, top: int = 3, *, rounds: int = 5, tasks: Sequence[str] | None = None, evaluator: Any = None
    ) -> pd.DataFrame:
        """Re-time each task's ``top`` fastest verified candidates, all in turn, ``rounds`` times (``SearchRun.confirm``
        per task, ``tasks`` only where given): a task's fastest single timing is often its luckiest. Each task's
        ranking is saved in its folder, and ``compile`` then takes each task's fastest by the median. Returns one row
        per task re-timed: its search's pick and fastest timing, the confirmed pick and its median, and whether the
        pick changed. Only when the run has ended (``wait`` or ``stop`` first)."""
        check_positive_int("top", top)
        check_positive_int("rounds", rounds)
        if self.running:
            raise RuntimeError(
                f"the model run is {self.status}: confirm re-times candidates on the cores its searches measure on; "
                "call it after run.wait() or run.stop()"
            )
        names = self.task_names if tasks is None else list(tasks)
        unknown = [n for n in names if n not in self.task_names]
        if isinstance(tasks, str) or unknown:
            raise ValueError(
                f"tasks must be a list of this model's task names, got {tasks!r}; its tasks: {self.task_names}"
            )
        weights = self.weights()
        with self._lock:
            runs = dict(self.task_runs)
        rows = []
        for name in names:
            run = runs.get(name)
            if run is None or not any(e.ok for e in run.events):
                continue  # nothing verified to re-time: compile gives it a fallback, as before
            search_pick = run.top(1)[0]
            frame = run.confirm(top, rounds=rounds, evaluator=evaluator)
            timed = frame[frame["confirmed_ms"].notna()]
            first = timed.iloc[0] if len(timed) else None
            rows.append({
                "task": name,
                "weight": weights[name],
                "candidates": len(frame),
                "search_pick": search_pick.index,
                "search_latency_s": search_pick.latency_s,
                "pick": None if first is None else int(first["index"]),
                "confirmed_latency_s": None if first is None else float(first["confirmed_ms"]) / 1e3,
                "changed": first is not None and int(first["index"]) != search_pick.index,
            })
        columns = ["task", "weight", "candidates", "search_pick", "search_latency_s", "pick", "confirmed_latency_s",
                   "changed"]
        return pd.DataFrame(rows, columns=columns)

    def compile(self, model: Model | None = None, *, check: bool = True) -> Any:
        """The model compiled with this run's best verified record per task, the confirmed one where ``confirm``
        re-timed the task's candidates since its last search (see ``compile_model``)."""
        from .compiled import compile_model

        model = model or self.model
        if model is None:
            raise ValueError(
                f"{self.work_dir}: this run was opened from its folder without its model; "
                "pass it: run.compile(model) or mx.open_model_run(folder, model=model)"
            )
        return compile_model(model, self, check=check)

    def __repr__(self) -> str:
        return f"ModelRun({self.config.get('model')}, {self.work_dir!r}, {self.progress})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def tune_model(
    model: Model,
    trials: int,
    *,
    modules: Sequence[Any] = ("default",),
    task_modules: dict[str, Sequence[Any]] | None = None,
    work_dir: str | os.PathLike | None = None,
    batch_size: int = 16,
    seed: int = 1,
    check: bool = True,
    strategy: Any = DEFAULT_STRATEGY,
    **search_options: Any,
) -> ModelRun:
    """Tune every task of ``model`` within ``trials`` measured candidates in all; returns at once with the run.

    Parameters
    ----------
    modules
        The modules of every task's space (as ``mx.Space`` takes them); ``task_modules`` gives some tasks their own
        (``{"fused_matmul_relu": ["default", "x86-avx512"]}``).
    work_dir
        The run's folder (``model.json`` and one search folder per task under ``tasks/``); a folder of an earlier
        run of the same model continues from its records without measuring a program twice.
    strategy
        Each task's search strategy, as ``mx.search`` takes it; ``"beam"`` by default here (``mx.search``'s default is
        ``"evolutionary"``). Measured at 1,000 trials on 2 cores, against plain ``tune_relax`` in the same run: the
        beam tuned an MLP, an encoder layer and a ResNet block in 0.23x, 0.34x and 0.30x of its wall time; the
        evolutionary search the ResNet block in 0.79x (70 % of it generating candidates), for kernels as fast
        (README, "Whole models").
    search_options
        Passed to each task's ``mx.search`` (``cost_model=``, ``num_threads=``, ``screen=``, the strategy's knobs:
        ``beam_size=`` for the beam, ``population_size=`` for ``strategy="evolutionary"``).
    """
    from ..modules import resolve_modules
    from ..search.driver import check_screen

    if not isinstance(model, Model):
        raise TypeError(
            f"tune_model expects an mx.Model (Model.from_torch / Model.from_relax), got {type(model).__name__}"
        )
    check_positive_int("trials", trials)
    check_positive_int("batch_size", batch_size)
    check_positive_int("seed", seed)
    check_screen(search_options.get("screen"))
    _check_strategy(strategy, search_options)
    names = [t.name for t in model.task_list]
    unknown = sorted(set(task_modules or {}) - set(names))
    if unknown:
        raise ValueError(f"task_modules names task(s) {unknown} that {model.name} does not have; its tasks: {names}")
    per_task = {name: (task_modules or {}).get(name, modules) for name in names}
    for chosen in per_task.values():  # unknown names or modules fail here, before any work
        resolve_modules(chosen, model.target.kind.name)
    folder = ModelFolder(_default_dir(work_dir, model))
    previous = folder.read_config()
    tasks = [{"name": t.name, "weight": t.weight, "workload": t.workload.to_json()} for t in model.task_list]
    if previous is not None and [t["workload"] for t in previous["tasks"]] != [t["workload"] for t in tasks]:
        raise ValueError(
            f"{folder.path} holds a tuning run of {previous.get('model')} whose tasks differ from {model.name}'s; "
            "use another work_dir (its records can still compile this model: compile(model, records=that folder))"
        )
    config = {
        "model": model.name,
        # records each task's folder held before this session: the session's own trials are counted from them
        "measured_before": {name: len(folder.task_folder(name).history()) for name in names},
        "target": str(model.target),
        "tasks": tasks,
        "modules": [getattr(m, "name", m) for m in modules],
        "task_modules": {k: [getattr(m, "name", m) for m in v] for k, v in (task_modules or {}).items()},
        "trials": trials,
        "batch_size": batch_size,
        "seed": seed,
        "sessions": int((previous or {}).get("sessions", 0)) + 1,
        "machine": this_machine(),
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "started_at": time.time(),
    }
    folder.write_config(config)
    run = ModelRun(folder, config, model)
    for name in names:  # earlier sessions' records count towards the estimate from the start
        task_folder = folder.task_folder(name)
        if task_folder.is_run():
            run.task_runs[name] = SearchRun.open(task_folder.path)
    options = dict(search_options, batch_size=batch_size, seed=seed, check=check, strategy=strategy)
    return run._start(lambda r: r._spend(model, per_task, trials, batch_size, options))


def _check_strategy(strategy: Any, search_options: dict[str, Any]) -> None:
    """Refuse an unknown strategy or knob before any work (the searches run on the run's thread)."""
    from ..search.driver import search
    from ..search.strategies import create_strategy

    search_params = set(inspect.signature(search).parameters) - {"space", "strategy_options"}
    strategy_options = {k: v for k, v in search_options.items() if k not in search_params}
    try:
        create_strategy(strategy, strategy_options)
    except ValueError as err:
        if strategy == "beam" and strategy_options:
            raise ValueError(
                f"{err} (tune_model searches with strategy='beam' unless told; population_size= and the other "
                "options of the evolutionary search need strategy='evolutionary', --strategy evolutionary in the CLI)"
            ) from None
        raise


def open_model_run(work_dir: str | os.PathLike, model: Model | None = None) -> ModelRun:
    """The model run in ``work_dir`` as it stands on disk; reading it changes nothing."""
    folder = ModelFolder(work_dir)
    config = folder.read_config()
    if config is None:
        raise ValueError(f"{folder.path!r} has no model.json: it is not the folder of an mx.tune_model run")
    run = ModelRun(folder, config, model)
    for name in run.task_names:
        task_folder = folder.task_folder(name)
        if task_folder.is_run():
            run.task_runs[name] = SearchRun.open(task_folder.path)
    status = folder.read_status()
    if status is None:
        run._set_ended("interrupted", None, None)
    else:
        run._set_ended(status["status"], status.get("error"), status.get("ended"))
    return run


def _new_cost_model(options: dict[str, Any]) -> Any:
    from ..search.driver import make_cost_model

    return make_cost_model("xgb", options.get("batch_size", 16), options.get("num_threads"))


def _default_dir(work_dir: Any, model: Model) -> str:
    if work_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        work_dir = os.path.join("msexplore-runs", f"{model.name}-{stamp}")
    path = os.path.abspath(os.fspath(work_dir))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"work_dir {path!r} is a file; give a folder (new or one of an earlier model run)")
    return path
