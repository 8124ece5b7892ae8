"""What the framework tests share: a framework import that skips (or fails under CI=true)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from wsgisession import NoUserIndexError, Store, user_sessions


def need(module: str) -> ModuleType:
    """Import a framework or extension, skipping the test when it is missing (failing on CI)."""
    if os.environ.get("CI", "").lower() == "true":
        return importlib.import_module(module)
    reason = f"{module} is not installed: make venv installs it (the test dependency group)"
    return pytest.importorskip(module, reason=reason)


def need_user_index(store: Store) -> Store:
    """*store*, or a skip when it keeps no user index yet (as the store contract skips it)."""
    try:
        user_sessions(store, "probe")
    except NoUserIndexError as exc:
        pytest.skip(f"{type(store).__name__} keeps no user index: {exc}")
    return store


@pytest.fixture
def indexed(store: Store) -> Store:
    """A fresh store of each kind that keeps the user → sessions index."""
    return need_user_index(store)
