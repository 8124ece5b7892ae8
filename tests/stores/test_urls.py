"""store_from_url() builds every store from its URL, and a missing driver names its extra."""

from __future__ import annotations

import sys

import pytest

from wsgisession import (
    ConfigurationError,
    MissingDriverError,
    PostgresStore,
    RedisStore,
    SessionError,
    store_from_url,
)
from wsgisession.testing import NOW, new_key


def test_redis_url_builds_a_working_store(redis_url: str) -> None:
    """redis://host:port/db gives a RedisStore on that server, options passed through."""
    from tests.support.servers import drop_redis_prefix, redis_prefix

    prefix = redis_prefix()
    with store_from_url(redis_url, prefix=prefix, socket_timeout=1.5) as store:
        assert isinstance(store, RedisStore)
        key = new_key()
        store.create(key, {"a": 1}, {}, NOW + 60, NOW)
        assert store.load(key, NOW) is not None
    drop_redis_prefix(redis_url, prefix)


def test_postgres_urls_build_a_working_store(postgres_dsn: str) -> None:
    """postgresql:// and postgres:// both give a PostgresStore on that server."""
    from tests.support.servers import drop_postgres_table, postgres_table

    table = postgres_table()
    for url in (postgres_dsn, postgres_dsn.replace("postgresql://", "postgres://", 1)):
        with store_from_url(url, table=table) as store:
            assert isinstance(store, PostgresStore)
            key = new_key()
            store.create(key, {"a": 1}, {}, NOW + 60, NOW)
            assert store.load(key, NOW) is not None
    drop_postgres_table(postgres_dsn, table)


def test_tls_and_socket_urls_are_accepted() -> None:
    """rediss:// and unix:// build a RedisStore without connecting until it is used."""
    assert isinstance(store_from_url("rediss://cache.example:6380/1"), RedisStore)
    assert isinstance(store_from_url("unix:///run/redis/redis.sock?db=2"), RedisStore)


@pytest.mark.parametrize(
    "url", ["redis://", "postgresql://", "redis://host:port/0", "postgresql://h/db?bogus=1"]
)
def test_bad_network_urls_say_what_to_use(url: str) -> None:
    """A network URL that names no server, or cannot be parsed, is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match=r"use (redis|postgresql)://"):
        store_from_url(url)


@pytest.mark.parametrize(
    ("url", "option"),
    [
        ("redis://127.0.0.1/0", {"socket_timeout": 0}),
        ("redis://127.0.0.1/0", {"connect_timeout": -1}),
        ("postgresql://h/db", {"timeout": 0}),
        ("postgresql://h/db", {"pool_size": 0}),
    ],
)
def test_bad_timeouts_and_sizes_are_refused(url: str, option: dict[str, float]) -> None:
    """A timeout or pool size that cannot work is refused at construction, naming the option."""
    with pytest.raises(ConfigurationError, match=next(iter(option))):
        store_from_url(url, **option)


@pytest.mark.parametrize(
    ("module", "url", "extra"),
    [("redis", "redis://127.0.0.1/0", "redis"), ("psycopg", "postgresql://h/db", "postgres")],
)
def test_missing_driver_names_the_extra(
    module: str, url: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its driver, a network store says which extra to install."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(
        MissingDriverError, match=rf"pip install 'sessions-wsgi\[{extra}\]'"
    ) as info:
        store_from_url(url)
    assert isinstance(info.value, ImportError) and isinstance(info.value, SessionError)
