"""The pieces every ``msexplore`` subcommand shares: exit codes, the two errors ``main`` reports, argument parsing,
the checks of the output folders, waiting on a search (Ctrl-C stops it cooperatively), JSON output and the best
candidate's text."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

from msexplore.common import error_line, plain_json
from msexplore.modules import resolve_modules

EXIT_OK, EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 130


# ---- errors ----
class UsageError(Exception):
    """Bad input: reported as one line on stderr, exit code 2."""


class SearchFailed(Exception):
    """The search failed or found nothing valid: reported on stderr, exit code 3."""


@contextlib.contextmanager
def bad_input(what: str = "") -> Iterator[None]:
    """The library raises ValueError/TypeError (and FileExistsError) for arguments it rejects: that is bad input."""
    try:
        yield
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as err:
        raise UsageError(f"{what}{err}") from err


def report(args: argparse.Namespace, error: Exception, err: TextIO) -> None:
    """``msexplore COMMAND: error: ...`` on ``err``, after the traceback with ``--debug``."""
    if args.debug:
        traceback.print_exception(error.__cause__ or error, file=err)
    print(f"msexplore {args.command}: error: {error}", file=err)


def short_error(error: BaseException | str | None) -> str:
    """An error's useful line as the CLI prints it: one line, at most 300 characters (an exception's with its type)."""
    return error_line(error, default="no error text", with_type=True, limit=300)


# ---- arguments ----
def positive(text: str) -> int:
    """argparse ``type`` of the counts (``--trials``, ``--top``, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def screen_factor(text: str) -> float | None:
    """argparse ``type`` of ``--screen``: a factor above 1, or ``none`` (time every candidate in full)."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a factor above 1 (e.g. 1.5) or 'none', got {text!r}") from None
    if not value > 1:
        raise argparse.ArgumentTypeError(f"expected a factor above 1 (e.g. 1.5) or 'none', got {text}")
    return value


SCREEN_HELP = ("time in full only candidates within this factor of the best so far; slower ones keep their brief "
               "2 ms timing (1.5; 'none': time every candidate in full)")


def parse_shape(items: Sequence[str]) -> dict[str, int]:
    """``["n=512,m=512", "k=64"]`` -> ``{"n": 512, "m": 512, "k": 64}``; UsageError on anything else."""
    return {key: _number(value, "--shape", key, integer=True) for key, value in _pairs(items, "--shape")}


def parse_options(items: Sequence[str]) -> dict[str, int | float]:
    """``["population_size=32,eps_greedy=0.1"]`` -> ``{"population_size": 32, "eps_greedy": 0.1}``."""
    return {key: _number(value, "--strategy-option", key) for key, value in _pairs(items, "--strategy-option")}


def _pairs(items: Sequence[str], flag: str) -> Iterator[tuple[str, str]]:
    for item in items:
        for part in item.split(","):
            key, eq, value = (text.strip() for text in part.partition("="))
            if not eq or not key or not value:
                raise UsageError(f"{flag}: expected KEY=VALUE pairs separated by commas (n=512,m=512), got {item!r}")
            yield key, value


def _number(text: str, flag: str, key: str, *, integer: bool = False) -> int | float:
    try:
        return int(text)
    except ValueError:
        if not integer:
            try:
                return float(text)
            except ValueError:
                pass
    raise UsageError(f"{flag}: {key}={text!r} is not {'an integer' if integer else 'a number'}")


def parse_modules(text: str, target: Any) -> list[str]:
    """``--modules default,x86-vnni`` -> the names, each checked against ``target``; UsageError otherwise."""
    modules = [name.strip() for name in text.split(",") if name.strip()]
    if not modules:
        raise UsageError("--modules: give at least one module name, e.g. 'default'")
    with bad_input("--modules: "):
        resolve_modules(modules, target.kind.name)
    return modules


def check_output_folders(work_dir: str | None, export: str | None, overwrite: bool) -> None:
    """``--work-dir``, ``--export`` and ``--overwrite`` of tune and tune-model, checked before any work."""
    if overwrite and not export:
        raise UsageError("--overwrite applies to --export DIR; give --export too")
    if work_dir and os.path.isfile(work_dir):
        raise UsageError(f"--work-dir {work_dir!r} is a file; give a folder (new or one of an earlier run)")
    if export:
        check_export_target(export, overwrite)


def check_export_target(path: str, overwrite: bool) -> None:
    if os.path.isfile(path):
        raise UsageError(f"export folder {path!r} is a file; choose another path for the kernel bundle")
    if os.path.exists(path) and not overwrite:
        raise UsageError(f"export folder {path!r} already exists; pass --overwrite to replace it")


# ---- waiting on a search ----
def wait_or_stop(run: Any, err: TextIO, *, tick: Callable[[], None] | None = None) -> bool:
    """Wait for the search; on Ctrl-C stop it cooperatively. Returns whether it was interrupted.

    ``tick`` is called every fifth of a second meanwhile (a progress bar's clock).
    """
    interrupted = False
    try:
        _wait_until_done(run, tick)
    except KeyboardInterrupt:
        interrupted = True
        print("\n[msexplore] stopping after the batch being measured; every record is kept "
              "(Ctrl-C again to quit now)", file=err, flush=True)
        run.stop(wait=False)
        try:
            _wait_until_done(run, tick)
        except KeyboardInterrupt:
            print("[msexplore] quitting now; the batch being measured is lost", file=err, flush=True)
            sys.stdout.flush()
            os._exit(EXIT_INTERRUPTED)  # the search thread is inside TVM: a normal exit would abort the process
    run.wait()  # the thread unwinds TVM's tuning objects just after it reports done; exiting sooner aborts
    return interrupted


def _wait_until_done(run: Any, tick: Callable[[], None] | None = None) -> None:
    """Short waits, so Ctrl-C is handled at once.

    Not one ``run.wait()``: on Python 3.11 a KeyboardInterrupt that lands inside ``Thread.join`` marks the running
    thread as finished (CPython's ``_wait_for_tstate_lock``), and nothing waits for it afterwards.
    """
    while not run.wait(0.2).ended:
        if tick is not None:
            tick()


# ---- output ----
def print_json(data: Any, out: TextIO) -> None:
    json.dump(plain_json(data), out, indent=2)
    out.write("\n")


def rows(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame as a list of plain-JSON rows."""
    return plain_json(frame.to_dict(orient="records"))


def target_text(target: Any) -> str:
    """``llvm -mcpu=znver5 -num-cores=2``: the target's kind and the attributes a reader tells machines apart by."""
    attrs = target.attrs
    extra = "".join(f" -{key}={attrs[key]}" for key in ("mcpu", "num-cores") if key in attrs)
    return f"{target.kind.name}{extra}"


# ---- a run's best candidate (tune, show, export) ----
def candidate_json(candidate: Any) -> dict[str, Any] | None:
    if candidate is None:
        return None
    return {
        "trial": candidate.index,
        "latency_s": candidate.latency_s,
        "gflops": candidate.gflops,
        "verified": candidate.verified,
        "confirmed_s": candidate.confirmed_s,
        "decisions": plain_json(candidate.decisions),
    }


def best_text(best: dict[str, Any] | None) -> str:
    """One line of ``candidate_json``'s dict (or of None)."""
    if best is None:
        return "no valid candidate"
    check = "verified" if best["verified"] else "NOT verified (--no-check)"
    confirmed = "" if best.get("confirmed_s") is None else f", confirmed {best['confirmed_s'] * 1e3:.4f} ms"
    return f"trial {best['trial']}, {best['latency_s'] * 1e3:.4f} ms, {best['gflops']:.1f} GFLOPS{confirmed}, {check}"


def no_valid_candidate(run: Any) -> str:
    """Why a run has no best candidate, with the last failure's line."""
    failed = [e for e in run.events if not e.ok]
    if not run.events:
        return f"{run.work_dir} holds no measured candidate"
    reason = f"; e.g. trial {failed[-1].index}: {short_error(failed[-1].error)}" if failed else ""
    return f"no valid candidate among the {len(run.events)} measured in {run.work_dir}{reason}"


def export_best(best: Any, path: str, overwrite: bool) -> Any:
    """``best.export``; a folder in the way is bad input (2), a kernel that fails its check a failure (3)."""
    try:
        return best.export(path, overwrite=overwrite)
    except FileExistsError as error:
        raise UsageError(f"export: {error}") from error
    except (ValueError, TypeError) as error:
        raise SearchFailed(f"export of trial {best.index} failed: {error}") from error
