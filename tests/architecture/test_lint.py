"""Every Python source is linted the same way (pyproject.toml's ``[tool.ruff]``): the library, its tests, the
benchmarks, the examples and the notebooks' py:percent sources."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ruff_check_passes_on_the_whole_repository():
    command = [sys.executable, "-m", "ruff", "check", "--no-cache", "."]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ruff check . failed:\n{done.stdout}{done.stderr}"


def test_the_lint_can_fail(tmp_path):
    """The same command refuses an unused import and an undefined name (so the test above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(REPO / "pyproject.toml"), str(bad)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert "F401" in done.stdout and "F821" in done.stdout, done.stdout
