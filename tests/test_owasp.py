"""The OWASP Session Management Cheat Sheet and ASVS 4.0 (V3, V7.1.1) as tests, one per requirement.

Each docstring names the requirement it shows. They run on every server-side store kind of the
``store`` fixture; the cookie store's own lifecycle tests are in test_cookie_store.py.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from typing import Any

import pytest
import webtest

from tests.conftest import Clock
from tests.support.app import OutageStore, wrap
from tests.support.clients import cookie_attributes, session_cookie, set_cookies
from wsgisession import ConfigurationError, SessionMiddleware, Store
from wsgisession.signing import hash_id, new_id


def _new_session(client: webtest.TestApp, path: str = "/set?a=1") -> str:
    value = session_cookie(client.get(path))
    assert value is not None
    return value


def test_session_id_entropy_and_charset(store: Store) -> None:
    """OWASP 'Session ID Entropy' / ASVS V3.2.2: ids carry 256 random bits in [A-Za-z0-9_-]."""
    middleware, _ = wrap(store)
    ids = [_new_session(webtest.TestApp(middleware)) for _ in range(1000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    # The first 42 characters carry 6 random bits each (the 43rd carries 4): measure it.
    counts = Counter(char for i in ids for char in i[:42])
    total = sum(counts.values())
    bits_per_char = -sum(n / total * math.log2(n / total) for n in counts.values())
    assert len(counts) == 64
    assert bits_per_char > 5.95
    assert bits_per_char * 42 + 4 >= 250  # far above ASVS's 64 bits
    assert len({i[:3] for i in ids}) > 900  # no shared prefix, no counter or timestamp


def test_session_id_content_is_meaningless(store: Store) -> None:
    """OWASP 'Session ID Content': the cookie holds no session data, user name or time."""
    middleware, _ = wrap(store, secret_keys="k")
    client = webtest.TestApp(middleware)
    client.get("/set?role=admin")
    value = _new_session(client, "/login?user=alice")
    for meaningful in ("alice", "admin", "user", "role"):
        assert meaningful not in value.lower()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}", value)


def test_cookie_is_httponly(store: Store) -> None:
    """ASVS V3.4.2 / OWASP 'HttpOnly Attribute': the session cookie is hidden from scripts."""
    middleware, _ = wrap(store)
    assert "httponly" in cookie_attributes(webtest.TestApp(middleware).get("/set?a=1"))


def test_cookie_is_secure_over_https_and_never_sent_in_clear(store: Store) -> None:
    """ASVS V3.4.1 / OWASP 'Secure Attribute': Secure over HTTPS; Secure-only never over HTTP."""
    middleware, _ = wrap(store)
    https = webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https"})
    assert "secure" in cookie_attributes(https.get("/set?a=1"))
    strict, _ = wrap(store, cookie_secure=True)
    assert set_cookies(webtest.TestApp(strict).get("/set?a=1")) == []


def test_cookie_samesite(store: Store) -> None:
    """ASVS V3.4.3 / OWASP 'SameSite Attribute': Lax by default, Strict if asked, None if Secure."""
    middleware, _ = wrap(store)
    assert cookie_attributes(webtest.TestApp(middleware).get("/set?a=1"))["samesite"] == "Lax"
    strict, _ = wrap(store, cookie_samesite="Strict")
    assert cookie_attributes(webtest.TestApp(strict).get("/set?a=1"))["samesite"] == "Strict"
    with pytest.raises(ConfigurationError, match="cookie_secure=True"):
        wrap(store, cookie_samesite="None")


def test_cookie_path_and_no_domain(store: Store) -> None:
    """ASVS V3.4.5 / OWASP 'Domain and Path Attributes': Path=/, host-only; narrower Path."""
    middleware, _ = wrap(store)
    attributes = cookie_attributes(webtest.TestApp(middleware).get("/set?a=1"))
    assert attributes["path"] == "/"
    assert "domain" not in attributes
    narrow, _ = wrap(store, cookie_path="/app")
    mounted = webtest.TestApp(narrow, extra_environ={"SCRIPT_NAME": "/app"})  # under its path
    assert cookie_attributes(mounted.get("/set?a=1"))["path"] == "/app"


def test_host_prefix_is_supported(store: Store) -> None:
    """ASVS V3.4.4 / OWASP 'Cookie prefixes': a __Host- cookie is Secure, Path=/, with no Domain."""
    middleware, _ = wrap(store, cookie_name="__Host-sid", cookie_secure=True)
    client = webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https"})
    attributes = cookie_attributes(client.get("/set?a=1"), "__Host-sid")
    assert "secure" in attributes and attributes["path"] == "/" and "domain" not in attributes
    assert client.get("/get?a=").json == {"a": "1"}
    for bad in (
        {},
        {"cookie_secure": True, "cookie_domain": "example.com"},
        {"cookie_secure": True, "cookie_path": "/app"},
    ):
        with pytest.raises(ConfigurationError, match="__Host-"):
            wrap(store, cookie_name="__Host-sid", **bad)


def test_fixation_regenerate_kills_the_old_id(store: Store) -> None:
    """ASVS V3.2.1 / OWASP 'Renew the Session ID After Any Privilege Level Change'."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    old = _new_session(client)
    new = _new_session(client, "/login?user=alice")
    assert new != old
    assert store.load(hash_id(old), middleware._now()) is None
    attacker = webtest.TestApp(middleware)
    attacker.set_cookie("wsgisession", old)
    assert attacker.get("/get?user=").json == {"user": None}


def test_logout_destroys_on_the_server(store: Store) -> None:
    """ASVS V3.3.1 / OWASP 'Manual Session Expiration': logout deletes the server-side session."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    value = _new_session(client, "/login?user=alice")
    assert cookie_attributes(client.get("/logout"))["max-age"] == "0"
    assert store.load(hash_id(value), middleware._now()) is None
    replay = webtest.TestApp(middleware)
    replay.set_cookie("wsgisession", value)
    assert replay.get("/get?user=").json == {"user": None}
    assert store.load(hash_id(value), middleware._now()) is None


def test_idle_timeout_is_enforced_by_the_server(store: Store, clock: Clock) -> None:
    """ASVS V3.3.2 / OWASP 'Idle Timeout': a cookie past max_age opens nothing."""
    middleware, _ = wrap(store, clock=clock, max_age=900)
    client = webtest.TestApp(middleware)
    value = _new_session(client, "/login?user=alice")
    clock.advance(899)
    assert client.get("/get?user=").json == {"user": "alice"}
    clock.advance(900)
    replay = webtest.TestApp(middleware)
    replay.set_cookie("wsgisession", value)  # the client ignores Max-Age and resends it
    assert replay.get("/get?user=").json == {"user": None}
    assert store.load(hash_id(value), clock()) is None


def test_absolute_timeout_is_enforced_by_the_server(store: Store, clock: Clock) -> None:
    """ASVS V3.3.2 / OWASP 'Absolute Timeout': an always-active session still ends on time."""
    middleware, _ = wrap(store, clock=clock, max_age=900, absolute_timeout=3600)
    client = webtest.TestApp(middleware)
    client.get("/login?user=alice")
    for _ in range(7):
        clock.advance(500)
        assert client.get("/get?user=").json == {"user": "alice"}
    clock.advance(100)
    assert client.get("/get?user=").json == {"user": None}


def test_strict_mode_never_adopts_unknown_ids(store: Store) -> None:
    """OWASP 'Permissive and Strict Session Management': unissued ids are refused."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    chosen = new_id()
    client.set_cookie("wsgisession", chosen)
    issued = _new_session(client, "/login?user=alice")
    assert issued != chosen
    assert store.load(hash_id(chosen), middleware._now()) is None
    assert counting.writes == ["create"]


def test_id_never_travels_in_urls(store: Store) -> None:
    """ASVS V3.1.1 / OWASP 'Session ID Exchange Mechanism': ids in the URL or form are ignored."""
    middleware, _ = wrap(store)
    victim = webtest.TestApp(middleware)
    value = _new_session(victim, "/login?user=alice")
    stranger = webtest.TestApp(middleware)
    response = stranger.get(f"/get?user=&wsgisession={value}")
    assert response.json["user"] is None
    response = stranger.post(f"/get?user=&sid={value}", {"wsgisession": value})
    assert response.json["user"] is None
    for name, header in response.headers.items():
        if name.lower() != "set-cookie":
            assert value not in header


def test_ids_never_in_logs_or_error_messages(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """ASVS V7.1.1 / OWASP 'Logging Sessions Life Cycle': logs and errors never carry an id.

    A run of logins, logouts, forged and duplicate cookies, and store outages under
    both policies: every log line and every response body or header other than Set-Cookie is
    searched for each id (whole or a 10-character piece) and for its hash beyond 8 characters.
    """
    outage = OutageStore(store)
    closed = SessionMiddleware(_app(), store=outage, secret_keys="k", clock=clock)
    opened = SessionMiddleware(
        _app(), store=outage, secret_keys="k", clock=clock, on_store_error="continue"
    )
    seen: list[str] = []
    texts: list[str] = []

    def remember(response: webtest.TestResponse) -> None:
        value = session_cookie(response)
        if value:
            seen.append(value.split(".")[0])
        texts.append(response.text)
        texts.extend(v for k, v in response.headers.items() if k.lower() != "set-cookie")

    with caplog.at_level(logging.DEBUG):
        alice = webtest.TestApp(closed)
        remember(alice.get("/set?a=1"))
        remember(alice.get("/login?user=alice"))
        bob = webtest.TestApp(closed)
        remember(bob.get("/set?b=1"))
        alice_cookie = f"wsgisession={alice.cookies['wsgisession']}"
        bob_cookie = f"wsgisession={bob.cookies['wsgisession']}"
        both = f"{alice_cookie}; {bob_cookie}"
        remember(webtest.TestApp(closed).get("/get?a=", headers={"Cookie": both}))
        forged = alice.cookies["wsgisession"][:-2] + "AA"
        forged_cookie = f"wsgisession={forged}"
        remember(webtest.TestApp(closed).get("/get?a=", headers={"Cookie": forged_cookie}))
        remember(alice.get("/logout"))
        outage.down = True
        remember(bob.get("/set?c=1", status=503))
        remember(webtest.TestApp(opened).get("/set?d=1", headers={"Cookie": bob_cookie}))
        outage.down = False
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "the run should have logged the outages"
    haystack = logged + "\n".join(texts)
    assert len(seen) >= 3
    for session_id in seen:
        digest = hash_id(session_id)
        assert session_id not in haystack
        assert all(session_id[i : i + 10] not in haystack for i in range(0, 34, 3))
        assert digest[:9] not in haystack


def test_responses_that_set_the_cookie_are_not_cached(store: Store) -> None:
    """OWASP 'Web Content Caching': Set-Cookie responses are private and vary by Cookie."""
    middleware, _ = wrap(store)
    response = webtest.TestApp(middleware).get("/set?a=1")
    assert response.headers["Cache-Control"] == "private"
    assert "Cookie" in response.headers["Vary"]


def _app() -> Any:
    from tests.support.app import app

    return app
