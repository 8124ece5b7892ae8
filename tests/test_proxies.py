"""Behind a TLS-terminating proxy: X-Forwarded-Proto counts only when trust_forwarded_proto=True."""

from __future__ import annotations

import logging

import pytest
import webtest

from tests.support.app import wrap
from tests.support.clients import cookie_attributes, session_cookie, set_cookies
from wsgisession import Store

HTTPS = {"X-Forwarded-Proto": "https"}


def test_forwarded_proto_ignored_by_default(store: Store) -> None:
    """T05: over plain HTTP a client's X-Forwarded-Proto: https does not make the cookie Secure."""
    middleware, _ = wrap(store)
    response = webtest.TestApp(middleware).get("/set?a=1", headers=HTTPS)
    assert "secure" not in cookie_attributes(response)


def test_secure_only_cookie_not_sent_on_a_forged_header(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """T05: with cookie_secure=True a forged X-Forwarded-Proto gets no cookie over plain HTTP."""
    middleware, counting = wrap(store, cookie_secure=True)
    with caplog.at_level(logging.WARNING):
        response = webtest.TestApp(middleware).get("/set?a=1", headers=HTTPS)
    assert set_cookies(response) == []
    assert counting.writes == []
    assert "trust_forwarded_proto" in caplog.text


def test_opt_in_trusts_the_proxy(store: Store) -> None:
    """Opt-in: behind a TLS proxy, trust_forwarded_proto=True makes the cookie Secure."""
    middleware, _ = wrap(store, trust_forwarded_proto=True, cookie_secure=True)
    client = webtest.TestApp(middleware)
    response = client.get("/set?a=1", headers=HTTPS)
    assert "secure" in cookie_attributes(response)
    value = session_cookie(response)
    # The browser sent it over HTTPS to the proxy; the proxy passes it on over HTTP.
    headers = {**HTTPS, "Cookie": f"wsgisession={value}"}
    assert client.get("/get?a=", headers=headers).json == {"a": "1"}


@pytest.mark.parametrize("value", ["http", "", "https-ish", "http, https"])
def test_opt_in_still_needs_https_first(store: Store, value: str) -> None:
    """Opt-in: only a first X-Forwarded-Proto value of https counts as HTTPS."""
    middleware, _ = wrap(store, trust_forwarded_proto=True)
    response = webtest.TestApp(middleware).get("/set?a=1", headers={"X-Forwarded-Proto": value})
    assert "secure" not in cookie_attributes(response)


def test_opt_in_takes_the_first_of_a_chain(store: Store) -> None:
    """Opt-in: with a chain of proxies the first (client-facing) value decides."""
    middleware, _ = wrap(store, trust_forwarded_proto=True)
    response = webtest.TestApp(middleware).get(
        "/set?a=1", headers={"X-Forwarded-Proto": "HTTPS, http"}
    )
    assert "secure" in cookie_attributes(response)
