"""The session's bookkeeping under readable names, and records written with the old ones.

Version 0.1.0 stored the creation time, the own idle timeout and the browser-session flag as
``"c"``, ``"t"`` and ``"b"``. Such records, in every store kind, and CookieStore cookies sealed
with them keep working: their creation time still counts for ``absolute_timeout``, their
lifetime and browser-session choice still shape the cookie.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import webtest

from tests.conftest import Clock
from tests.support.clients import SessionClient, cookie_attributes, session_cookie
from wsgisession import CookieStore, Session, SessionMiddleware, Store
from wsgisession.policy import BROWSER, CREATED, LIFETIME, read_meta
from wsgisession.signing import hash_id, new_id

KEY = "meta-names-test-key"


def _plant(store: Store, meta: dict[str, Any], now: float, expires_in: float = 3000) -> str:
    """Store a record the way 0.1.0 wrote it, under a fresh id; return the id (the cookie)."""
    session_id = new_id()
    key = hash_id(session_id)
    assert store.create(key, {"a": 1}, meta, now + expires_in, now) is not False
    return session_id


def _old_browser(
    store: Store, clock: Clock, meta: dict[str, Any], expires_in: float = 3000, **options: Any
) -> SessionClient:
    browser = SessionClient(store, clock=clock, **options)
    browser.client.set_cookie("wsgisession", _plant(store, meta, clock.now, expires_in))
    return browser


def test_new_records_use_readable_names(store: Store, clock: Clock) -> None:
    """What a session stores of its own is under created, lifetime, browser_session."""
    browser = SessionClient(store, clock=clock)
    _, response = browser.run(lambda s: (s.set("a", 1), s.set_expiry(600)))
    session_id = session_cookie(response)
    assert session_id is not None
    record = store.load(hash_id(session_id), clock.now)
    assert record is not None and record.meta == {CREATED: clock.now, LIFETIME: 600}
    assert (CREATED, LIFETIME, BROWSER) == ("created", "lifetime", "browser_session")


def test_an_old_record_keeps_its_data_creation_time_and_lifetime(
    store: Store, clock: Clock
) -> None:
    """A record with "c" and "t": its data loads, created_at is "c", the cookie lasts "t"."""
    created = clock.now - 10
    browser = _old_browser(store, clock, {"c": created, "t": 600}, 590, max_age=3600)
    (data, created_at), _ = browser.run(lambda s: (dict(s), s.created_at))
    assert data == {"a": 1}
    assert created_at == datetime.fromtimestamp(created, timezone.utc)
    clock.advance(400)  # the refresh is due: the cookie is sent with the record's lifetime
    _, response = browser.run(lambda s: s.set("b", 2))
    assert int(cookie_attributes(response)["max-age"]) == 600  # "t", not max_age
    assert browser.data() == {"a": 1, "b": 2}


def test_an_old_records_creation_time_still_sets_the_absolute_deadline(
    store: Store, clock: Clock
) -> None:
    """absolute_timeout counts from the old "c": the session ends on time."""
    browser = _old_browser(store, clock, {"c": clock.now - 90}, absolute_timeout=100)
    assert browser.data() == {"a": 1}
    clock.advance(11)
    assert browser.data() == {}


def test_an_old_browser_session_flag_still_gives_a_browser_cookie(
    store: Store, clock: Clock
) -> None:
    """A record with "b": the cookie sent on its next save has no Max-Age."""
    browser = _old_browser(store, clock, {"c": clock.now, "b": 1}, max_age=3000)
    clock.advance(1000)  # past the touch interval: the expiry refresh is written
    _, response = browser.run(lambda s: s.get("a"))
    assert browser.store.writes == ["save"]
    assert session_cookie(response) is None  # "b": a browser cookie is not re-sent to slide it
    without_flag = _old_browser(store, clock, {"c": clock.now}, max_age=3000)
    clock.advance(1000)
    _, response = without_flag.run(lambda s: s.get("a"))
    assert without_flag.store.writes == ["save"] and session_cookie(response) is not None


def test_set_expiry_on_an_old_record_leaves_no_old_name(store: Store, clock: Clock) -> None:
    """Changing the expiry of an old record stores today's names only, once."""
    session_id = _plant(store, {"c": clock.now - 5, "t": 600, "b": 1}, clock.now)
    browser = SessionClient(store, clock=clock)
    browser.client.set_cookie("wsgisession", session_id)
    browser.run(lambda s: s.set_expiry(1200))
    assert browser.store.writes == ["save"]
    record = store.load(hash_id(session_id), clock.now)
    assert record is not None and record.meta == {CREATED: clock.now - 5, LIFETIME: 1200}


def test_a_cookie_sealed_with_old_names_still_opens(clock: Clock) -> None:
    """CookieStore: a cookie sealed by 0.1.0 ("c", "t") opens, and is resealed with new names."""
    store = CookieStore()
    middleware = SessionMiddleware(_app, store=store, secret_keys=KEY, clock=clock)
    client = webtest.TestApp(middleware)
    old = store.seal(new_id(), {"a": 1}, {"c": clock.now - 10, "t": 600}, clock.now + 600)
    client.set_cookie("wsgisession", old)
    response = client.get("/", params={"set": "b"})
    assert response.json == {
        "data": {"a": 1, "b": "b"},
        "created_at": datetime.fromtimestamp(clock.now - 10, timezone.utc).isoformat(),
    }
    assert int(cookie_attributes(response)["max-age"]) == 600
    resealed = session_cookie(response)
    assert resealed is not None and resealed != old
    opened = store.unseal(resealed, clock.now)
    assert opened is not None and opened[1].meta == {CREATED: clock.now - 10, LIFETIME: 600}


def _app(environ: Any, start_response: Any) -> list[bytes]:
    """Set the key named by ?set=, then answer the data and created_at as JSON."""
    import json
    from urllib.parse import parse_qs

    session: Session = environ["wsgisession"]
    for key in parse_qs(environ.get("QUERY_STRING", "")).get("set", []):
        session[key] = key
    created = session.created_at
    body = json.dumps(
        {"data": dict(session), "created_at": created and created.isoformat()}
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ({}, {}),
        ({"c": 1.0, "t": 60, "b": 1}, {CREATED: 1.0, LIFETIME: 60, BROWSER: 1}),
        ({"c": 1.0, "created": 2.0}, {CREATED: 2.0}),  # the new name wins
        ({"created": 2.0, "c": 1.0}, {CREATED: 2.0}),
        ({"c": 1.0, "other": "x"}, {CREATED: 1.0, "other": "x"}),  # keys of others are kept
    ],
)
def test_read_meta_maps_the_old_names(stored: dict[str, Any], read: dict[str, Any]) -> None:
    """read_meta(): old names read as new, a new name present wins, anything else untouched."""
    assert read_meta(stored) == read
    if not stored.keys() & {"c", "t", "b"}:
        assert read_meta(stored) is stored  # a record of today costs no copy
