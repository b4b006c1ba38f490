"""The guided notebooks are edited as text: each ``notebooks/NN_name.ipynb`` (what users open, committed without
outputs) is paired by jupytext with ``notebooks/NN_name.py`` (py:percent, what reviews diff and ruff lints).
These checks fail when the two sides of a pair drift apart, and say the command that re-syncs them.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
FORMATS = "ipynb,py:percent"
STEMS = sorted({p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")} | {p.stem for p in NOTEBOOK_DIR.glob("*.py")})
RESYNC = (
    "re-sync with `make notebooks` (that is `.venv/bin/jupytext --sync notebooks/*.py`: the newer file of each "
    "pair wins, then outputs are cleared); to take the .py as the source whatever the timestamps, "
    "`.venv/bin/jupytext --to ipynb --update notebooks/{stem}.py`"
)


def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    """What must agree between the two sides: each cell's type, source and tags."""
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def first_difference(ipynb: list, py: list) -> str:
    """The first cell that differs, as a short unified diff (``.ipynb`` side first)."""
    for index, (a, b) in enumerate(zip(ipynb, py)):
        if a != b:
            head = f"cell {index}: .ipynb {a[0]} {a[2]} vs .py {b[0]} {b[2]}\n"
            lines = difflib.unified_diff(a[1].splitlines(), b[1].splitlines(), ".ipynb", ".py", lineterm="", n=1)
            return head + "\n".join(list(lines)[:30])
    return f".ipynb has {len(ipynb)} cells, .py has {len(py)}"


def test_every_notebook_has_its_source():
    assert STEMS, f"no notebooks found in {NOTEBOOK_DIR}"
    for stem in STEMS:
        ipynb, py = NOTEBOOK_DIR / f"{stem}.ipynb", NOTEBOOK_DIR / f"{stem}.py"
        assert ipynb.exists() and py.exists(), (
            f"notebooks/{stem}: {'.ipynb' if ipynb.exists() else '.py'} only. Every .py in notebooks/ is a "
            f"notebook source paired with its .ipynb: pair it with "
            f"`.venv/bin/jupytext --set-formats {FORMATS} notebooks/{stem}.{'ipynb' if ipynb.exists() else 'py'}`"
        )


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_matches_its_source(stem: str):
    ipynb, py = NOTEBOOK_DIR / f"{stem}.ipynb", NOTEBOOK_DIR / f"{stem}.py"
    if not (ipynb.exists() and py.exists()):
        pytest.skip("unpaired: test_every_notebook_has_its_source says how to pair it")
    nb = nbformat.read(ipynb, as_version=4)
    source = jupytext.read(py)
    for side, book in ((".ipynb metadata", nb), (".py header", source)):
        formats = book.metadata.get("jupytext", {}).get("formats")
        assert formats == FORMATS, (
            f"notebooks/{stem}: the {side} pairs {formats!r}, not {FORMATS!r}: "
            f"`.venv/bin/jupytext --set-formats {FORMATS} notebooks/{stem}.py`"
        )
    expected, actual = cells(nb), cells(source)
    assert expected == actual, (
        f"notebooks/{stem}.ipynb and .py differ; {RESYNC.format(stem=stem)}\n{first_difference(expected, actual)}"
    )
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"notebooks/{stem}.ipynb cell {index} was saved with outputs; the notebooks are committed without "
                f"them: `make notebooks` (or `.venv/bin/jupyter nbconvert --clear-output --inplace "
                f"notebooks/{stem}.ipynb`)"
            )
    budget = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(budget) == 1 and budget[0].cell_type == "code", (
        f"notebooks/{stem}: one code cell tagged 'parameters' (the budget the tests shrink), found {len(budget)}"
    )


def test_notebook_sources_lint():
    """``ruff check notebooks/`` with the rules of pyproject.toml's ``[tool.ruff]``."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "notebooks/"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, (
        f"ruff check notebooks/ failed (fix the .py, then `make notebooks`):\n{result.stdout}{result.stderr}"
    )
