"""Imports point downward only: each module is imported alone, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: For each module, package modules it must never load (directly or through others).
FORBIDDEN = {
    "wsgisession.errors": ["wsgisession.serializers", "wsgisession.signing", "webob"],
    "wsgisession.serializers": [
        "wsgisession.signing",
        "wsgisession.session",
        "webob",
        "markupsafe",  # Markup is tagged when markupsafe was imported by someone else
        "zoneinfo",
    ],
    "wsgisession.signing": ["wsgisession.session", "wsgisession.stores", "webob"],
    "wsgisession.records": ["wsgisession.session", "wsgisession.stores", "webob"],
    "wsgisession.policy": [
        "wsgisession.session",
        "wsgisession.cookies",
        "wsgisession.signing",
        "wsgisession.stores",
        "wsgisession.core",
        "wsgisession.middleware",
        "webob",
    ],
    "wsgisession.session": [
        "wsgisession.cookies",
        "wsgisession.stores",
        "wsgisession.core",
        "wsgisession.middleware",
        "webob",
    ],
    "wsgisession.cookies": [
        "wsgisession.session",
        "wsgisession.policy",
        "wsgisession.stores",
        "wsgisession.core",
        "wsgisession.middleware",
    ],
    # The sans-I/O core: no WSGI front end, no framework (WebOb only through cookies.py).
    "wsgisession.core": [
        "wsgisession.middleware",
        "wsgisession.csrf",
        "wsgisession.integrations",
        "flask",
        "django",
        "pyramid",
        "redis",
        "psycopg",
        "cryptography",
    ],
    # A user's sessions: over the stores and the session, below the core and every front end.
    "wsgisession.users": [
        "wsgisession.cookies",
        "wsgisession.core",
        "wsgisession.middleware",
        "webob",
        "redis",
        "psycopg",
    ],
    "wsgisession.stores.base": [
        "wsgisession.cookies",
        "wsgisession.core",
        "wsgisession.middleware",
        "wsgisession.session",
        "webob",
    ],
    "wsgisession.stores._support": [
        "wsgisession.cookies",
        "wsgisession.middleware",
        "wsgisession.session",
        "webob",
        "redis",
        "psycopg",
    ],
    "wsgisession.stores.memory": ["wsgisession.cookies", "wsgisession.middleware", "webob"],
    "wsgisession.stores.sqlite": ["wsgisession.cookies", "wsgisession.middleware", "webob"],
    "wsgisession.stores.redis": [
        "wsgisession.cookies",
        "wsgisession.middleware",
        "webob",
        "redis",
    ],
    "wsgisession.stores._redis_lean": [
        "wsgisession.cookies",
        "wsgisession.middleware",
        "webob",
        "redis",
    ],
    "wsgisession.stores.postgres": [
        "wsgisession.cookies",
        "wsgisession.middleware",
        "webob",
        "psycopg",
        "psycopg_pool",
    ],
    "wsgisession.stores.cookie": [
        "wsgisession.cookies",
        "wsgisession.middleware",
        "wsgisession.session",
        "webob",
        "cryptography",  # loaded when a CookieStore is made, not when the module is imported
    ],
    "wsgisession.csrf": ["redis", "psycopg", "cryptography"],
    "wsgisession": [
        "redis",
        "psycopg",
        "psycopg_pool",
        "cryptography",
        "markupsafe",
        "flask",
        "pyramid",
        "django",
    ],
    # Each framework is imported by its own integration only, which needs no WSGI front end.
    "wsgisession.integrations.flask": [
        "pyramid",
        "django",
        "redis",
        "psycopg",
        "wsgisession.middleware",
    ],
    "wsgisession.integrations.pyramid": [
        "flask",
        "django",
        "redis",
        "psycopg",
        "wsgisession.middleware",
    ],
    "wsgisession.integrations.django": [
        "flask",
        "pyramid",
        "redis",
        "psycopg",
        "wsgisession.middleware",
    ],
}


# Package __init__ files re-export everything, so importing a submodule normally runs them all.
# Empty stand-ins for the packages let one module load exactly what it imports itself.
_STUB_PACKAGES = """
import importlib.util, json, sys, types
for name in ("wsgisession", "wsgisession.stores"):
    if not TARGET.startswith(name + "."):
        continue
    spec = importlib.util.find_spec(name)
    package = types.ModuleType(name)
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules[name] = package
"""


def _loaded_after_import(module: str) -> set[str]:
    code = (
        f"TARGET = {module!r}\n{_STUB_PACKAGES}\n"
        f"import {module}\nprint(json.dumps(sorted(sys.modules)))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    return set(json.loads(output.stdout))


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_module_loads_nothing_above_it(module: str) -> None:
    """A module imported alone loads none of the layers above it (STYLE.md's layout)."""
    loaded = _loaded_after_import(module)
    offending = [name for name in FORBIDDEN[module] if name in loaded]
    assert offending == [], f"{module} pulls in {offending}"


def test_drivers_are_not_needed_to_import_the_package() -> None:
    """`import wsgisession` needs WebOb alone: no store driver is imported."""
    loaded = _loaded_after_import("wsgisession")
    assert "webob" in loaded
    assert not {"redis", "psycopg", "cryptography"} & loaded


def test_the_core_never_sees_a_wsgi_environ() -> None:
    """core.py and policy.py take a cookie header and flags, never a WSGI environ."""
    import inspect

    from wsgisession import core, policy

    for module in (core, policy):
        source = inspect.getsource(module)
        assert "environ" not in source.replace("environ_key", ""), module.__name__
        assert "start_response" not in source, module.__name__
