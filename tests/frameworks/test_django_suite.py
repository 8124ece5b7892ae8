"""Django's own session tests, run against the wsgisession engine on every store.

``SessionTestsMixin`` and ``SessionMiddlewareTests`` come from ``tests/sessions_tests/`` of the
installed Django's released source distribution, downloaded at test time with pip into a cache
folder outside git (``$XDG_CACHE_HOME/wsgisession/sdists``, else ``~/.cache/...``) and never part
of this repository. Each case that does not pass on the engine is listed in ``DIFFERENCES`` with
the reason, shown as a skip; the README's Django section lists them too.
"""

from __future__ import annotations

import sys
import unittest
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.frameworks.conftest import need
from tests.support.sdists import released_source
from tests.support.stores import make_store

django = need("django")

from django.test import SimpleTestCase, override_settings  # noqa: E402

from tests.frameworks import django_project  # noqa: E402
from wsgisession.integrations.django import SessionStore  # noqa: E402

ENGINE = "wsgisession.integrations.django"

#: Cases of Django's suite that do not pass on the engine, with the reason.
DIFFERENCES: dict[str, str] = {}


#: Middleware cases that test something other than an engine.
NOT_ENGINE: dict[str, str] = {
    "test_session_update_error_redirect": "uses Django's database engine (DatabaseSession) "
    "directly, whatever SESSION_ENGINE says",
    "test_empty_session_saved": "reads the session back from Django's database table with "
    "django.contrib.sessions.models.Session; the engine keeps sessions in the wsgisession store",
}


def _django_suite() -> Path:
    """The ``tests/`` folder holding the installed Django's ``sessions_tests``, cached."""
    folder = released_source(
        "Django",
        django.__version__,
        lambda path: path.startswith("tests/sessions_tests/"),
        "tests/sessions_tests/tests.py",
    )
    return folder / "tests"


def _import_suite() -> ModuleType:
    """Import Django's ``sessions_tests.tests`` (its models need the app installed meanwhile)."""
    suite = _django_suite()
    if str(suite) not in sys.path:
        sys.path.append(str(suite))
    django_project.configure()
    with override_settings(INSTALLED_APPS=[*django_project.INSTALLED_APPS, "sessions_tests"]):
        from sessions_tests import tests as suite_module
    return suite_module


try:
    djt = _import_suite()
except pytest.skip.Exception:
    raise
except Exception as exc:  # pragma: no cover - a broken download is reported, not hidden
    raise RuntimeError(f"Django's sessions_tests could not be imported: {exc}") from exc


def _skip(cls: type, reasons: dict[str, str]) -> None:
    """Mark the listed cases of *cls* as skipped, with their reasons."""
    for name, reason in reasons.items():
        if hasattr(cls, name):

            def skipped(self: Any) -> None:  # pragma: no cover - never run
                pass

            setattr(cls, name, unittest.skip(reason)(skipped))


@pytest.fixture(autouse=True)
def _engine_on(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    """Each case runs with SESSION_ENGINE set to the engine, on a fresh store of its kind."""
    kind = getattr(request.cls, "store_kind", "memory")
    store = make_store(kind, tmp_path, request)
    with override_settings(SESSION_ENGINE=ENGINE, WSGISESSION_STORE=store):
        yield
    store.close()


class _Engine(djt.SessionTestsMixin, SimpleTestCase):  # type: ignore[misc, name-defined]
    backend = SessionStore
    store_kind = "memory"


class TestSessionStoreMemory(_Engine):
    """Django's SessionTestsMixin on a MemoryStore."""

    store_kind = "memory"


class TestSessionStoreSqlite(_Engine):
    """Django's SessionTestsMixin on a SqliteStore."""

    store_kind = "sqlite"


class TestSessionStoreRedis(_Engine):
    """Django's SessionTestsMixin on a RedisStore."""

    store_kind = "redis"


class TestSessionStorePostgres(_Engine):
    """Django's SessionTestsMixin on a PostgresStore."""

    store_kind = "postgres"


_skip(_Engine, DIFFERENCES)
del _Engine  # the base is not a test class of its own: pytest collects every TestCase


class TestSessionMiddleware(djt.SessionMiddlewareTests):  # type: ignore[misc, name-defined]
    """Django's SessionMiddlewareTests with SESSION_ENGINE set to the engine."""


_skip(TestSessionMiddleware, {**DIFFERENCES, **NOT_ENGINE})
