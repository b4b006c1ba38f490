"""Browser side of msexplore's widgets: ES modules and CSS that anywidget loads (shipped in the wheel)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def asset(name: str) -> Path:
    """Path of a widget asset (``code_view.js``, ``msexplore.css``, ...), checked to exist."""
    path = Path(str(resources.files(__name__) / name))
    if not path.is_file():
        raise FileNotFoundError(f"widget asset {name!r} is missing from {path.parent}")
    return path
