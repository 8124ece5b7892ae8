"""A network store's server stopped and started again under a running gunicorn (T49, T50, T51).

Each test runs its own throwaway Redis or PostgreSQL server (never a shared one), stops it
between requests and starts it again on the same port, while gunicorn keeps running.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .backends import NETWORK_STORES
from .server import Client, Served, serving
from .throwaway import Throwaway, ThrowawayPostgres, ThrowawayRedis

pytestmark = pytest.mark.load

GENERIC_BODY = "Service temporarily unavailable. Please try again shortly.\n"


@pytest.fixture(params=NETWORK_STORES)
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Served, Throwaway]]:
    """A 4-worker server on a store whose own throwaway server the test may stop."""
    kind = request.param
    store_server: Throwaway = ThrowawayRedis() if kind == "redis" else ThrowawayPostgres()
    try:
        store_server.start()
        url = store_server.url if isinstance(store_server, ThrowawayRedis) else store_server.dsn
        with serving(request, tmp_path, kind, "sync 4", server_url=url) as served:
            yield served, store_server
    finally:
        store_server.close()


def test_outage_gives_the_policy_and_a_restart_heals_without_an_app_restart(
    outage: tuple[Served, Throwaway],
) -> None:
    """T49/T50/T51: store down → 503 (or empty unsaved session); store back → old cookie works."""
    served, store_server = outage
    port = served.server.port
    with Client(port) as client:
        assert client.get("/set?a=1")[0] == 200, served.server.tail()
        cookie = client.cookie
    assert cookie
    # Warm a connection in every worker, so the outage cuts pooled connections, not only new ones.
    for _ in range(12):
        with Client(port, cookie) as client:
            assert client.get("/dump")[0] == 200

    store_server.stop()
    log_before = served.server.log()
    for _ in range(8):  # T49: the fail-closed policy, in whichever worker answers
        with Client(port, cookie) as client:
            status, body, headers = client.get("/dump")
        assert status == 503, f"{status} {body}\n{served.server.tail()}"
        assert headers["Retry-After"] and body == GENERIC_BODY
        assert not headers.get_all("Set-Cookie")
    with Client(port, cookie) as client:  # T50: fail-open serves an empty session, unsaved
        status, body, headers = client.get("/open/set?b=2")
    assert (status, body) == (200, {"b": "2"}), served.server.tail()
    assert not headers.get_all("Set-Cookie") and client.cookie == cookie
    with Client(port) as client:  # no session can be created either
        assert client.get("/set?c=3")[0] == 503
    failures = served.server.log()[len(log_before) :]
    assert failures.count("session store failed") == 10, served.server.tail()
    assert cookie not in failures  # T41: no raw id in the log

    store_server.start()
    for _ in range(12):  # T51: every worker reconnects by itself
        with Client(port, cookie) as client:
            status, body, _ = client.get("/dump")
        assert status == 200, f"{status} {body}\n{served.server.tail()}"
        assert body["data"] == {"a": "1"}, body
    with Client(port, cookie) as client:
        assert client.get("/set?d=4")[0] == 200
        assert client.get("/dump")[1]["data"] == {"a": "1", "d": "4"}
    assert "Traceback" not in served.server.log(), served.server.tail()
