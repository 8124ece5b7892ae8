"""RedisStore's errors for a wrong password, a user without permissions or a missing database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import webtest

from tests.apps import wrap
from tests.services import RedisServer, throwaway_redis
from wsgisession import RedisStore, StoreError, StoreUnavailableError
from wsgisession.testing import NOW, new_key

pytest.importorskip("redis")

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


def test_a_wrong_password_is_named_as_such(acl_redis: RedisServer) -> None:
    """WRONGPASS says the credentials were refused, not that Redis could not be reached."""
    with (
        RedisStore(_url(acl_redis, "app", "not-the-password")) as store,
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
        RedisStore(_url(acl_redis, "pinger", "ping-pw")) as store,
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
        RedisStore(f"redis://127.0.0.1:{acl_redis.port}/99") as store,
        pytest.raises(StoreError) as info,
    ):
        store.load(new_key(), NOW)
    assert "has no such database (ResponseError: DB index is out of range)" in str(info.value)
    assert "redis://host:6379/0" in str(info.value)
    assert "writable primary" not in str(info.value)
