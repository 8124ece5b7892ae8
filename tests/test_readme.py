"""The README is what a first visit needs: the two commands, the usage, and the way into the docs.

What it used to hold in full (options, stores, deploying, security, benchmarks) lives in docs/,
where tests/test_docs.py checks it against the code and runs every sample, the README's too.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"


def test_quick_start_comes_first() -> None:
    """The first code block is the two commands, and the Makefile has both targets."""
    first = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first is not None
    assert [line.split()[:2] for line in first.group(1).splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("run", "test", "lint", "docs"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no '{target}' target"


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run calls make test, the README's second command, and builds the docs."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in ("make lint", "make test", "make docs", "make dist"):
        assert re.search(rf"^{command}$", ci, re.M), f".ci/run does not run {command}"


def test_readme_shows_install_and_usage_and_stays_short() -> None:
    """The README has the install line, one usage sample, and no chapters the docs hold."""
    headings = re.findall(r"^## (.+)$", README, re.M)
    assert headings == ["Install", "Usage", "Documentation"], headings
    assert "pip install sessions-wsgi" in README
    assert len(re.findall(r"```python\n", README)) == 1
    assert len(README.splitlines()) < 100, "the README grew: move the new section into docs/"


def test_readme_links_into_every_docs_page() -> None:
    """Each link into docs/ resolves, and every page of the site is linked from the README."""
    links = set(re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", README))
    missing = sorted(link for link in links if not (ROOT / link).is_file())
    assert not missing, f"the README links to pages that do not exist: {missing}"
    pages = {
        p.relative_to(ROOT).as_posix()
        for p in [*DOCS.rglob("*.md"), *DOCS.rglob("*.rst")]
        if "_build" not in p.parts
    }
    unlinked = sorted(pages - links - {"docs/changelog.md"})  # the changelog is CHANGES.md
    assert not unlinked, f"the README does not link to {unlinked}"
    for name in ("CHANGES.md", "LICENSE"):
        assert f"]({name})" in README and (ROOT / name).is_file()
