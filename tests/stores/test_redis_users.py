"""RedisStore's user index on real servers: round trips, TTL trimming, and revocation races.

The store contract (test_redis.py, test_redis_lean.py, test_redis_cluster.py) already holds the
index to its behaviour; here are what only Redis shows: how many requests each operation
sends, that sessions Redis expired by itself leave their user's index, and, on a six-node
cluster, that a revocation racing a regenerate never leaves the moved session alive, step by
step and under threads.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.servers import RedisClusterServers, RoundTrips, drop_redis_prefix, redis_prefix
from wsgisession import RedisStore
from wsgisession.records import USER, Changes
from wsgisession.testing import DAY, NOW, new_key

redis = pytest.importorskip("redis")


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


def _counted(store: RedisStore, sent: RoundTrips) -> dict[str, int]:
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
        (
            "login: bind on a new session",
            lambda: store.create(new_key(), {}, _meta(ann), NOW + DAY, NOW),
        ),
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
        (
            "bound regenerate",
            lambda: store.create(moved, {}, _meta(ann), NOW + DAY, NOW, replaces=login),
        ),
        ("bound logout", lambda: store.delete(moved)),
    ]
    moved = new_key()
    counts = {name: sent.of(action) for name, action in steps}
    assert store.load(login, NOW) is None and store.load(moved, NOW) is None
    assert store.user_sessions(ann, NOW) == []
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
    "bound regenerate": 1,
    "bound logout": 1,
}

#: Requests per operation on a cluster. The bound touch's two go in one pipelined round trip
#: (the script to the session's node, the score to the index's: one request when that is the
#: same node), as do a bound regenerate's last two (the new record, the old key out of the
#: index), the list's record reads and each revocation round's (one request per node holding
#: some of the sessions).
CLUSTER = {
    **SINGLE,
    "unbound regenerate": 2,
    "login: regenerate and bind": 3,
    "login: bind on a new session": 2,
    "login: bind on save": 2,
    "bound touch": 2,
    "bound regenerate": 3,
    "bound logout": 2,
}


def test_requests_per_operation_on_one_redis(single: RedisStore, sent: RoundTrips) -> None:
    """Every operation, bound or not, is one request on one Redis, lean path or client."""
    assert _counted(single, sent) == SINGLE


def test_requests_per_operation_on_a_cluster(cluster: RedisStore, sent: RoundTrips) -> None:
    """On a cluster an unbound request costs what it did; binding costs one request more."""
    counts = _counted(cluster, sent)
    # One pipelined round trip sends one request to each node it touches: how many nodes
    # that is depends on where the keys' slots fall.
    nodes = {
        "bound touch": (1, 2),
        "bound regenerate": (3, 4),
        "list (4 sessions)": (2, 4),
        "revoke 3 others": (3, 5),
    }
    for name, (low, high) in nodes.items():
        assert low <= counts.pop(name) <= high, name
    expected = {name: n for name, n in CLUSTER.items() if name not in nodes}
    assert counts == expected


class QuickMargin(RedisStore):
    """A store whose TTL margin is a fraction of a second, so Redis expires records in a test."""

    ttl_margin = 0.3


def _expired_by_ttl_leave_the_index(store: RedisStore) -> None:
    ann = "ann-" + new_key()[:8]
    index = _index_name(store, ann)
    now = time.time()
    short = [new_key() for _ in range(3)]
    for key in short:
        store.create(key, {"n": 1}, _meta(ann), now + 0.2, now)
    long = new_key()
    store.create(long, {"n": 1}, _meta(ann), now + DAY, now)
    assert store.client.zcard(index) == 4
    time.sleep(1.0)  # past each short record's expiry and TTL margin: Redis drops them
    later = time.time()
    assert not any(store.client.exists(store.prefix + key) for key in short)
    assert store.client.zcard(index) == 4  # no purge ran, no script touched the index yet
    login = new_key()
    store.create(login, {"n": 1}, _meta(ann), later + DAY, later)
    assert store.client.zcard(index) == 2  # the login trimmed the three dead members
    assert {key for key, _ in store.user_sessions(ann, later)} == {long, login}


def test_sessions_redis_expired_leave_the_index(redis_url: str) -> None:
    """Records Redis expired by their TTL, with no purge, are trimmed by the user's next login."""
    prefix = redis_prefix()
    with QuickMargin(redis_url, prefix) as store:
        _expired_by_ttl_leave_the_index(store)
    drop_redis_prefix(redis_url, prefix)


def test_sessions_redis_expired_leave_the_index_on_a_cluster(
    redis_cluster: RedisClusterServers,
) -> None:
    """The same on a cluster, where the records and the index are in different slots."""
    prefix = redis_prefix()
    with QuickMargin(redis_cluster.url, prefix) as store:
        _expired_by_ttl_leave_the_index(store)
    _drop_cluster(redis_cluster, prefix)


def test_an_idle_users_index_expires_with_its_last_session(redis_url: str) -> None:
    """The index's own TTL follows its latest session: a user who never returns leaves nothing."""
    prefix = redis_prefix()
    with QuickMargin(redis_url, prefix) as store:
        ann = "ann-" + new_key()[:8]
        now = time.time()
        key = new_key()
        store.create(key, {"n": 1}, _meta(ann), now + 0.2, now)
        moved = new_key()
        assert store.create(moved, {"n": 1}, _meta(ann), now + 0.3, now, replaces=key)
        assert 0 < store.client.pttl(_index_name(store, ann)) <= 600
        time.sleep(1.0)
        assert store.client.exists(_index_name(store, ann), store.prefix + moved) == 0
    drop_redis_prefix(redis_url, prefix)


def test_purge_trims_every_index(redis_url: str) -> None:
    """purge() deletes the dead records and trims the indexes, and counts records only."""
    prefix = redis_prefix()
    with RedisStore(redis_url, prefix) as store:
        ann, bob = "ann-" + new_key()[:8], "bob-" + new_key()[:8]
        for user in (ann, bob):
            store.create(new_key(), {}, _meta(user), NOW + 10, NOW)
            store.create(new_key(), {}, _meta(user), NOW + DAY, NOW)
        # A member whose record went without a script (FLUSH of one key, another tool):
        stray = new_key()
        store.create(stray, {}, _meta(ann), NOW + 20, NOW)
        store.client.delete(prefix + stray)
        assert store.purge(NOW + 10 + store.ttl_margin + 30) == 2
        assert store.client.zcard(_index_name(store, ann)) == 1
        assert store.client.zcard(_index_name(store, bob)) == 1
        assert store.stats(NOW).sessions == 2
    drop_redis_prefix(redis_url, prefix)


def test_a_client_that_decodes_responses_lists_and_revokes(redis_url: str) -> None:
    """str replies (decode_responses=True) list and revoke the same as bytes."""
    prefix = redis_prefix()
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        store = RedisStore(client, prefix)
        ann = "zoë ✓"
        one, two = new_key(), new_key()
        for key in (one, two):
            store.create(key, {"a": [1]}, _meta(ann), NOW + DAY, NOW)
        found = dict(store.user_sessions(ann, NOW))
        assert set(found) == {one, two} and found[one].data == {"a": [1]}
        assert store.revoke_user(ann, NOW, keep=two) == 1
        assert [key for key, _ in store.user_sessions(ann, NOW)] == [two]
    drop_redis_prefix(redis_url, prefix)


# Revocation racing a regenerate on a cluster, one interleaving at a time -------------------


class Pause:
    """Holds a thread at one point of a store call until the test lets it go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()

    def hold(self) -> None:
        self.reached.set()
        assert self.go.wait(10), "the test never let the paused call go on"


def _pause_move(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch, op: str, position: int
) -> Pause:
    """Pause a move (create with replaces) after its script call whose ARGV[position] is op."""
    pause = Pause()
    original = store._evalsha

    def evalsha(script: Any, name: Any, args: list[Any], write: bool = False) -> Any:
        result = original(script, name, args, write)
        if len(args) > position and args[position] == op:
            pause.hold()
        return result

    monkeypatch.setattr(store, "_evalsha", evalsha)
    return pause


def _move_in_thread(store: RedisStore, old: str, user: str) -> tuple[str, list[Any], Any]:
    new = new_key()
    outcome: list[Any] = []

    def move() -> None:
        outcome.append(store.create(new, {"n": 2}, _meta(user), NOW + DAY, NOW, replaces=old))

    thread = threading.Thread(target=move)
    thread.start()
    return new, outcome, thread


@pytest.mark.parametrize(
    ("op", "position"),
    [("add", 0), ("take", 3)],
    ids=["after-the-new-key-entered-the-index", "after-the-old-record-was-taken"],
)
def test_a_move_paused_while_its_user_is_revoked_writes_nothing(
    cluster: RedisStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    op: str,
    position: int,
) -> None:
    """A regenerate held between its steps while revoke_user runs: it ends without a session,
    and loading the key its tombstone holds is a missing session, not a corrupt one."""
    ann = "ann-" + new_key()[:8]
    old = new_key()
    cluster.create(old, {"n": 1}, _meta(ann), NOW + DAY, NOW)
    pause = _pause_move(cluster, monkeypatch, op, position)
    new, outcome, thread = _move_in_thread(cluster, old, ann)
    assert pause.reached.wait(10)
    ended = cluster.revoke_user(ann, NOW)
    pause.go.set()
    thread.join(10)
    assert outcome == [False]
    assert ended == (1 if op == "add" else 0)  # after the take, the old record was gone
    assert cluster.client.hkeys(cluster.prefix + new) == [b"@x"]
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        assert cluster.load(old, NOW) is None and cluster.load(new, NOW) is None
    assert caplog.records == []
    assert cluster.user_sessions(ann, NOW) == []


def test_a_login_paused_while_its_user_is_revoked_is_a_login_after_it(
    cluster: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An anonymous session logging in, held after its first steps while the user is revoked:
    the login lands and is listed, as a login after the revocation (the same as on one node)."""
    ann = "ann-" + new_key()[:8]
    earlier, anonymous = new_key(), new_key()
    cluster.create(earlier, {"n": 1}, _meta(ann), NOW + DAY, NOW)
    cluster.create(anonymous, {"n": 1}, _meta(None), NOW + DAY, NOW)
    pause = _pause_move(cluster, monkeypatch, "take", 3)
    new, outcome, thread = _move_in_thread(cluster, anonymous, ann)
    assert pause.reached.wait(10)
    assert cluster.revoke_user(ann, NOW) == 1  # the earlier session; the login's key is marked
    pause.go.set()
    thread.join(10)
    assert outcome == [True]
    assert cluster.load(earlier, NOW) is None and cluster.load(anonymous, NOW) is None
    assert [key for key, _ in cluster.user_sessions(ann, NOW)] == [new]
    assert cluster.revoke_user(ann, NOW) == 1 and cluster.load(new, NOW) is None


def test_a_move_that_lands_while_a_revocation_reads_is_found_next_round(
    cluster: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation read the index before the move added its key, and the move then took
    its old record before the revocation reached it: the next reading finds the new key."""
    ann = "ann-" + new_key()[:8]
    old = new_key()
    cluster.create(old, {"n": 1}, _meta(ann), NOW + DAY, NOW)
    pause = Pause()
    original = cluster._cluster_scripts
    held: list[bool] = []

    def cluster_scripts(calls: list[Any]) -> list[Any]:
        if not held:  # the first round's revocations: hold them back
            held.append(True)
            pause.hold()
        return original(calls)

    monkeypatch.setattr(cluster, "_cluster_scripts", cluster_scripts)
    ended: list[int] = []
    revoker = threading.Thread(target=lambda: ended.append(cluster.revoke_user(ann, NOW)))
    revoker.start()
    assert pause.reached.wait(10)
    new = new_key()
    assert cluster.create(new, {"n": 2}, _meta(ann), NOW + DAY, NOW, replaces=old)
    assert cluster.load(new, NOW) is not None
    pause.go.set()
    revoker.join(10)
    assert ended == [1]
    assert cluster.load(new, NOW) is None and cluster.load(old, NOW) is None
    assert cluster.user_sessions(ann, NOW) == []


def _chains_outlive_no_revocation(cluster: RedisStore) -> None:
    ann = "ann-" + new_key()[:8]
    chains = []
    for index in range(6):
        anonymous, key = new_key(), new_key()
        # Half logged in by a move from an anonymous session, half bound when created.
        if index % 2:
            cluster.create(anonymous, {"n": 1}, _meta(None), NOW + DAY, NOW)
            assert cluster.create(key, {"n": 1}, _meta(ann), NOW + DAY, NOW, anonymous)
        else:
            cluster.create(key, {"n": 1}, _meta(ann), NOW + DAY, NOW)
        chains.append([key])
    start = threading.Barrier(len(chains) + 1)
    broken: list[bool] = [False] * len(chains)

    def mover(index: int) -> None:
        chain = chains[index]
        start.wait()
        for _ in range(200):
            new = new_key()
            if not cluster.create(new, {"n": 1}, _meta(ann), NOW + DAY, NOW, chain[-1]):
                broken[index] = True
                return
            chain.append(new)

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(len(chains))]
    for thread in threads:
        thread.start()
    start.wait()
    time.sleep(0.05)  # let the moves get going
    cluster.revoke_user(ann, NOW)
    for thread in threads:
        thread.join(30)
    assert all(broken), "a chain moved 200 times past a revocation"
    alive = [k for chain in chains for k in chain if cluster.load(k, NOW) is not None]
    assert alive == [], f"{len(alive)} moved sessions outlived the revocation"
    assert cluster.user_sessions(ann, NOW) == []


def test_regenerate_chains_under_repeated_revocations_on_a_cluster(cluster: RedisStore) -> None:
    """Threads moving the user's sessions to new keys as fast as they can while the user is
    revoked: after each revocation no chain lives on, round after round."""
    for _ in range(5):
        _chains_outlive_no_revocation(cluster)
