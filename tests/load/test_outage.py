"""Network store servers that stop, restart or hang under a running gunicorn (T49 to T52).

Each test runs its own throwaway Redis or PostgreSQL server (never a shared one), stops it
between requests and starts it again on the same port, while gunicorn keeps running.
"""

from __future__ import annotations

import secrets
import socket
import time
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


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port that completes TCP handshakes and then never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # connections wait in the backlog; nobody ever accepts them
        yield int(listener.getsockname()[1])


HUNG_URLS = {
    "redis": "redis://127.0.0.1:{port}/0?socket_timeout=1&socket_connect_timeout=1",
    "postgres": "postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=1",
}


@pytest.mark.parametrize("kind", NETWORK_STORES)
def test_hung_store_answers_within_its_timeout(
    kind: str, blackhole: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """T52: a store that accepts and never answers: a 503 within its timeout, far under 30 s."""
    url = HUNG_URLS[kind].format(port=blackhole)
    with serving(request, tmp_path, kind, "sync 4", server_url=url,
                 WSGISESSION_TEST_WARM="0") as served:  # fmt: skip
        unknown = secrets.token_urlsafe(32)  # well formed, so the store is asked about it
        for path, cookie in (("/set?a=1", None), ("/dump", unknown)):
            with Client(served.server.port, cookie, timeout=25) as client:
                started = time.monotonic()
                status, body, headers = client.get(path)
                waited = time.monotonic() - started
            assert status == 503, f"{path}: {status} {body}\n{served.server.tail()}"
            assert headers["Retry-After"] and body == GENERIC_BODY
            assert waited < 8, f"{path} took {waited:.1f}s\n{served.server.tail()}"
