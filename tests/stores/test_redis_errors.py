"""RedisStore's errors for a wrong password, a user without permissions or a missing database.

Built from a URL, the store reads once at construction, so these fail then, as a
ConfigurationError with the server's message (as PostgresStore does); a client handed in
ready-made meets them at the first request, as the StoreError that says what to check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import webtest

from tests.support.app import wrap
from tests.support.servers import RedisServer, missing, throwaway_redis
from wsgisession import ConfigurationError, RedisStore, StoreError, StoreUnavailableError
from wsgisession.testing import NOW, new_key

redis = pytest.importorskip("redis")

#: The rules the permission error advises, for the store's default prefix.
ADVISED = "~wsgisession:* +@hash +@sortedset +@keyspace +@scripting +@transaction +@connection"


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis with two ACL users: ``app`` with the advised rules, ``pinger`` with PING alone.

    A server of the module's own: the shared Redis is never given users.
    """
    users = ["--user", "app", "on", ">app-pw", *ADVISED.split()]
    users += ["--user", "pinger", "on", ">ping-pw", "~*", "+ping"]
    with throwaway_redis(tmp_path_factory.mktemp("acl-redis"), extra=users) as server:
        yield server


def _url(server: RedisServer, user: str, password: str) -> str:
    return f"redis://{user}:{password}@127.0.0.1:{server.port}/0"


def _ready(url: str) -> RedisStore:
    """A store over a client built by the application: nothing is checked at construction."""
    return RedisStore(redis.Redis.from_url(url, socket_timeout=2))


# At construction, from a URL -------------------------------------------------------------------


def test_a_wrong_password_fails_at_construction(acl_redis: RedisServer) -> None:
    """WRONGPASS at construction: a ConfigurationError naming the credentials, not the password."""
    with pytest.raises(ConfigurationError) as info:
        RedisStore(_url(acl_redis, "app", "not-the-password"))
    message = str(info.value)
    assert message.startswith("RedisStore could not start: Redis at 127.0.0.1:")
    assert "refused the store's credentials (AuthenticationError" in message
    assert "check the user and password in the store URL" in message
    assert "not-the-password" not in message


def test_no_password_for_a_server_that_wants_one_fails_at_construction(
    acl_redis: RedisServer,
) -> None:
    """A URL without the password the server requires: ConfigurationError at construction."""
    with pytest.raises(ConfigurationError, match="RedisStore could not start"):
        RedisStore(f"redis://nobody:x@127.0.0.1:{acl_redis.port}/0")


def test_a_user_without_permissions_fails_at_construction(acl_redis: RedisServer) -> None:
    """NOPERM at construction: a ConfigurationError with the ACL rules the store needs."""
    with pytest.raises(ConfigurationError) as info:
        RedisStore(_url(acl_redis, "pinger", "ping-pw"))
    assert "does not let the store's user run a session command" in str(info.value)
    assert f"ACL SETUSER name {ADVISED}" in str(info.value)


def test_a_missing_database_fails_at_construction(acl_redis: RedisServer) -> None:
    """/99 on a server with 16 databases: ConfigurationError at construction, saying /0."""
    with pytest.raises(ConfigurationError) as info:
        RedisStore(f"redis://app:app-pw@127.0.0.1:{acl_redis.port}/99")
    assert "has no such database (ResponseError: DB index is out of range)" in str(info.value)
    assert "redis://host:6379/0" in str(info.value)


def test_an_unreachable_server_at_start_is_logged_and_served_later(
    caplog: pytest.LogCaptureFixture, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Nothing listening at construction: a warning, no error; the store works once it is up."""
    binary = RedisServer.find_binary()
    if binary is None:
        missing("no redis-server on PATH to start a throwaway Redis")
    server = RedisServer(tmp_path_factory.mktemp("late-redis"), binary)  # not started yet
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        store = RedisStore(server.url, socket_timeout=1.0)
    with store:
        assert f"Redis at 127.0.0.1:{server.port}/0 cannot be reached now" in caplog.text
        with pytest.raises(StoreUnavailableError):
            store.load(new_key(), NOW)
        server.start()
        try:
            assert store.load(new_key(), NOW) is None
        finally:
            server.stop()


# At the first request, with a client handed in ------------------------------------------------


def test_a_wrong_password_is_named_as_such(acl_redis: RedisServer) -> None:
    """WRONGPASS says the credentials were refused, not that Redis could not be reached."""
    with (
        _ready(_url(acl_redis, "app", "not-the-password")) as store,
        pytest.raises(StoreUnavailableError) as info,
    ):
        store.load(new_key(), NOW)
    message = str(info.value)
    assert "refused the store's credentials (AuthenticationError" in message
    assert "check the user and password in the store URL" in message
    assert "could not be reached" not in message
    assert "not-the-password" not in message


def test_a_user_without_permissions_is_told_the_acl_rules(acl_redis: RedisServer) -> None:
    """NOPERM names the ACL rules the store needs, and those rules are enough for sessions."""
    with (
        _ready(_url(acl_redis, "pinger", "ping-pw")) as store,
        pytest.raises(StoreError) as info,
    ):
        store.load(new_key(), NOW)
    assert "does not let the store's user run a session command" in str(info.value)
    assert f"ACL SETUSER name {ADVISED}" in str(info.value)
    with RedisStore(_url(acl_redis, "app", "app-pw")) as store:
        middleware, _ = wrap(store)
        client = webtest.TestApp(middleware)
        client.get("/set?cart=3")
        client.get("/login?user=ann")  # regenerate()
        assert client.get("/get?user&cart").json == {"user": "ann", "cart": "3"}
        client.get("/logout")  # destroy()
        assert client.get("/get?user").json == {"user": None}


def test_a_database_number_the_server_does_not_have_says_which_to_use(
    acl_redis: RedisServer,
) -> None:
    """/99 on a server with 16 databases: the error names the databases setting and /0."""
    with (
        _ready(f"redis://127.0.0.1:{acl_redis.port}/99") as store,
        pytest.raises(StoreError) as info,
    ):
        store.load(new_key(), NOW)
    assert "has no such database (ResponseError: DB index is out of range)" in str(info.value)
    assert "redis://host:6379/0" in str(info.value)
    assert "writable primary" not in str(info.value)
