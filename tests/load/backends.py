"""Store backends for the load suite: a store URL and options the served app and the test share.

A backend is a fresh SQLite file, a Redis key prefix or a PostgreSQL table; the served
application reads it from its environment, and the test opens it itself to look at what is
stored.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wsgisession import Store, store_from_url

#: The store kinds every load scenario runs on.
LOAD_STORES = ["sqlite"]


@dataclass
class Backend:
    """A store the served application and the test both open."""

    kind: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment that points the served application at this store."""
        return {
            "WSGISESSION_STORE": self.url,
            "WSGISESSION_TEST_STORE_OPTIONS": json.dumps(self.options),
        }

    def open(self) -> Store:
        """A store object on the same data, for the test to inspect."""
        return store_from_url(self.url, **self.options)

    def cleanup(self) -> None:
        for step in reversed(self.cleanups):
            step()


def make_backend(kind: str, folder: Path, request: pytest.FixtureRequest) -> Backend:
    """A fresh, empty store of *kind*; network kinds skip (or fail under CI) without a server."""
    tag = secrets.token_hex(4)
    if kind == "sqlite":
        return Backend(kind, f"sqlite:///{folder / f'sessions-{tag}.db'}")
    raise ValueError(f"unknown store kind {kind!r}")


