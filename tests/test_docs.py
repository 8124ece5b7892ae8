"""The documentation stays true to the code: every Python sample runs, and the tables match.

Samples are the ```` ```python ```` blocks of the README and of every page under ``docs/``. A
block runs alone, in a fresh temporary folder, unless an HTML comment right above it says
otherwise (docs/contributing.md lists them): ``<!-- test: continues -->`` runs it after the
block before it, with its names; ``<!-- test: redis -->`` / ``<!-- test: postgres -->`` give it
the test servers in place of the addresses it shows; ``<!-- test: requires MODULE -->`` skips it
until MODULE can be imported.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import shlex
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import wsgisession
from tests.support.servers import (
    drop_postgres_table,
    drop_redis_prefix,
    postgres_table,
    redis_prefix,
)
from wsgisession import SessionMiddleware, Store
from wsgisession.testing import new_key

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: The pages whose samples run: the README and every Markdown page of the site.
PAGES = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]

#: What a server sample shows, and what the test puts in its place.
REDIS_URL = "redis://localhost:6379/0"
REDIS_PREFIX = "myapp:session:"
POSTGRES_DSN = "postgresql://app@db.internal/app"
POSTGRES_TABLE = "myapp_sessions"
MARKS = {"continues", "redis", "postgres", "requires"}

#: Defaults the options table shows as what they mean rather than as the bare value.
SHOWN_AS = {"store": "MemoryStore()"}


@dataclass
class Block:
    """One fenced Python block of a page, with the marks of the comment above it."""

    page: Path
    line: int
    code: str
    marks: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The ```` ```python ```` blocks of *page*, in order."""
    found = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            start = index + 1
            end = lines.index("```", start)
            above = lines[index - 1].strip() if index else ""
            mark = re.fullmatch(r"<!-- test: (.*) -->", above)
            marks = shlex.split(mark.group(1)) if mark else []
            found.append(Block(page, start + 1, "\n".join(lines[start:end]) + "\n", marks))
            index = end
        index += 1
    return found


def chains() -> list[list[Block]]:
    """Each sample with the blocks that continue it: the unit that runs in one namespace."""
    result: list[list[Block]] = []
    for page in PAGES:
        for block in blocks(page):
            if "continues" in block.marks:
                assert result and result[-1][0].page == page, (
                    f"{block.where} continues a block, but none comes before it on the page"
                )
                result[-1].append(block)
            else:
                result.append([block])
    return result


def importable(module: str) -> bool:
    """Whether *module* exists, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def page_text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """The text under the heading ``title`` (any level) up to the next heading of that level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n(.*?)(?=^\1 |\Z)", text, re.M | re.S)
    assert match, f"no section '{title}'"
    return match.group(2)


def table_rows(text: str) -> dict[str, list[str]]:
    """Rows of the markdown tables in *text*, keyed by the first cell without backticks."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    return rows


def shown(value: object) -> str:
    """How a default value is written in the docs: Python, with double-quoted strings."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


# The samples ------------------------------------------------------------------------------


@pytest.mark.parametrize("chain", chains(), ids=lambda chain: chain[0].where)
def test_sample_runs(
    chain: list[Block], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    """The sample runs as written (with the test servers in place of the addresses it shows)."""
    marks = [mark for block in chain for mark in block.marks]
    required = [marks[i + 1] for i, mark in enumerate(marks[:-1]) if mark == "requires"]
    unknown = set(marks) - MARKS - set(required)
    assert not unknown, f"{chain[0].where}: unknown test marks {unknown}; see docs/contributing.md"
    for module in required:
        if not importable(module):
            pytest.skip(f"{chain[0].where} needs {module}, which is not written yet")
    substitutions = {}
    if "redis" in marks:
        url, prefix = str(request.getfixturevalue("redis_url")), redis_prefix()
        substitutions.update({REDIS_URL: url, REDIS_PREFIX: prefix})
        request.addfinalizer(lambda: drop_redis_prefix(url, prefix))
    if "postgres" in marks:
        dsn, table = str(request.getfixturevalue("postgres_dsn")), postgres_table()
        substitutions.update({POSTGRES_DSN: dsn, POSTGRES_TABLE: table})
        request.addfinalizer(lambda: drop_postgres_table(dsn, table))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WSGISESSION_STORE", raising=False)
    monkeypatch.delenv("WSGISESSION_SECRET", raising=False)
    # The sample runs as a module that sys.modules knows, as a user's own module would be
    # (Pyramid's Configurator looks its caller's package up there).
    module = types.ModuleType("docs_sample")
    monkeypatch.setitem(sys.modules, "docs_sample", module)
    namespace: dict[str, Any] = module.__dict__
    try:
        for block in chain:
            code = block.code
            for shown_text, real in substitutions.items():
                code = code.replace(shown_text, real)
            exec(compile(code, block.where, "exec"), namespace)
        stores = [value for value in namespace.values() if isinstance(value, Store)]
        if {"redis", "postgres"} & set(marks):
            assert stores, f"{chain[0].where} needs a server but builds no store"
            for store in stores:  # the address works: the store answers
                assert store.load(new_key(), time.time()) is None
    finally:
        for value in namespace.values():
            if isinstance(value, Store):
                value.close()


def test_samples_are_found() -> None:
    """The extractor finds the samples of the pages that have them, marks included."""
    everything = [block for page in PAGES for block in blocks(page)]
    assert len(everything) >= 15
    pages = {block.page.name for block in everything}
    assert {"README.md", "quickstart.md", "stores.md", "security.md"} <= pages
    assert any("redis" in block.marks for block in everything)
    assert any("continues" in block.marks for block in everything)


# The tables and the commands --------------------------------------------------------------


def test_every_middleware_option_is_documented_with_its_default() -> None:
    """Each SessionMiddleware keyword appears in the options table with its real default."""
    rows = table_rows(page_text("configuration.md"))
    parameters = list(inspect.signature(SessionMiddleware).parameters.values())[1:]
    for parameter in parameters:
        assert parameter.name in rows, (
            f"docs/configuration.md lacks `{parameter.name}`: add a row with its default"
        )
        expected = SHOWN_AS.get(parameter.name, shown(parameter.default))
        assert f"`{expected}`" in rows[parameter.name][1], (
            f"docs/configuration.md gives `{parameter.name}` the default "
            f"{rows[parameter.name][1]!r}, but the code says {expected}"
        )
    documented = set(rows) - {p.name for p in parameters}
    assert not documented, f"the docs list options the middleware does not take: {documented}"


def test_every_exported_store_is_in_the_stores_table() -> None:
    """Each store class wsgisession exports has a row in the table at the top of stores.md."""
    rows = " ".join(table_rows(page_text("stores.md").split("\n## ")[0]))
    stores = [
        name
        for name in wsgisession.__all__
        if isinstance(getattr(wsgisession, name), type)
        and issubclass(getattr(wsgisession, name), Store)
        and not inspect.isabstract(getattr(wsgisession, name))  # Store, ClientSideStore
    ]
    assert {"MemoryStore", "SqliteStore"} <= set(stores)
    for name in stores:
        assert f"{name}(" in rows, f"docs/stores.md's table lacks {name}"


def test_every_export_is_in_the_api_reference() -> None:
    """Each public name of ``wsgisession`` has an entry in docs/api.rst, and no entry is stale."""
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    documented = set(
        re.findall(
            r"^\.\. auto(?:class|function|exception|data):: wsgisession\.(\w+)$", text, re.MULTILINE
        )
    )
    exported = {name for name in wsgisession.__all__ if not name.startswith("_")}
    assert exported - documented == set(), "exported but missing from docs/api.rst"
    assert documented - exported == set(), "in docs/api.rst but no longer exported"


def test_the_never_raised_bad_cookie_error_is_deprecated() -> None:
    """0.1.0's BadCookieError still resolves for except clauses, with a warning saying why."""
    assert "BadCookieError" not in wsgisession.__all__
    with pytest.warns(DeprecationWarning, match="nothing raises it"):
        error = wsgisession.BadCookieError
    assert issubclass(error, wsgisession.SessionError)


def test_deploying_covers_the_essentials() -> None:
    """The deploying page says where each store fits, TLS proxies, and how to purge."""
    text = page_text("deploying.md")
    for needle in (
        "per process",
        "one machine with many workers",
        "several machines",
        "trust_forwarded_proto=True",
        "X-Forwarded-Proto",
        "cookie_secure=True",
        "wsgisession purge sqlite:////var/lib/app/sessions.db",
        "OnCalendar",
    ):
        assert needle in text, f"docs/deploying.md no longer mentions {needle!r}"


def test_every_make_target_named_exists() -> None:
    """Each `make TARGET` in the README and the docs is a target of the Makefile."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    named = set()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        # in inline code (`make run`, `X=1 make run`) and at the start of a shell block's line
        named |= set(re.findall(r"`(?:[A-Z_]+=\S* )*make ([a-z][\w-]*)", text))
        for block in re.findall(r"```sh\n(.*?)```", text, re.S):
            named |= set(re.findall(r"^(?:[A-Z_]+=\S* )*make ([a-z][\w-]*)", block, re.M))
    assert {"run", "test", "docs", "dist"} <= named
    assert named <= targets, f"the docs name make targets that do not exist: {named - targets}"


def test_every_command_line_command_named_exists() -> None:
    """Each `wsgisession COMMAND` shown in a shell block answers --help."""
    commands = set()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:sh|text|ini)\n(.*?)```", text, re.S):
            commands |= set(re.findall(r"\bwsgisession ([a-z]+)\b", block))
    assert {"purge", "stats"} <= commands
    for command in sorted(commands):
        done = subprocess.run(
            [sys.executable, "-m", "wsgisession", command, "--help"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"`wsgisession {command}` is shown but fails: {done.stderr}"


def test_examples_named_exist() -> None:
    """Every examples/… file the README or the docs name is in the repository."""
    named = {
        name
        for page in PAGES
        for name in re.findall(r"examples/[\w.]+\.py", page.read_text(encoding="utf-8"))
    }
    assert named
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert not missing, f"the docs name examples that do not exist: {missing}"
