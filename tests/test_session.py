"""Session: the mapping API, change tracking, values, flash messages, increments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import webtest

from tests.apps import wrap
from tests.helpers import session_cookie
from wsgisession import SerializationError, Session, SessionError, SessionMiddleware, Store
from wsgisession.session import SessionConfig, SessionContext


def _detached() -> Session:
    """A session with no store behind it, for pure API checks."""
    context = SessionContext(clock=lambda: 1_800_000_000.0, new_id=lambda: "i" * 43)
    return Session(context)


def run_view(
    store: Store, view: Callable[[Session], Any], cookie: str | None = None, **options: Any
) -> Any:
    """Run *view* against the session of one request; return (its result, the response)."""
    box: dict[str, Any] = {}

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        box["result"] = view(environ["wsgisession"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    client = webtest.TestApp(SessionMiddleware(app, store=store, **options))
    if cookie:
        client.set_cookie("wsgisession", cookie)
    response = client.get("/")
    return box.get("result"), response


def test_full_mutable_mapping_api() -> None:
    """Session is a MutableMapping: [], in, len, iteration, get, pop, setdefault, update, clear."""
    session = _detached()
    assert len(session) == 0 and "a" not in session
    session["a"] = 1
    session.set("b", [1])
    session.update({"c": {"x": 1}}, d=None)
    assert session.setdefault("a", 99) == 1
    assert session.setdefault("e", "new") == "new"
    assert sorted(session) == ["a", "b", "c", "d", "e"]
    assert session.get("missing", "dflt") == "dflt"
    assert session.pop("e") == "new"
    assert session.pop("e", "gone") == "gone"
    del session["d"]
    assert dict(session) == {"a": 1, "b": [1], "c": {"x": 1}}
    assert dict(session.items()) == {"a": 1, "b": [1], "c": {"x": 1}}
    with pytest.raises(KeyError):
        session["missing"]
    session.clear()
    assert len(session) == 0


@pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes", float("nan"), {"k": {3j}}])
def test_non_json_value_is_refused_naming_the_key(value: object) -> None:
    """T20: a value JSON cannot hold raises a TypeError that is a SessionError and names the key."""
    session = _detached()
    with pytest.raises(SerializationError, match="cart") as info:
        session["cart"] = value
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, SessionError)
    assert "cart" not in session


def test_non_str_key_is_refused() -> None:
    """Keys must be str, so the session round-trips through JSON unchanged."""
    session = _detached()
    with pytest.raises(SerializationError, match="keys must be str"):
        session[1] = "x"  # type: ignore[index]


def test_non_str_key_message_blames_the_key_not_the_value() -> None:
    """A refused key says the key is wrong and how to write it, not that a str is no JSON."""
    session = _detached()
    with pytest.raises(SerializationError) as info:
        session[1] = "x"  # type: ignore[index]
    message = str(info.value)
    assert "cannot hold a value of type str" not in message
    assert "not int" in message and "session['1']" in message


def test_refused_value_leaves_the_stored_session_intact(store: Store) -> None:
    """T20: after a refused set, the stored session still holds what it held before."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?cart=full")

    def bad(session: Session) -> str:
        try:
            session["cart"] = {1, 2}
        except TypeError as exc:
            return str(exc)
        return "accepted"

    cookie = client.cookies["wsgisession"]
    message, _ = run_view(store, bad, cookie)
    assert "cart" in message and "set" in message
    assert client.get("/get?cart=").json == {"cart": "full"}


def test_nested_change_is_saved_without_a_flag(store: Store) -> None:
    """T19: session['cart'].append(x) persists without any 'modified' flag."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/cart?item=a")
    client.get("/cart?item=b")
    assert client.get("/cart?item=c").json == ["a", "b", "c"]
    assert client.get("/get?cart=").json == {"cart": ["a", "b", "c"]}


def test_deep_nested_change_is_saved(store: Store) -> None:
    """A change deep inside a dict of lists is noticed too."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    cookie = client.cookies["wsgisession"]
    run_view(store, lambda s: s.set("prefs", {"tags": ["x"], "n": {"m": 1}}), cookie)
    run_view(store, lambda s: s["prefs"]["n"].update(m=2), cookie)
    result, _ = run_view(store, lambda s: s["prefs"], cookie)
    assert result == {"tags": ["x"], "n": {"m": 2}}


def test_unchanged_nested_value_is_not_written(store: Store) -> None:
    """Reading a nested value without changing it writes nothing."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/cart?item=a")
    counting.reset()
    client.get("/get?cart=")
    assert counting.writes == []


def test_removed_key_stays_removed(store: Store) -> None:
    """Deleting a key is saved as a removal."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1&b=2")
    client.get("/del?a")
    assert client.get("/keys").json == ["b"]


def test_clear_removes_every_key_but_keeps_the_session(store: Store) -> None:
    """clear() empties the data; the session id stays the same."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1&b=2")
    before = client.get("/dump").json["id"]
    cookie = client.cookies["wsgisession"]
    run_view(store, lambda s: s.clear(), cookie)
    after = client.get("/dump").json
    assert after["data"] == {}
    assert after["id"] == before


def test_id_and_is_new(store: Store) -> None:
    """id is None until the session holds data; is_new is True only in its first request."""
    result, _ = run_view(store, lambda s: (s.id, s.is_new))
    assert result == (None, True)
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    first = client.get("/set?a=1")
    dump = client.get("/dump").json
    assert dump["new"] is False
    assert len(dump["id"]) == 43
    assert session_cookie(first) == dump["id"]


def test_flash_messages_show_once(store: Store) -> None:
    """flash() queues messages; pop_flash() returns them once; peek_flash() leaves them."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/flash?m=saved")
    client.get("/flash?m=again")
    cookie = client.cookies["wsgisession"]
    peeked, _ = run_view(store, lambda s: s.peek_flash(), cookie)
    assert peeked == ["saved", "again"]
    assert client.get("/flashes").json == ["saved", "again"]
    assert client.get("/flashes").json == []


def test_flash_queues_and_duplicates() -> None:
    """Queues are separate, and allow_duplicate=False skips a message already queued."""
    session = _detached()
    session.flash("a", queue="errors")
    session.flash("a", queue="errors", allow_duplicate=False)
    session.flash("b")
    assert session.pop_flash("errors") == ["a"]
    assert session.pop_flash() == ["b"]


def test_increment_counts_and_returns(store: Store) -> None:
    """increment() adds to a number (0 when missing) and returns the new value."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    assert client.get("/incr?k=n").json == 1
    assert client.get("/incr?k=n").json == 2
    assert client.get("/get?n=").json == {"n": 2}


def test_increment_rejects_non_numbers() -> None:
    """increment() by a non-number is refused, naming the key."""
    with pytest.raises(SerializationError, match="hits"):
        _detached().increment("hits", "1")  # type: ignore[arg-type]


def test_set_expiry_rejects_bad_values() -> None:
    """set_expiry() refuses what is not a positive int, a timedelta, a datetime or None."""
    for bad in (0, -1, 1.5, "10", True):
        with pytest.raises(ValueError, match=r"set_expiry\(.*\).*positive|set_expiry\(.*seconds"):
            _detached().set_expiry(bad)  # type: ignore[arg-type]


def test_csrf_token_is_stable_and_checked(store: Store) -> None:
    """csrf_token is made once and kept; check_csrf_token compares it."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    cookie = client.cookies["wsgisession"]
    token, _ = run_view(store, lambda s: s.csrf_token, cookie)
    again, _ = run_view(store, lambda s: s.csrf_token, cookie)
    assert token == again and len(token) >= 43
    checks, _ = run_view(
        store, lambda s: (s.check_csrf_token(token), s.check_csrf_token("x")), cookie
    )
    assert checks == (True, False)


def test_repr_shows_keys_not_values() -> None:
    """repr() names the keys but never the values (which may be secret)."""
    session = _detached()
    session["password"] = "hunter2"
    assert "password" in repr(session)
    assert "hunter2" not in repr(session)


def test_oversized_value_is_refused_and_the_session_kept(store: Store) -> None:
    """A value that takes the session past max_session_size raises and changes nothing."""
    from wsgisession import SessionTooLargeError

    middleware, _ = wrap(store, max_session_size=2000)
    client = webtest.TestApp(middleware)
    client.get("/set?small=1")
    cookie = client.cookies["wsgisession"]

    def grow(session: Session) -> str:
        session["a"] = "x" * 900
        try:
            session["b"] = "y" * 1500
        except SessionTooLargeError as exc:
            return str(exc)
        return "accepted"

    message, _ = run_view(store, grow, cookie, max_session_size=2000)
    assert "over the limit of 2000 bytes" in message and "'b'" in message
    assert sorted(client.get("/keys").json) == ["a", "small"]


def test_size_limit_can_be_lifted() -> None:
    """max_session_size=None accepts a large session."""
    context = SessionContext(
        config=SessionConfig(max_size=None), clock=lambda: 0.0, new_id=lambda: "i" * 43
    )
    session = Session(context)
    session["big"] = "z" * 200_000
    assert len(session["big"]) == 200_000
