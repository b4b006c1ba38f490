"""Build and run candidates for MetaSchedule, checking every result against the workload's reference.

``make_builder`` and ``make_runner`` return MetaSchedule's own ``LocalBuilder`` / ``LocalRunner`` /
``RPCRunner``, so they plug into ``tune_tir`` unchanged. The runner's hooks feed each kernel the workload's
deterministic inputs and compare its outputs with a reference computed once, in this process, and saved
to an ``.npz`` file that the worker loads by path. A wrong kernel raises inside the worker, so MetaSchedule
records a run error (and its database a failure) instead of a fast but meaningless latency.
``measure`` builds and runs a few schedules outside a search; ``verify`` checks a compiled module here.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import statistics
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
import tvm
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.runner import EvaluatorConfig
from tvm.s_tir.meta_schedule.runner.utils import run_evaluator_common

from msexplore.common import check_int_in_range, check_positive_int, error_line
from msexplore.target import TargetLike, resolve_target
from msexplore.workers import Workers
from msexplore.workloads import Comparison, Workload

__all__ = [
    "SCREEN_FACTOR",
    "SEARCH_EVALUATOR",
    "MEASURE_EVALUATOR",
    "Measurement",
    "RPCSettings",
    "Screen",
    "WrongResultError",
    "export_shared",
    "fast_build",
    "make_builder",
    "make_runner",
    "measure",
    "parse_wrong_result",
    "verify",
    "write_reference",
]

# During a search every candidate near the best (see ``Screen``) pays one warm-up run plus at least
# `min_repeat_ms` of calls in one batch; one repeat is what MetaSchedule itself uses, since the cost model only needs
# a ranking. 25 ms (TVM's default is 100): timing 12 GEMM kernels of 0.2-1 ms six times in alternation on a 2-core
# Zen 5, 25 and 50 ms windows had the same spread (median coefficient of variation 1.2 % and 1.1 %) and ordered
# the same pairs alike (99.7 % of pairs as their mean, the same best every time).
SEARCH_EVALUATOR = EvaluatorConfig(number=3, repeat=1, min_repeat_ms=25, enable_cpu_cache_flush=False)
# Measuring one schedule for a person: three repeats give a median and a spread, for 150 ms at least.
MEASURE_EVALUATOR = EvaluatorConfig(number=3, repeat=3, min_repeat_ms=50, enable_cpu_cache_flush=False)

_WRONG_RESULT = re.compile(r"wrong result: output (\d+) \((.*?)\) max abs error (\S+) > atol")


def fast_build(mod: tvm.IRModule, target: tvm.target.Target, _params: Any) -> tvm.runtime.Module:
    """MetaSchedule's default build without ``import tvm.s_tir.tensor_intrin``.

    That import costs 10-20 s in every fresh builder worker, and ``LocalBuilder`` starts fresh workers for
    every batch. Schedules that tensorize with TVM's stock intrinsics need the default build instead.
    Returns a ``runtime.Module`` (``tvm.compile`` would return an ``Executable``, which the export rejects).
    """
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm.tirx.build(mod, target)


def export_shared(lib: tvm.runtime.Module) -> str:
    """Write a built candidate as a shared library in a new folder; returns its path.

    MetaSchedule's default export writes a ``.tar`` of object files, and loading it links them with the system
    compiler: ~19 ms per candidate in the runner, which measures one candidate at a time while the machine
    waits. Linked here, in the parallel build workers, the runner only opens the library (~0.1 ms)."""
    path = os.path.join(tempfile.mkdtemp(prefix="msexplore-build-"), "candidate.so")
    lib.export_library(path)
    return path


def make_builder(
    *, max_workers: int | None = None, timeout_sec: float = 60, workers: Workers | None = None, local: bool = True
) -> ms.builder.Builder:
    """A builder that builds with ``fast_build``: in ``workers`` when given, else a ``LocalBuilder`` (fresh
    processes per batch; ``max_workers=None``: one per core). ``local``: the candidates run on this machine, so
    they are linked here (``export_shared``); False keeps MetaSchedule's ``.tar``, which an RPC server links."""
    f_export = export_shared if local else None
    if workers is not None:
        return workers.builder(fast_build, f_export)
    return ms.builder.LocalBuilder(
        max_workers=max_workers, timeout_sec=timeout_sec, f_build=fast_build, f_export=f_export
    )


class WrongResultError(RuntimeError):
    """A kernel ran but its outputs differ from the reference beyond the workload's tolerance."""


def parse_wrong_result(error_msg: str | None) -> float | None:
    """The largest absolute error named in a runner's ``error_msg``, or None if it is not a wrong result.

    MetaSchedule keeps the worker's whole traceback in ``error_msg``; the check's message inside it reads
    ``wrong result: output 0 (C) max abs error 3.1e+00 > atol 1e-04 ...``, one clause per failing output.
    """
    if not error_msg:
        return None
    errors = [float(match.group(3)) for match in _WRONG_RESULT.finditer(error_msg)]
    return max(errors) if errors else None


@dataclasses.dataclass(frozen=True)
class RPCSettings:
    """Where an RPC tracker runs and which server key to ask it for.

    ``session_timeout_sec`` bounds each measurement session on the server: a kernel that runs longer is cut off.
    """

    host: str
    port: int
    key: str
    session_timeout_sec: int = 60

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"RPCSettings.host must be a non-empty host name, got {self.host!r}")
        check_int_in_range("RPCSettings.port", self.port, 1, 65535)
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"RPCSettings.key must be the server key registered with the tracker, got {self.key!r}")

    @classmethod
    def from_env(cls, *, session_timeout_sec: int = 60) -> RPCSettings:
        """Read ``TVM_TRACKER_HOST``, ``TVM_TRACKER_PORT`` and ``TVM_TRACKER_KEY``, the variables TVM reads."""
        names = ("TVM_TRACKER_HOST", "TVM_TRACKER_PORT", "TVM_TRACKER_KEY")
        missing = [name for name in names if not os.environ.get(name)]
        if missing:
            raise ValueError(
                f"RPC settings: environment variable(s) {', '.join(missing)} not set; set all of {', '.join(names)} "
                "(e.g. TVM_TRACKER_HOST=127.0.0.1 TVM_TRACKER_PORT=9190 TVM_TRACKER_KEY=msx) "
                "or pass RPCSettings(host, port, key)"
            )
        host, port, key = (os.environ[name] for name in names)
        try:
            port_number = int(port)
        except ValueError:
            raise ValueError(f"TVM_TRACKER_PORT must be an integer port number, got {port!r}") from None
        return cls(host, port_number, key, session_timeout_sec)

    def to_config(self) -> ms.runner.RPCConfig:
        return ms.runner.RPCConfig(
            tracker_host=self.host,
            tracker_port=self.port,
            tracker_key=self.key,
            session_timeout_sec=self.session_timeout_sec,
        )


def write_reference(workload: Workload, folder: str | os.PathLike, *, seed: int = 0) -> str:
    """Save the workload's inputs for ``seed`` and its expected outputs to an ``.npz`` file in ``folder``.

    The name holds a hash of the workload's TVMScript and the seed, so workloads can share a folder.
    Returns the file's path. Written to a temporary name first, then renamed, so a reader never sees half.
    """
    os.makedirs(folder, exist_ok=True)
    arrays = workload.make_inputs(seed)
    expected = workload.reference(arrays)
    contents = {f"arg{index}": array for index, array in enumerate(arrays)}
    contents.update({f"expected{index}": array for index, array in zip(workload.outputs, expected)})
    digest = hashlib.sha256(workload.func.script().encode()).hexdigest()[:16]
    path = os.path.join(os.fspath(folder), f"reference-{workload.name}-{digest}-seed{seed}.npz")
    handle, temporary = tempfile.mkstemp(suffix=".npz", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **contents)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


@dataclasses.dataclass(frozen=True)
class _ReferenceCheck:
    """What a runner worker needs to feed and check a kernel; small, so it is cheap to pickle per candidate."""

    reference_path: str
    workload_json: str

    def load(self, dtypes: Sequence[str]) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
        """The arguments (one per dtype) and the expected outputs by argument index."""
        data = _reference_arrays(self.reference_path)
        arrays = [_restore_dtype(data[f"arg{index}"], dtype) for index, dtype in enumerate(dtypes)]
        expected = {int(name[len("expected") :]): data[name] for name in data if name.startswith("expected")}
        return arrays, {index: _restore_dtype(array, dtypes[index]) for index, array in expected.items()}

    @property
    def workload(self) -> Workload:
        return _workload_from_json(self.workload_json)


@functools.lru_cache(maxsize=4)
def _reference_arrays(path: str) -> dict[str, np.ndarray]:
    """A reference file's arrays, read once per worker process (its name holds the workload's hash and seed,
    and it is written once, by rename). Callers copy them to the device and never write to them."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


@functools.lru_cache(maxsize=4)
def _workload_from_json(text: str) -> Workload:
    """The runner's worker process lives across candidates; rebuild the workload once, not per kernel."""
    return Workload.from_json(json.loads(text))


def _restore_dtype(array: np.ndarray, dtype: str) -> np.ndarray:
    """``np.savez`` stores ml_dtypes arrays (bfloat16, float8) as raw void; view them as their type again."""
    if array.dtype.kind != "V":
        return array
    import ml_dtypes  # a TVM dependency

    return array.view(getattr(ml_dtypes, dtype))


def _alloc_reference_args(check: _ReferenceCheck, device: Any, args_info: Any, alloc_repeat: int) -> list:
    """``f_alloc_argument``: the workload's inputs (outputs zeroed) on ``device``, ``alloc_repeat`` copies."""
    arrays, _ = check.load([info[1] for info in args_info])
    for index, (info, array) in enumerate(zip(args_info, arrays)):
        if list(info[2]) != list(array.shape):
            raise ValueError(f"argument {index}: the kernel takes shape {list(info[2])}, the reference {array.shape}")
    return [[tvm.runtime.tensor(array, device) for array in arrays] for _ in range(alloc_repeat)]


def _alloc_reference_args_rpc(check: _ReferenceCheck, _session: Any, device: Any, args_info: Any, repeat: int) -> list:
    return _alloc_reference_args(check, device, args_info, repeat)


def _check_then_time(
    check: _ReferenceCheck, rt_mod: Any, device: Any, config: EvaluatorConfig, args: list,
    slower_than_s: float | None = None,
) -> list:
    """``f_run_evaluator``: run once on the reference inputs and compare, then time as TVM does.

    A brief timing (``ESTIMATE_MS``) comes first and sizes the full one. With ``slower_than_s`` (set by a
    search's ``Screen``), a kernel whose brief time is above it is reported with that time alone: it cannot be
    the best, and the cost model only needs its rank."""
    workload = check.workload
    first = args[0]
    _, expected = check.load([spec.dtype for spec in workload.args])
    rt_mod[rt_mod.entry_name](*first)
    device.sync()
    rtol, atol = workload.tolerance
    failures = []
    for position, index in enumerate(workload.outputs):
        comparison = workload.compare([first[index].numpy()], [expected[index]])
        if not comparison.ok:
            failures.append(
                f"wrong result: output {position} ({workload.args[index].name}) max abs error "
                f"{comparison.max_abs_error:.3e} > atol {atol:.1e} (rtol {rtol:.1e}, "
                f"max rel error {comparison.max_rel_error:.3e})"
            )
    if failures:
        raise WrongResultError("; ".join(failures))
    per_call_s = _seconds_per_call(rt_mod, device, first)
    if slower_than_s is not None and per_call_s > slower_than_s:
        return [per_call_s]
    return run_evaluator_common(rt_mod, device, _sized(config, per_call_s), args)


ESTIMATE_MS = 2  # the brief timing: calls in one batch of at least this long, after a warm-up call


def _seconds_per_call(rt_mod: Any, device: Any, args: list) -> float:
    """A warm estimate of one call, timed by TVM's evaluator (in C++: no Python call overhead in it, which
    matters when the estimate is reported for a kernel of a few microseconds). A freshly loaded module's first
    calls are slower (page faults, the thread pool), so two calls run before it."""
    func = rt_mod[rt_mod.entry_name]
    for _ in range(2):
        func(*args)
    device.sync()
    evaluator = rt_mod.time_evaluator(rt_mod.entry_name, device, number=1, repeat=1, min_repeat_ms=ESTIMATE_MS)
    return float(evaluator(*args).results[0])


def _sized(config: EvaluatorConfig, per_call_s: float) -> EvaluatorConfig:
    """``config`` with ``number`` large enough that one batch of calls lasts ``min_repeat_ms`` (with a margin).

    TVM's time evaluator starts from ``number`` (3) and, while a batch is shorter than ``min_repeat_ms``, grows it
    from the last batch's time and runs again. Sized by 3 cold calls, the first grown batch of a fast kernel
    often fell just short once its caches were warm, and a second, 1.6x longer one followed: a 40 µs kernel took
    55 to 131 ms to time at ``min_repeat_ms=50``. The same measurement (each batch's mean, batches of at least
    ``min_repeat_ms``), in one batch."""
    if config.min_repeat_ms <= 0 or per_call_s <= 0:
        return config
    wanted = int(1.25 * config.min_repeat_ms / 1e3 / per_call_s) + 1
    if wanted <= config.number:
        return config
    return EvaluatorConfig(
        number=wanted, repeat=config.repeat, min_repeat_ms=config.min_repeat_ms,
        enable_cpu_cache_flush=config.enable_cpu_cache_flush,
    )


def _check_then_time_rpc(check: _ReferenceCheck, _session: Any, rt_mod: Any, device: Any, config: Any, args: list):
    return _check_then_time(check, rt_mod, device, config, args)


SCREEN_FACTOR = 1.5


class Screen:
    """Which candidates of a search get the full timing: those whose brief timing is within ``factor`` of the best
    latency seen so far (in this session, or given as ``best_s`` from earlier ones).

    A candidate above the cutoff is reported with its brief timing (``ESTIMATE_MS`` of calls), which ranks it
    among the slow ones as well as the full window would, and saves that window (``min_repeat_ms`` and more per
    candidate; in the searches of a 1,000-trial MLP run 47 % of the candidates were twice as slow as the best
    before them, in an encoder layer's beam search 15 %). ``screened`` counts them,
    and so does ``tally.screened`` when a ``tally`` is given (a search's ``Spent``).
    """

    def __init__(self, factor: float = SCREEN_FACTOR, best_s: float | None = None, tally: Any = None) -> None:
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 1:
            raise ValueError(f"Screen factor must be a number above 1 (e.g. 1.5), got {factor!r}")
        self.factor = float(factor)
        self.best_s = best_s
        self.screened = 0
        self.seen = 0
        self.tally = tally

    def cutoff_s(self) -> float | None:
        return None if self.best_s is None else self.factor * self.best_s

    def saw(self, seconds: Sequence[float]) -> None:
        """A candidate's reported latencies (one per repeat)."""
        latency = statistics.median(seconds)
        cutoff = self.cutoff_s()
        self.seen += 1
        if cutoff is not None and latency > cutoff:
            self.screened += 1
            if self.tally is not None:
                self.tally.screened += 1
        if self.best_s is None or latency < self.best_s:
            self.best_s = latency

    def __repr__(self) -> str:
        return f"Screen(factor={self.factor}, best_s={self.best_s}, screened {self.screened} of {self.seen})"


def make_runner(
    workload: Workload,
    *,
    check_dir: str | os.PathLike | None,
    rpc: RPCSettings | None = None,
    evaluator: EvaluatorConfig | None = None,
    timeout_sec: float = 60,
    check: bool = True,
    seed: int = 0,
    workers: Workers | None = None,
    screen: Screen | None = None,
) -> ms.runner.Runner:
    """A MetaSchedule runner whose every measurement also checks the kernel's outputs.

    Parameters
    ----------
    workload
        What the candidates compute: its inputs for ``seed`` feed every kernel, its reference is the truth.
    check_dir
        Folder for the reference ``.npz`` (written now, read by the workers). Only None when ``check=False``.
    rpc
        Measure on the server an RPC tracker hands out (the check runs on this machine, on outputs copied
        back); None measures locally.
    evaluator
        How to time (TVM's ``EvaluatorConfig``); default ``SEARCH_EVALUATOR``.
    timeout_sec
        Per-candidate limit of the local runner. With ``rpc`` the limit is ``rpc.session_timeout_sec``.
    check
        False: TVM's default hooks (random inputs, no comparison).
    workers
        Measure in these ``Workers``' runner process (kept across searches) instead of a new ``LocalRunner``'s;
        their ``run_timeout_s`` is then the limit. Ignored with ``rpc``.
    screen
        Time in full only the candidates this ``Screen`` lets through (needs ``workers`` and ``check``; a search
        passes one, ``measure`` does not).
    """
    evaluator = SEARCH_EVALUATOR if evaluator is None else evaluator
    _check_options(evaluator, rpc)
    hooks: dict[str, Any] = {}
    if check:
        if check_dir is None:
            raise ValueError("make_runner(check=True) needs check_dir, a folder for the reference outputs")
        reference = _ReferenceCheck(
            write_reference(workload, check_dir, seed=seed), json.dumps(workload.to_json(), sort_keys=True)
        )
        if rpc is None:
            hooks = dict(
                f_alloc_argument=functools.partial(_alloc_reference_args, reference),
                f_run_evaluator=functools.partial(_check_then_time, reference),
            )
        else:
            hooks = dict(
                f_alloc_argument=functools.partial(_alloc_reference_args_rpc, reference),
                f_run_evaluator=functools.partial(_check_then_time_rpc, reference),
            )
    if screen is not None and (rpc is not None or workers is None or not check):
        raise ValueError("make_runner(screen=...) measures in Workers with the reference check; pass workers=, "
                         "check=True and no rpc, or screen=None")
    if rpc is None and workers is not None:
        return workers.runner(evaluator, screen=screen, **hooks)
    if rpc is None:
        return ms.runner.LocalRunner(timeout_sec=timeout_sec, evaluator_config=evaluator, **hooks)
    return ms.runner.RPCRunner(rpc_config=rpc.to_config(), evaluator_config=evaluator, max_workers=1, **hooks)


def _check_options(evaluator: Any, rpc: Any) -> None:
    if not isinstance(evaluator, EvaluatorConfig):
        raise TypeError(f"evaluator must be a ms.runner.EvaluatorConfig or None, got {type(evaluator).__name__}")
    if rpc is not None and not isinstance(rpc, RPCSettings):
        raise TypeError(f"rpc must be an RPCSettings or None, got {type(rpc).__name__}")


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One candidate's outcome: latencies in seconds (one per repeat) or the build/run error that stopped it."""

    latency_s: float | None
    latencies: tuple[float, ...] = ()
    gflops: float | None = None
    build_error: str | None = None
    run_error: str | None = None
    max_abs_error: float | None = None  # set only for a wrong result

    @property
    def ok(self) -> bool:
        return self.build_error is None and self.run_error is None and self.latency_s is not None

    @property
    def wrong_result(self) -> bool:
        return self.max_abs_error is not None

    @classmethod
    def from_results(cls, builder_result: Any, runner_result: Any | None, flop: float) -> Measurement:
        """From MetaSchedule's ``BuilderResult`` and ``RunnerResult`` (None when the build failed)."""
        if builder_result.error_msg is not None:
            return cls(None, build_error=str(builder_result.error_msg))
        if runner_result is None or runner_result.error_msg is not None:
            message = "no runner result" if runner_result is None else str(runner_result.error_msg)
            return cls(None, run_error=message, max_abs_error=parse_wrong_result(message))
        latencies = tuple(float(seconds) for seconds in runner_result.run_secs)
        latency = statistics.median(latencies) if latencies else None
        gflops = flop / latency / 1e9 if latency and flop else None
        return cls(latency, latencies, gflops)

    def __repr__(self) -> str:
        if self.build_error is not None:
            return f"Measurement(build error: {error_line(self.build_error)})"
        if self.run_error is not None:
            return f"Measurement(run error: {error_line(self.run_error)})"
        gflops = "" if self.gflops is None else f", {self.gflops:.2f} GFLOPS"
        return f"Measurement({self.latency_s * 1e3:.4g} ms{gflops}, {len(self.latencies)} repeats)"


def measure(
    schedules_or_mods: Any,
    workload: Workload,
    *,
    target: TargetLike = None,
    check: bool = True,
    evaluator: EvaluatorConfig | None = None,
    rpc: RPCSettings | None = None,
    timeout_sec: float = 60,
    rounds: int = 1,
) -> list[Measurement]:
    """Build and run schedules outside a search, checking each against the reference.

    ``schedules_or_mods`` is a ``tvm.s_tir.Schedule``, an ``IRModule`` or a list of them; the result has one
    ``Measurement`` per item, in order. Failures are recorded, not raised. ``evaluator`` defaults to
    ``MEASURE_EVALUATOR`` (three repeats, so ``latency_s`` is a median). ``timeout_sec`` bounds each build
    and each local run. ``rounds`` > 1 builds each once and runs them all in turn that many times, each round
    starting one further along the list: a spell of load from elsewhere then slows every item alike, and each
    ``Measurement`` holds every round's repeats (its ``latency_s`` their median; a round that fails fails it).
    """
    single = isinstance(schedules_or_mods, (tvm.s_tir.Schedule, tvm.IRModule))
    items = [schedules_or_mods] if single else list(schedules_or_mods)
    mods = [_as_ir_module(item, f"measure(): item {position}") for position, item in enumerate(items)]
    evaluator = MEASURE_EVALUATOR if evaluator is None else evaluator
    _check_options(evaluator, rpc)
    check_positive_int("rounds", rounds)
    target = resolve_target(target)
    if not mods:
        return []
    builder_inputs = [ms.builder.BuilderInput(mod, target) for mod in mods]
    cores = min(len(mods), os.cpu_count() or 1)
    with Workers(cores, build_timeout_s=timeout_sec, run_timeout_s=timeout_sec) as workers:
        builder_results = list(make_builder(workers=workers, local=rpc is None).build(builder_inputs))
        built = [index for index, result in enumerate(builder_results) if result.error_msg is None]
        runs: list[list[Any]] = [[] for _ in builder_results]  # each item's runner results, one per round
        try:
            if built:
                with tempfile.TemporaryDirectory(prefix="msexplore-check-") as check_dir:
                    runner = make_runner(
                        workload, check_dir=check_dir, rpc=rpc, evaluator=evaluator, check=check, workers=workers
                    )
                    args_info = ms.arg_info.ArgInfo.from_prim_func(workload.func)
                    device = "cpu" if target.kind.name == "llvm" else target.kind.name
                    try:
                        for round_ in range(rounds):
                            order = built[round_ % len(built):] + built[:round_ % len(built)]
                            inputs = [
                                ms.runner.RunnerInput(builder_results[index].artifact_path, device, args_info)
                                for index in order
                            ]
                            for index, future in zip(order, runner.run(inputs)):
                                runs[index].append(future.result())
                    finally:
                        if rpc is not None:  # an RPCRunner has its own pool
                            runner.pool.shutdown()
        finally:
            for index in built:
                ms.utils.remove_build_dir(builder_results[index].artifact_path)
    return [
        Measurement.from_results(result, _joined(results), workload.flop)
        for result, results in zip(builder_results, runs)
    ]


def _joined(results: list[Any]) -> Any:
    """One runner result from a kernel's several rounds: the first error, else every round's timings."""
    if not results:
        return None
    failed = [result for result in results if result.error_msg is not None]
    if failed:
        return failed[0]
    return ms.runner.RunnerResult(run_secs=[s for result in results for s in result.run_secs], error_msg=None)


def _as_ir_module(item: Any, label: str) -> tvm.IRModule:
    if isinstance(item, tvm.s_tir.Schedule):
        return item.mod
    if isinstance(item, tvm.IRModule):
        return item
    raise TypeError(f"{label} is a {type(item).__name__}; pass a tvm.s_tir.Schedule or an IRModule")


def verify(lib_or_mod: Any, workload: Workload, target: TargetLike = None, *, seed: int = 0) -> Comparison:
    """Run a kernel here on the workload's inputs for ``seed`` and compare its outputs with the reference.

    ``lib_or_mod`` is a compiled ``tvm.runtime.Module`` (``target`` is then ignored), or a scheduled
    ``IRModule`` / ``Schedule`` that is built for ``target`` first (default: the host CPU).
    """
    if isinstance(lib_or_mod, tvm.runtime.Module):
        lib = lib_or_mod
    else:
        lib = tvm.tirx.build(_as_ir_module(lib_or_mod, "verify(): lib_or_mod"), resolve_target(target))
    arrays = workload.make_inputs(seed)
    expected = workload.reference(arrays)
    device = tvm.cpu(0)
    tensors = [tvm.runtime.tensor(array, device) for array in arrays]
    lib[lib.entry_name or "main"](*tensors)
    return workload.compare([tensors[index].numpy() for index in workload.outputs], expected)
