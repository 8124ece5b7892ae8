"""docs/deploying.md's "Running on several hosts" shows the nginx configuration the harness uses.

These run in the plain ``make test`` (no root, no servers): they read that page and the
configuration the harness writes (the section was the README's; it moved into the docs).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.netns import Host
from tests.support.servers import APP_PORT, ROOT, nginx_conf

README = (ROOT / "docs" / "deploying.md").read_text(encoding="utf-8")


def _section() -> str:
    """The section on several hosts, in docs/deploying.md."""
    match = re.search(r"^## Running on several hosts\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, "docs/deploying.md has no '## Running on several hosts' section"
    return match.group(1)


def _directives(text: str) -> set[str]:
    """The directives of an nginx configuration, one per statement, spaces normalised."""
    text = re.sub(r"#[^\n]*", "", text)
    return {" ".join(part.split()) for part in text.split(";") if part.strip()} - {""}


def test_readme_nginx_location_is_the_harness_one() -> None:
    """Every proxy directive the page shows is in the harness's configuration, and back."""
    block = re.search(r"```nginx\n(.*?)```", _section(), re.S)
    assert block, "the section has no nginx block"
    shown = {d.split("{")[-1].strip() for d in _directives(block.group(1))}
    hosts = [Host(f"host{n}", f"ns{n}", f"10.0.0.{10 + n}") for n in (1, 2, 3)]
    used = {d.split("{")[-1].strip() for d in _directives(nginx_conf(hosts, 8080, Path("/x")))}
    proxy = {d for d in used if d.startswith(("proxy_", "server 10."))}
    proxy.discard("proxy_temp_path /x/proxy")
    proxy.discard("proxy_read_timeout 30s")
    assert proxy <= shown, f"docs/deploying.md lacks {sorted(proxy - shown)}"
    assert {d for d in shown if d.startswith(("proxy_", "server 10."))} <= used
    assert f"server 10.0.0.11:{APP_PORT} max_fails=1 fail_timeout=10s" in shown


def test_readme_names_what_is_shared_and_what_is_not() -> None:
    """The section says that the keys and the store are shared, and which stores cannot be."""
    text = _section()
    for needle in (
        "the store",
        "the secret keys",
        "MemoryStore",
        "SqliteStore",
        "[old, new]",
        "[new, old]",
        "[new]",
        "make test-multihost",
    ):
        assert needle in text, (
            f"docs/deploying.md's 'Running on several hosts' no longer mentions {needle!r}"
        )
