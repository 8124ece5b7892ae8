"""RedisStore's user index on real servers: round trips, TTL trimming, and revocation races.

The store contract (test_redis.py, test_redis_lean.py, test_redis_cluster.py) already holds the
index to its behaviour; here are what only Redis shows: how many requests each operation
sends, that sessions Redis expired by itself leave their user's index, and, on a six-node
cluster, that a revocation racing a regenerate never leaves the moved session alive, step by
step and under threads.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.services import RedisClusterServers, drop_redis_prefix, redis_prefix
from wsgisession import RedisStore
from wsgisession.records import USER, Changes
from wsgisession.testing import DAY, NOW, new_key

redis = pytest.importorskip("redis")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every request redis-py's connections send (the lean path's too): each is one
    round trip, except the sends of one cluster pipeline to several nodes, which go at once."""
    count = [0]
    original = redis.Connection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        count[0] += 1
        original(self, command, check_health)

    monkeypatch.setattr(redis.Connection, "send_packed_command", counting)
    return count


def _trips(sent: list[int], action: Callable[[], Any]) -> int:
    before = sent[0]
    action()
    return sent[0] - before


def _drop_cluster(cluster: RedisClusterServers, prefix: str) -> None:
    for port in cluster.ports:
        with redis.Redis(port=port, socket_timeout=5) as node:
            if node.info("replication")["role"] == "master":
                for name in list(node.scan_iter(match=prefix + "*", count=1000)):
                    node.delete(name)


@pytest.fixture(params=["url", "client"])
def single(request: pytest.FixtureRequest, redis_url: str) -> Iterator[RedisStore]:
    """A store on one Redis: from a URL (the lean path), then on a redis-py client handed in."""
    prefix = redis_prefix()
    if request.param == "url":
        with RedisStore(redis_url, prefix) as store:
            yield store
    else:
        with redis.Redis.from_url(redis_url) as client:
            yield RedisStore(client, prefix)
    drop_redis_prefix(redis_url, prefix)


@pytest.fixture
def cluster(redis_cluster: RedisClusterServers) -> Iterator[RedisStore]:
    """A store on the six-node cluster, with a prefix of its own."""
    prefix = redis_prefix()
    with RedisStore(redis_cluster.url, prefix) as store:
        yield store
    _drop_cluster(redis_cluster, prefix)


def _meta(user: str | None) -> dict[str, Any]:
    return {"c": NOW} if user is None else {"c": NOW, USER: user}


def _index_name(store: RedisStore, user: str) -> str:
    """Where the user's index lives, as the module docstring names it."""
    return store.prefix + "u:" + hashlib.sha1(user.encode(), usedforsecurity=False).hexdigest()


def _warm(store: RedisStore) -> None:
    """Run every script once, so a first call's NOSCRIPT (and SCRIPT LOAD) is not counted."""
    user = "warm-" + new_key()[:8]
    old, key, other = new_key(), new_key(), new_key()
    store.create(old, {}, _meta(user), NOW + DAY, NOW)
    store.create(key, {}, _meta(user), NOW + DAY, NOW, replaces=old)
    store.save(key, Changes(updates={"a": 1}, expires=NOW + 2 * DAY, loaded=None), NOW)
    store.create(other, {}, _meta(None), NOW + DAY, NOW)
    store.save(other, Changes(meta=_meta(user), expires=NOW + DAY), NOW)
    store.user_sessions(user, NOW)
    for _ in range(6):  # sessions on every node, so that each loads the revocation script
        store.create(new_key(), {}, _meta(user), NOW + DAY, NOW)
    store.revoke_user(user, NOW, keep=key)
    store.delete(key)


def _counted(store: RedisStore, sent: list[int]) -> dict[str, int]:
    """The requests each operation sends, unbound and bound, in the order a user meets them."""
    _warm(store)
    ann, bob = "ann-" + new_key()[:8], "bob-" + new_key()[:8]
    anonymous, plain, login = new_key(), new_key(), new_key()
    for key in (anonymous, plain):
        store.create(key, {"n": 1}, _meta(None), NOW + DAY, NOW)
    before_login, binding = new_key(), new_key()
    for key in (before_login, binding):
        store.create(key, {"n": 1}, _meta(None), NOW + DAY, NOW)
    for _ in range(3):
        store.create(new_key(), {"n": 1}, _meta(ann), NOW + DAY, NOW)
    loaded: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("unbound create", lambda: store.create(new_key(), {}, _meta(None), NOW + DAY, NOW)),
        (
            "unbound regenerate",
            lambda: store.create(new_key(), {}, _meta(None), NOW + DAY, NOW, anonymous),
        ),
        ("unbound read", lambda: loaded.update(plain=store.load(plain, NOW))),
        (
            "unbound write",
            lambda: store.save(plain, Changes(updates={"a": 1}, loaded=loaded["plain"]), NOW),
        ),
        (
            "unbound touch",
            lambda: store.save(plain, Changes(expires=NOW + DAY, loaded=loaded["plain"]), NOW),
        ),
        ("unbound logout", lambda: store.delete(plain)),
        (
            "login: regenerate and bind",
            lambda: store.create(login, {}, _meta(ann), NOW + DAY, NOW, before_login),
        ),
        ("login: bind on a new session", lambda: store.create(new_key(), {}, _meta(ann), NOW + DAY, NOW)),
        (
            "login: bind on save",
            lambda: store.save(binding, Changes(meta=_meta(bob), expires=NOW + DAY), NOW),
        ),
        ("bound read", lambda: loaded.update(login=store.load(login, NOW))),
        (
            "bound write",
            lambda: store.save(login, Changes(updates={"a": 1}, loaded=loaded["login"]), NOW),
        ),
        (
            "bound touch",
            lambda: store.save(login, Changes(expires=NOW + DAY, loaded=loaded["login"]), NOW),
        ),
        ("list (4 sessions)", lambda: store.user_sessions(ann, NOW)),
        ("revoke 3 others", lambda: store.revoke_user(ann, NOW, keep=login)),
        ("bound logout", lambda: store.delete(login)),
    ]
    counts = {name: _trips(sent, action) for name, action in steps}
    assert store.load(login, NOW) is None and store.user_sessions(ann, NOW) == []
    assert [key for key, _ in store.user_sessions(bob, NOW)] == [binding]
    return counts


#: Requests per operation on one Redis: a bound session costs what an unbound one does.
SINGLE = {
    "unbound create": 1,
    "unbound regenerate": 1,
    "unbound read": 1,
    "unbound write": 1,
    "unbound touch": 1,
    "unbound logout": 1,
    "login: regenerate and bind": 1,
    "login: bind on a new session": 1,
    "login: bind on save": 1,
    "bound read": 1,
    "bound write": 1,
    "bound touch": 1,
    "list (4 sessions)": 1,
    "revoke 3 others": 1,
    "bound logout": 1,
}

#: Requests per operation on a cluster. The bound touch's two go in one pipelined round trip
#: (the script to the session's node, the score to the index's: one request when that is the
#: same node); so do the list's record reads and each revocation round's (one request per node
#: holding some of the sessions).
CLUSTER = {
    **SINGLE,
    "unbound regenerate": 2,
    "login: regenerate and bind": 3,
    "login: bind on a new session": 2,
    "login: bind on save": 2,
    "bound touch": 2,
    "bound logout": 2,
}


def test_requests_per_operation_on_one_redis(single: RedisStore, sent: list[int]) -> None:
    """Every operation, bound or not, is one request on one Redis, lean path or client."""
    assert _counted(single, sent) == SINGLE


def test_requests_per_operation_on_a_cluster(cluster: RedisStore, sent: list[int]) -> None:
    """On a cluster an unbound request costs what it did; binding costs one request more."""
    counts = _counted(cluster, sent)
    # One pipelined round trip sends one request to each node it touches: how many nodes
    # that is depends on where the keys' slots fall.
    nodes = {"bound touch": (1, 2), "list (4 sessions)": (2, 4), "revoke 3 others": (3, 5)}
    for name, (low, high) in nodes.items():
        assert low <= counts.pop(name) <= high, name
    expected = {name: n for name, n in CLUSTER.items() if name not in nodes}
    assert counts == expected
