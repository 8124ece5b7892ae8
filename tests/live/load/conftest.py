"""Fixtures of the load suite: a store backend of each kind and gunicorn servers that serve it.

A backend is a store URL plus options (a fresh SQLite file, a Redis prefix, a PostgreSQL table)
that the served application reads from its environment, and that the test can open itself to
look at what is stored.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.stores import Backend, make_backend

from .server import WORKER_MODELS, Gunicorn


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
