"""``_quiet.native_stderr``: what native code writes to file descriptor 2 is caught, reported and logged, and fd 2
is given back as it was, also when the block raises or two threads use it at once."""

from __future__ import annotations

import os
import threading

import pytest

from msexplore._quiet import native_stderr

TVM_LINE = b"[06:16:37] /project/src/tirx/transform/vectorize_loop.cc:1058: Warning: Detect vectorize inside\n"


def test_writes_to_fd_2_are_caught_with_tvms_prefix_removed(tmp_path, capfd):
    log = tmp_path / "native.log"
    with native_stderr(log) as caught:
        os.write(2, TVM_LINE)
        os.write(2, b"[06:18:54] WARNING: /workspace/src/c_api/c_api.cc:1573: Saving model\n")
    assert caught.messages == ["Detect vectorize inside", "Saving model"]
    assert caught.text.startswith("[06:16:37] /project/")
    assert log.read_text() == caught.text  # appended to the run's log
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"  # fd 2 is the terminal's (here: pytest's) again


def test_fd_2_comes_back_when_the_block_raises(capfd):
    before = os.fstat(2).st_ino
    with pytest.raises(RuntimeError, match="boom"), native_stderr() as caught:
        os.write(2, b"caught\n")
        raise RuntimeError("boom")
    assert caught.messages == ["caught"] and os.fstat(2).st_ino == before
    os.write(2, b"shown\n")
    assert capfd.readouterr().err == "shown\n"


def test_two_threads_take_turns(capfd):
    results: dict[int, list[str]] = {}
    entered = threading.Barrier(2)

    def catch(k: int) -> None:
        entered.wait()
        with native_stderr() as caught:
            for _ in range(50):
                os.write(2, f"thread {k}\n".encode())
        results[k] = caught.messages

    threads = [threading.Thread(target=catch, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {0: ["thread 0"] * 50, 1: ["thread 1"] * 50}  # each block restored what it found
    assert capfd.readouterr().err == ""
