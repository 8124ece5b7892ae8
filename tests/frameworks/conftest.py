"""What the framework tests share: a framework import that skips (or fails under CI=true)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def need(module: str) -> ModuleType:
    """Import a framework or extension, skipping the test when it is missing (failing on CI)."""
    if os.environ.get("CI", "").lower() == "true":
        return importlib.import_module(module)
    reason = f"{module} is not installed: make venv installs it (the test dependency group)"
    return pytest.importorskip(module, reason=reason)
