"""RedisStore on a Redis (and a Valkey) that runs out of memory or may evict sessions."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import webtest

from tests.support.servers import REDIS_FLAVOURS, flavour_binary, redis_prefix, throwaway_redis
from wsgisession import RedisStore, SessionMiddleware
from wsgisession.testing import NOW, new_key

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

redis = pytest.importorskip("redis")


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Logs a user in: one new session per request."""
    environ["wsgisession"]["user"] = "ann"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.mark.parametrize("flavour", REDIS_FLAVOURS)
def test_out_of_memory_is_a_503_whose_log_names_maxmemory(
    flavour: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis at maxmemory with noeviction: a 503, logged with what to change (no 500)."""
    settings = ["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"]
    with throwaway_redis(tmp_path, extra=settings, binary=flavour_binary(flavour)) as server:
        with redis.Redis.from_url(server.url) as filler:
            for size in (100_000, 1_000, 10):  # fill it to the last few bytes
                with pytest.raises(redis.exceptions.OutOfMemoryError):
                    for index in range(100_000):
                        filler.set(f"filler:{size}:{index}", "x" * size)
        with RedisStore(server.url, redis_prefix()) as store:
            client = webtest.TestApp(SessionMiddleware(app, store=store))
            with caplog.at_level(logging.ERROR, logger="wsgisession"):
                # Right after a refusal Redis may be a few bytes under its limit, and let one
                # more write in: new sessions go on until the first 503.
                statuses = []
                for _ in range(5):
                    client.reset()  # no cookie: every request makes a new session
                    statuses.append(client.get("/", status="*").status_int)
    assert set(statuses) <= {200, 503} and statuses[-1] == 503
    assert "maxmemory" in caplog.text and "noeviction" in caplog.text


@pytest.mark.parametrize("policy", ["volatile-lru", "allkeys-lru"])
def test_stats_warns_when_redis_may_evict_sessions(
    policy: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An evicting maxmemory-policy (volatile-* too: sessions have a TTL) is warned of by stats."""
    settings = ["--maxmemory", "64mb", "--maxmemory-policy", policy]
    with (
        throwaway_redis(tmp_path, extra=settings) as server,
        RedisStore(server.url, redis_prefix()) as store,
    ):
        store.create(new_key(), {"user": "ann"}, {}, NOW + 60, NOW)
        with caplog.at_level(logging.WARNING, logger="wsgisession"):
            assert store.stats(NOW).sessions == 1
    assert f"maxmemory-policy {policy}" in caplog.text
    assert "set maxmemory-policy noeviction" in caplog.text


def test_stats_is_quiet_with_noeviction(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With noeviction (the policy a session Redis needs) stats warns of nothing."""
    settings = ["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"]
    with (
        throwaway_redis(tmp_path, extra=settings) as server,
        RedisStore(server.url, redis_prefix()) as store,
        caplog.at_level(logging.WARNING, logger="wsgisession"),
    ):
        assert store.stats(NOW).sessions == 0
    assert "maxmemory" not in caplog.text
