"""RedisStore on a six-node Redis Cluster (and a Valkey one) started by the tests on loopback."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import pytest
import webtest
from webob import Request

from tests.support.servers import RedisClusterServers, free_port, redis_prefix
from wsgisession import (
    ConfigurationError,
    RedisStore,
    SessionMiddleware,
    StoreUnavailableError,
    store_from_url,
)
from wsgisession.cli import main
from wsgisession.testing import DAY, NOW, StoreContract, new_key

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

redis = pytest.importorskip("redis")


def _drop(cluster: RedisClusterServers, prefix: str) -> None:
    """Delete every key under *prefix* on every primary."""
    for port in cluster.ports:
        with redis.Redis(port=port, socket_timeout=5) as node:
            if node.info("replication")["role"] != "master":
                continue
            names = list(node.scan_iter(match=prefix + "*", count=1000))
            for name in names:
                node.delete(name)


@pytest.fixture
def cluster_store(redis_cluster: RedisClusterServers) -> Iterator[RedisStore]:
    """A RedisStore built from the cluster's redis+cluster:// URL, with a prefix of its own."""
    prefix = redis_prefix()
    store = store_from_url(redis_cluster.url, prefix=prefix)
    assert isinstance(store, RedisStore)
    with store:
        yield store
    _drop(redis_cluster, prefix)


class TestClusterStoreContract(StoreContract):
    @pytest.fixture
    def store(self, cluster_store: RedisStore) -> RedisStore:
        return cluster_store


def _fill(store: RedisStore, live: int, dead: int, now: float) -> list[str]:
    keys = []
    for index in range(live + dead):
        key = new_key()
        expires = now + DAY if index < live else now - 10
        store.create(key, {"n": index}, {}, expires, now - 20)
        keys.append(key)
    return keys


def _nodes_holding(cluster: RedisClusterServers, prefix: str) -> int:
    count = 0
    for port in cluster.ports:
        with redis.Redis(port=port) as node:
            if node.info("replication")["role"] == "master" and any(
                node.scan_iter(match=prefix + "*", count=1000)
            ):
                count += 1
    return count


def test_purge_and_stats_cover_every_primary(
    cluster_store: RedisStore, redis_cluster: RedisClusterServers
) -> None:
    """25 sessions spread over the three primaries: stats counts all 15 live, purge the 10 dead."""
    _fill(cluster_store, live=15, dead=10, now=NOW)
    assert _nodes_holding(redis_cluster, cluster_store.prefix) == 3
    assert cluster_store.stats(NOW).sessions == 15
    assert cluster_store.purge(NOW) == 10
    assert cluster_store.stats(NOW).sessions == 15
    assert cluster_store.purge(NOW) == 0


def test_cli_counts_every_node_with_the_cluster_url(
    redis_cluster: RedisClusterServers, capsys: pytest.CaptureFixture[str]
) -> None:
    """stats and purge on redis+cluster:// see all 25 sessions; one node's URL is refused."""
    prefix = redis_prefix()
    now = time.time()
    with store_from_url(redis_cluster.url, prefix=prefix) as store:
        assert isinstance(store, RedisStore)
        _fill(store, live=20, dead=5, now=now)
    try:
        assert main(["stats", "--prefix", prefix, redis_cluster.url]) == 0
        assert re.fullmatch(r"20 live sessions, \d+ bytes\n", capsys.readouterr().out)
        one_node = f"redis://127.0.0.1:{redis_cluster.ports[0]}/0"
        assert main(["stats", "--prefix", prefix, one_node]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "this is a cluster, so use redis+cluster://" in err
        assert main(["purge", "--dry-run", "--prefix", prefix, redis_cluster.url]) == 0
        assert capsys.readouterr().out.startswith("would delete 5 expired sessions")
        assert main(["purge", "--prefix", prefix, redis_cluster.url]) == 0
        assert capsys.readouterr().out.endswith("deleted 5 expired sessions\n")
    finally:
        _drop(redis_cluster, prefix)


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """/set?k=v sets keys, /get?k=name reads one."""
    request = Request(environ)
    session = environ["wsgisession"]
    if request.path == "/set":
        session.update(request.GET)
        body = "ok"
    else:
        body = str(session.get(request.GET["k"], ""))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


def test_plain_client_on_a_cluster_node_says_use_the_cluster_url(
    redis_cluster: RedisClusterServers, caplog: pytest.LogCaptureFixture
) -> None:
    """redis:// to one node: sessions in other slots get a 503 logged as 'this is a cluster'."""
    prefix = redis_prefix()
    with RedisStore(f"redis://127.0.0.1:{redis_cluster.ports[0]}/0", prefix) as store:
        client = webtest.TestApp(SessionMiddleware(app, store=store))
        statuses = []
        with caplog.at_level(logging.ERROR, logger="wsgisession"):
            for _ in range(12):  # each new session lands in a random slot, most on other nodes
                client.reset()
                statuses.append(client.get("/set?user=ann", expect_errors=True).status_int)
        assert set(statuses) <= {200, 503} and 503 in statuses
        assert "this is a cluster, so use redis+cluster://" in caplog.text
    _drop(redis_cluster, prefix)


def test_a_cluster_that_lost_a_slot_gives_503_saying_what_to_check(
    cluster_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    """CLUSTERDOWN (a slot served by no primary) is a 503 that says to check CLUSTER INFO."""
    client = webtest.TestApp(SessionMiddleware(app, store=cluster_store))
    client.get("/set?user=ann")
    pattern = cluster_store.prefix + "*"
    primaries = redis.RedisCluster.PRIMARIES
    name = next(iter(cluster_store.client.scan_iter(match=pattern, target_nodes=primaries)))
    slot = cluster_store.client.keyslot(name)
    owner = cluster_store.client.get_node_from_key(name)
    with redis.Redis(host=owner.host, port=owner.port) as node:
        node.execute_command("CLUSTER", "DELSLOTS", slot)
        try:
            with caplog.at_level(logging.ERROR, logger="wsgisession"):
                response = client.get("/get?k=user", status=503)
        finally:
            node.execute_command("CLUSTER", "ADDSLOTS", slot)
    assert response.headers["Retry-After"].isdigit()
    assert "StoreUnavailableError" in caplog.text and "CLUSTER INFO" in caplog.text
    assert client.get("/get?k=user").text == "ann"


def test_unreachable_cluster_is_a_store_error_at_construction(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cluster URL whose nodes do not answer is StoreUnavailableError; the CLI exits 1."""
    url = f"redis+cluster://127.0.0.1:{free_port()}/"
    with pytest.raises(StoreUnavailableError, match="nodes in the URL are reachable"):
        store_from_url(url)
    assert main(["stats", url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nodes in the URL are reachable" in err


def test_ready_cluster_client_purges_and_counts_every_primary(
    redis_cluster: RedisClusterServers,
) -> None:
    """A RedisCluster client handed in: purge and stats work on every primary (no raw exception)."""
    prefix = redis_prefix()
    client = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
    try:
        store = RedisStore(client, prefix)
        _fill(store, live=6, dead=6, now=NOW)
        assert store.stats(NOW).sessions == 6
        assert store.purge(NOW) == 6
        assert "cluster 127.0.0.1:" in repr(store)
    finally:
        client.close()
        _drop(redis_cluster, prefix)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://127.0.0.1:7000/3", "database 0 only"),
        ("redis+cluster://127.0.0.1:7000/?db=1", "not known"),
        ("redis+cluster://127.0.0.1:x/", "not host:port"),
        ("redis+sentinel://127.0.0.1:26379/", "names its service"),
        ("redis+sentinel://127.0.0.1:26379/svc?db=zero", "database number"),
        ("redis+sentinel://127.0.0.1:26379/svc?bogus=1", "not known"),
        ("redis://127.0.0.1/0?replicas=-1", "replicas="),
        ("redis://127.0.0.1/0?replica_timeout=5", "below socket_timeout"),
        ("redis+cluster://127.0.0.1:7000/?replicas=1", "Redis Cluster"),
    ],
)
def test_bad_cluster_and_sentinel_urls_say_what_to_use(url: str, message: str) -> None:
    """A cluster or Sentinel URL that cannot work is a ConfigurationError saying what to write."""
    with pytest.raises(ConfigurationError, match=message):
        RedisStore(url)
