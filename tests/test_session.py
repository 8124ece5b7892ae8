"""Session: the mapping API, change tracking, values, flash messages, increments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import webtest

from tests.support.app import app, wrap
from tests.support.clients import session_cookie
from tests.support.stores import deep_list
from wsgisession import SerializationError, Session, SessionError, SessionMiddleware, Store
from wsgisession.session import SessionConfig, SessionContext
from wsgisession.testing import CountingStore


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


# Issue 13.2: max_session_size on every path, in UTF-8 bytes ---------------------------------


def _size_of(data: dict[str, Any]) -> int:
    """The size the limit applies to: the session's JSON in UTF-8 bytes."""
    import json

    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_size_limit_counts_utf8_bytes_not_characters(store: Store, char: str) -> None:
    """Issue 13.2: non-ASCII text counts as its UTF-8 bytes (2, 3 or 4 a character)."""
    from wsgisession import SessionTooLargeError

    text = char * (1000 // len(char.encode("utf-8")) + 1)  # under 1000 characters, over 1000 bytes

    def view(session: Session) -> str:
        try:
            session["text"] = text
        except SessionTooLargeError as exc:
            return str(exc)
        return "accepted"

    message, response = run_view(store, view, max_session_size=1000)
    assert "'text'" in message and "limit of 1000 bytes" in message
    assert "Set-Cookie" not in response.headers


def test_stored_non_ascii_data_counts_in_bytes(store: Store) -> None:
    """Issue 13.2: the size of what is stored is counted in bytes too, on every store."""
    from wsgisession import SessionTooLargeError

    middleware, _ = wrap(store, max_session_size=1000)
    client = webtest.TestApp(middleware)
    client.get("/set?text=" + "%C3%A9" * 450)  # 450 times "é": 900 bytes
    cookie = client.cookies["wsgisession"]

    def grow(session: Session) -> str:
        try:
            session["more"] = "x" * 120
        except SessionTooLargeError as exc:
            return str(exc)
        return "accepted"

    message, _ = run_view(store, grow, cookie, max_session_size=1000)
    assert "'more'" in message
    assert sorted(client.get("/keys").json) == ["text"]


def test_a_value_that_fits_exactly_is_accepted() -> None:
    """The limit is exact: a session of exactly max_session_size bytes is accepted, one more not."""
    from wsgisession import SessionTooLargeError

    session = Session(SessionContext(config=SessionConfig(max_size=100), new_id=lambda: "i" * 43))
    filler = "é" * ((100 - _size_of({"k": ""})) // 2)
    session["k"] = filler + "x" * (100 - _size_of({"k": filler}))
    assert _size_of(dict(session)) == 100
    with pytest.raises(SessionTooLargeError, match="'k'"):
        session["k"] = session["k"] + "x"
    assert _size_of(dict(session)) == 100


def test_nested_change_past_the_limit_is_refused_and_nothing_written(store: Store) -> None:
    """Issue 13.2: session['cart'].extend(...) past the limit raises naming 'cart'; the store keeps
    the session as it was."""
    from wsgisession import SessionTooLargeError

    middleware, counting = wrap(store, max_session_size=2000)
    client = webtest.TestApp(middleware)
    client.get("/cart?item=a")
    counting.reset()

    def grow(session: Session) -> None:
        session["cart"].extend(["x" * 100] * 30)

    with pytest.raises(SessionTooLargeError, match=r"session\['cart'\] changed in place"):
        run_view(counting, grow, client.cookies["wsgisession"], max_session_size=2000)
    assert counting.writes == []
    assert client.get("/get?cart=").json == {"cart": ["a"]}


def test_value_set_then_grown_in_place_is_measured(store: Store) -> None:
    """Issue 13.2: the README pattern, setdefault('cart', []) then append, is measured too."""
    from wsgisession import SessionTooLargeError

    def grow(session: Session) -> None:
        session.setdefault("cart", []).extend(["x" * 100] * 30)

    counting = CountingStore(store)
    with pytest.raises(SessionTooLargeError, match="'cart'"):
        run_view(counting, grow, max_session_size=2000)
    assert counting.writes == []


def test_changed_measures_at_the_call_site(store: Store) -> None:
    """Issue 13.2: session.changed(key) checks an in-place change now, where a view can undo it."""
    from wsgisession import SessionTooLargeError

    middleware, _ = wrap(store, max_session_size=2000)
    client = webtest.TestApp(middleware)
    client.get("/cart?item=a")

    def grow(session: Session) -> str:
        cart = session["cart"]
        cart.extend(["x" * 100] * 30)
        try:
            session.changed("cart")
        except SessionTooLargeError as exc:
            del cart[1:]
            cart.append("b")
            session.changed("cart")  # fits again
            return str(exc)
        return "accepted"

    message, _ = run_view(store, grow, client.cookies["wsgisession"], max_session_size=2000)
    assert "session['cart'] changed in place" in message and "2000 bytes" in message
    assert client.get("/get?cart=").json == {"cart": ["a", "b"]}


def test_changed_refuses_a_value_the_serializer_cannot_hold() -> None:
    """session.changed() raises SerializationError naming the key for an unwritable nested value."""
    session = _detached()
    session["cart"] = []
    session["cart"].append({1, 2})
    with pytest.raises(SerializationError, match="'cart'"):
        session.changed()


def test_increment_of_new_keys_is_measured(store: Store) -> None:
    """Issue 13.2: increment() of keys the session did not hold counts against the limit."""
    from wsgisession import SessionTooLargeError

    def view(session: Session) -> tuple[int, str]:
        count = 0
        try:
            for count in range(1000):
                session.increment(f"counter-{count:04}")
        except SessionTooLargeError as exc:
            return count, str(exc)
        return count, "accepted"

    (count, message), _ = run_view(store, view, max_session_size=500)
    assert "'counter-" in message and 20 < count < 40

    def huge(session: Session) -> str:
        try:
            session.increment("n", 10**400)  # 401 digits, over a limit of 300 bytes
        except SessionTooLargeError as exc:
            return str(exc)
        return "accepted"

    message, _ = run_view(store, huge, max_session_size=300)
    assert "'n'" in message and "limit of 300 bytes" in message


# Issue 13.4: bad keys and values are refused when set, naming the key -----------------------


BAD_VALUES = {
    "lone surrogate": "ok \ud800",
    "lone surrogate inside": {"name": ["\udfff"]},
    "int of 5001 digits": 10**5000,
    "nested 10,000 deep": deep_list(10_000),
}


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_unwritable_value_is_refused_when_set(value: Any) -> None:
    """Issue 13.4: a lone surrogate, 10**5000 and a list 10,000 deep raise SerializationError
    (not UnicodeEncodeError, ValueError or RecursionError) when set, naming the key."""
    session = _detached()
    session["kept"] = 1
    for setter in (session.__setitem__, session.set, lambda k, v: session.update({k: v})):
        with pytest.raises(SerializationError, match="'bad'") as info:
            setter("bad", value)
        assert isinstance(info.value.__cause__, (ValueError, RecursionError))
    assert dict(session) == {"kept": 1}


def test_key_with_a_lone_surrogate_is_refused_when_set() -> None:
    """Issue 13.4: a key UTF-8 cannot write is refused at set time (and by increment and flash),
    naming it, not with a 500 when the response starts."""
    session = _detached()
    with pytest.raises(SerializationError, match=r"key '\\ud800x'.*lone surrogate"):
        session["\ud800x"] = 1
    with pytest.raises(SerializationError, match="ud800"):
        session.increment("\ud800")
    with pytest.raises(SerializationError, match="ud800"):
        session.flash("hello", queue="\ud800")
    with pytest.raises(SerializationError, match="keys must be str"):
        session.increment(7)  # type: ignore[arg-type]
    assert len(session) == 0


def test_increment_and_flash_refuse_unwritable_values() -> None:
    """Issue 13.4: increment() past what JSON holds and flash() of unwritable text raise
    SerializationError naming the key; nothing changes."""
    session = _detached()
    session["n"] = 10**4299
    with pytest.raises(SerializationError, match=r"'n'.*digits"):
        session.increment("n", 9 * 10**4299)
    with pytest.raises(SerializationError, match="'f'"):
        session["f"] = 1e308
        session.increment("f", 1e308)  # infinity
    with pytest.raises(SerializationError, match="'big'"):
        session["big"] = 10**400
        session.increment("big", 0.5)  # too large for a float
    with pytest.raises(SerializationError, match="'_flash:'"):
        session.flash("\ud800")
    assert "_flash:" not in session and session["n"] == 10**4299


@pytest.mark.parametrize(
    "spoil",
    [lambda cart: cart.append("\ud800"), lambda cart: cart.append(deep_list(10_000))],
    ids=["lone surrogate", "nested 10,000 deep"],
)
def test_unwritable_nested_change_fails_with_serialization_error(
    store: Store, spoil: Callable[[list[Any]], None]
) -> None:
    """Issue 13.4: a nested change JSON cannot hold raises SerializationError naming the key at
    the end of the request, and nothing is written."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/cart?item=a")
    counting.reset()
    with pytest.raises(SerializationError, match="'cart'"):
        run_view(counting, lambda s: spoil(s["cart"]), client.cookies["wsgisession"])
    assert counting.writes == []
    assert client.get("/get?cart=").json == {"cart": ["a"]}


# Issue 13.10: no-op writes --------------------------------------------------------------------


def _writes_of(store: Store, view: Callable[[Session], Any], setup: dict[str, Any]) -> list[Any]:
    """The store writes of one request running *view* on a session stored as *setup*."""
    counting = CountingStore(store)
    _, response = run_view(counting, lambda s: s.update(setup))
    cookie = session_cookie(response)
    counting.reset()
    _, response = run_view(counting, view, cookie)
    assert "Set-Cookie" not in response.headers or counting.writes
    return list(counting.writes)


NO_OPS = {
    "same str": lambda s: s.set("a", "x"),
    "same int": lambda s: s.set("n", 1),
    "same float": lambda s: s.set("f", 0.5),
    "same list": lambda s: s.set("cart", ["a", {"b": 1}]),
    "same None": lambda s: s.set("z", None),
    "set then set back": lambda s: (s.set("a", "other"), s.set("a", "x")),
    "del then re-set": lambda s: (s.pop("cart"), s.set("cart", ["a", {"b": 1}])),
    "set a new key then del it": lambda s: (s.set("new", 1), s.pop("new")),
    "nested change undone": lambda s: (s["cart"].append("c"), s["cart"].pop()),
    "set list then change it back": lambda s: (
        s.set("cart", []),
        s["cart"].extend(["a", {"b": 1}]),
    ),
    "clear then restore": lambda s: (
        s.clear(),
        s.update(a="x", n=1, f=0.5, z=None),
        s.set("cart", ["a", {"b": 1}]),
    ),
    "increment then back": lambda s: (s.increment("n"), s.increment("n", -1)),
    "update with the same": lambda s: s.update({"a": "x", "n": 1}),
}
SETUP = {"a": "x", "n": 1, "f": 0.5, "z": None, "cart": ["a", {"b": 1}]}


@pytest.mark.parametrize("view", NO_OPS.values(), ids=NO_OPS.keys())
def test_changes_that_leave_the_data_as_it_was_write_nothing(
    store: Store, view: Callable[[Session], Any]
) -> None:
    """Issue 13.10: setting a key to the value it holds, or changes that cancel out: no write."""
    assert _writes_of(store, view, SETUP) == []


REAL_CHANGES = {
    "1 to 1.0": lambda s: s.set("n", 1.0),
    "1 to True": lambda s: s.set("n", True),
    "0.5 to '0.5'": lambda s: s.set("f", "0.5"),
    "None to 0": lambda s: s.set("z", 0),
    "list to tuple-like list": lambda s: s.set("cart", ["a", {"b": 1.0}]),
    "del": lambda s: s.pop("a"),
    "nested change": lambda s: s["cart"][1].update(b=2),
}


@pytest.mark.parametrize("view", REAL_CHANGES.values(), ids=REAL_CHANGES.keys())
def test_changes_of_type_or_value_are_written(store: Store, view: Callable[[Session], Any]) -> None:
    """Atoms are compared by type and value (1, 1.0 and True differ), containers by their JSON."""
    assert len(_writes_of(store, view, SETUP)) == 1


class _SavingStore(CountingStore):
    """A counting store that also keeps the Changes of each save."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.saved: list[Any] = []

    def save(self, key: str, changes: Any, now: float) -> bool:
        self.saved.append(changes)
        return super().save(key, changes, now)


def test_a_key_set_to_the_same_value_sends_no_cookie_and_keeps_other_changes(store: Store) -> None:
    """Issue 13.10, through the test app: /set with the stored value writes nothing; a real change
    beside a no-op writes only the real change."""
    saving = _SavingStore(store)
    client = webtest.TestApp(SessionMiddleware(app, store=saving))
    client.get("/set?a=1&b=2")
    saving.reset()
    response = client.get("/set?a=1")
    assert saving.writes == [] and "Set-Cookie" not in response.headers
    client.get("/set?a=1&b=3")
    assert saving.writes == ["save"]
    assert dict(saving.saved[-1].updates) == {"b": "3"}
    assert client.get("/get?a=&b=").json == {"a": "1", "b": "3"}
