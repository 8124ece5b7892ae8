"""The README stays true to the code: options and defaults, stores, commands and snippets."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import wsgisession
from wsgisession import SessionMiddleware, Store

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Defaults the table shows as what they mean rather than as the bare value.
SHOWN_AS = {"store": "MemoryStore()"}


def section(title: str) -> str:
    """The text of the README section headed ``## title``."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def table_rows(text: str) -> dict[str, list[str]]:
    """Rows of the markdown tables in *text*, keyed by the first cell without backticks."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells
    return rows


def shown(value: object) -> str:
    """How a default value is written in the README: Python, with double-quoted strings."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_quick_start_comes_first() -> None:
    """The first code block is the two commands, and the Makefile has both targets."""
    first = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first is not None
    assert [line.split()[:2] for line in first.group(1).splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("run", "test", "lint"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no '{target}' target"


def test_every_middleware_option_is_documented_with_its_default() -> None:
    """Each SessionMiddleware keyword appears in the Options table with its real default."""
    rows = table_rows(section("Options"))
    parameters = list(inspect.signature(SessionMiddleware).parameters.values())[1:]
    for parameter in parameters:
        assert parameter.name in rows, (
            f"README's Options table lacks `{parameter.name}`: add a row with its default"
        )
        expected = SHOWN_AS.get(parameter.name, shown(parameter.default))
        assert f"`{expected}`" in rows[parameter.name][1], (
            f"README gives `{parameter.name}` the default {rows[parameter.name][1]!r}, "
            f"but the code says {expected}"
        )
    documented = set(rows) - {p.name for p in parameters}
    assert not documented, f"README documents options the middleware does not take: {documented}"


def test_every_exported_store_is_in_the_stores_table() -> None:
    """Each store class wsgisession exports has a row in the Stores table."""
    rows = " ".join(table_rows(section("Stores")))
    stores = [
        name
        for name in wsgisession.__all__
        if isinstance(getattr(wsgisession, name), type)
        and issubclass(getattr(wsgisession, name), Store)
        and not inspect.isabstract(getattr(wsgisession, name))  # Store, ClientSideStore
    ]
    assert {"MemoryStore", "SqliteStore"} <= set(stores)
    for name in stores:
        assert f"{name}(" in rows, f"README's Stores table lacks {name}"


def test_python_snippets_compile() -> None:
    """Every Python block in the README is valid Python."""
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    for block in blocks:
        compile(block, "README.md", "exec")


def test_deploying_covers_the_essentials() -> None:
    """The Deploying section says where each store fits, TLS proxies, and how to purge."""
    text = section("Deploying")
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
        assert needle in text, f"README's Deploying section no longer mentions {needle!r}"


def test_examples_named_in_the_readme_exist() -> None:
    """Every examples/… file the README names is in the repository."""
    named = set(re.findall(r"examples/[\w.]+\.py", README))
    assert named
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert not missing, f"README names examples that do not exist: {missing}"
