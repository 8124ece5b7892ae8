"""Flask-Login's own test suite, run with wsgisession as the session of every Flask app.

The suite comes from Flask-Login's released source distribution of the installed version,
downloaded at test time with pip into a cache folder outside git (tests/support/sdists.py); it
is never part of this repository. Every case that does not pass must be listed in ``KNOWN``
with its reason, and the Flask guide (docs/frameworks/flask.md) lists them too.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.frameworks.conftest import need
from tests.support.sdists import released_source

ROOT = Path(__file__).resolve().parents[2]

#: Flask-Login test cases that do not pass on wsgisession, with the reason (none today).
KNOWN: dict[str, str] = {}


@pytest.fixture(scope="module")
def flask_login_suite() -> Path:
    """The installed Flask-Login's sdist: its tests/ folder and its pytest settings, cached."""
    need("flask_login")
    return released_source(
        "Flask-Login",
        importlib.metadata.version("flask-login"),
        lambda path: path.startswith("tests/") or path in ("setup.cfg", "tox.ini"),
        "tests/test_login.py",
    )


def run_suite(suite: Path, store_url: str, report: Path) -> tuple[int, dict[str, str]]:
    """Run Flask-Login's suite on wsgisession; return how many passed and what did not."""
    opened = report.with_suffix(".opened")
    env = dict(os.environ, WSGISESSION_SUITE_STORE=store_url, WSGISESSION_SUITE_OPENED=str(opened))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(suite / "tests"),
            "-q",
            "-p",
            "tests.frameworks.flask_login_plugin",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(suite),
            "-c",
            str(suite / "setup.cfg"),
            f"--junitxml={report}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    if not report.exists() or not opened.exists():
        raise AssertionError(f"Flask-Login's suite did not run:\n{result.stdout}\n{result.stderr}")
    if int(opened.read_text()) < 100:
        raise AssertionError("Flask-Login's suite ran, but not on wsgisession's sessions")
    passed = 0
    failed: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        problem = next(iter(case.findall("failure") + case.findall("error")), None)
        if problem is not None:
            failed[name] = (problem.get("message") or "")[:300]
        elif case.find("skipped") is None:
            passed += 1
    print(
        f"\nFlask-Login suite on {store_url.split(':')[0]}: {passed} passed, "
        f"{len(failed)} not passing"
    )
    return passed, failed


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_flask_login_suite_passes_on_wsgisession(
    flask_login_suite: Path, kind: str, tmp_path: Path
) -> None:
    """Flask-Login's own tests pass with wsgisession as Flask's session (KNOWN lists the rest)."""
    url = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'suite.db'}"
    passed, failed = run_suite(flask_login_suite, url, tmp_path / "report.xml")
    assert passed >= 100, "Flask-Login's suite ran far fewer tests than it has"
    assert set(failed) == set(KNOWN), f"not passing: {failed}"


def test_the_flask_guide_lists_every_known_case() -> None:
    """Every Flask-Login case that does not pass is named in the Flask guide, with the count."""
    guide = (ROOT / "docs" / "frameworks" / "flask.md").read_text(encoding="utf-8")
    for name in KNOWN:
        assert name.split("::")[-1] in guide
