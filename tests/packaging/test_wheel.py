"""The wheel ships the browser side of the widgets, and an installed msexplore finds it.

The widgets' ES modules and CSS live in ``widgets/`` at the repository root and are packaged as
``msexplore.widgets`` (see ``[tool.setuptools.package-dir]``): an editable install hides a mistake there, because
the files are read from the checkout. So: build the wheel from a copy of the sources, install it into a fresh
virtualenv, and import it from there. The fresh venv gets the project venv's third-party packages (TVM, numpy,
anywidget...) through a ``.pth`` path line, which does not run the project venv's own ``.pth`` files, so the
editable msexplore stays invisible and only the wheel's copy can be imported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "node_modules")


def build_sources() -> list[str]:
    """What ``pip wheel`` reads, as pyproject.toml names it: itself, the readme, the license files, the packages'
    folders (``msexplore`` and every ``package-dir``, e.g. ``widgets``)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    project, setuptools = config["project"], config["tool"]["setuptools"]
    package_dirs = {name.split(".")[0] for name in setuptools["packages"]} | set(setuptools["package-dir"].values())
    return ["pyproject.toml", project["readme"], *project["license-files"], *sorted(package_dirs)]


def test_the_build_sources_are_what_pyproject_names():
    assert build_sources() == ["pyproject.toml", "README.md", "LICENSE", "msexplore", "widgets"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel`` of a copy of the sources (the checkout gets no build/ or egg-info from it)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in build_sources():
        path = REPO / name
        assert path.exists(), f"pyproject.toml names {name}, which is missing"
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        else:
            shutil.copy(path, src / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-w", str(root / "dist"), "-q"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout}\n{result.stderr}"
    (path,) = (root / "dist").glob("msexplore-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh venv with the wheel installed; returns (its python, its site-packages)."""
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip())
    # Install while the fresh venv sees nothing else: pip then neither skips the wheel as "already satisfied"
    # by the editable install nor goes near the project venv.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"pip install of the wheel failed:\n{result.stdout}\n{result.stderr}"
    project_site = sysconfig.get_paths()["purelib"]  # this venv's: TVM and the other dependencies
    (site / "project-dependencies.pth").write_text(project_site + "\n")
    return python, site


def test_wheel_contains_every_widget_asset(wheel: Path):
    expected = sorted(p.name for p in (REPO / "widgets").iterdir() if p.suffix in (".js", ".css"))
    assert any(n.endswith(".js") for n in expected) and "msexplore.css" in expected
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(
            Path(n).name for n in archive.namelist()
            if n.startswith("msexplore/widgets/") and n.endswith((".js", ".css"))
        )
    assert shipped == expected


def test_wheel_carries_the_license_and_the_readme(wheel: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(license_file) == (REPO / "LICENSE").read_bytes()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode("utf-8")
    assert "License-Expression: Apache-2.0" in text and "License-File: LICENSE" in text
    first_line = (REPO / "README.md").read_text(encoding="utf-8").splitlines()[0]
    assert first_line in text, "the README is the long description"
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert {n.split("/")[0] for n in names} == {"msexplore", f"msexplore-{version}.dist-info"}, "only the package"


def test_installed_package_has_the_assets(installed: tuple[Path, Path]):
    _, site = installed
    folder = site / "msexplore" / "widgets"
    assert sorted(folder.glob("*.js")), f"no .js in {folder}"
    assert sorted(folder.glob("*.css")), f"no .css in {folder}"
    assert (folder / "msexplore.css").is_file()


def test_installed_package_finds_its_assets(installed: tuple[Path, Path], tmp_path: Path):
    python, site = installed
    probe = (
        "import msexplore, msexplore.widgets as w\n"
        "print(msexplore.__file__)\n"
        "print(w.asset('msexplore.css'))\n"
        "import glob, os\n"
        "print(sorted(os.path.basename(p) for p in glob.glob(os.path.join(os.path.dirname(w.__file__), '*.js'))))\n"
    )
    # cwd elsewhere: the checkout must not be importable by accident
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    package, css, scripts = result.stdout.strip().splitlines()[-3:]
    assert Path(package).resolve().is_relative_to(site.resolve()), f"imported {package}, not the wheel's copy"
    assert Path(css).resolve() == (site / "msexplore" / "widgets" / "msexplore.css").resolve()
    assert scripts != "[]", "the installed msexplore.widgets has no .js next to it"
