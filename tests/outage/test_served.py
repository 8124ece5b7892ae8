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

from tests.live.load.server import REPORT, Client, Row, Served, run_together, serving
from tests.support.servers import Throwaway, ThrowawayPostgres, ThrowawayRedis
from tests.support.stores import NETWORK_STORES

pytestmark = pytest.mark.load

GENERIC_BODY = "Service temporarily unavailable. Please try again shortly.\n"


#: Store options that keep an outage's answers quick: connection refused is immediate for
#: Redis, while a PostgreSQL pool waits up to its timeout for a connection.
QUICK = {"redis": {"socket_timeout": 1.0}, "postgres": {"timeout": 1.0}}


@pytest.fixture(params=NETWORK_STORES)
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Served, Throwaway]]:
    """A 4-worker server on a store whose own throwaway server the test may stop."""
    kind = request.param
    store_server: Throwaway = ThrowawayRedis() if kind == "redis" else ThrowawayPostgres()
    try:
        store_server.start()
        url = store_server.url if isinstance(store_server, ThrowawayRedis) else store_server.dsn
        with serving(request, tmp_path, kind, "sync 4", QUICK[kind], server_url=url) as served:
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
    answers: list[tuple[int, object, object]] = []

    def during(index: int) -> None:
        path, jar = [("/dump", cookie), ("/open/set?b=2", cookie), ("/set?c=3", None)][index % 3]
        with Client(port, jar) as client:
            status, body, headers = client.get(path)
            answers.append((index % 3, (status, body, headers), client.cookie))

    errors = run_together(9, during)
    assert not errors, errors
    for kind, (status, body, headers), kept in answers:
        context = f"{kind}: {status} {body}\n{served.server.tail()}"
        assert not headers.get_all("Set-Cookie"), context
        if kind == 1:  # T50: fail-open serves an empty session, unsaved; the cookie is kept
            assert (status, body, kept) == (200, {"b": "2"}, cookie), context
        else:  # T49: fail-closed, whichever worker answers; also when creating a session
            assert (status, body) == (503, GENERIC_BODY) and headers["Retry-After"], context
    failures = served.server.log()[len(log_before) :]
    assert failures.count("session store failed") == 9, served.server.tail()  # once a request
    assert cookie not in failures  # T41: no raw id in the log

    store_server.start()  # T51: every worker reconnects by itself, the app is not restarted
    restarted = time.monotonic()
    streak = 0
    while streak < 12:
        with Client(port, cookie) as client:
            status, body, _ = client.get("/dump")
        streak = streak + 1 if status == 200 else 0
        assert time.monotonic() - restarted < 30, f"not healed in 30 s\n{served.server.tail()}"
        if status == 200:
            assert body["data"] == {"a": "1"}, body
        else:
            time.sleep(0.1)
    REPORT.append(Row(served.backend.kind, "sync 4", "server stopped, restarted: healed in s",
                      9, 9, 0, 0, time.monotonic() - restarted))  # fmt: skip
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
    "redis": "redis://127.0.0.1:{port}/0",
    "postgres": "postgresql://postgres@127.0.0.1:{port}/postgres",
}


@pytest.mark.parametrize("kind", NETWORK_STORES)
def test_hung_store_answers_within_its_timeout(
    kind: str, blackhole: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """T52: a store that accepts and never answers: a 503 within its timeout, far under 30 s."""
    url = HUNG_URLS[kind].format(port=blackhole)
    with serving(request, tmp_path, kind, "sync 4", QUICK[kind], server_url=url,
                 WSGISESSION_TEST_WARM="0") as served:  # fmt: skip
        unknown = secrets.token_urlsafe(32)  # well formed, so the store is asked about it
        for path, cookie in (("/set?a=1", None), ("/dump", unknown)):
            with Client(served.server.port, cookie, timeout=25) as client:
                started = time.monotonic()
                status, body, headers = client.get(path)
                waited = time.monotonic() - started
            assert status == 503, f"{path}: {status} {body}\n{served.server.tail()}"
            assert headers["Retry-After"] and body == GENERIC_BODY
            assert waited < 5, f"{path} took {waited:.1f}s\n{served.server.tail()}"
        served.backend.cleanups.clear()  # nothing was stored, and the blackhole never answers
