"""RedisStore from a URL: packed commands on a per-thread connection, RESP2 and RESP3 alike.

The store contract runs again over RESP3 (``protocol=3`` in the URL; the plain contract in
test_redis.py is RESP2); then one round trip per load and per save, reconnecting after a server
restart, a forked child that gets connections of its own, and a client whose replies the store
must never change.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import RedisServer, RoundTrips, drop_redis_prefix, redis_prefix
from wsgisession import RedisStore
from wsgisession.records import Changes
from wsgisession.testing import DAY, NOW, StoreContract, new_key

redis = pytest.importorskip("redis")


def _with(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


class TestRedisStoreContractResp3(StoreContract):
    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisStore]:
        prefix = redis_prefix()
        with RedisStore(_with(redis_url, "protocol=3"), prefix) as store:
            yield store
        drop_redis_prefix(redis_url, prefix)


@pytest.fixture(params=["resp2", "resp3"])
def url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The Redis URL, in either protocol."""
    return redis_url if request.param == "resp2" else _with(redis_url, "protocol=3")


def test_one_round_trip_per_load_and_save_from_a_url(url: str, sent: RoundTrips) -> None:
    """A URL-built store loads in one request and saves in one, in RESP2 and RESP3."""
    prefix = redis_prefix()
    with RedisStore(url, prefix) as store:
        key = new_key()
        store.create(key, {"a": 1, "n": 1}, {"created": NOW}, NOW + DAY, NOW)
        store.save(key, Changes(updates={"warm": 1}), NOW)  # loads the script once if needed
        store.load(key, NOW)
        changes = Changes(
            updates={"b": [1, 2]},
            removals=frozenset({"a"}),
            increments={"n": 2},
            expires=NOW + 2 * DAY,
            meta={"created": NOW, "lifetime": 1},
        )
        assert sent.of(lambda: store.save(key, changes, NOW)) == 1
        assert sent.of(lambda: store.load(new_key(), NOW)) == 1
        record = None

        def load() -> None:
            nonlocal record
            record = store.load(key, NOW)

        assert sent.of(load) == 1
        assert record is not None
        assert record.data == {"warm": 1, "b": [1, 2], "n": 3}
        assert record.meta == {"created": NOW, "lifetime": 1} and record.expires == NOW + 2 * DAY
    drop_redis_prefix(url, prefix)


def test_an_unknown_script_is_loaded_once_from_a_url(url: str, sent: RoundTrips) -> None:
    """After NOSCRIPT (a restart or SCRIPT FLUSH) a save loads its script and lands, once."""
    prefix = redis_prefix()
    with RedisStore(url, prefix) as store:
        key = new_key()
        store.create(key, {"n": 1}, {"created": NOW}, NOW + DAY, NOW)
        store.load(key, NOW)  # the connection is made (its handshake is sent) here
        store._save_script.sha = "0" * 40  # a script Redis does not know, as after a restart
        changes = Changes(updates={"a": 1}, increments={"n": 1})
        assert sent.of(lambda: store.save(key, changes, NOW)) == 3  # NOSCRIPT, load, run
        assert sent.of(lambda: store.save(key, changes, NOW)) == 1
        record = store.load(key, NOW)
        assert record is not None and record.data == {"n": 3, "a": 1}
    drop_redis_prefix(url, prefix)


def test_decoded_responses_from_the_url_load_alike(redis_url: str) -> None:
    """``decode_responses=true`` in the URL (replies as text) loads the same record."""
    prefix = redis_prefix()
    with RedisStore(_with(redis_url, "decode_responses=true&protocol=3"), prefix) as store:
        key = new_key()
        store.create(key, {"a": "é", "n": 1}, {"created": NOW}, NOW + DAY, NOW)
        assert store.save(key, Changes(increments={"n": 1}), NOW)
        record = store.load(key, NOW)
        assert record is not None and record.data == {"a": "é", "n": 2}
    drop_redis_prefix(redis_url, prefix)


def test_first_request_after_a_server_restart_succeeds(redis_server: RedisServer) -> None:
    """The connection the restart closed is replaced before use: no request fails for it."""
    with RedisStore(redis_server.url, redis_prefix(), socket_timeout=1.0) as store:
        key = new_key()
        store.create(key, {"n": 1}, {"created": NOW}, NOW + DAY, NOW)
        assert store.load(key, NOW) is not None  # the connection is open and idle now
        redis_server.stop()
        redis_server.start()
        assert store.save(key, Changes(increments={"n": 1}), NOW)
        record = store.load(key, NOW)
        assert record is not None and record.data == {"n": 2}


def test_a_forked_child_gets_its_own_connection(url: str) -> None:
    """After fork() the child talks on new connections and the parent's keeps working."""
    prefix = redis_prefix()
    with RedisStore(url, prefix) as store:
        key = new_key()
        store.create(key, {"n": 0}, {"created": NOW}, NOW + DAY, NOW)
        assert store.load(key, NOW) is not None  # the parent's connection is open
        pid = os.fork()
        if pid == 0:  # the child: a hundred saves, then the parent goes on with its own
            code = 0
            try:
                for _ in range(100):
                    if not store.save(key, Changes(increments={"n": 1}), NOW):
                        code = 1
                record = store.load(key, NOW)
                if record is None or record.data["n"] < 100:
                    code = 2
            except BaseException:
                code = 3
            os._exit(code)
        for _ in range(100):
            assert store.save(key, Changes(increments={"n": 1}), NOW)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        record = store.load(key, NOW)
        assert record is not None and record.data == {"n": 200}
    drop_redis_prefix(url, prefix)


class MemoizingRedis(redis.Redis):  # type: ignore[misc]
    """A real client with a cache of HGETALL replies in front, as a caching layer has: the
    same reply object is handed to every caller until the key is written again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.replies: dict[Any, Any] = {}

    def hgetall(self, name: Any) -> Any:
        if name not in self.replies:
            self.replies[name] = super().hgetall(name)
        return self.replies[name]


def test_load_leaves_the_clients_reply_intact(redis_url: str) -> None:
    """Loading twice through a client that hands out one cached reply gives the whole record."""
    client = MemoizingRedis.from_url(redis_url)
    prefix = redis_prefix()
    store = RedisStore(client, prefix)
    try:
        key = new_key()
        store.create(key, {"a": 1}, {"created": NOW}, NOW + DAY, NOW)
        first = store.load(key, NOW)
        second = store.load(key, NOW)  # the very same reply object as the first load's
        assert first is not None and second is not None
        assert second.data == {"a": 1} and second.meta == {"created": NOW}
        assert second.expires == NOW + DAY
        assert len(client.replies[prefix + key]) == 3  # @e, @m and d:a, all still there
    finally:
        client.close()
        drop_redis_prefix(redis_url, prefix)
