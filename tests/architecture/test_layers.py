"""The layering is a contract a tool checks, not only a sentence in the design: ``lint-imports`` runs the contracts
of ``[tool.importlinter]`` in pyproject.toml (front ends -> ui -> figures -> core, no plotting or widget library in
the core, no import cycle between sibling modules)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_import_contracts_are_kept():
    done = lint_imports()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout, done.stdout


def test_a_core_module_importing_the_ui_breaks_the_contracts(tmp_path):
    """The contracts can fail: a copy of the package whose core imports a figure and closes a cycle is refused."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(REPO / "msexplore", copy / "msexplore", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    with open(copy / "msexplore" / "schedules.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef _broken():\n    from .figures import plot_search_progress  # noqa: F401\n"
                "    from .sampling import Sample  # noqa: F401\n")
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=copy, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "Layers: front ends -> ui -> figures -> core BROKEN" in done.stdout, done.stdout
    assert "No import cycles between sibling modules (the core's included) BROKEN" in done.stdout, done.stdout
    assert "msexplore.schedules -> msexplore.figures" in done.stdout, done.stdout
