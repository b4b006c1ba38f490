"""Small things every layer shares: the useful line of an error, plain-JSON values, argument checks.

Core layer: imports TVM and numpy only, so the figures, the UI and the CLI can all use it.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Collection, Mapping
from typing import Any, Literal, TypeVar, overload

import numpy as np
import tvm

__all__ = [
    "error_line",
    "plain_json",
    "check_positive_int",
    "check_non_negative_int",
    "check_int_in_range",
    "check_choice",
    "latency_text",
]

T = TypeVar("T")

# A traceback frame line: Python's and tvm-ffi's 'File "...", line N', older TVM's "0: fn" and "at file.cc:42".
_FRAME = re.compile(r'File "|\d+:\s|at \S+:\d+$')
_ERROR_MESSAGE = "Error message:"  # a rendered ScheduleError: the IR with diagnostics, then this line


def error_line(
    error: BaseException | str | None,
    *,
    default: str = "",
    prefer: Literal["last", "first"] = "last",
    with_type: bool = False,
    limit: int | None = None,
) -> str:
    """The one line of an error worth showing: the sentence that says what went wrong.

    - a rendered ``ScheduleError`` (the IR, then ``Error message: ...``): that message;
    - a text holding a traceback (a builder's or runner's error, ``traceback.format_exc()``): the exception's line,
      its last line that is not a frame;
    - any other text: its last line (TVM puts the useful sentence last), or its first with ``prefer="first"``
      (a note or a status line, whose headline comes first).

    Parameters
    ----------
    error
        An exception (its ``str``), an error text, or None (also NaN, a missing value in a table).
    default
        What to return when there is no text.
    with_type
        For an exception: start the line with its type name, ``"ZeroDivisionError: division by zero"``
        (not twice when the line already names it); the type name alone when there is no text.
    limit
        The most characters to return; a longer line ends in ``"…"``.
    """
    kind = type(error).__name__ if with_type and isinstance(error, BaseException) else None
    text = "" if error is None or (isinstance(error, float) and math.isnan(error)) else str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = _useful_line(lines, prefer)
    if kind is not None:
        line = re.sub(rf"^(?:[\w.]+\.)?{re.escape(kind)}:\s*", "", line)  # "tvm.error.InternalError: x" -> "x"
        line = f"{kind}: {line}" if line else kind
    if not line:
        return default
    return line if limit is None or len(line) <= limit else line[: limit - 1] + "…"


def _useful_line(lines: list[str], prefer: str) -> str:
    if not lines:
        return ""
    message = next((line for line in reversed(lines) if line.startswith(_ERROR_MESSAGE)), None)
    if message is not None:
        return message[len(_ERROR_MESSAGE):].strip()
    if prefer == "first" and not any(line.startswith("Traceback") for line in lines):
        return lines[0]
    return next((line for line in reversed(lines) if not _FRAME.match(line)), lines[-1])


def plain_json(value: Any) -> Any:
    """``value`` as plain JSON values, safe to ``json.dumps`` and to compare.

    TVM's IntImm/FloatImm become numbers, its String/Array/Map str/list/dict; numpy scalars and arrays become
    Python numbers and lists; tuples and other sequences lists; sets sorted lists; paths and mapping keys
    strings; dates ISO text; NaN, infinities and pandas' NA/NaT None (JSON has no NaN). Anything else becomes
    its ``str``.
    """
    if value is None or isinstance(value, bool):
        return value
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if isinstance(value, str):
        return str(value)  # tvm_ffi String is a str subclass
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (tvm.tirx.IntImm, tvm.tirx.FloatImm)):
        return plain_json(value.value)
    if isinstance(value, np.generic):
        return plain_json(value.item())
    if isinstance(value, np.ndarray):
        return plain_json(value.tolist())
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "isoformat"):  # datetime, date, pandas Timestamp
        return value.isoformat()
    if isinstance(value, Mapping) or hasattr(value, "items"):  # dict, tvm Map
        return {_key(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        items = [plain_json(item) for item in value]
        try:
            return sorted(items)
        except TypeError:  # mixed types: sort by their text
            return sorted(items, key=repr)
    try:
        return [plain_json(item) for item in value]  # list, tuple, tvm Array, ...
    except TypeError:  # not iterable
        return str(value)


def _key(key: Any) -> str:
    key = plain_json(key)
    return key if isinstance(key, str) else str(key)


# ---- argument checks: ValueError naming the argument, what it accepts, and what it got ----
@overload
def check_positive_int(name: str, value: Any, *, or_none: Literal[False] = False) -> int: ...


@overload
def check_positive_int(name: str, value: Any, *, or_none: bool) -> int | None: ...


def check_positive_int(name: str, value: Any, *, or_none: bool = False) -> int | None:
    """``value`` as an int, or ValueError ``"<name> must be a positive integer, got <value>"``.

    With ``or_none``, None is accepted too (and returned), and the message says so.
    """
    if or_none and value is None:
        return None
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer{' or None' if or_none else ''}, got {value!r}")
    return int(value)


def check_non_negative_int(name: str, value: Any) -> int:
    """``value`` as an int, or ValueError ``"<name> must be a non-negative integer, got <value>"``."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def check_int_in_range(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int, or ValueError ``"<name> must be an integer in <low>..<high>, got <value>"`` (inclusive)."""
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    return int(value)


def check_choice(name: str, value: T, choices: Collection[Any]) -> T:
    """``value`` if it is one of ``choices``, or ValueError ``"<name> must be one of [...], got <value>"``."""
    try:
        ok = value in choices
    except TypeError:  # unhashable value against a set or dict
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _is_int(value: Any) -> bool:
    """An integer (Python's or numpy's), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def latency_text(seconds: float | None) -> str:
    """A latency in the unit that shows it: ``"2.500 s"``, ``"1.011 ms"``, ``"7.4 µs"``; ``"–"`` for none."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} µs"
