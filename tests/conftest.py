"""Shared fixtures: a store of every kind, and a factory that wraps an app in the middleware."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live.load.server import REPORT, report_table
from tests.support.servers import (  # noqa: F401 - fixtures for every test
    ThrowawayPostgres,
    ThrowawayRedis,
    _postgres_cluster,
    postgres_dsn,
    postgres_server,
    redis_cluster,
    redis_server,
    redis_url,
    valkey_server_url,
)
from tests.support.stores import STORE_KINDS, make_store
from wsgisession import Store


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """The name of the store kind under test."""
    return str(request.param)


@pytest.fixture
def store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh store of each kind in turn."""
    store = make_store(store_kind, tmp_path, request)
    yield store
    store.close()


class Clock:
    """A clock a test can move: pass it as SessionMiddleware(clock=...)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    """A movable clock starting at a fixed time."""
    return Clock()


AppFactory = Callable[..., Any]


@pytest.fixture(scope="session")
def load_redis() -> Iterator[ThrowawayRedis]:
    """A Redis server of this test session, for load tests when WSGISESSION_REDIS_URL is unset."""
    server = ThrowawayRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def load_postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of this test session, when WSGISESSION_POSTGRES_DSN is unset."""
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the load report: requests, lost updates and errors per store and worker model."""
    if REPORT:
        terminalreporter.section("wsgisession load report")
        terminalreporter.write_line(report_table())
