"""The published metadata and the built sdist and wheel hold what a user installs, and no more."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import wsgisession

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
NAME = PROJECT["name"]
#: The extras a user may install: store drivers and framework integrations, nothing internal.
PUBLIC_EXTRAS = {"redis", "postgres", "cookie", "flask", "django", "pyramid"}
#: Where install hints are written for users: the package, the README, the docs, the benchmarks.
HINT_FILES = [
    *sorted((ROOT / "wsgisession").rglob("*.py")),
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts),
    *sorted((ROOT / "benchmarks").rglob("*.py")),
    *sorted((ROOT / "examples").rglob("*.py")),
]


def test_the_version_is_written_once_and_dated_in_the_changelog() -> None:
    """The version comes from wsgisession.__version__, which CHANGES.md dates as a release."""
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "wsgisession.__version__"
    changes = (ROOT / "CHANGES.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[?([^\]\s]+)\]?(?: - (\d{4}-\d{2}-\d{2}))?$", changes, re.M)
    assert headings[0] == ("Unreleased", ""), "CHANGES.md starts with its Unreleased section"
    released = {version: date for version, date in headings[1:]}
    assert released.get(wsgisession.__version__), (
        f"CHANGES.md has no dated section for {wsgisession.__version__}: "
        f"add '## [{wsgisession.__version__}] - YYYY-MM-DD'"
    )
    setup_py = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert "version" not in setup_py and "setup()" in setup_py, "setup.py stays a bare shim"


def test_only_user_extras_are_published() -> None:
    """The extras are the store drivers and one per integration; internal groups are not extras."""
    extras = set(PROJECT["optional-dependencies"])
    assert extras == PUBLIC_EXTRAS
    groups = set(PYPROJECT["dependency-groups"])
    assert {"test", "dev", "docs", "dist", "bench"} <= groups
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for group in ("docs", "dist", "bench"):
        assert f"--group {group}" in makefile, f"the Makefile never installs the {group} group"


def test_every_integration_has_its_extra_and_classifier() -> None:
    """Each module of wsgisession.integrations is an extra and a Framework classifier."""
    framework = {"flask": "Flask", "django": "Django", "pyramid": "Pyramid"}
    folder = ROOT / "wsgisession" / "integrations"
    modules = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    for name in modules | set(framework):
        assert name in PROJECT["optional-dependencies"], f"no extra for the {name} integration"
        assert f"Framework :: {framework[name]}" in PROJECT["classifiers"]


def test_classifiers_are_known_to_the_package_index() -> None:
    """Every classifier is one the package index accepts, and the typed marker is there."""
    from trove_classifiers import classifiers

    unknown = sorted(set(PROJECT["classifiers"]) - classifiers)
    assert not unknown, f"the package index does not know these classifiers: {unknown}"
    assert "Typing :: Typed" in PROJECT["classifiers"]
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")], (
        "the license is the SPDX expression in `license`; a License classifier conflicts with it"
    )
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")


def test_install_hints_name_this_distribution_and_its_extras() -> None:
    """Every `pip install NAME[extra]` users are told installs this project with a real extra."""
    hint = re.compile(r"pip install\s+['\"]?([A-Za-z0-9_.-]+)\[([\w,]+)\]")
    seen = 0
    for path in HINT_FILES:
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        # the other project's name, as a distribution with extras, anywhere
        assert not re.search(r"\bwsgisession\[", text), (
            f"{where} names the distribution wsgisession[...]; it is {NAME}[...]"
        )
        for name, extras in hint.findall(text):
            seen += 1
            assert name == NAME, f"{where}: `pip install {name}[...]` should name {NAME}"
            assert set(extras.split(",")) <= PUBLIC_EXTRAS, f"{where}: unknown extra {extras}"
    assert seen >= 5


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sdist and the wheel, built from a copy of the tree (the wheel from the sdist)."""
    work = tmp_path_factory.mktemp("build")
    tree = work / "tree"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "_build", "*.egg-info", "__pycache__", ".*_cache",
        ".hypothesis", "*.db", "*.db-*",
    )  # fmt: skip
    shutil.copytree(ROOT, tree, ignore=ignore)
    out = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(tree)],
        check=True,
        capture_output=True,
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def test_wheel_holds_the_package_its_data_and_the_license(built: tuple[Path, Path]) -> None:
    """The wheel has every module, py.typed, the stores' Lua and SQL files and the LICENSE."""
    _, wheel = built
    assert wheel.name.startswith(f"sessions_wsgi-{wsgisession.__version__}-py3-none-any")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "wsgisession"
    wanted = {
        p.relative_to(ROOT).as_posix()
        for pattern in ("*.py", "py.typed", "*.lua", "*.sql")
        for p in package.rglob(pattern)
        if "__pycache__" not in p.parts
    }
    missing = sorted(wanted - names)
    assert not missing, f"the wheel lacks {missing}"
    info = f"sessions_wsgi-{wsgisession.__version__}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "examples")]
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "License-Expression: MIT" in metadata
    assert "Classifier: Typing :: Typed" in metadata
    assert "Provides-Extra: test" not in metadata and "Provides-Extra: dev" not in metadata
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert "wsgisession = wsgisession.cli:main" in entry_points


def test_sdist_holds_the_sources_docs_and_examples_but_no_tests(built: tuple[Path, Path]) -> None:
    """The sdist ships the package, LICENSE, CHANGES.md, the docs and the examples; no tests."""
    sdist, _ = built
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in (
        "LICENSE", "README.md", "CHANGES.md", "pyproject.toml", "setup.py",
        "wsgisession/py.typed", "wsgisession/testing.py", "docs/conf.py", "docs/index.md",
        "examples/counter.py",
    ):  # fmt: skip
        assert needed in names, f"the sdist lacks {needed}"
    # No test suite: it needs servers and the whole tests/ tree (docs/contributing.md says why).
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/_build"))]
