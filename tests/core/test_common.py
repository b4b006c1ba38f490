"""The shared small things: an error's useful line (on real TVM and Python errors), plain JSON, argument checks."""

from __future__ import annotations

import datetime
import json
import math
import re
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tvm
from tvm.s_tir import Schedule, Trace
from tvm.s_tir import meta_schedule as ms

import msexplore as mx
from msexplore.common import (
    check_choice,
    check_int_in_range,
    check_non_negative_int,
    check_positive_int,
    error_line,
    latency_text,
    plain_json,
)

ZERO_FACTOR = "All the constant factors are required to be positive. However, the factor at position 0 is 0"


@pytest.fixture(scope="module")
def gmm():
    return mx.workload("GMM", n=32, m=32, k=32)


def raised(action) -> BaseException:
    try:
        action()
    except Exception as err:  # noqa: BLE001 - the test wants whatever TVM raises
        return err
    raise AssertionError("expected an error")


def zero_split(mod, **options):
    sch = Schedule(mod, **options)
    return raised(lambda: sch.split(sch.get_loops(sch.get_sblock("Z"))[1], [0, None]))


# ---- error_line ------------------------------------------------------------------------------------------------


def test_a_rendered_schedule_error_gives_its_error_message_not_the_ir(gmm):
    err = zero_split(gmm.mod)  # the IR with diagnostics, then "Error message: ..."
    assert str(err).startswith("ScheduleError: An error occurred in the schedule primitive 'split'.")
    assert error_line(err) == ZERO_FACTOR
    assert error_line(err, prefer="first") == ZERO_FACTOR
    assert error_line(err, with_type=True) == f"ScheduleError: {ZERO_FACTOR}"
    assert error_line(str(err)) == ZERO_FACTOR


def test_a_fast_rendered_schedule_error_is_its_one_line(gmm):
    err = zero_split(gmm.mod, error_render_level="fast")  # how sampled schedules render (space.fresh_schedule)
    line = ("ScheduleError: All the constant factors are required to be positive. "
            "However, some constant input factor is zero or negative.")
    assert error_line(err) == line and error_line(err, with_type=True) == line


def test_a_multi_line_tvm_message_gives_its_last_sentence_or_its_headline(gmm):
    err = raised(lambda: Trace.apply_json_to_schedule([[["NoSuchKind", [], [], []]], []], Schedule(gmm.mod)))
    assert isinstance(err, ValueError)
    last = "The error is: Check failed: (reg != nullptr) is false: Instruction kind NoSuchKind is not registered"
    assert error_line(err) == last
    assert error_line(err, with_type=True) == f"ValueError: {last}"
    assert error_line(err, prefer="first") == (
        "Each entry of a json instruction should be a tuple [inst_name, inputs, attrs, outputs], "
        'but gets: ("NoSuchKind", (), (), ())'
    )


def test_a_python_traceback_gives_the_exception_line_whichever_line_is_preferred():
    try:
        1 // 0  # noqa: B018
    except ZeroDivisionError:
        text = traceback.format_exc()
    assert text.startswith("Traceback (most recent call last):")
    for prefer in ("last", "first"):
        assert error_line(text, prefer=prefer) == "ZeroDivisionError: integer division or modulo by zero"
    assert error_line("Traceback (most recent call last):\n  File a\nTVMError: nope\n", prefer="first") == (
        "TVMError: nope"
    )
    assert error_line("Traceback ...\nRuntimeError: boom 1", default="no error text") == "RuntimeError: boom 1"


@pytest.mark.slow
def test_a_builder_error_gives_the_exception_after_its_traceback(gmm):
    sch = Schedule(gmm.mod)
    sch.bind(sch.get_loops(sch.get_sblock("Z"))[1], "threadIdx.x")  # schedules fine, LLVM cannot build it
    # a generous timeout: the builder's fresh worker imports TVM first (30 s, the default, ran out under CI's load)
    builder = ms.builder.LocalBuilder(timeout_sec=300)
    (result,) = builder.build([ms.builder.BuilderInput(sch.mod, tvm.target.Target("llvm"))])
    text = str(result.error_msg)
    assert text.startswith("LocalBuilder: An exception occurred\nTraceback (most recent call last):")
    assert error_line(text) == "tvm.error.InternalError: not implemented"
    assert error_line(text, prefer="first") == "tvm.error.InternalError: not implemented"


def test_trailing_frame_lines_are_skipped():
    text = "InternalError: Check failed: n > 0\n  0: tvm::Split\n        at /src/schedule.cc:42\n"
    assert error_line(text) == "InternalError: Check failed: n > 0"
    assert error_line('RuntimeError: boom\n  File "x.py", line 3, in f') == "RuntimeError: boom"


def test_type_name_is_added_once():
    assert error_line(ZeroDivisionError("division by zero"), with_type=True) == "ZeroDivisionError: division by zero"
    assert error_line(RuntimeError("RuntimeError: twice"), with_type=True) == "RuntimeError: twice"
    wrapped = RuntimeError("LocalBuilder: An exception occurred\nTraceback (most recent call last):\n"
                           '  File "b.py", line 1, in f\ntvm.error.RuntimeError: not implemented')
    assert error_line(wrapped, with_type=True) == "RuntimeError: not implemented"
    assert error_line(KeyError(), with_type=True) == "KeyError"
    assert error_line("text, not an exception", with_type=True) == "text, not an exception"


def test_no_text_gives_the_default_and_long_lines_are_cut():
    for nothing in (None, math.nan, "", "  \n \n"):
        assert error_line(nothing) == ""
        assert error_line(nothing, default="no error text") == "no error text"
    assert error_line(RuntimeError(), default="RuntimeError") == "RuntimeError"
    assert error_line("timeout\nmore", prefer="first") == "timeout"
    assert error_line("timeout\nmore") == "more"
    cut = error_line("x" * 500, limit=160)
    assert len(cut) == 160 and cut.endswith("x…")
    assert error_line("x" * 160, limit=160) == "x" * 160


# ---- plain_json ------------------------------------------------------------------------------------------------


def test_a_trace_becomes_plain_json(gmm):
    sch = Schedule(gmm.mod, seed=1)
    loops = sch.get_loops(sch.get_sblock("Z"))
    sch.sample_categorical([16, 64], [0.25, 0.75], decision=1)
    sch.sample_perfect_tile(loops[1], n=2, max_innermost_factor=8, decision=[4, 8])
    raw = sch.trace.as_json()
    assert isinstance(raw[0][2][2][1][0], tvm.tirx.FloatImm)
    data = plain_json(raw)
    assert data == [
        [
            ["GetSBlock", [], ["Z", "main"], ["b0"]],
            ["GetLoops", ["b0"], [], ["l1", "l2", "l3", "l4"]],
            ["SampleCategorical", [], [[16, 64], [0.25, 0.75]], ["v5"]],
            ["SamplePerfectTile", ["l2"], [2, 8], ["v6", "v7"]],
        ],
        [[2, 1], [3, [4, 8]]],
    ]
    assert json.loads(json.dumps(data)) == data
    assert type(data[0][0][2][0]) is str and type(data[0][2][2][1][0]) is float


def test_tvm_values_and_containers():
    target = tvm.target.Target({"kind": "llvm", "num-cores": 2, "mtriple": "x86_64-unknown-linux-gnu",
                                "mcpu": "skylake-avx512"})
    assert plain_json(target.export()) == {
        "kind": "llvm", "tag": "", "keys": ["cpu"], "num-cores": 2,
        "mtriple": "x86_64-unknown-linux-gnu", "mcpu": "skylake-avx512",
    }
    assert plain_json(tvm.runtime.convert({"a": [1, 2], "b": "x"})) == {"a": [1, 2], "b": "x"}
    five, half = plain_json(tvm.tirx.IntImm("int64", 5)), plain_json(tvm.tirx.FloatImm("float32", 0.5))
    assert (five, half) == (5, 0.5) and type(five) is int and type(half) is float


def test_python_and_numpy_values():
    value = {
        1: (np.int64(3), np.float32(0.5), np.bool_(True)),
        "array": np.array([[1, 2], [3, 4]]),
        "missing": [math.nan, math.inf, np.float64("nan"), pd.NA, pd.NaT, None],
        "set": {3, 1, 2},
        "path": Path("/tmp/x"),
        "when": datetime.datetime(2024, 5, 1, 12, 30),
        "stamp": pd.Timestamp("2024-05-01T12:30:00"),
        "object": object,
    }
    assert plain_json(value) == {
        "1": [3, 0.5, True],
        "array": [[1, 2], [3, 4]],
        "missing": [None] * 6,
        "set": [1, 2, 3],
        "path": "/tmp/x",
        "when": "2024-05-01T12:30:00",
        "stamp": "2024-05-01T12:30:00",
        "object": "<class 'object'>",
    }
    assert [type(x) for x in plain_json(value)["1"]] == [int, float, bool]
    rows = pd.DataFrame({"trial": [0, 1], "gflops": [1.5, math.nan]}).to_dict(orient="records")
    assert plain_json(rows) == [{"trial": 0, "gflops": 1.5}, {"trial": 1, "gflops": None}]


# ---- argument checks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, True, 1.0, "3", None])
def test_check_positive_int_rejects_with_the_argument_name(bad):
    with pytest.raises(ValueError, match=rf"^trials must be a positive integer, got {re.escape(repr(bad))}$"):
        check_positive_int("trials", bad)


def test_checks_return_python_ints():
    assert check_positive_int("n", 3) == 3
    assert check_positive_int("threads", None, or_none=True) is None
    with pytest.raises(ValueError, match=r"^threads must be a positive integer or None, got '2'$"):
        check_positive_int("threads", "2", or_none=True)
    with pytest.raises(ValueError, match=r"^threads must be a positive integer, got None$"):
        check_positive_int("threads", None)
    got = check_positive_int("n", np.int64(3))
    assert got == 3 and type(got) is int
    assert check_non_negative_int("seed", 0) == 0
    assert check_int_in_range("port", 1, 1, 65535) == 1 and check_int_in_range("port", 65535, 1, 65535) == 65535


def test_non_negative_and_range_messages():
    with pytest.raises(ValueError, match=r"^seed must be a non-negative integer, got -1$"):
        check_non_negative_int("seed", -1)
    with pytest.raises(ValueError, match=r"^GMM parameter 'n' must be a non-negative integer, got False$"):
        check_non_negative_int("GMM parameter 'n'", False)
    for bad in (0, 65536, True, "80"):
        with pytest.raises(ValueError, match=r"^RPCSettings.port must be an integer in 1..65535, got "):
            check_int_in_range("RPCSettings.port", bad, 1, 65535)


def test_check_choice_names_the_accepted_values():
    assert check_choice("by", "group", ("group", "feature")) == "group"
    with pytest.raises(ValueError, match=r"^by must be one of \['group', 'feature'\], got 'gain'$"):
        check_choice("by", "gain", ("group", "feature"))
    with pytest.raises(ValueError, match=r"^failures must be one of \['skip', 'zero'\], got \[\]$"):
        check_choice("failures", [], {"skip": 0, "zero": 1})  # unhashable, against a dict's keys


def test_a_latency_is_written_in_the_unit_that_shows_it():
    assert [latency_text(s) for s in (2.5, 1.0113e-3, 7.43e-6, None, float("nan"))] == [
        "2.500 s", "1.011 ms", "7.4 µs", "–", "–",
    ]
