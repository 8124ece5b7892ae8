"""Store outages on real servers: 503 or carry on, recovery, and a hung server (T49-T52).

Each test has a server of its own (Redis) or a table of its own on a throwaway cluster
(PostgreSQL) that it stops and starts again in the middle of the test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import webtest
from webob import Request

from tests.support.servers import (
    PostgresServer,
    RedisServer,
    blackhole,
    drop_postgres_table,
    postgres_table,
    redis_prefix,
)
from wsgisession import PostgresStore, RedisStore, SessionMiddleware, Store

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

GENERIC_BODY = "Service temporarily unavailable. Please try again shortly.\n"


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """/set?k=v sets keys, /get?k=name reads one, anything else leaves the session alone."""
    request = Request(environ)
    session = environ["wsgisession"]
    if request.path == "/set":
        for name, value in request.GET.items():
            session[name] = value
        body = "ok"
    elif request.path == "/get":
        body = str(session.get(request.GET["k"], ""))
    else:
        body = "noop"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


@dataclass
class Outage:
    """A store on a server the test can stop and start."""

    store: Store
    stop: Callable[[], None]
    start: Callable[[], None]


@pytest.fixture(params=["redis", "postgres"])
def outage(request: pytest.FixtureRequest) -> Iterator[Outage]:
    """A RedisStore or PostgresStore on a throwaway server, with short timeouts."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        with RedisStore(server.url, redis_prefix(), socket_timeout=1.0) as store:
            yield Outage(store, server.stop, server.start)
        return
    cluster: PostgresServer = request.getfixturevalue("postgres_server")
    table = postgres_table()
    with PostgresStore(cluster.dsn, table, timeout=1.0) as pg_store:
        yield Outage(pg_store, cluster.stop, cluster.start)
    cluster.start()
    drop_postgres_table(cluster.dsn, table)


def _client(store: Store, **options: Any) -> webtest.TestApp:
    return webtest.TestApp(SessionMiddleware(app, store=store, **options))


def _session_id(client: webtest.TestApp) -> str:
    return str(client.cookies["wsgisession"])


def test_store_down_gives_503_and_one_log_line(
    outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    """T49: store down, fail-closed: 503, Retry-After, generic body, no cookie, one log line."""
    client = _client(outage.store)
    client.get("/set?user=ann")
    session_id = _session_id(client)
    outage.stop()
    with caplog.at_level(logging.INFO, logger="wsgisession"):
        response = client.get("/get?k=user", status=503)
    assert response.headers["Retry-After"].isdigit()
    assert response.text == GENERIC_BODY
    assert "Set-Cookie" not in response.headers
    assert _session_id(client) == session_id
    lines = [r for r in caplog.records if r.name.startswith("wsgisession")]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    assert "StoreUnavailableError" in lines[0].getMessage()
    assert session_id not in caplog.text


def test_store_down_with_continue_serves_an_unsaved_session(outage: Outage) -> None:
    """T50: fail-open: the app runs with an empty session, nothing saved, the cookie untouched."""
    client = _client(outage.store, on_store_error="continue")
    client.get("/set?user=ann")
    session_id = _session_id(client)
    outage.stop()
    assert client.get("/get?k=user").text == ""
    response = client.get("/set?user=eve")
    assert response.text == "ok"
    assert "Set-Cookie" not in response.headers
    assert _session_id(client) == session_id
    outage.start()
    assert client.get("/get?k=user").text == "ann"


def test_store_back_serves_the_old_cookie_without_a_restart(outage: Outage) -> None:
    """T51: after the server restarts, the same app serves the old cookie's session again."""
    client = _client(outage.store)
    client.get("/set?user=ann")
    assert client.get("/get?k=user").text == "ann"
    outage.stop()
    client.get("/get?k=user", status=503)
    outage.start()
    assert client.get("/get?k=user").text == "ann"
    client.get("/set?role=admin")
    assert client.get("/get?k=role").text == "admin"


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_hung_store_answers_within_the_timeout(kind: str) -> None:
    """T52: a server that accepts and never answers gives the 503 within the configured timeout."""
    with blackhole() as port:
        store: Store
        if kind == "redis":
            store = RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout=1.0)
        else:
            store = PostgresStore(f"postgresql://postgres@127.0.0.1:{port}/x", timeout=1.0)
        with store:
            client = _client(store)
            started = time.monotonic()
            response = client.get("/set?user=ann", status=503)
            elapsed = time.monotonic() - started
            assert response.text == GENERIC_BODY
            continuing = _client(store, on_store_error="continue")
            continuing.set_cookie("wsgisession", "A" * 43)
            started = time.monotonic()
            assert continuing.get("/get?k=user").text == ""
            elapsed_continue = time.monotonic() - started
    assert 0.5 < elapsed < 5, elapsed
    assert 0.5 < elapsed_continue < 5, elapsed_continue
