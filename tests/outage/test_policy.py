"""The outage policy, with a store whose backing service is down.

The network stores are tested against real servers that are stopped and restarted
(tests/outage/test_stores.py); here a user-written store that fails shows the middleware's side
alone.
"""

from __future__ import annotations

import contextlib
import logging

import pytest
import webtest

from tests.support.app import OutageStore, app
from tests.support.clients import set_cookies
from wsgisession import MemoryStore, SessionMiddleware, StoreUnavailableError


@pytest.fixture
def flaky() -> OutageStore:
    return OutageStore(MemoryStore())


def test_fail_closed_gives_a_503(flaky: OutageStore, caplog: pytest.LogCaptureFixture) -> None:
    """T49: the store is down: 503 with Retry-After, a generic body, no Set-Cookie, one log line."""
    client = webtest.TestApp(SessionMiddleware(app, store=flaky))
    client.get("/set?user=bob")
    cookie = client.cookies["wsgisession"]
    flaky.down = True
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        response = client.get("/get?user=", status=503)
    assert response.headers["Retry-After"] == "5"
    assert set_cookies(response) == []
    assert "db.internal" not in response.text and "Traceback" not in response.text
    assert cookie not in response.text
    records = [r for r in caplog.records if r.name == "wsgisession"]
    assert len(records) == 1
    assert cookie not in caplog.text


def test_fail_closed_on_save(flaky: OutageStore) -> None:
    """A store that fails while saving also gives the 503, not a half-sent response."""
    client = webtest.TestApp(SessionMiddleware(app, store=flaky))
    flaky.down = True
    response = client.get("/noop")
    assert response.status_int == 200
    response = client.get("/set?a=1", status=503)
    assert set_cookies(response) == []


def test_app_that_catches_the_error_still_gets_503(flaky: OutageStore) -> None:
    """An app that swallows the store error cannot turn it into a half-working response."""

    def swallowing(environ, start_response):  # type: ignore[no-untyped-def]
        with contextlib.suppress(StoreUnavailableError):
            environ["wsgisession"].get("user")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"pretending all is well"]

    client = webtest.TestApp(SessionMiddleware(swallowing, store=flaky))
    flaky.down = True
    client.set_cookie("wsgisession", "A" * 43)
    client.get("/", status=503)


def test_fail_open_serves_an_unsaved_empty_session(
    flaky: OutageStore, caplog: pytest.LogCaptureFixture
) -> None:
    """T50: with on_store_error='continue' the app runs with an empty, unsaved session."""
    client = webtest.TestApp(SessionMiddleware(app, store=flaky, on_store_error="continue"))
    client.get("/set?user=bob")
    cookie = client.cookies["wsgisession"]
    flaky.down = True
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        response = client.get("/set?other=1")
    assert response.status_int == 200
    assert response.json == {"other": "1"}
    assert set_cookies(response) == []
    assert len([r for r in caplog.records if r.name == "wsgisession"]) == 1
    flaky.down = False
    assert client.cookies["wsgisession"] == cookie
    assert client.get("/get?user=&other=").json == {"user": "bob", "other": None}


def test_recovery_needs_no_restart(flaky: OutageStore) -> None:
    """T51 in small: once the store is back the next request with the old cookie works."""
    client = webtest.TestApp(SessionMiddleware(app, store=flaky))
    client.get("/set?user=bob")
    flaky.down = True
    client.get("/get?user=", status=503)
    flaky.down = False
    assert client.get("/get?user=").json == {"user": "bob"}


def test_fail_open_when_saving_a_new_session(
    flaky: OutageStore, caplog: pytest.LogCaptureFixture
) -> None:
    """T50: with 'continue', a new session whose save fails is served, unsaved, without a cookie."""
    client = webtest.TestApp(SessionMiddleware(app, store=flaky, on_store_error="continue"))
    flaky.down = True
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        response = client.get("/set?user=bob")
    assert response.status_int == 200
    assert response.json == {"user": "bob"}
    assert set_cookies(response) == []
    assert len([r for r in caplog.records if r.name == "wsgisession"]) == 1
