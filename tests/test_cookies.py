"""Reading the session cookie: hostile values, odd header bytes, duplicates, the fast paths.

The ids themselves and their signing (key rotation, tampering) are tested in test_signing.py.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import webtest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.app import wrap
from tests.support.clients import session_cookie, signed_client
from wsgisession import SqliteStore, Store
from wsgisession.signing import hash_id

HOSTILE = [
    "../../etc/passwd",
    "a/b/c",
    "a\\b",
    "%00" * 15,
    "x'; DROP TABLE wsgisession_sessions; --",
    "a;b",
    "*",
    "wsgisession:*",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop.",
    "A" * 8192,
    "é" * 43,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_ids_give_a_fresh_session(store: Store, value: str) -> None:
    """T30: ids with .., /, \\, %00, quotes, ;, non-ASCII or 8 KB: fresh session, no store call."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    header = f'wsgisession="{value}"' if ";" in value or " " in value else f"wsgisession={value}"
    response = client.get("/get?a=", headers={"Cookie": header.encode("utf-8").decode("latin-1")})
    assert response.status_int == 200
    assert response.json == {"a": None}
    assert counting.calls == []


def test_newline_and_non_utf8_cookie_bytes(store: Store) -> None:
    """T30: raw non-UTF-8 bytes in the Cookie header never cause a 500."""
    middleware, counting = wrap(store)
    environ = {"HTTP_COOKIE": "wsgisession=\xff\xfe\x00abc"}
    response = webtest.TestApp(middleware).get("/get?a=", extra_environ=environ)
    assert response.json == {"a": None}
    assert counting.calls == []


def test_non_latin1_header_text_is_ignored(store: Store) -> None:
    """A Cookie header that is not latin-1 text (no browser sends one) gives a fresh session."""
    middleware, counting = wrap(store)
    environ = {"HTTP_COOKIE": "wsgisession=\u20ac" + "A" * 42}
    response = webtest.TestApp(middleware, lint=False).get("/get?a=", extra_environ=environ)
    assert response.json == {"a": None}
    assert counting.calls == []


@pytest.mark.parametrize("order", ["forged-first", "valid-first"])
def test_two_session_cookies_never_mix(store: Store, order: str) -> None:
    """T31: a forged and a valid cookie in either order: no 500, the forged one never adopted."""
    client, _ = signed_client(store)
    valid = session_cookie(client.get("/set?user=bob"))
    forged = "A" * 43 + "." + "B" * 43
    pair = [forged, valid] if order == "forged-first" else [valid, forged]
    header = "; ".join(f"wsgisession={value}" for value in pair)
    fresh = webtest.TestApp(client.app)
    assert fresh.get("/get?user=", headers={"Cookie": header}).json == {"user": "bob"}


def test_two_valid_session_cookies_pick_neither(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Two different valid session cookies (one tossed in by a sibling domain): neither wins."""
    middleware, _ = wrap(store)
    first = session_cookie(webtest.TestApp(middleware).get("/set?user=alice"))
    second = session_cookie(webtest.TestApp(middleware).get("/set?user=mallory"))
    header = f"wsgisession={first}; wsgisession={second}"
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        response = webtest.TestApp(middleware).get("/get?user=", headers={"Cookie": header})
    assert response.json == {"user": None}
    assert "neither was used" in caplog.text
    assert first not in caplog.text and second not in caplog.text  # type: ignore[operator]


def test_corrupt_sqlite_record_gives_an_empty_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """T33: invalid JSON in a stored row gives an empty session and a warning with a hashed id."""
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?user=bob")
    session_id = client.cookies["wsgisession"]
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE wsgisession_sessions SET data = ?", ("{not json\xff",))
    with caplog.at_level(logging.WARNING):
        response = client.get("/get?user=")
    assert response.status_int == 200
    assert response.json == {"user": None}
    assert hash_id(session_id)[:8] in caplog.text
    assert session_id not in caplog.text
    store.close()


# The measured fast paths ------------------------------------------------------------------


_PLAIN_CHARS = "abcXYZ019~!@#$%^&*()_+=`.?|:/{}<>'-"


@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.just("wsgisession"), st.text(_PLAIN_CHARS, min_size=1, max_size=6)),
            st.text(_PLAIN_CHARS + '"\\ ,é', max_size=10),
        ),
        max_size=5,
    ),
    separator=st.sampled_from(["; ", ";"]),
)
@settings(max_examples=300, deadline=None)
def test_the_quick_cookie_reading_agrees_with_webob(
    pairs: list[tuple[str, str]], separator: str
) -> None:
    """quick_cookie_values() either declines a header or reads exactly what WebOb's parser reads."""
    from webob.cookies import parse_cookie

    from wsgisession.cookies import quick_cookie_values, values_pattern

    header = separator.join(f"{key}={value}" for key, value in pairs)
    quick = quick_cookie_values(header, values_pattern("wsgisession"))
    if quick is None:
        return  # not a plain header: the caller asks WebOb
    webob = [raw.decode("latin-1") for key, raw in parse_cookie(header) if key == b"wsgisession"]
    assert quick == webob, header


def test_set_cookie_attributes_are_a_pure_cached_function() -> None:
    """cookie_attributes() gives exactly what WebOb's make_cookie writes, and caches it."""
    from webob.cookies import make_cookie

    from wsgisession.cookies import cookie_attributes

    args = ("sid", "/app", None, True, "Strict", 3600, True, 1_800_000_000)
    first = cookie_attributes(*args)
    hits = cookie_attributes.cache_info().hits
    assert cookie_attributes(*args) == first
    assert cookie_attributes.cache_info().hits == hits + 1
    whole = make_cookie(
        "sid", "VALUE", max_age=3600, path="/app", secure=True, httponly=True, samesite="Strict"
    )
    # The expires date follows WebOb's clock; everything else is identical.
    assert whole.split("; expires=")[0] == "sid=VALUE" + first.split("; expires=")[0]
    assert first.endswith("; secure; HttpOnly; SameSite=Strict")


def test_cookie_settings_repr_hides_the_secret_keys() -> None:
    """Issue 13.6: repr() of the cookie settings (captured by error trackers) shows no key."""
    from wsgisession.cookies import CookieSettings

    settings = CookieSettings(secret_keys=["a-very-secret-signing-key"])
    assert "a-very-secret-signing-key" not in repr(settings)
    assert "wsgisession" in repr(settings)
