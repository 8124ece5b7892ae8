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


#: A password no message may ever show, in every URL below.
SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@host:port/0",  # a port that is no number
        f"redis://user:{SECRET}@host:99999/0",  # a port out of range
        f"redis://:{SECRET}@host:6379/zero",  # a database that is no number
        f"redis://:{SECRET}@host:6379/0?socket_timeout=soon",  # a bad query value
        f"redis://:{SECRET}@host:6379/0?replicas=-1",  # a bad store parameter
        f"rediss://:{SECRET}@host:port/0",
        f"rediss://:{SECRET}@host:6379/db1",
        f"redis+cluster://:{SECRET}@h1:7000,h2:port/",
        f"redis+cluster://:{SECRET}@h1:7000/3",  # a cluster has database 0 only
        f"redis+cluster://:{SECRET}@h1:7000/?db=1",  # an unknown parameter
        f"redis+sentinel://:{SECRET}@h1:26379/",  # no service
        f"redis+sentinel://:{SECRET}@h1:26379/svc?db=x",  # a bad db number
        f"redis+sentinel://:{SECRET}@h1:port/svc",
        f"redis+sentinel://:{SECRET}@h1:26379/svc?bogus=1",
        f"redis+sentinel://h1:26379/svc?sentinel_password={SECRET}&db=x",  # in the query
        f"redis+sentinel://u:{SECRET}@h1:26379/svc?sentinel_password={SECRET}&bogus=1",
        f"redis://:{SECRET}@",  # names no server
        f"postgresql://user:{SECRET}@",
        f"postgresql://user:{SECRET}@host:port/db",
        f"postgresql://user:{SECRET}@host:5432/db?bogus=1",
        f"postgres://user:{SECRET}@host:5432/db?sslmode=sometimes",
        f"mysql://user:{SECRET}@host/db",  # an unknown scheme
        f"mysql://host/db?password={SECRET}",
        f"redis://user:{SECRET}@/0",  # names no server
        f"redis:/user:{SECRET}@host/0",  # no "://"
        f"sqlite://user:{SECRET}@host",  # names no file
    ],
)
def test_malformed_url_never_shows_its_password(url: str) -> None:
    """A malformed store URL is refused with a message that never shows its password."""
    with pytest.raises(ConfigurationError) as info:
        store = store_from_url(url)
        store.close()
    for text in (str(info.value), repr(info.value), *map(str, _causes(info.value))):
        assert SECRET not in text, text


def _causes(error: BaseException) -> list[BaseException]:
    """The chain of exceptions behind *error* (an error tracker shows them all)."""
    found = []
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
        found.append(error)
    return found
