"""Bundles on disk: a folder written whole or not at all (staged beside its destination, then renamed in), with a
manifest of sha256 checksums that a loader verifies before it trusts a file. Kernel bundles (``export``) and model
bundles (``models``) are both written this way.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

__all__ = ["sha256", "new_sibling", "move_into_place", "checksums", "verify_checksums"]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def new_sibling(destination: Path, kind: str) -> Path:
    """An empty hidden folder beside ``destination`` (same file system, so renames are atomic).

    ``os.mkdir`` rather than ``tempfile.mkdtemp``: the bundle keeps the user's umask instead of mode 0700.
    """
    while True:
        candidate = destination.parent / f".{destination.name}.{kind}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue


def move_into_place(staging: Path, destination: Path, overwrite: bool) -> None:
    """Rename the finished folder in; an old bundle is renamed away first and deleted only afterwards."""
    if not destination.exists():
        os.rename(staging, destination)
        return
    if not overwrite:  # appeared while we were building
        raise FileExistsError(f"{destination} already exists; pass overwrite=True to replace it")
    retired = new_sibling(destination, "old")
    os.rename(destination, retired / destination.name)
    try:
        os.rename(staging, destination)
    except BaseException:
        os.rename(retired / destination.name, destination)
        shutil.rmtree(retired, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def checksums(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """``{file name: sha256}`` of every file directly in ``folder`` but those in ``skip``."""
    return {path.name: sha256(path) for path in sorted(folder.iterdir()) if path.is_file() and path.name not in skip}


def verify_checksums(folder: Path, files: Mapping[str, str]) -> None:
    """Raise ``ValueError`` naming the first file that is missing or whose sha256 differs from ``files``."""
    for name, expected in files.items():
        if not (folder / name).is_file():
            raise ValueError(f"{name}: listed in the manifest but missing from {folder}")
        actual = sha256(folder / name)
        if actual != expected:
            raise ValueError(
                f"{name}: checksum mismatch (manifest {expected[:12]}..., file {actual[:12]}...); "
                "the bundle was modified after export"
            )
