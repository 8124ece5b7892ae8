"""RedisStore through Sentinel: the contract, and what a failover does to a stream of writes.

Each failover test starts its own primary, replica and Sentinel on loopback, sends a stream of
writes through the middleware, has Sentinel fail over in the middle (``SENTINEL FAILOVER``),
and then counts the writes that were answered 200 but are missing on the new primary.
``WSGISESSION_FAILOVER_AFTER`` (seconds of stream after the failover, 2.5 by default) lets a
longer run measure the whole window of the default configuration.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import webtest
from webob import Request

from tests.support.servers import (
    SentinelGroup,
    flavour_binary,
    redis_prefix,
    throwaway_sentinel,
)
from wsgisession import RedisStore, SessionMiddleware, StoreUnavailableError, store_from_url
from wsgisession.cli import main
from wsgisession.signing import hash_id
from wsgisession.testing import NOW, StoreContract, new_key

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

redis = pytest.importorskip("redis")


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """A primary, a replica and a Sentinel for this module's tests that do not fail over."""
    binary = flavour_binary("redis")
    with throwaway_sentinel(tmp_path_factory.mktemp("sentinel"), binary) as group:
        yield group


class TestSentinelStoreContract(StoreContract):
    """Through a redis+sentinel:// URL, every write waiting for the replica (replicas=1)."""

    @pytest.fixture
    def store(self, sentinel_group: SentinelGroup) -> Iterator[RedisStore]:
        store = store_from_url(f"{sentinel_group.url}&replicas=1", prefix=redis_prefix())
        assert isinstance(store, RedisStore)
        assert store.replicas == 1
        with store:
            yield store


def test_cli_counts_sessions_through_sentinel(
    sentinel_group: SentinelGroup, capsys: pytest.CaptureFixture[str]
) -> None:
    """wsgisession stats on a redis+sentinel:// URL counts the primary's sessions."""
    prefix = redis_prefix()
    with RedisStore(sentinel_group.url, prefix) as store:
        store.create(new_key(), {"a": 1}, {}, time.time() + 60, time.time())
        assert main(["stats", "--prefix", prefix, sentinel_group.url]) == 0
        assert capsys.readouterr().out.startswith("1 live session, ")
        store.purge(time.time() + 120)


def test_a_write_the_replica_did_not_acknowledge_is_an_error(sentinel_group: SentinelGroup) -> None:
    """With replicas=2 and one replica, a save is StoreUnavailableError saying what to check."""
    with RedisStore(sentinel_group.url, redis_prefix(), replicas=2, replica_timeout=0.05) as store:
        key = new_key()
        with pytest.raises(StoreUnavailableError, match="only 1 of the 2 replicas"):
            store.create(key, {"a": 1}, {}, NOW + 60, NOW)
        with pytest.raises(StoreUnavailableError, match="INFO replication"):
            store.delete(key)


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """/write?k=name sets session[name] = 1."""
    environ["wsgisession"][Request(environ).GET["k"]] = 1
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@dataclass
class Stream:
    """What a stream of writes through a failover gave."""

    requests: int = 0
    unavailable: int = 0
    lost: int = 0


def _stream_through_failover(group: SentinelGroup, store: RedisStore) -> Stream:
    """Write a new key per request over 20 sessions; fail over after 0.5 s; count the lost."""
    after = float(os.environ.get("WSGISESSION_FAILOVER_AFTER", "2.5"))
    clients = [webtest.TestApp(SessionMiddleware(app, store=store)) for _ in range(20)]
    for client in clients:
        client.get("/write?k=start")
        assert client.cookies.get("wsgisession"), "the session was not created"
    answered: list[set[str]] = [set() for _ in clients]
    result = Stream()
    started = time.monotonic()
    failed_over_at: float | None = None
    while result.requests < 50_000:
        now = time.monotonic()
        if failed_over_at is None and now - started > 0.5:
            group.failover()
            failed_over_at = now
        if failed_over_at is not None and now - failed_over_at > after:
            break
        index = result.requests % len(clients)
        name = f"w{result.requests}"
        response = clients[index].get(f"/write?k={name}", expect_errors=True)
        result.requests += 1
        if response.status_int == 200:
            answered[index].add(name)
        else:
            assert response.status_int == 503, response
            result.unavailable += 1
    deadline = time.monotonic() + 15
    while group.primary_port() != group.replica.port:  # Sentinel names the new primary
        assert time.monotonic() < deadline, "Sentinel did not fail over"
        time.sleep(0.05)
    with RedisStore(f"redis://127.0.0.1:{group.replica.port}/0", store.prefix) as survivor:
        for client, names in zip(clients, answered, strict=True):
            record = survivor.load(hash_id(client.cookies["wsgisession"]), time.time())
            assert record is not None, "a session created before the failover is gone"
            result.lost += len(names - set(record.data))
    print(
        f"\nSentinel failover ({after:g} s of stream after it): {result.requests} requests, "
        f"{result.unavailable} 503s, {result.lost} writes answered 200 and lost"
    )
    return result


def test_failover_loses_no_acknowledged_write_with_replicas(tmp_path: Path) -> None:
    """With replicas=1 a write answered 200 survives the failover: the rest are 503s, none lost."""
    with throwaway_sentinel(tmp_path, flavour_binary("redis")) as group:
        url = f"{group.url}&replicas=1&replica_timeout=0.25"
        store = store_from_url(url, prefix=redis_prefix())
        assert isinstance(store, RedisStore)
        with store:
            result = _stream_through_failover(group, store)
    assert result.lost == 0
    assert result.unavailable > 0  # the writes that could not be acknowledged said so
    assert result.requests > result.unavailable


def test_failover_without_replicas_loses_writes_answered_200(tmp_path: Path) -> None:
    """The default measured: the old primary takes writes until it is demoted, then drops them."""
    binary = flavour_binary("redis")
    with (
        throwaway_sentinel(tmp_path, binary) as group,
        RedisStore(group.url, redis_prefix()) as store,
    ):
        result = _stream_through_failover(group, store)
    assert result.lost > 0


def test_min_replicas_to_write_refuses_writes_on_a_primary_without_its_replica(
    tmp_path: Path,
) -> None:
    """min-replicas-to-write 1 on the servers: once the replica left, the old primary refuses."""
    settings = ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "1"]
    binary = flavour_binary("redis")
    with (
        throwaway_sentinel(tmp_path, binary, settings) as group,
        RedisStore(group.url, redis_prefix()) as store,
    ):
        result = _stream_through_failover(group, store)
    assert result.unavailable > 0
