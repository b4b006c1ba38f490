"""Builder and runner processes that live across batches and across searches, without PyTorch.

MetaSchedule's ``LocalBuilder`` starts fresh worker processes for every batch (and once more to check its build
function), and every ``LocalRunner`` starts its own. Each start imports TVM, and ``tvm_ffi`` imports PyTorch
whenever it is installed: measured on a 2-core Zen 5 VM, a worker's import takes 1.3 s and 240 MB without torch,
3.1 s and 440 MB with it. A model's task searches paid that for every batch of every task.

``Workers`` keeps one pool of build processes and one runner process alive for as long as it is open; a search
borrows a builder and a runner from it (``builder()``, ``runner(...)``), and a model run hands the same ``Workers``
to each task's search. Its processes start with ``sys.modules["torch"] = None``, so TVM's optional torch import
fails fast and the worker never loads it (nothing the workers do needs torch). A build process is replaced after
``max_builds`` builds, which keeps the slow memory growth TVM restarts its build pools for in bounds. Their stderr
(TVM's C++ warnings while building) goes to ``log_path``, not into a notebook cell.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from typing import Any, BinaryIO

from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.builder import local_builder
from tvm.s_tir.meta_schedule.runner import local_runner
from tvm.support.popen_pool import PopenPoolExecutor, PopenWorker, StatusKind

from msexplore.common import check_positive_int

__all__ = ["Workers", "WORKER_LAUNCH"]

# What a worker process runs: TVM's popen worker, with torch made unimportable first.
WORKER_LAUNCH = (
    "import sys; sys.modules['torch'] = None\n"
    "from tvm.exec.popen_worker import main\n"
    "try:\n    main()\nexcept (OSError, KeyboardInterrupt):\n    pass\n"
)


class _TorchFreeWorker(PopenWorker):
    """TVM's ``PopenWorker``, started through ``WORKER_LAUNCH`` instead of ``python -m tvm.exec.popen_worker``."""

    def _start(self) -> None:
        if self._proc is not None:
            return
        if sys.platform == "win32":  # TVM's own start handles the Windows handle passing
            super()._start()
            return
        main_read, worker_write = os.pipe()
        worker_read, main_write = os.pipe()
        cmd = [sys.executable, "-c", WORKER_LAUNCH, str(worker_read), str(worker_write)]
        self._proc = subprocess.Popen(
            cmd, pass_fds=(worker_read, worker_write), stdout=self._stdout, stderr=self._stderr
        )
        os.close(worker_read)
        os.close(worker_write)
        self._reader = os.fdopen(main_read, "rb")
        self._writer = os.fdopen(main_write, "wb")


class _TorchFreePool(PopenPoolExecutor):
    """``PopenPoolExecutor`` whose workers are ``_TorchFreeWorker``s (TVM's picks its worker class by name)."""

    def _worker_run(self, fn: Any, args: Any, kwargs: Any) -> Any:
        with self._lock:
            tid = threading.get_ident()
            proc = self._worker_map.get(tid)
            if proc is None:
                proc = _TorchFreeWorker(
                    self._initializer, self._initargs, self._maximum_process_uses, self._stdout, self._stderr
                )
                self._worker_map[tid] = proc
        proc.send(fn, args, kwargs, self._timeout)
        return proc.recv()


class Workers:
    """Build and run processes shared by every search that borrows them, until ``close()``.

    Parameters
    ----------
    build_workers
        Build processes (one per core is what a search uses).
    build_timeout_s, run_timeout_s
        Per-build and per-measurement limits; a worker that passes one is killed and replaced.
    log_path
        Where the workers' stderr goes (appended); None discards it.
    max_builds
        Builds per build process before it is replaced by a fresh one.
    """

    def __init__(
        self,
        build_workers: int,
        *,
        build_timeout_s: float = 60,
        run_timeout_s: float = 60,
        log_path: str | os.PathLike | None = None,
        max_builds: int = 256,
    ) -> None:
        check_positive_int("build_workers", build_workers)
        check_positive_int("max_builds", max_builds)
        for name, value in (("build_timeout_s", build_timeout_s), ("run_timeout_s", run_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        self.build_workers = build_workers
        self.build_timeout_s = build_timeout_s
        self.run_timeout_s = run_timeout_s
        self.log_path = None if log_path is None else os.fspath(log_path)
        self._log: BinaryIO | int = subprocess.DEVNULL
        if self.log_path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115  closed in close()
        self._build_pool = _TorchFreePool(
            max_workers=build_workers,
            timeout=build_timeout_s,
            maximum_process_uses=max_builds,
            stdout=self._log,
            stderr=self._log,
        )
        self._run_pool = _TorchFreePool(max_workers=1, timeout=run_timeout_s, stdout=self._log, stderr=self._log)
        self.closed = False

    def builder(self, f_build: Any = None, f_export: Any = None) -> ms.builder.Builder:
        """A MetaSchedule builder that builds in these workers with ``f_build`` and writes the artifact with
        ``f_export`` (default: MetaSchedule's own, a ``.tar``)."""
        self._check_open()
        return PooledBuilder(self._build_pool, self.build_timeout_s, f_build, f_export)

    def runner(
        self,
        evaluator: ms.runner.EvaluatorConfig,
        *,
        f_alloc_argument: Any = None,
        f_run_evaluator: Any = None,
        screen: Any = None,
    ) -> ms.runner.Runner:
        """A MetaSchedule runner that measures in this runner process, with the given hooks (TVM's by default).

        ``screen`` (a ``measure.Screen``): each candidate's ``f_run_evaluator`` gets ``slower_than_s=`` its cutoff,
        and every measured latency is shown to it."""
        self._check_open()
        return PooledRunner(
            self._run_pool, self.run_timeout_s, evaluator, f_alloc_argument, f_run_evaluator, screen=screen
        )

    def pids(self) -> list[int]:
        """Process ids of the worker processes running now (they start with the first build or measurement)."""
        pids = []
        for pool in (self._build_pool, self._run_pool):
            with pool._lock:
                workers = list(pool._worker_map.values())
            pids.extend(w._proc.pid for w in workers if w._proc is not None and w._proc.poll() is None)
        return sorted(pids)

    def close(self) -> None:
        """Stop every worker process. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for pool in (self._build_pool, self._run_pool):
            pool.shutdown(wait=True)
        if not isinstance(self._log, int):
            self._log.close()

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("these Workers are closed; make new ones or let the search start its own")

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"Workers({self.build_workers} build + 1 run process, {state})"


@derived_object
class PooledBuilder(ms.builder.PyBuilder):
    """``LocalBuilder``'s build, in a pool that outlives the batch."""

    def __init__(self, pool: PopenPoolExecutor, timeout_s: float, f_build: Any = None, f_export: Any = None) -> None:
        super().__init__()
        self.pool = pool
        self.timeout_s = timeout_s
        self.f_build = f_build
        self.f_export = f_export

    def build(self, build_inputs: list[ms.builder.BuilderInput]) -> list[ms.builder.BuilderResult]:
        f_build, f_export = self.f_build, self.f_export
        jobs = [
            (f_build, f_export, item.mod, item.target, local_builder._serialize_params(item.params))
            for item in build_inputs
        ]
        results = []
        for outcome in self.pool.map_with_error_catching(lambda job: local_builder._worker_func(*job), jobs):
            if outcome.status == StatusKind.COMPLETE:
                results.append(ms.builder.BuilderResult(outcome.value, None))
            elif outcome.status == StatusKind.TIMEOUT:
                message = f"LocalBuilder: Timeout, killed after {self.timeout_s} seconds"
                results.append(ms.builder.BuilderResult(None, message))
            else:
                message = f"LocalBuilder: An exception occurred\n{outcome.value}"
                results.append(ms.builder.BuilderResult(None, message))
        return results


@derived_object
class PooledRunner(ms.runner.PyRunner):
    """``LocalRunner``'s measurement (one candidate at a time, in one process), in a process that outlives it."""

    def __init__(
        self,
        pool: PopenPoolExecutor,
        timeout_s: float,
        evaluator: ms.runner.EvaluatorConfig,
        f_alloc_argument: Any = None,
        f_run_evaluator: Any = None,
        *,
        screen: Any = None,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.screen = screen
        self.timeout_s = timeout_s
        self.evaluator = ms.runner.EvaluatorConfig._normalized(evaluator)
        self.f_alloc_argument = f_alloc_argument
        self.f_run_evaluator = f_run_evaluator

    def run(self, runner_inputs: list[ms.runner.RunnerInput]) -> list[ms.runner.RunnerFuture]:
        futures = []
        for item in runner_inputs:
            f_run_evaluator = self.f_run_evaluator
            if self.screen is not None:
                f_run_evaluator = functools.partial(f_run_evaluator, slower_than_s=self.screen.cutoff_s())
            job = self.pool.submit(
                local_runner._worker_func,
                self.f_alloc_argument,
                f_run_evaluator,
                None,
                self.evaluator,
                1,
                str(item.artifact_path),
                str(item.device_type),
                tuple(info.as_json() for info in item.args_info),
            )
            try:
                seconds, error = job.result(), None
            except TimeoutError:
                seconds, error = None, f"LocalRunner: Timeout, killed after {self.timeout_s} seconds\n"
            except Exception as exception:  # noqa: BLE001  the candidate's failure, recorded like LocalRunner does
                seconds, error = None, f"LocalRunner: An exception occurred\n{exception}"
            if self.screen is not None and seconds:
                self.screen.saw(seconds)
            futures.append(local_runner.LocalRunnerFuture(res=seconds, error_message=error))
        return futures
