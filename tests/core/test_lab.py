"""``msexplore lab``: the command it runs and the errors it gives, without starting JupyterLab.

(tests/browser/test_jupyterlab.py starts it for real and drives it with Chromium.)
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import sys
from pathlib import Path

from msexplore import lab


def run(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    lab.add_lab_parser(commands)
    args = parser.parse_args(["lab", *argv])
    out, err = io.StringIO(), io.StringIO()
    return args.handler(args, out, err), out.getvalue(), err.getvalue()


def test_print_command_binds_localhost_with_the_token_and_no_browser(tmp_path: Path):
    code, out, _ = run([str(tmp_path), "--port", "18999", "--token", "abc123", "--print-command"])
    assert code == 0
    assert "http://127.0.0.1:18999/lab?token=abc123" in out
    command = out.strip().splitlines()[-1]
    assert command.startswith(f"{sys.executable} -m jupyterlab ")
    for part in (f"--ServerApp.root_dir={tmp_path.resolve()}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=18999",
                 "--ServerApp.port_retries=0", "--IdentityProvider.token=abc123", "--no-browser"):
        assert part in command


def test_a_fresh_random_token_each_time(tmp_path: Path):
    tokens = {run([str(tmp_path), "--print-command"])[1].split("token=")[1].split()[0] for _ in range(2)}
    assert len(tokens) == 2 and all(len(t) >= 32 for t in tokens)


def test_default_folder_is_the_repository_notebooks():
    assert lab.default_folder() == Path(__file__).resolve().parents[2] / "notebooks"


def test_bad_folder_and_busy_port_are_usage_errors(tmp_path: Path):
    code, _, err = run([str(tmp_path / "missing"), "--print-command"])
    assert code == 2 and "is not a folder" in err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code, _, err = run([str(tmp_path), "--port", str(port), "--print-command"])
    assert code == 2 and f"port {port}" in err and "in use" in err


def test_standalone_entry_point(tmp_path: Path, capsys):
    assert lab.lab([str(tmp_path), "--print-command", "--jupyter-arg=--ServerApp.xsrf_cookies=False"]) == 0
    assert "--ServerApp.xsrf_cookies=False" in capsys.readouterr().out
    assert lab.lab(["--port", "0"]) == 2  # argparse rejects it: usage error, not an exception


def test_the_notebooks_kernel_is_this_python(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", "/elsewhere")
    env = lab._environment(tmp_path)
    assert env["JUPYTER_PATH"].split(":") == [str(tmp_path), "/elsewhere"]
    spec = json.loads((tmp_path / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][:3] == [sys.executable, "-m", "ipykernel_launcher"]
