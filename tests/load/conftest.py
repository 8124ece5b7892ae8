"""Fixtures of the load suite: a store backend of each kind and gunicorn servers that serve it.

A backend is a store URL plus options (a fresh SQLite file, a Redis prefix, a PostgreSQL table)
that the served application reads from its environment, and that the test can open itself to
look at what is stored.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wsgisession import Store, store_from_url

from .server import REPORT, WORKER_MODELS, Gunicorn, report_table

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


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh backend of the kind the test is parametrized with (``kind``)."""
    made = make_backend(request.param, tmp_path, request)
    yield made
    made.cleanup()


_counter = itertools.count()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    """Start gunicorn servers for one test; every one is stopped at teardown."""
    started: list[Gunicorn] = []
    gates = tmp_path / "gates"
    gates.mkdir()

    def start(backend: Backend, model: str = "sync 4", **env: str) -> Gunicorn:
        number = next(_counter)
        server = Gunicorn(
            WORKER_MODELS[model],
            {**backend.env(), "WSGISESSION_TEST_GATES": str(gates), **env},
            tmp_path / f"gunicorn-{number}.log",
            name=f"{backend.kind} {model}",
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    """The folder where /slow and /peek say they loaded and wait to be let go."""
    return tmp_path / "gates"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the load report: store × worker model × clients → requests, lost updates, errors."""
    if REPORT:
        terminalreporter.section("wsgisession load report")
        terminalreporter.write_line(report_table())
