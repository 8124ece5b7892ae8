"""The stores tests run on: make_store (one of each kind, in-process) and the load backends.

A load backend is a store URL and options that the served app and the test share: a fresh
SQLite file, a Redis key prefix or a PostgreSQL table; the served application reads it from its
environment, and the test opens it itself to look at what is stored.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import wsgisession
from tests.support.servers import network_store
from wsgisession import MemoryStore, SqliteStore, Store, store_from_url

#: The network store kinds this version of wsgisession has.
NETWORK_STORES = [
    kind
    for kind, name in (("redis", "RedisStore"), ("postgres", "PostgresStore"))
    if name in wsgisession.__all__
]
#: The store kinds every load scenario runs on.
LOAD_STORES = ["sqlite", *NETWORK_STORES]


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


def make_backend(
    kind: str, folder: Path, request: pytest.FixtureRequest, server_url: str | None = None
) -> Backend:
    """A fresh, empty store of *kind*: its own SQLite file, Redis prefix or PostgreSQL table.

    Redis and PostgreSQL come from *server_url* when given, else from ``WSGISESSION_REDIS_URL``
    / ``WSGISESSION_POSTGRES_DSN``, else from a throwaway server of this test session.
    """
    tag = secrets.token_hex(4)
    if kind == "sqlite":
        return Backend(kind, f"sqlite:///{folder / f'sessions-{tag}.db'}")
    if kind == "redis":
        url = server_url or os.environ.get("WSGISESSION_REDIS_URL")
        if not url:
            url = request.getfixturevalue("load_redis").url
        prefix = f"wsgisession-load-{tag}:"
        backend = Backend(kind, url, {"prefix": prefix})
        backend.cleanups.append(lambda: _clear_redis(url, prefix))
        return backend
    if kind == "postgres":
        dsn = server_url or os.environ.get("WSGISESSION_POSTGRES_DSN")
        if not dsn:
            dsn = request.getfixturevalue("load_postgres").dsn
        table = f"wsgisession_load_{tag}"
        backend = Backend(kind, dsn, {"table": table})
        backend.cleanups.append(lambda: _drop_table(dsn, table))
        return backend
    raise ValueError(f"unknown store kind {kind!r}")


def _clear_redis(url: str, prefix: str) -> None:
    """Delete every key under *prefix* (the server may be gone already: then nothing to do)."""
    import redis

    with suppress(redis.RedisError), redis.Redis.from_url(url, socket_timeout=2) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def _drop_table(dsn: str, table: str) -> None:
    """Drop the test's table (the server may be gone already: then nothing to do)."""
    import psycopg

    with (
        suppress(psycopg.OperationalError),
        psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn,
    ):
        conn.execute(f"DROP TABLE IF EXISTS {table}")


#: The store kinds every middleware test runs on.
STORE_KINDS = ["memory", "sqlite", "redis", "postgres"]


def make_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest | None = None, **options: Any
) -> Store:
    """Build a fresh, empty store of *kind* for one test, passing it *options* (serializer=...).

    Redis and PostgreSQL stores need the test's *request* (for their server fixtures); each gets
    its own key prefix or table, removed after the test.
    """
    if kind == "memory":
        return MemoryStore(**options)
    if kind == "sqlite":
        return SqliteStore(tmp_path / "sessions.db", **options)
    if kind in ("redis", "postgres"):
        if request is None:
            raise ValueError(f"make_store({kind!r}) needs the test's request for its server")
        return network_store(kind, request, **options)
    raise ValueError(f"unknown store kind {kind!r}")


def deep_list(depth: int) -> list[Any]:
    """A list nested *depth* deep: at 10,000, deeper than any serializer can write."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value
