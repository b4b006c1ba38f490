"""``msexplore lab``: JupyterLab on the guided notebooks, bound to 127.0.0.1 with a fresh token.

The server runs with this Python, and so does the notebooks' ``python3`` kernel (a kernelspec written for the
session comes first on ``JUPYTER_PATH``, so a ``python3`` kernel of another Python on the machine cannot shadow
this environment with msexplore and TVM). It prints one URL to open. No lab extension is built: ipywidgets 8,
anywidget and plotly ship prebuilt extensions.
The browser is not opened unless ``--browser`` is given, so the command works on a headless machine over SSH
(forward the port: ``ssh -L 8888:127.0.0.1:8888 host``).

>>> lab(["--port", "8890"])          # blocks until Ctrl-C; returns the server's exit code
>>> lab(["--print-command"])        # only prints the command it would run
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["lab", "add_lab_parser", "run_lab", "default_folder", "lab_command", "lab_url"]

DEFAULT_PORT = 8888
HOST = "127.0.0.1"
EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


def default_folder() -> Path:
    """The repository's ``notebooks/`` next to the package (a source checkout), else the current folder."""
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    return notebooks if notebooks.is_dir() else Path.cwd()


def free_port(start: int = DEFAULT_PORT, *, tries: int = 50) -> int:
    """The first port from ``start`` on that nothing listens on at 127.0.0.1 (an OS-chosen one after ``tries``)."""
    for port in range(start, start + tries):
        if _port_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def lab_url(port: int, token: str, notebook: str | None = None) -> str:
    path = f"lab/tree/{notebook}" if notebook else "lab"
    return f"http://{HOST}:{port}/{path}?token={token}"


def lab_command(folder: str | os.PathLike, *, port: int, token: str, browser: bool = False,
                extra: Sequence[str] = ()) -> list[str]:
    """The ``jupyter lab`` command line: this Python, 127.0.0.1 only, this exact port (no silent retry)."""
    return [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.root_dir={os.fspath(folder)}",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # the printed URL must be the one it serves
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=True" if browser else "--no-browser",
        *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # containers, CI
        *extra,
    ]


def add_lab_parser(subparsers: Any, *, parents: Sequence[argparse.ArgumentParser] = ()) -> argparse.ArgumentParser:
    """Add the ``lab`` subcommand to an ``argparse`` subparsers object (its handler is ``run_lab``)."""
    parser = subparsers.add_parser(
        "lab",
        parents=list(parents),
        help="open JupyterLab on the guided notebooks (127.0.0.1, a fresh token, no browser)",
        description="Start JupyterLab with this environment's Python on FOLDER (default: the repository's "
        "notebooks/), listening on 127.0.0.1 only, with a fresh token in the printed URL. Ctrl-C stops it.",
    )
    _add_arguments(parser)
    parser.set_defaults(handler=run_lab, command="lab")
    return parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", nargs="?", default=None, metavar="FOLDER",
                        help="the folder JupyterLab opens (default: the repository's notebooks/)")
    parser.add_argument("--port", type=_port, default=None,
                        help=f"port on 127.0.0.1 (default: {DEFAULT_PORT}, or the next free one)")
    parser.add_argument("--token", default=None, help="the access token (default: a fresh random one)")
    parser.add_argument("--browser", action="store_true", help="also open a web browser on this machine")
    parser.add_argument("--print-command", action="store_true",
                        help="print the URL and the jupyter command, and exit without starting it")
    parser.add_argument("--jupyter-arg", dest="jupyter_args", action="append", default=[], metavar="ARG",
                        help="passed to `jupyter lab` unchanged (repeatable), "
                             "e.g. --jupyter-arg=--ServerApp.xsrf_cookies=False")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {value}")
    return value


def run_lab(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Start JupyterLab as ``args`` say and wait for it; returns its exit code (130 after Ctrl-C)."""
    out = out or sys.stdout
    err = err or sys.stderr
    folder = Path(args.folder).expanduser() if args.folder else default_folder()
    if not folder.is_dir():
        print(f"msexplore lab: error: {str(folder)!r} is not a folder; give the folder of your notebooks", file=err)
        return EXIT_USAGE
    if args.port is not None and not _port_free(args.port):
        print(f"msexplore lab: error: port {args.port} on {HOST} is in use; pick another with --port or "
              "leave --port out to take the next free one", file=err)
        return EXIT_USAGE
    port = args.port if args.port is not None else free_port()
    token = args.token or secrets.token_hex(24)
    extra = list(getattr(args, "jupyter_args", None) or [])
    command = lab_command(folder.resolve(), port=port, token=token, browser=args.browser, extra=extra)

    print(f"JupyterLab on {folder.resolve()}", file=out)
    print(f"    {lab_url(port, token)}", file=out)
    if args.print_command:
        print(shlex.join(command), file=out)
        return EXIT_OK
    print("(Ctrl-C to stop; for a remote machine: ssh -L {0}:127.0.0.1:{0} HOST, then open the URL)".format(port),
          file=out)
    out.flush()
    kernels = tempfile.mkdtemp(prefix="msexplore-lab-")
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=_environment(Path(kernels)))
        return _wait(process)
    finally:
        shutil.rmtree(kernels, ignore_errors=True)


def _environment(folder: Path) -> dict[str, str]:
    """This environment, with a ``python3`` kernelspec for this Python first on ``JUPYTER_PATH``."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": True},
    }, indent=1))
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(folder), env.get("JUPYTER_PATH", "")) if p)
    return env


def _wait(process: subprocess.Popen) -> int:
    try:
        return process.wait()
    except KeyboardInterrupt:  # Ctrl-C reached both of us; let jupyter shut its kernels down
        try:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=10)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        return EXIT_INTERRUPTED


def lab(argv: Sequence[str] | None = None) -> int:
    """``python -m msexplore.lab [FOLDER] [--port N] [--token T] [--browser] [--jupyter-arg ARG ...]``."""
    parser = argparse.ArgumentParser(prog="python -m msexplore.lab", description=__doc__.split("\n\n")[0])
    _add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    return run_lab(args)


if __name__ == "__main__":
    raise SystemExit(lab())
